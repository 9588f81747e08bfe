"""Speed of the paired bootstrap over videos (``minivod.eval.bootstrap``) on CPU.

    python benchmarks/bench_bootstrap.py

A synthetic split the size of data_small val: 48 videos of 32 frames, 8 classes,
about 6,000 boxes with motion IoUs and degradation tags, and a detector's output
on it (a detection on most boxes, clutter, and low-scored random boxes: about
40,000 detections). B is A with its scores jittered by up to 10%. Times
``evaluate_vid`` once and ``paired_bootstrap`` with 1000 resamples (all six
figures), and checks one replicate against the slow reference (duplicate the
drawn videos, call ``evaluate_vid``). Prints the timings and writes
``benchmarks/results/bootstrap_speed.json``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from minivod.eval import VIDDetections, evaluate_vid
from minivod.eval.bootstrap import bootstrap_reference, paired_bootstrap, replicate_figures
from minivod.eval.synthetic import synthetic_case

from record import machine, write_results


def synthetic_split(seed=0, clutter=30_000):
    """(GroundTruth, A, B, videos) of the size of data_small val."""
    gt, dets, videos = synthetic_case(seed=seed, videos=48, frames=32, classes=8, max_boxes=10)
    rng = np.random.default_rng(seed)
    frame = rng.choice(np.array(sorted(gt.frames)), clutter)
    xy = rng.uniform(0, 140, (clutter, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(8, 30, (clutter, 2))], 1)  # (N, 4)
    fields = ("frame_index", "labels", "scores", "boxes")
    extra = VIDDetections(frame, rng.integers(1, 9, clutter), rng.uniform(0, 0.5, clutter), boxes)
    a = VIDDetections(*(np.concatenate([getattr(dets, k), getattr(extra, k)]) for k in fields))
    b = VIDDetections(a.frame_index, a.labels, a.scores * rng.uniform(0.9, 1.1, len(a)), a.boxes)
    return gt, a, b, videos


def main(argv=None) -> int:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args(argv)
    gt, a, b, videos = synthetic_split()
    t = time.perf_counter()
    evaluate_vid(a, gt)
    evaluate_s = time.perf_counter() - t
    runs = []
    for _ in range(2):
        t = time.perf_counter()
        out = paired_bootstrap(gt, a, b, videos, resamples=1000, seed=0)
        runs.append(round(time.perf_counter() - t, 2))
    names = sorted(set(videos.values()))
    drawn = list(np.random.default_rng(1).choice(names, len(names)))
    fast = replicate_figures(gt, a, videos, np.array([drawn.count(n) for n in names]))
    slow = bootstrap_reference(gt, a, videos, drawn)
    worst = max(abs(fast[k] - slow[k]) for k in fast)
    record = {
        "machine": machine("platform", "cpu_count", "numpy", "omp_num_threads"),
        "split": {"videos": len(names), "frames": len(gt.frames), "gt_boxes": len(gt.flat.labels),
                  "detections": len(a), "classes": gt.num_classes},
        "evaluate_vid_s": round(evaluate_s, 2),
        "paired_bootstrap_1000_s": min(runs), "paired_bootstrap_all_runs_s": runs,
        "reference_max_abs_diff": worst,
        "interval_mAP": out["mAP"],
    }
    print(json.dumps(record, indent=1))
    write_results("bootstrap_speed", record)
    return 0 if worst < 1e-9 else 1


if __name__ == "__main__":
    sys.exit(main())
