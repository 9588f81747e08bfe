"""Tests of minivod.data.displacement: box centres and how far each tracked object moves."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np

from minivod.data.displacement import box_centres, fastest_move, track_moves
from minivod.data.vid import FrameAnnotation, Video


def frame(boxes, track_ids):
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    n = len(boxes)
    return FrameAnnotation(frame_id="v/0", index=0, image_path=Path("none"), width=64, height=48, boxes=boxes,
                           labels=np.ones(n, np.int64), track_ids=np.asarray(track_ids, np.int64),
                           occluded=np.zeros(n, bool))


def test_box_centres():
    np.testing.assert_allclose(box_centres(np.array([[0, 0, 10, 4], [2, 2, 4, 8]])), [[5, 2], [3, 5]])


def test_track_moves_pairs_tracks_and_skips_the_ones_that_leave():
    video = Video("v", [frame([[0, 0, 10, 10], [20, 20, 30, 30]], [7, 3]),
                        frame([[22, 21, 32, 31], [40, 0, 44, 4]], [3, 9])])  # track 3 moved (+2, +1); 7 left
    moves = track_moves(video, 0, 1)
    assert len(moves) == 1 and moves.ref_index.tolist() == [1] and moves.support_index.tolist() == [0]
    np.testing.assert_allclose(moves.centre, [[25, 25]])
    np.testing.assert_allclose(moves.move, [[2, 1]])
    backwards = track_moves(video, 1, 0)
    np.testing.assert_allclose(backwards.move, [[-2, -1]])
    assert len(track_moves(Video("w", [frame([], []), frame([], [])]), 0, 1)) == 0


def test_fastest_move_respects_the_margin():
    still = [[0, 0, 4, 4]]
    video = Video("v", [frame(still, [1]), frame([[30, 0, 34, 4]], [1]), frame(still, [1]), frame(still, [1]),
                        frame([[0, 10, 4, 14]], [1])])
    data = SimpleNamespace(videos=[Video("empty", [frame([], [])] * 3), video])
    assert fastest_move(data, gap=1) == (30.0, 1, 0, 0, 0)  # frame 0 -> 1: 30 px
    assert fastest_move(data, gap=1, margin=1)[:3] == (30.0, 1, 1)  # frame 1 -> 2 moves back 30 px
    assert fastest_move(data, gap=1, margin=2)[:3] == (0.0, 1, 2)  # t = 2 only (room for 2 frames after it)
    assert fastest_move(data, gap=2, margin=1)[:3] == (30.0, 1, 1)  # frames 1 -> 3
    assert fastest_move(SimpleNamespace(videos=[]), gap=1)[0] == -1.0
