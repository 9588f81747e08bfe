"""What each ground-truth box got: the class of the best detection on it, per method.

For a ground-truth box, the detection that "answers" it is the highest-scoring
one overlapping it with IoU >= 0.5 (VID +1 convention, as the evaluator
matches). Comparing these answers across methods finds the frames where the
methods disagree (notebook 08) and measures how often a box gets the other class
of its texture pair (``benchmarks/pair_confusion.py``). Following one track's
right-class score over its frames shows where a single-frame detector flickers
(notebook 07, before and after Seq-NMS).
"""
from __future__ import annotations

import numpy as np

from minivod.boxes import box_iou_vid, continuous_to_vid


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
            out = np.zeros(len(f), dtype=np.int64)
            if len(boxes) and len(f):
                overlap = box_iou_vid(f.boxes, boxes) >= iou  # (M, K)
                masked = np.where(overlap, scores[None, :], -np.inf)  # (M, K)
                best = masked.argmax(axis=1)  # (M,)
                hit = overlap.any(axis=1)
                out[hit] = labels[best[hit]]
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
