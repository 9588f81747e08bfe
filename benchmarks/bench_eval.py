"""Speed of the ImageNet VID evaluator and of Seq-NMS on CPU.

    python benchmarks/bench_eval.py            # full sizes (a few minutes)
    python benchmarks/bench_eval.py --quick    # about a tenth

1. ``evaluate_vid`` on a synthetic split the size of the ImageNet VID validation
   set: 555 snippets, 176,126 frames, 30 classes, 1-4 moving objects per snippet,
   100 detections per frame (17.6 million): near-copies of the ground truth plus
   random boxes. Timed plain, with the slow / medium / fast breakdown, and with
   the degradation-tag breakdown as well.
2. ``seq_nms`` on one 300-frame video with 300 boxes per frame (30 objects,
   8 jittered boxes each, and 60 clutter boxes) of 30 classes, then of 3 classes
   (ten times more boxes per class and frame), against the plain Python
   reference loop ``minivod.eval.seq_nms.reference_seq_nms`` (the outputs must agree).

Prints a table and writes ``benchmarks/results/eval_speed.json`` with the
machine (platform, CPU count, torch and numpy versions).
"""
from __future__ import annotations

import argparse
import os
import resource
import time
from pathlib import Path

import numpy as np
import torch

from minivod.eval import FrameGroundTruth, GroundTruth, VIDDetections, evaluate_vid, seq_nms
from minivod.eval.seq_nms import reference_seq_nms

from record import RESULTS, machine, write_results
from tables import markdown_table

VID_VAL_FRAMES = 176_126
VID_VAL_SNIPPETS = 555
TAGS = ("motion_blur", "defocus", "occlusion", "truncation", "rare_pose", "illumination")
W, H = 1280, 720


# --------------------------------------------------------------------------- synthetic data
def synthetic_split(n_videos, n_frames, dets_per_frame=100, num_classes=30, seed=0):
    """A split of moving objects and a detector's output on it: (GroundTruth, VIDDetections)."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(40, 600, n_videos)
    lengths = np.maximum(1, np.round(lengths * n_frames / lengths.sum()).astype(int))
    lengths[-1] += n_frames - lengths.sum()
    frames, index = {}, 1
    for length in lengths:
        K = int(rng.integers(1, 5))  # objects in the snippet
        size = rng.uniform([20, 20], [400, 300], (K, 2))  # (K, 2)
        start = rng.uniform([0, 0], [W, H], (K, 2)) - size / 2
        group = rng.integers(0, 3, K)  # slow, medium, fast
        speed = np.array([0.002, 0.02, 0.08])[group] * size.mean(1)  # px per frame
        velocity = speed[:, None] * rng.normal(size=(K, 2))  # (K, 2)
        labels = rng.integers(1, num_classes + 1, K)
        t = np.arange(length)[:, None, None]  # (L, 1, 1)
        corner = start[None] + velocity[None] * t  # (L, K, 2)
        boxes = np.concatenate([corner, corner + size[None]], axis=2).round()  # (L, K, 4)
        boxes[..., 0::2] = boxes[..., 0::2].clip(0, W - 1)
        boxes[..., 1::2] = boxes[..., 1::2].clip(0, H - 1)
        lo_hi = np.array([(0.9, 1.0), (0.7, 0.9), (0.3, 0.7)])[group]  # (K, 2) motion IoU range
        motion = rng.uniform(lo_hi[:, 0], lo_hi[:, 1], (length, K))  # (L, K)
        tagged = rng.random((length, K, len(TAGS))) < 0.08  # (L, K, 6)
        for f in range(length):
            tags = [tuple(TAGS[j] for j in np.flatnonzero(tagged[f, k])) for k in range(K)]
            frames[index] = FrameGroundTruth(boxes[f], labels, motion[f], tags)
            index += 1
    gt = GroundTruth(frames, [f"class_{k}" for k in range(1, num_classes + 1)])
    flat = gt.flat

    # three near-copies of every box (85% with the right class), then random boxes up to 100 a frame
    G = len(flat.labels)
    near = np.repeat(np.arange(G), 3)  # (3G,)
    wh = (flat.boxes[near, 2:] - flat.boxes[near, :2] + 1).repeat(2, axis=1)  # (3G, 4)
    near_boxes = flat.boxes[near] + rng.normal(0, 0.08, (len(near), 4)) * wh
    near_boxes[:, 2:] = np.maximum(near_boxes[:, 2:], near_boxes[:, :2])
    near_labels = np.where(rng.random(len(near)) < 0.85, flat.labels[near], rng.integers(1, num_classes + 1, len(near)))
    n_random = np.maximum(dets_per_frame - 3 * np.diff(flat.frame_start), 0)  # (F,)
    R = int(n_random.sum())
    corner = rng.uniform([0, 0], [W, H], (R, 2))
    rand_boxes = np.concatenate([corner, corner + rng.uniform(20, 400, (R, 2))], axis=1)
    dets = VIDDetections(
        frame_index=np.concatenate([flat.frame_indices[flat.frame_pos[near]], np.repeat(flat.frame_indices, n_random)]),
        labels=np.concatenate([near_labels, rng.integers(1, num_classes + 1, R)]),
        scores=np.concatenate([rng.beta(4, 2, len(near)), rng.beta(1, 5, R)]),
        boxes=np.concatenate([near_boxes, rand_boxes]),
    )
    return gt, dets


def synthetic_video(T=300, objects=30, per_object=8, clutter=60, num_classes=30, seed=0):
    """One video: moving objects with jittered boxes (a detector before NMS) and clutter."""
    g = torch.Generator().manual_seed(seed)
    rand = lambda *s: torch.rand(*s, generator=g)  # noqa: E731
    start, size = rand(objects, 2) * torch.tensor([W, H]), 30 + rand(objects, 2) * 200  # (O, 2)
    velocity = (rand(objects, 2) - 0.5) * 20
    labels = torch.cat([torch.randint(1, num_classes + 1, (objects,), generator=g).repeat_interleave(per_object),
                        torch.zeros(clutter, dtype=torch.long)])
    frames = []
    for t in range(T):
        centre = (start + velocity * t).repeat_interleave(per_object, 0) + (rand(objects * per_object, 2) - 0.5) * 20
        s = size.repeat_interleave(per_object, 0) * (0.85 + 0.3 * rand(objects * per_object, 2))
        corner = rand(clutter, 2) * torch.tensor([W, H])
        boxes = torch.cat([torch.cat([centre - s / 2, centre + s / 2], 1),
                           torch.cat([corner, corner + 20 + rand(clutter, 2) * 200], 1)])  # (N, 4)
        labels[-clutter:] = torch.randint(1, num_classes + 1, (clutter,), generator=g)
        scores = torch.cat([0.3 + 0.7 * rand(objects * per_object), 0.3 * rand(clutter)])
        frames.append((boxes, scores, labels.clone()))
    return frames


# --------------------------------------------------------------------------- runs
def timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t0, out


def bench_eval(n_videos, n_frames, repeats=2):
    t_data, (gt, dets) = timed(synthetic_split, n_videos, n_frames)
    rows = {"snippets": n_videos, "frames": n_frames, "gt_boxes": len(gt.flat.labels), "detections": len(dets),
            "classes": gt.num_classes, "make_data_s": round(t_data, 2)}
    runs = {"plain": dict(motion_breakdown=False, tag_breakdown=False),
            "motion": dict(motion_breakdown=True, tag_breakdown=False),
            "motion_and_tags": dict(motion_breakdown=True, tag_breakdown=True)}
    for name, options in runs.items():
        times = []
        for _ in range(repeats):  # the best of a few: the first run also pays for growing the heap
            seconds, result = timed(evaluate_vid, dets, gt, **options)
            times.append(round(seconds, 2))
        seconds = min(times)
        rows[f"{name}_s"], rows[f"{name}_all_runs_s"] = seconds, times
        print(f"  evaluate_vid {name:<16} {seconds:7.2f} s   mAP {result['mAP']:.3f}"
              + (f"  slow/medium/fast {result['mAP_slow']:.3f} / {result['mAP_medium']:.3f} / "
                 f"{result['mAP_fast']:.3f}" if "mAP_slow" in result else ""), flush=True)
    rows["mAP"] = round(result["mAP"], 4)
    rows.update({f"mAP_{g}": round(result[f"mAP_{g}"], 4) for g in ("slow", "medium", "fast")})
    return rows


def bench_seq_nms(T, objects, per_object, clutter, num_classes, with_reference=True):
    frames = synthetic_video(T, objects, per_object, clutter, num_classes)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # thousands of tiny tensor ops: extra threads only add overhead
    try:
        t_vec, out = timed(seq_nms, frames)
    finally:
        torch.set_num_threads(threads)
    rows = {"frames": T, "boxes_per_frame": objects * per_object + clutter, "classes": num_classes,
            "batched_s": round(t_vec, 3), "kept_boxes": sum(len(f[1]) for f in out), "torch_threads": 1}
    print(f"  seq_nms batched            {t_vec:7.2f} s   kept {rows['kept_boxes']} of {T * rows['boxes_per_frame']}",
          flush=True)
    if with_reference:
        t_ref, ref = timed(reference_seq_nms, frames)
        same = all(sorted(zip(map(tuple, f[0].tolist()), f[1].tolist())) ==
                   sorted((tuple(map(float, b)), float(s)) for b, s, _ in r) for f, r in zip(out, ref))
        rows.update(reference_s=round(t_ref, 2), speedup=round(t_ref / t_vec, 1), outputs_equal=same)
        print(f"  seq_nms reference loop     {t_ref:7.2f} s   speed-up x{t_ref / t_vec:.1f}, "
              f"outputs equal: {same}", flush=True)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="about a tenth of the sizes")
    parser.add_argument("--no-reference", action="store_true", help="skip the slow Seq-NMS reference loop")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each evaluation; the best is reported")
    parser.add_argument("--out", default=str(RESULTS / "eval_speed.json"), help="the results file")
    args = parser.parse_args(argv)

    about = machine("platform", "processor", "cpu_count", "python", "torch", "numpy",
                    torch_threads=torch.get_num_threads(), load_average_before=[round(x, 2) for x in os.getloadavg()])
    print(f"machine: {about['platform']}, {about['cpu_count']} CPUs, torch {about['torch']}")
    if args.quick:
        sizes = dict(n_videos=VID_VAL_SNIPPETS // 10, n_frames=VID_VAL_FRAMES // 10)
        video = dict(T=60, objects=10, per_object=8, clutter=20)
    else:
        sizes = dict(n_videos=VID_VAL_SNIPPETS, n_frames=VID_VAL_FRAMES)
        video = dict(T=300, objects=30, per_object=8, clutter=60)
    boxes_per_frame = video["objects"] * video["per_object"] + video["clutter"]
    print(f"evaluate_vid: {sizes['n_videos']} snippets, {sizes['n_frames']} frames, 100 detections per frame")
    eval_rows = bench_eval(**sizes, repeats=args.repeats)
    nms_rows = {}
    for num_classes in (30, 3):  # 30: the VID classes; 3: ten times more boxes per class and frame
        print(f"seq_nms: {video['T']} frames, {boxes_per_frame} boxes per frame, {num_classes} classes")
        nms_rows[f"{num_classes}_classes"] = bench_seq_nms(**video, num_classes=num_classes,
                                                           with_reference=not args.no_reference)
    about["peak_rss_gb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)

    size = f"{eval_rows['frames']} frames, {eval_rows['detections']} dets, {eval_rows['gt_boxes']} GT"
    table = [[f"evaluate_vid ({name})", size, f"{eval_rows[f'{name}_s']:.2f}"]
             for name in ("plain", "motion", "motion_and_tags")]
    for rows in nms_rows.values():
        nms_size = f"{rows['frames']} frames x {rows['boxes_per_frame']} boxes, {rows['classes']} classes"
        table.append(["seq_nms (batched)", nms_size, f"{rows['batched_s']:.2f}"])
        if "reference_s" in rows:
            table.append(["seq_nms (reference loop)", nms_size, f"{rows['reference_s']:.2f}"])
    print("\n" + markdown_table(["benchmark", "size", "time (s)"], table, align="lll"))
    print(f"peak memory {about['peak_rss_gb']} GB")

    out = Path(args.out)
    write_results(out.stem, {"quick": args.quick, "machine": about, "evaluate_vid": eval_rows, "seq_nms": nms_rows},
                  out=out.parent)


if __name__ == "__main__":
    main()
