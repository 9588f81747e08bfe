"""What each ground-truth box got: the class of the best detection on it, per method.

For a ground-truth box, the detection that "answers" it is the highest-scoring
one overlapping it with IoU >= 0.5 (VID +1 convention, as the evaluator
matches). Comparing these answers across methods finds the frames where the
methods disagree (notebook 08) and measures how often a box gets the other class
of its texture pair (``benchmarks/pair_confusion.py``).
"""
from __future__ import annotations

import numpy as np

from minivod.boxes import box_iou_vid


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


def is_degraded(frame) -> bool:
    """Whether a frame has a box that is motion-blurred or defocused (its texture wiped out)."""
    return any({"motion_blur", "defocus"} & set(tags) for tags in frame.tags)


def disagreements(answers: dict[str, dict[int, np.ndarray]], dataset, top: int = 4, where=None) -> list[dict]:
    """Frames where the methods' answers differ most: the most boxes right for some method, wrong for another.

    Args:
        where: if given, only frames ``f`` with ``where(f)`` true count (e.g. :func:`is_degraded`)
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
