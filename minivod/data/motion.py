"""Motion IoU and the slow / medium / fast speed groups of ImageNet VID.

FGFA (Zhu et al., 2017) defines an object's motion speed by its *motion IoU*:
the mean IoU of its box in frame t with the boxes of the same track in the
nearby frames t-10 .. t+10. All five papers report mAP split by it:

- slow:   motion IoU > 0.9
- medium: 0.7 <= motion IoU <= 0.9
- fast:   motion IoU < 0.7

Here the window excludes t itself, uses only frames of the window where the
track appears, and the IoU is the evaluator's +1-pixel one. A track seen in no
other frame of its window gets motion IoU 0 (fast).
"""
from __future__ import annotations

import numpy as np

from minivod.boxes import box_iou_vid

MOTION_WINDOW = 10
SPEED_GROUPS = ("slow", "medium", "fast")


def motion_group(motion_iou) -> np.ndarray:
    """Speed group name per box: ``"slow"`` (> 0.9), ``"medium"`` (0.7-0.9), ``"fast"`` (< 0.7)."""
    m = np.asarray(motion_iou, dtype=np.float64)
    return np.where(m > 0.9, "slow", np.where(m < 0.7, "fast", "medium"))


def track_motion_iou(frame_numbers: np.ndarray, boxes: np.ndarray, window: int = MOTION_WINDOW) -> np.ndarray:
    """Motion IoU of each box of one track.

    Args:
        frame_numbers (ndarray[L]): the frame positions where the track appears
        boxes (ndarray[L, 4]): its box in each of those frames, (x1, y1, x2, y2)
    Returns:
        ndarray[L]: mean IoU with the track's boxes within ``window`` frames, excluding itself
    """
    t = np.asarray(frame_numbers)
    iou = box_iou_vid(boxes, boxes)  # (L, L)
    near = (np.abs(t[:, None] - t[None, :]) <= window) & (t[:, None] != t[None, :])  # (L, L)
    count = near.sum(1)
    total = (iou * near).sum(1)
    return np.where(count > 0, total / np.maximum(count, 1), 0.0)


def motion_iou_for_video(video, window: int = MOTION_WINDOW) -> None:
    """Fill ``frame.motion_iou`` for every box of a :class:`~minivod.data.vid.Video`.

    Frame positions are the frames' order in the video (VID frames are consecutive).
    """
    per_track: dict[int, list[tuple[int, int, int]]] = {}  # track -> [(position, frame k, box j)]
    for k, frame in enumerate(video.frames):
        frame.motion_iou = np.zeros(len(frame), dtype=np.float32)
        for j, tid in enumerate(frame.track_ids):
            per_track.setdefault(int(tid), []).append((k, k, j))
    for entries in per_track.values():
        positions = np.array([e[0] for e in entries])
        boxes = np.stack([video.frames[k].boxes[j] for _, k, j in entries]).astype(np.float64)
        miou = track_motion_iou(positions, boxes, window)
        for (_, k, j), m in zip(entries, miou):
            video.frames[k].motion_iou[j] = m
