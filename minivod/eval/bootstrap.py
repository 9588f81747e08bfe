"""Paired bootstrap over videos: is detector B better than detector A on this split, or is it noise?

Frames of one video are not independent (the same objects, the same blur
episode), so the unit of resampling is the **video**. A replicate draws the
split's V videos with replacement (a video drawn twice counts twice, one not
drawn is left out); both result sets are scored on the same replicate
(*paired*), and the 95% percentile interval of ``B - A`` over the replicates
says how much of a difference the choice of val videos alone could make. An
interval that contains 0 means the difference is not established on this split.

Figures: ``mAP``, ``mAP_slow / medium / fast`` (motion IoU groups) and
``mAP_clean / degraded`` (boxes without / with any degradation tag), each
exactly as :func:`~minivod.eval.vid_eval.evaluate_vid` computes it (the group
rules of ``breakdown.py``; ``degraded`` is its ``mAP_by_tag["degraded"]``).
Speed groups need motion IoUs and the tag groups need tags in the ground truth;
a figure the data cannot give is left out. As in the evaluator, a class without
ground truth (in a replicate, in a group) is left out of the mean; a replicate
without any box of a group has no value for that group and is left out of its
interval.

Exact and fast. The ImageNet VID protocol matches detections to ground truth
within a frame, so which detection is a true or a false positive, and how much
a false positive weighs in a group, does not depend on which videos are drawn.
A replicate only changes how many times each video counts: its multiplicities
``W`` (R replicates x V videos). So matching runs once per result set, and for
each class the counts at the i-th true positive of the score ranking are::

    TP_r(i) = sum_{k <= i} W[r, video of the k-th TP]
    FP_r(i) = sum_v W[r, v] * cumFP[v, i]  (+ e_r * sum_v W[r, v] * cumEmpty[v, i])
    npos_r  = sum_v W[r, v] * npos[v]

with ``cumFP[v, i]`` the FP weight of video v's detections ranked up to the i-th
TP. Only the detections on frames without any box are different: their FP
weight in a group is the fraction of *the split's* boxes that are in the group,
``e_r``, which changes with the replicate. False positives after a class's last
true positive never change its AP, and between two true positives only their
sum matters, so the T true positives are enough: a (R, T) matrix per class and
figure, then the all-point AP of every replicate at once.

:func:`bootstrap_reference` does the same the slow, obvious way (copy the drawn
videos into a new split, call ``evaluate_vid``); the tests check that both agree
to 1e-9. The only case where they could differ is an exact score tie across
frames, which the protocol orders arbitrarily anyway.

:func:`group_gap` uses the same replicates for one detector and two groups of
boxes (clean against degraded, slow against fast): the interval of the gap.
"""
from __future__ import annotations

import math

import numpy as np

from minivod.eval.breakdown import group_weights, speed_group_masks, tag_group_masks
from minivod.eval.ground_truth import FrameGroundTruth, GroundTruth
from minivod.eval.results_io import VIDDetections, as_vid_detections
from minivod.eval.vid_eval import (_frame_positions, canonical_order, class_ranking, evaluate_vid,
                                   figures, frame_overlaps, match_detections)


def frame_videos(dataset) -> dict[int, str]:
    """``{frame_index: video name}`` of every VID frame of a :class:`~minivod.data.vid.VIDDataset`."""
    return {int(f.index): v.name for v in dataset.videos if not getattr(v, "is_still", False) for f in v.frames}


# --------------------------------------------------------------------------- the split, once
class _Split:
    """What the bootstrap needs of the ground truth: each box's video, and the box groups of the figures."""

    def __init__(self, gt: GroundTruth, videos: dict):
        flat = self.flat = gt.flat
        self.num_classes = gt.num_classes
        missing = [int(i) for i in flat.frame_indices if int(i) not in videos]
        if missing:
            raise ValueError(f"{len(missing)} frames of the split have no video (first: frame index {missing[0]})")
        self.names = sorted({videos[int(i)] for i in flat.frame_indices})  # video k is names[k]
        vid_id = {n: k for k, n in enumerate(self.names)}
        self.video_of_frame = np.array([vid_id[videos[int(i)]] for i in flat.frame_indices], np.int64)  # (F,)
        self.video_of_box = self.video_of_frame[flat.frame_pos]  # (G,)
        self.groups = {"mAP": np.ones(len(flat.labels), bool)}  # figure -> (G,) the boxes it counts
        if np.isfinite(flat.motion_iou).any():
            self.groups.update({f"mAP_{k}": m for k, m in speed_group_masks(flat.motion_iou).items()})
        if any(len(t) for t in flat.tags):
            masks = tag_group_masks(flat.tags, tags=())
            self.groups.update({"mAP_clean": masks["clean"], "mAP_degraded": masks["degraded"]})

    @property
    def num_videos(self) -> int:
        return len(self.names)

    def boxes_per_video(self, in_group: np.ndarray, label: int | None = None) -> np.ndarray:
        """(V,) boxes of the group (of one class, if given) in each video."""
        keep = in_group if label is None else in_group & (self.flat.labels == label)
        return np.bincount(self.video_of_box[keep], minlength=self.num_videos).astype(np.float64)


class _Matched:
    """One result set matched once to the ground truth with the protocol of ``vid_eval.py`` (its own code).

    Rows are in the protocol's canonical order (``order`` (D,): the input rows in that order): ``matched`` (D,)
    the ground-truth row each detection took (-1: none), ``pos`` (D,) its frame position, ``video`` (D,) its
    video, ``ranking`` per class.
    """

    def __init__(self, dets, split: _Split):
        flat, C = split.flat, split.num_classes
        dets = as_vid_detections(dets)
        if len(dets) and (dets.labels.min() < 1 or dets.labels.max() > C):
            raise ValueError(f"detection class indices must be in 1..{C}")
        if not np.isfinite(dets.scores).all() or not np.isfinite(dets.boxes).all():
            raise ValueError("detection scores and boxes must be finite")
        pos = _frame_positions(dets.frame_index, flat.frame_indices)  # (D,)
        order = self.order = canonical_order(pos, dets.labels, dets.scores, dets.boxes, C)  # as evaluate_vid
        pos, labels, scores, boxes = pos[order], dets.labels[order], dets.scores[order], dets.boxes[order]
        self.matched = match_detections(boxes, pos * (C + 1) + labels,
                                        flat.boxes, flat.frame_pos * (C + 1) + flat.labels, flat.iou_threshold)
        self.pos, self.video = pos, split.video_of_frame[pos]  # (D,), (D,)
        self.ranking = class_ranking(labels, scores, C)
        unmatched = np.flatnonzero(self.matched < 0)
        ov_det, ov_gt, ov_iou = frame_overlaps(boxes[unmatched], pos[unmatched], flat)
        self.overlaps = (unmatched[ov_det], ov_gt, ov_iou)  # what group FP weights need
        self.on_empty_frame = np.diff(flat.frame_start)[pos] == 0  # (D,) never matched

    def weights(self, figure: str, in_group: np.ndarray, flat):
        """Per detection: TP weight (0 / 1), FP weight on frames with boxes, and whether it is an FP on a frame
        without boxes (its weight ``e_r`` is set per replicate). Each (D,)."""
        if figure == "mAP":  # the plain mAP: every unmatched detection is a full FP, boxes or not
            tp = (self.matched >= 0).astype(np.float64)
            return tp, 1.0 - tp, np.zeros(len(tp), bool)
        tp, fp = group_weights(self.matched, in_group, self.pos, self.overlaps, flat)  # breakdown.py's rules
        return tp, np.where(self.on_empty_frame, 0.0, fp), self.on_empty_frame


# --------------------------------------------------------------------------- AP of every replicate
def _class_ap(tp, fp, empty, rank, video, W, npos, empty_weight) -> np.ndarray:
    """All-point AP of one class in every replicate (R,); NaN where the replicate has no box of it.

    Args:
        tp (ndarray[D]), fp (ndarray[D]), empty (ndarray[D] bool): from :meth:`_Matched.weights`
        rank (ndarray[D_c]): the class's detections by descending score
        video (ndarray[D]): video of each detection
        W (ndarray[R, V]): video multiplicities; npos (ndarray[V]): the class's boxes per video
        empty_weight (ndarray[R]): FP weight ``e_r`` of a detection on a frame without boxes
    """
    n = W @ npos  # (R,) npos_r
    ap = np.where(n > 0, 0.0, np.nan)  # a class with boxes but no true positive: AP 0
    hits = np.flatnonzero(tp[rank] > 0)  # (T,) ranks of the true positives
    if not len(hits):
        return ap
    rank = rank[: hits[-1] + 1]  # later false positives never change the AP
    event = np.searchsorted(hits, np.arange(len(rank)))  # (D_c,) the TP at or after each rank
    V = W.shape[1]
    TP = np.cumsum(W[:, video[rank[hits]]], axis=1)  # (R, T): each TP adds its video's multiplicity
    fp_in = np.zeros((V, len(hits)))
    np.add.at(fp_in, (video[rank], event), fp[rank])  # (V, T) FP weight between consecutive TPs
    FP = np.cumsum(W @ fp_in, axis=1)  # (R, T)
    if empty[rank].any():
        empty_in = np.zeros((V, len(hits)))
        np.add.at(empty_in, (video[rank], event), empty[rank].astype(np.float64))
        FP += empty_weight[:, None] * np.cumsum(W @ empty_in, axis=1)
    recall = TP / np.maximum(n, 1e-12)[:, None]  # (R, T)
    precision = TP / np.maximum(TP + FP, np.finfo(np.float64).eps)  # (R, T), as ap_per_class
    envelope = np.maximum.accumulate(precision[:, ::-1], axis=1)[:, ::-1]  # p_interp: max over later TPs
    d_recall = np.diff(recall, axis=1, prepend=0.0)  # (R, T), 0 for a TP of a video not drawn
    has = n > 0
    ap[has] = (d_recall * envelope).sum(1)[has]  # AP = sum_i (r_i - r_{i-1}) p_interp(r_i)
    return ap


def _replicate_maps(split: _Split, matched: _Matched, W: np.ndarray) -> dict:
    """``{figure: (R,)}`` the figures of one result set in every replicate (rows of W)."""
    flat, C = split.flat, split.num_classes
    all_boxes = split.boxes_per_video(np.ones(len(flat.labels), bool))  # (V,)
    out = {}
    for figure, in_group in split.groups.items():
        tp, fp, empty = matched.weights(figure, in_group, flat)
        # breakdown.py: a FP on a frame without boxes weighs the split's fraction of boxes in the group
        empty_weight = (W @ split.boxes_per_video(in_group)) / np.maximum(W @ all_boxes, 1)  # (R,)
        aps = np.stack([_class_ap(tp, fp, empty, matched.ranking[c], matched.video, W,
                                  split.boxes_per_video(in_group, c), empty_weight)
                        for c in range(1, C + 1)], axis=1)  # (R, C)
        counted = np.isfinite(aps).sum(1)  # (R,) classes with boxes in the replicate
        out[figure] = np.where(counted > 0, np.nansum(aps, 1) / np.maximum(counted, 1), np.nan)  # mean of those
    return out


# --------------------------------------------------------------------------- the comparison
def video_draws(num_videos: int, resamples: int = 1000, seed: int = 0) -> np.ndarray:
    """Video multiplicities of the split itself and of ``resamples`` bootstrap replicates.

    Returns:
        W (ndarray[1 + R, V]): row 0 all ones (the split), row r how often replicate r drew each video
        (videos in sorted-name order). The same ``(V, R, seed)`` gives the same draws, so result
        sets scored on them separately are still paired.
    """
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(num_videos, np.full(num_videos, 1.0 / num_videos), size=resamples)  # (R, V)
    return np.vstack([np.ones((1, num_videos)), draws]).astype(np.float64)  # (1 + R, V)


def bootstrap_replicates(gt: GroundTruth, dets, videos: dict, resamples: int = 1000, seed: int = 0) -> dict:
    """The figures of one result set on the split and on every replicate of :func:`video_draws`.

    Two calls with the same ``resamples`` and ``seed`` use the same draws, so any contrast of several
    result sets (B - A, or a difference of two gains) can be taken replicate by replicate and
    summarised with :func:`percentile_interval`.

    Returns:
        ``{figure: ndarray[1 + R]}``: entry 0 on the split itself, NaN where a replicate has no box of the
        figure's group
    """
    split = _Split(gt, videos)
    return _replicate_maps(split, _Matched(dets, split), video_draws(split.num_videos, resamples, seed))


def percentile_interval(replicates: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The ``level`` percentile interval of a contrast over the bootstrap replicates (entries 1..R).

    Args:
        replicates (ndarray[1 + R]): entry 0 (the split itself) is left out; NaNs are left out
    Returns:
        (low, high), NaN when no replicate has a value
    """
    defined = replicates[1:][np.isfinite(replicates[1:])]
    if not len(defined):
        return math.nan, math.nan
    low, high = np.percentile(defined, [50 * (1 - level), 50 * (1 + level)])
    return float(low), float(high)


def paired_bootstrap(gt: GroundTruth, a, b, videos: dict, resamples: int = 1000, seed: int = 0,
                     level: float = 0.95) -> dict:
    """The figures of A and B on the split, and the ``level`` percentile interval of B - A over video resamples.

    Args:
        gt: the split's ground truth
        a, b: result sets on it (:class:`VIDDetections` or ``{frame_index: (boxes, scores, labels)}``)
        videos: ``{frame_index: video name}`` for every frame of ``gt`` (:func:`frame_videos`)
        resamples: bootstrap replicates R (each draws the V videos with replacement)
        seed: seed of the draws (``numpy.random.default_rng``)
    Returns:
        ``{figure: {"a", "b", "diff" (b - a), "low", "high"}}`` for the figures of
        :data:`minivod.eval.FIGURES` the ground truth supports (``a``, ``b``, ``diff`` on the split
        itself), plus ``"_meta"`` (``num_videos``, ``resamples``, ``seed``, ``level``)
    """
    split = _Split(gt, videos)
    W = video_draws(split.num_videos, resamples, seed)  # (1 + R, V), A and B on the same draws
    maps = {k: _replicate_maps(split, _Matched(x, split), W) for k, x in (("a", a), ("b", b))}
    out = {}
    for figure in maps["a"]:
        diff = maps["b"][figure] - maps["a"][figure]  # (1 + R,)
        low, high = percentile_interval(diff, level)
        out[figure] = {"a": float(maps["a"][figure][0]), "b": float(maps["b"][figure][0]),
                       "diff": float(diff[0]), "low": low, "high": high}
    out["_meta"] = {"num_videos": split.num_videos, "resamples": resamples, "seed": seed, "level": level}
    return out


def group_gap(gt: GroundTruth, dets, videos: dict, figure: str, against: str, resamples: int = 1000,
              seed: int = 0, level: float = 0.95) -> dict:
    """One detector, two groups of boxes: ``figure - against`` and its ``level`` interval over video resamples.

    E.g. ``figure="mAP_clean", against="mAP_degraded"``: how much better the detector does on clean
    boxes than on degraded ones. Both figures are scored on the same replicates (the same draw of
    the split's videos, as in :func:`paired_bootstrap`), so the interval is of the gap itself.

    Args:
        gt, dets, videos, resamples, seed, level: as in :func:`paired_bootstrap`
        figure, against: two figures of :data:`minivod.eval.FIGURES` the ground truth supports
    Returns:
        ``{"a": against, "b": figure, "diff": figure - against, "low", "high"}`` (``a``, ``b``,
        ``diff`` on the split itself)
    """
    split = _Split(gt, videos)
    for name in (figure, against):
        if name not in split.groups:
            raise ValueError(f"figure {name!r} not available on this split; choose from {sorted(split.groups)}")
    W = video_draws(split.num_videos, resamples, seed)  # (1 + R, V): row 0 is the split itself
    maps = _replicate_maps(split, _Matched(dets, split), W)  # figure -> (1 + R,)
    diff = maps[figure] - maps[against]  # (1 + R,)
    low, high = percentile_interval(diff, level)  # over the replicates with boxes of both groups
    return {"a": float(maps[against][0]), "b": float(maps[figure][0]), "diff": float(diff[0]),
            "low": low, "high": high}


def replicate_figures(gt: GroundTruth, dets, videos: dict, counts) -> dict:
    """The fast path's figures of one result set for given video multiplicities.

    Args:
        counts (ndarray[V]): how many times each video counts, videos in sorted-name order
    Returns:
        ``{figure: value}`` (NaN where the replicate has no box of the figure's group)
    """
    split = _Split(gt, videos)
    W = np.asarray(counts, dtype=np.float64).reshape(1, split.num_videos)  # (1, V)
    return {k: float(v[0]) for k, v in _replicate_maps(split, _Matched(dets, split), W).items()}


# --------------------------------------------------------------------------- the slow reference (for tests)
def resample_split(gt: GroundTruth, dets, videos: dict, drawn: list) -> tuple[GroundTruth, VIDDetections]:
    """Ground truth and detections of one replicate, built explicitly.

    Each entry of ``drawn`` (video names, repeats allowed) copies that video's frames and their detections
    under new frame indices, so a video drawn twice is in the new split twice.
    """
    dets = as_vid_detections(dets)
    by_video: dict = {}
    for index in sorted(gt.frames):
        by_video.setdefault(videos[index], []).append(index)
    offset = max(gt.frames) + 1
    frames, parts = {}, []
    for copy, name in enumerate(drawn):
        for index in by_video[name]:
            new = index + copy * offset  # a frame index of its own for every copy
            f = gt.frames[index]
            frames[new] = FrameGroundTruth(f.boxes, f.labels, f.motion_iou, f.tags)
            rows = dets.frame_index == index
            parts.append(VIDDetections(np.full(int(rows.sum()), new), dets.labels[rows], dets.scores[rows],
                                       dets.boxes[rows]))
    merged = VIDDetections(*(np.concatenate([getattr(p, k) for p in parts]) if parts else np.zeros(0)
                             for k in ("frame_index", "labels", "scores", "boxes")))
    return GroundTruth(frames, gt.class_names), merged


def bootstrap_reference(gt: GroundTruth, dets, videos: dict, drawn: list) -> dict:
    """The slow, obvious reference for the tests: the figures of one replicate by calling ``evaluate_vid``
    on the explicitly resampled split (``drawn``: video names, repeats allowed)."""
    resampled_gt, resampled_dets = resample_split(gt, dets, videos, drawn)
    result = evaluate_vid(resampled_dets, resampled_gt)
    return {k: v for k, v in figures(result).items() if v is not None}
