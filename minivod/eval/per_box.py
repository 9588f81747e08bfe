"""What each ground-truth box got: the class of the best detection on it, per method.

For a ground-truth box, the detection that "answers" it is the highest-scoring
one overlapping it with IoU >= 0.5 (VID +1 convention, as the evaluator
matches). Comparing these answers across methods finds the frames where the
methods disagree (notebook 08) and measures how often a box gets the other class
of its texture pair (notebook 01, ``benchmarks/pair_confusion.py``): each box's
*outcome* is ``right``, ``pair`` (the other class of its pair: same silhouette
and colour, other texture), ``other`` (any other class) or ``missed``. Following
one track's right-class score over its frames shows where a single-frame detector
flickers (notebook 07, before and after Seq-NMS).
"""
from __future__ import annotations

import numpy as np

from minivod.boxes import box_iou_vid, continuous_to_vid
from minivod.data.stats import every_box

OUTCOMES = ("right", "pair", "other", "missed")


def best_detection(gt_boxes: np.ndarray, boxes: np.ndarray, scores: np.ndarray, iou: float = 0.5) -> np.ndarray:
    """For each ground-truth box of a frame, the highest-scoring detection with IoU >= ``iou``.

    Args:
        gt_boxes (ndarray[M, 4]), boxes (ndarray[K, 4]): (x1, y1, x2, y2), VID pixels (+1 convention)
        scores (ndarray[K])
    Returns:
        ndarray[M] of int64: the detection's row in ``boxes``, -1 where none overlaps enough
    """
    best = np.full(len(gt_boxes), -1, dtype=np.int64)
    if len(boxes) and len(gt_boxes):
        overlap = box_iou_vid(gt_boxes, boxes) >= iou  # (M, K)
        masked = np.where(overlap, scores[None, :], -np.inf)  # (M, K)
        best = np.where(overlap.any(axis=1), masked.argmax(axis=1), -1)  # (M,)
    return best


def box_answers(detections: dict, dataset, iou: float = 0.5) -> dict[int, np.ndarray]:
    """Per frame index: for each ground-truth box, the label of its best detection (0: none).

    Args:
        detections: ``{frame_index: (boxes (Tensor[K, 4]) VID pixels, scores (Tensor[K]), labels (Tensor[K]))}``
            as ``minivod.engine.evaluate.score_dataset`` returns them
        dataset: the :class:`~minivod.data.vid.VIDDataset` they were made on
    Returns:
        ``{frame_index: int64 array (M,)}`` aligned with the frame's ground-truth boxes
    """
    answers = {}
    for video in dataset.videos:
        for f in video.frames:
            boxes, scores, labels = (x.numpy() for x in detections[f.index])
            best = best_detection(f.boxes, boxes, scores, iou)  # (M,)
            out = np.zeros(len(f), dtype=np.int64)
            out[best >= 0] = labels[best[best >= 0]]
            answers[f.index] = out
    return answers


def has_blurred_box(frame) -> bool:
    """Whether a frame has a motion-blurred or defocused box: its texture wiped out, so that one frame alone
    cannot tell the two classes of a pair apart (a narrower set than the evaluator's ``degraded``: any tag)."""
    return any({"motion_blur", "defocus"} & set(tags) for tags in frame.tags)


def disagreements(answers: dict[str, dict[int, np.ndarray]], dataset, top: int = 4, where=None) -> list[dict]:
    """Frames where the methods' answers differ most: the most boxes right for some method, wrong for another.

    Args:
        where: if given, only frames ``f`` with ``where(f)`` true count (e.g. :func:`has_blurred_box`)
    Returns up to ``top`` entries ``{"frame": FrameAnnotation, "video": name, "right": {method: count}}``,
    one frame per video, most disagreeing first.
    """
    methods = list(answers)
    scored = []
    for video in dataset.videos:
        best = None
        for f in video.frames:
            if where is not None and not where(f):
                continue
            right = {m: int((answers[m][f.index] == f.labels).sum()) for m in methods}
            spread = max(right.values()) - min(right.values())
            if best is None or spread > best[0]:
                best = (spread, f, right)
        if best is not None and best[0] > 0:
            scored.append({"spread": best[0], "frame": best[1], "video": video.name, "right": best[2]})
    scored.sort(key=lambda e: (-e["spread"], e["video"]))
    return scored[:top]


def pair_of(label: int) -> int:
    """The other class of a texture pair: data_small's classes come as (shape, striped), (shape, checked).

    >>> pair_of(1), pair_of(2), pair_of(7)
    (2, 1, 8)
    """
    return label + 1 if label % 2 == 1 else label - 1


def box_outcomes(detections: dict, dataset, iou: float = 0.5) -> dict[str, np.ndarray]:
    """What the best detection on each ground-truth box said, for every box of the split.

    Args:
        detections: ``{frame_index: (boxes (Tensor[K, 4]) VID pixels, scores (Tensor[K]), labels (Tensor[K]))}``
        dataset: the :class:`~minivod.data.vid.VIDDataset` they were made on
    Returns:
        ``{"answer", "score", "detection", "outcome"}``, each an ndarray[G] in
        :func:`~minivod.data.stats.every_box` order: the label of the box's best detection (0: none),
        its score (0: none), its row in the frame's detections (-1: none), and the outcome
        (one of :data:`OUTCOMES`)
    """
    answer, score, row = [], [], []
    for video in dataset.videos:
        for f in video.frames:
            boxes, scores, labels = (x.numpy() for x in detections[f.index])
            best = best_detection(f.boxes, boxes, scores, iou)  # (M,)
            hit = best >= 0
            a, s = np.zeros(len(f), dtype=np.int64), np.zeros(len(f), dtype=np.float64)
            a[hit], s[hit] = labels[best[hit]], scores[best[hit]]
            answer.append(a)
            score.append(s)
            row.append(best)
    answer, score, row = (np.concatenate(x) for x in (answer, score, row))  # (G,) each
    truth = np.array([f.labels[j] for f, j in every_box(dataset)], dtype=np.int64)  # (G,)
    pair = np.array([pair_of(int(t)) for t in truth], dtype=np.int64)  # (G,)
    outcome = np.select([row < 0, answer == truth, answer == pair], ["missed", "right", "pair"], "other")
    return {"answer": answer, "score": score, "detection": row, "outcome": outcome}


def outcome_shares(outcome: np.ndarray, groups: dict[str, np.ndarray]) -> dict[str, dict]:
    """The share of each outcome among the boxes of each group.

    Args:
        outcome (ndarray[G] of str): from :func:`box_outcomes`
        groups: ``{group: ndarray[G] of bool}``, e.g. :func:`minivod.data.stats.box_groups`
    Returns:
        ``{group: {"right", "pair", "other", "missed": share, "boxes": count}}`` (shares 0 for an
        empty group)
    """
    out = {}
    for name, mask in groups.items():
        n = int(mask.sum())
        out[name] = {k: float((outcome[mask] == k).sum() / max(n, 1)) for k in OUTCOMES} | {"boxes": n}
    return out


def track_scores(frames, video, track_id: int, iou: float = 0.5) -> np.ndarray:
    """Per frame, the best score of a right-class detection on one ground-truth track (notebook 07).

    Args:
        frames: per frame of ``video``, ``(boxes Tensor[K, 4], scores Tensor[K], labels Tensor[K])`` with
            the detector's continuous boxes (as :func:`~minivod.eval.seq_nms.seq_nms` takes and returns them)
        video: the :class:`~minivod.data.vid.Video`; ``track_id``: one of its tracks
    Returns:
        ndarray[T]: NaN where the track is not in the frame, 0 where no detection of its class overlaps it
        by IoU >= ``iou`` (VID +1 convention, as the evaluator)
    """
    out = np.full(len(video.frames), np.nan)
    for t, (f, (boxes, scores, labels)) in enumerate(zip(video.frames, frames)):
        j = np.flatnonzero(f.track_ids == track_id)
        if len(j) == 0:
            continue
        out[t] = 0.0
        if len(boxes):
            overlap = box_iou_vid(f.boxes[j[:1]], continuous_to_vid(boxes).numpy())[0] >= iou  # (K,)
            right = overlap & (labels.numpy() == f.labels[j[0]])
            if right.any():
                out[t] = float(scores.numpy()[right].max())
    return out


def flickering_track(per_video_frames, dataset) -> tuple[int, int, np.ndarray]:
    """The track whose right-class score (:func:`track_scores`) varies most over its frames (largest std).

    Args:
        per_video_frames: per video of ``dataset``, its frames as :func:`track_scores` takes them
    Returns:
        (video position in ``dataset.videos``, track id, its scores ndarray[T])
    """
    best = None
    for vi, (video, frames) in enumerate(zip(dataset.videos, per_video_frames)):
        for tid in video.track_ids():
            s = track_scores(frames, video, tid)
            if best is None or np.nanstd(s) > np.nanstd(best[2]):
                best = (vi, int(tid), s)
    return best
