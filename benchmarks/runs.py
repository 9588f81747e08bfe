"""Training runs of the seed benchmarks: where they live, how they were made, their scores on val.

A run is ``runs/bench/<method>_<iters>_s<seed>/`` made by ``python -m minivod train``; its
evaluation on data_small val is cached beside it (``val_result.json``, ``val_dets.txt``)
and its record (command, CPU time, val figures) goes to ``benchmarks/results/runs/``, so
the numbers survive a machine without ``runs/``.
"""
from __future__ import annotations

import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
RUNS = REPO / "runs" / "bench"
ITERS = 3000


def run_name(method: str, seed: int, iters: int = ITERS) -> str:
    return f"{method}_{iters}_s{seed}"


def run_dir(method: str, seed: int, iters: int = ITERS) -> Path:
    return RUNS / run_name(method, seed, iters)


def train_command(method: str, seed: int, iters: int = ITERS) -> str:
    return (f"python -m minivod train --method {method} --preset tiny --seed {seed} "
            f"--out runs/bench/{run_name(method, seed, iters)}")


def figures(result: dict) -> dict:
    """The figures of a result dict (``evaluate_vid``'s), with clean / degraded from its tag breakdown."""
    tags = result.get("mAP_by_tag", {})
    return {"mAP": result["mAP"], "mAP_slow": result["mAP_slow"], "mAP_medium": result["mAP_medium"],
            "mAP_fast": result["mAP_fast"], "mAP_clean": tags.get("clean"), "mAP_degraded": tags.get("degraded"),
            "mAP_motion_blur": tags.get("motion_blur"), "mAP_defocus": tags.get("defocus")}


def evaluate_run(method: str, seed: int, val, device: str, iters: int = ITERS) -> dict:
    """Score a run's model.pt on val (cached beside it), write its record to results/runs/; returns the record."""
    from minivod.engine.checkpoint import load_checkpoint
    from minivod.engine.evaluate import evaluate_model, load_model
    from minivod.eval import write_vid_results
    from minivod.eval.cli import to_json

    folder = run_dir(method, seed, iters)
    cached = folder / "val_result.json"
    if not cached.is_file():
        model, _ = load_model(method, folder / "model.pt", device, len(val.class_map))
        result, detections, timing = evaluate_model(model, method, val, device, progress=False)
        write_vid_results(folder / "val_dets.txt", detections)
        cached.write_text(json.dumps({**to_json(result), **timing}, indent=1) + "\n")
    result = json.loads(cached.read_text())
    meta = load_checkpoint(folder / "model.pt")["meta"]
    record = {"method": method, "seed": seed, "command": train_command(method, seed, iters),
              "iterations": meta["iteration"], "cpu_minutes": round(meta["train_seconds"] / 60, 1),
              "train_config": meta["train_config"], "pretrained_backbone": meta["config"].get("pretrained_backbone"),
              "val": figures(result), "ms_per_frame": result.get("ms_per_frame")}
    (RESULTS / "runs").mkdir(parents=True, exist_ok=True)
    (RESULTS / "runs" / f"{run_name(method, seed, iters)}.json").write_text(json.dumps(record, indent=1) + "\n")
    return record


def read_dets(method: str, seed: int, gt, iters: int = ITERS):
    """A run's cached val detections, read for ``gt``'s frames."""
    from minivod.eval import read_vid_results

    return read_vid_results(run_dir(method, seed, iters) / "val_dets.txt", num_classes=gt.num_classes,
                            frame_indices=gt.frames.keys())
