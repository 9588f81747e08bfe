"""A synthetic split for the evaluator: ground truth (motion IoUs, tags) and a detector's output on it.

Small enough for exact checks (``tests/test_bootstrap.py``: the bootstrap's fast path against
its reference), and scaled up to data_small's size by ``benchmarks/bench_bootstrap.py``.
"""
from __future__ import annotations

import numpy as np

from minivod.eval.ground_truth import FrameGroundTruth, GroundTruth
from minivod.eval.results_io import VIDDetections

TAGS = [(), (), ("motion_blur",), ("defocus", "occlusion"), ()]


def synthetic_case(seed=0, videos=6, frames=5, classes=3, max_boxes=4):
    """A small split with speed and tag info (some frames empty) and a detector's output on it.

    ``videos`` videos of ``frames`` frames, up to ``max_boxes - 1`` boxes a frame (every 7th frame
    has none), ``classes`` classes. The last video holds class 1 only, so a bootstrap replicate
    drawing only it has no box of the other classes. On most boxes a detection (a fifth of them of
    the wrong class), plus false positives, also on frames without boxes.

    Returns:
        (GroundTruth, VIDDetections, ``{frame_index: video name}``)
    """
    rng = np.random.default_rng(seed)
    gt_frames, video_of, rows = {}, {}, []
    index = 1
    for v in range(videos):
        for t in range(frames):
            n = int(rng.integers(0, max_boxes)) if (v + t) % 7 else 0  # every 7th frame has no box
            xy = rng.uniform(0, 80, (n, 2))
            wh = rng.uniform(12, 30, (n, 2))
            boxes = np.concatenate([xy, xy + wh], 1)  # (n, 4)
            labels = rng.integers(1, classes + 1, n) if v < videos - 1 else np.ones(n, np.int64)
            gt_frames[index] = FrameGroundTruth(boxes, labels, rng.uniform(0.5, 1.0, n),
                                                [TAGS[int(k)] for k in rng.integers(0, len(TAGS), n)])
            video_of[index] = f"video_{v:02d}"
            for b, lab in zip(boxes, labels):  # a detection on most boxes, sometimes of the wrong class
                if rng.random() < 0.85:
                    wrong = rng.random() < 0.2
                    rows.append((index, (lab % classes) + 1 if wrong else lab, rng.uniform(0.3, 1.0),
                                 *(b + rng.normal(0, 1.5, 4))))
            for _ in range(int(rng.integers(0, 3))):  # false positives, also on frames without boxes
                x, y = rng.uniform(0, 90, 2)
                rows.append((index, rng.integers(1, classes + 1), rng.uniform(0, 0.8), x, y, x + 15, y + 15))
            index += 1
    r = np.array(rows, dtype=np.float64)
    r[:, 5] = np.maximum(r[:, 5], r[:, 3])
    r[:, 6] = np.maximum(r[:, 6], r[:, 4])
    dets = VIDDetections(r[:, 0], r[:, 1], r[:, 2], r[:, 3:7])
    return GroundTruth(gt_frames, [f"c{k}" for k in range(1, classes + 1)]), dets, video_of
