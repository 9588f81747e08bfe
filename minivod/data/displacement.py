"""How far each object moves between two frames of a video: box centres and their displacement.

A method that aligns frames (MST's DAlign offsets, PSLA's correspondence weights, SSVD's flow)
can be put next to the true motion of the annotated objects: for every track present in both
frames, where its box centre is in the first frame and how far it has moved in the second.

    move = centre(box in frame s) - centre(box in frame t)        (dx, dy) in pixels

Divide by a feature map's stride to read it in map cells.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def box_centres(boxes: np.ndarray) -> np.ndarray:
    """Centres of boxes (ndarray[N, 4]) in (x1, y1, x2, y2): ndarray[N, 2] as (x, y)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], axis=1)  # (N, 2)


@dataclass
class TrackMoves:
    """The objects present in both frames t and s of a video, one row each.

    ref_index (ndarray[n]): row of the object's box in frame t
    support_index (ndarray[n]): row of the same track's box in frame s
    centre (ndarray[n, 2]): (x, y) of its box centre in frame t, pixels
    move (ndarray[n, 2]): (dx, dy) of its centre from frame t to frame s, pixels
    """

    ref_index: np.ndarray
    support_index: np.ndarray
    centre: np.ndarray
    move: np.ndarray

    def __len__(self) -> int:
        return len(self.ref_index)


def track_moves(video, t: int, s: int) -> TrackMoves:
    """Every track of frame ``t`` of ``video`` (a :class:`~minivod.data.vid.Video`) that is also in frame ``s``."""
    a, b = video.frames[t], video.frames[s]
    rows = [(i, int(np.flatnonzero(b.track_ids == tid)[0])) for i, tid in enumerate(a.track_ids)
            if (b.track_ids == tid).any()]
    ref = np.array([i for i, _ in rows], dtype=np.int64)
    sup = np.array([j for _, j in rows], dtype=np.int64)
    centre = box_centres(a.boxes[ref]) if len(rows) else np.zeros((0, 2))  # (n, 2)
    move = box_centres(b.boxes[sup]) - centre if len(rows) else np.zeros((0, 2))  # (n, 2)
    return TrackMoves(ref, sup, centre, move)


def fastest_move(dataset, gap: int, margin: int = 0) -> tuple[float, int, int, int, int]:
    """The object that moves farthest over ``gap`` frames in a dataset.

    Only frames t with ``margin`` frames before them and ``max(gap, margin)`` after them are
    searched (room for a window of supports around t).

    Returns:
        (distance in pixels, video index, t, row of its box in frame t, row in frame t + gap);
        distance -1 and ``None`` indices when no object appears in two such frames
    """
    best: tuple = (-1.0, None, None, None, None)
    for vi, video in enumerate(dataset.videos):
        for t in range(margin, len(video) - max(gap, margin)):
            moves = track_moves(video, t, t + gap)
            if not len(moves):
                continue
            dist = np.hypot(moves.move[:, 0], moves.move[:, 1])  # (n,)
            k = int(dist.argmax())
            if dist[k] > best[0]:
                best = (float(dist[k]), vi, t, int(moves.ref_index[k]), int(moves.support_index[k]))
    return best
