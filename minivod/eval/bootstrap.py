"""Paired bootstrap over videos: is detector B better than detector A on this split, or is it noise?

Frames of one video are not independent (the same objects, the same blur
episode), so the unit of resampling is the **video**. A replicate draws the
split's V videos with replacement (a video drawn twice counts twice); both
result sets are scored on the same replicate (*paired*), and the 95% interval
of ``B - A`` over the replicates says how much of a difference the choice of
val videos alone could make. An interval that contains 0 means the difference
is not established on this split.

Exact and fast. The ImageNet VID protocol matches detections to ground truth
within a frame, so which detection is a true or a false positive, and how much a
false positive weighs in a group (``breakdown.py``), does not depend on which
videos are drawn. A replicate only changes how many times each video counts.
So the matching runs once per result set, and for every class the precision
and recall at each true positive of the score ranking are linear in the
videos' multiplicities ``W`` (R replicates x V videos)::

    TP_r(i) = sum_v W[r, v] * cumTP[v, i]      (i: the i-th true positive in the ranking)
    FP_r(i) = sum_v W[r, v] * cumFP[v, i]      (+ the split-level FP weight of frames without boxes)
    npos_r  = sum_v W[r, v] * npos[v]

two matrix products per class and figure, then the all-point AP of every
replicate at once. False positives after a class's last true positive never
change its AP, and between two true positives only their count matters, which
is why the true positives are enough. :func:`bootstrap_reference` does the same
the slow, obvious way (duplicate the drawn videos, call ``evaluate_vid``); the
tests check that both agree.
"""
from __future__ import annotations

import numpy as np

from minivod.eval.breakdown import group_weights, speed_group_masks, tag_group_masks
from minivod.eval.ground_truth import FrameGroundTruth, GroundTruth
from minivod.eval.results_io import VIDDetections, as_vid_detections
from minivod.eval.vid_eval import (_frame_positions, canonical_order, class_ranking, evaluate_vid,
                                   frame_overlaps, match_detections)

FIGURES = ("mAP", "mAP_slow", "mAP_medium", "mAP_fast", "mAP_clean", "mAP_degraded")


def frame_videos(dataset) -> dict[int, str]:
    """``{frame_index: video name}`` of every VID frame of a :class:`~minivod.data.vid.VIDDataset`."""
    return {int(f.index): v.name for v in dataset.videos if not getattr(v, "is_still", False) for f in v.frames}


def _groups(gt: GroundTruth) -> dict[str, np.ndarray]:
    """The boxes each figure counts: all, the speed groups, and clean / degraded where the data has tags."""
    flat = gt.flat
    groups = {"mAP": np.ones(len(flat.labels), bool)}
    if np.isfinite(flat.motion_iou).any():
        groups.update({f"mAP_{k}": m for k, m in speed_group_masks(flat.motion_iou).items()})
    if any(len(t) for t in flat.tags):
        masks = tag_group_masks(flat.tags, tags=())
        groups.update({"mAP_clean": masks["clean"], "mAP_degraded": masks["degraded"]})
    return groups


def _events(dets: VIDDetections, gt: GroundTruth, video_of_frame: np.ndarray, groups: dict):
    """Per figure and class, what the AP of any replicate needs (see the module docstring).

    Returns ``{figure: [per class c: (cumTP (V, T), cumFP (V, T), cumEmpty (V, T))]}`` where T is the
    class's true positives in ranking order and ``cumEmpty`` counts the unmatched detections on frames
    without any box (whose FP weight in a group is a split-level fraction, so it changes per replicate).
    """
    flat = gt.flat
    C, V = gt.num_classes, int(video_of_frame.max()) + 1 if len(video_of_frame) else 0
    pos = _frame_positions(dets.frame_index, flat.frame_indices)  # (D,)
    order = canonical_order(pos, dets.labels, dets.scores, dets.boxes, C)
    pos, labels, scores, boxes = pos[order], dets.labels[order], dets.scores[order], dets.boxes[order]
    matched = match_detections(boxes, pos * (C + 1) + labels,
                               flat.boxes, flat.frame_pos * (C + 1) + flat.labels, flat.iou_threshold)  # (D,)
    ranking = class_ranking(labels, scores, C)
    unmatched = np.flatnonzero(matched < 0)
    ov_det, ov_gt, ov_iou = frame_overlaps(boxes[unmatched], pos[unmatched], flat)
    overlaps = (unmatched[ov_det], ov_gt, ov_iou)
    video = video_of_frame[pos]  # (D,)
    empty_frame = (np.diff(flat.frame_start)[pos] == 0) & (matched < 0)  # (D,)
    out = {}
    for name, in_group in groups.items():
        if name == "mAP":
            tp = (matched >= 0).astype(np.float64)
            fp = 1.0 - tp
            empty = np.zeros(len(tp), bool)  # the plain mAP: every FP weighs 1, with or without boxes
        else:
            tp, fp = group_weights(matched, in_group, pos, overlaps, flat)
            empty = empty_frame
            fp = np.where(empty, 0.0, fp)  # added back per replicate
        per_class = []
        for c in range(1, C + 1):
            rank = ranking[c]  # (D_c,) by descending score
            hits = np.flatnonzero(tp[rank] > 0)  # (T,) positions of the true positives
            if not len(hits):
                per_class.append(None)
                continue
            rank = rank[: hits[-1] + 1]  # later false positives never change the AP
            step = np.searchsorted(hits, np.arange(len(rank)))  # (D_c,) the TP event each detection counts at
            cum = []
            for weight in (tp[rank], fp[rank], empty[rank].astype(np.float64)):
                m = np.zeros((V, len(hits)))
                np.add.at(m, (video[rank], step), weight)
                cum.append(np.cumsum(m, axis=1))  # (V, T)
            per_class.append(tuple(cum))
        out[name] = per_class
    return out


def _npos(gt: GroundTruth, video_of_box: np.ndarray, groups: dict, V: int) -> dict:
    """``{figure: (C + 1, V)}`` ground-truth boxes of each class in each video, counted in the figure's group."""
    flat = gt.flat
    out = {}
    for name, in_group in groups.items():
        n = np.zeros((gt.num_classes + 1, V))
        np.add.at(n, (flat.labels[in_group], video_of_box[in_group]), 1.0)
        out[name] = n
    return out


def _replicate_maps(events, npos, W: np.ndarray, empty_weight: np.ndarray) -> np.ndarray:
    """mAP of every replicate (R,) for one figure; ``empty_weight`` (R,) is the FP weight on box-less frames."""
    C = npos.shape[0] - 1
    aps = np.full((len(W), C), np.nan)  # (R, C)
    for c in range(1, C + 1):
        n = W @ npos[c]  # (R,)
        has = n > 0
        aps[:, c - 1] = np.where(has, 0.0, np.nan)
        if events[c - 1] is None:
            continue
        cum_tp, cum_fp, cum_empty = events[c - 1]
        TP = W @ cum_tp  # (R, T)
        FP = W @ cum_fp + empty_weight[:, None] * (W @ cum_empty)  # (R, T)
        recall = TP / np.maximum(n, 1e-12)[:, None]
        precision = TP / np.maximum(TP + FP, np.finfo(np.float64).eps)
        envelope = np.maximum.accumulate(precision[:, ::-1], axis=1)[:, ::-1]  # max over later TPs
        d_recall = np.diff(recall, axis=1, prepend=0.0)  # (R, T)
        aps[has, c - 1] = (d_recall * envelope).sum(1)[has]
    with np.errstate(all="ignore"):
        return np.nanmean(aps, axis=1)  # classes without ground truth in a replicate are left out


def paired_bootstrap(gt: GroundTruth, a, b, videos: dict, resamples: int = 1000, seed: int = 0,
                     level: float = 0.95) -> dict:
    """The figures of A and B on the split and the ``level`` interval of B - A over video resamples.

    Args:
        gt: the split's ground truth
        a, b: result sets on it (:class:`VIDDetections` or ``{frame_index: (boxes, scores, labels)}``)
        videos: ``{frame_index: video id}`` for every frame of ``gt`` (:func:`frame_videos`)
        resamples: bootstrap replicates R (each draws V videos with replacement)
    Returns:
        ``{figure: {"a", "b", "diff" (b - a), "low", "high"}}`` for ``mAP``, ``mAP_slow/medium/fast``
        and ``mAP_clean/degraded`` (those the ground truth supports), plus ``"_meta"``
    """
    flat = gt.flat
    names = sorted({videos[int(i)] for i in flat.frame_indices})
    vid_id = {n: k for k, n in enumerate(names)}
    video_of_frame = np.array([vid_id[videos[int(i)]] for i in flat.frame_indices], dtype=np.int64)  # (F,)
    V = len(names)
    groups = _groups(gt)
    npos = _npos(gt, video_of_frame[flat.frame_pos], groups, V)
    events = {k: _events(as_vid_detections(x), gt, video_of_frame, groups) for k, x in (("a", a), ("b", b))}
    rng = np.random.default_rng(seed)
    W = np.vstack([np.ones((1, V)), rng.multinomial(V, np.full(V, 1.0 / V), size=resamples)])  # (1 + R, V)
    boxes_per_video = np.bincount(video_of_frame[flat.frame_pos], minlength=V).astype(np.float64)  # (V,)
    out = {}
    for name, in_group in groups.items():
        in_per_video = np.bincount(video_of_frame[flat.frame_pos][in_group], minlength=V).astype(np.float64)
        empty_weight = (W @ in_per_video) / np.maximum(W @ boxes_per_video, 1)  # (1 + R,)
        maps = {k: _replicate_maps(events[k][name], npos[name], W, empty_weight) for k in events}
        diff = maps["b"] - maps["a"]  # (1 + R,): row 0 is the split itself
        low, high = np.nanpercentile(diff[1:], [50 * (1 - level), 50 * (1 + level)])
        out[name] = {"a": float(maps["a"][0]), "b": float(maps["b"][0]), "diff": float(diff[0]),
                     "low": float(low), "high": float(high)}
    out["_meta"] = {"videos": V, "resamples": resamples, "seed": seed, "level": level}
    return out


# --------------------------------------------------------------------------- the slow reference
def resample_split(gt: GroundTruth, dets, videos: dict, drawn: list) -> tuple[GroundTruth, VIDDetections]:
    """Ground truth and detections of one replicate, built explicitly: each drawn video's frames are copied
    (a video drawn twice appears twice, under new frame indices)."""
    dets = as_vid_detections(dets)
    by_video: dict = {}
    for index in sorted(gt.frames):
        by_video.setdefault(videos[index], []).append(index)
    offset = max(gt.frames) + 1
    frames, parts = {}, []
    for copy, name in enumerate(drawn):
        for index in by_video[name]:
            new = index + copy * offset
            f = gt.frames[index]
            frames[new] = FrameGroundTruth(f.boxes, f.labels, f.motion_iou, f.tags)
            rows = dets.frame_index == index
            parts.append(VIDDetections(np.full(int(rows.sum()), new), dets.labels[rows], dets.scores[rows],
                                       dets.boxes[rows]))
    merged = VIDDetections(*(np.concatenate([getattr(p, k) for p in parts]) if parts else np.zeros(0)
                             for k in ("frame_index", "labels", "scores", "boxes")))
    return GroundTruth(frames, gt.class_names), merged


def bootstrap_reference(gt: GroundTruth, dets, videos: dict, drawn: list) -> dict:
    """The figures of one replicate (``drawn``: video ids, repeats allowed) by calling ``evaluate_vid``."""
    rgt, rdets = resample_split(gt, dets, videos, drawn)
    result = evaluate_vid(rdets, rgt)
    tags = result.get("mAP_by_tag", {})
    out = {"mAP": result["mAP"], "mAP_slow": result.get("mAP_slow"), "mAP_medium": result.get("mAP_medium"),
           "mAP_fast": result.get("mAP_fast"), "mAP_clean": tags.get("clean"), "mAP_degraded": tags.get("degraded")}
    return {k: v for k, v in out.items() if v is not None}


def replicate_figures(gt: GroundTruth, dets, videos: dict, counts: np.ndarray) -> dict:
    """The fast path's figures for given video multiplicities ``counts`` (V,), videos in sorted-name order."""
    flat = gt.flat
    names = sorted({videos[int(i)] for i in flat.frame_indices})
    vid_id = {n: k for k, n in enumerate(names)}
    video_of_frame = np.array([vid_id[videos[int(i)]] for i in flat.frame_indices], dtype=np.int64)
    groups = _groups(gt)
    npos = _npos(gt, video_of_frame[flat.frame_pos], groups, len(names))
    events = _events(as_vid_detections(dets), gt, video_of_frame, groups)
    W = np.asarray(counts, dtype=np.float64)[None]  # (1, V)
    boxes_per_video = np.bincount(video_of_frame[flat.frame_pos], minlength=len(names)).astype(np.float64)
    out = {}
    for name, in_group in groups.items():
        in_per_video = np.bincount(video_of_frame[flat.frame_pos][in_group], minlength=len(names))
        empty_weight = (W @ in_per_video) / np.maximum(W @ boxes_per_video, 1)
        out[name] = float(_replicate_maps(events[name], npos[name], W, empty_weight)[0])
    return out
