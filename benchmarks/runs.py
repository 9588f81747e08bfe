"""The models the benchmarks train: one folder per training run, trained once, then reused.

A run is ``runs/bench/<method>_<iters>_s<seed>/``, made by ``python -m minivod train --method
<method> --preset tiny --iters <iters> --seed <seed> --out runs/bench/<method>_<iters>_s<seed>``
(:func:`trained_checkpoint` runs the same ``minivod.engine.train.train`` in-process, resuming
an interrupted run). Every script finds every other script's runs there: the baseline's
seed-1 run of ``bench_mst.py --parts seeds`` is ``bench_testbed.py``'s too. At the full budget
(3000 iterations, seed 0) an ablation may use the shipped checkpoint instead
(``minivod/checkpoints/<method>_tiny.pt``, made by the same command).

The scripts' older layouts are still read, so runs trained before are not trained again:
``runs/mst_bench_<iters>[_seed<seed>]/<method>``, ``runs/ssvd_bench_<iters>/<method>`` and
``runs/psla_bench/<method>_<iters>``.

The seed benchmarks also score a run on data_small val (:func:`evaluate_run`, cached beside it
as ``val_result.json`` and ``val_dets.txt``) and record it (command, CPU time, val figures) in
``benchmarks/results/runs/``, so the numbers survive a machine without ``runs/``.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from record import FULL_BUDGET, REPO, RESULTS

RUNS = REPO / "runs" / "bench"
ITERS = FULL_BUDGET
TAGS = ("clean", "degraded", "motion_blur", "defocus")  # the tag groups a run's record keeps


def run_name(method: str, seed: int, iters: int = ITERS) -> str:
    return f"{method}_{iters}_s{seed}"


def run_dir(method: str, seed: int, iters: int = ITERS) -> Path:
    return RUNS / run_name(method, seed, iters)


def old_run_dirs(method: str, seed: int, iters: int = ITERS) -> list[Path]:
    """Where the scripts trained the same run before ``runs/bench/`` (same command, same settings)."""
    runs = REPO / "runs"
    old = [runs / (f"mst_bench_{iters}" + (f"_seed{seed}" if seed else "")) / method]
    if seed == 0:
        old += [runs / f"ssvd_bench_{iters}" / method, runs / "psla_bench" / f"{method}_{iters}"]
    return old


def find_run(method: str, seed: int, iters: int = ITERS) -> Path | None:
    """The folder of this run that holds its ``model.pt`` (``runs/bench/`` or an older layout), else None."""
    for folder in [run_dir(method, seed, iters), *old_run_dirs(method, seed, iters)]:
        if (folder / "model.pt").is_file():
            return folder
    return None


def train_command(method: str, seed: int, iters: int = ITERS) -> str:
    budget = "" if iters == ITERS else f" --iters {iters}"
    return (f"python -m minivod train --method {method} --preset tiny{budget} --seed {seed} "
            f"--out runs/bench/{run_name(method, seed, iters)}")


# --------------------------------------------------------------------------- train or reuse
def shipped(method: str, iters: int = ITERS, seed: int = 0) -> Path | None:
    """The shipped checkpoint when it is this run (full budget, seed 0), else None."""
    from minivod.engine.evaluate import CHECKPOINT_DIR

    path = CHECKPOINT_DIR / f"{method}_tiny.pt"
    return path if iters == FULL_BUDGET and seed == 0 and path.is_file() else None


def trained_checkpoint(method: str, iters: int = ITERS, seed: int = 0, *, use_shipped: bool = True,
                       train: bool = True, device: str = "cpu", config=None, prepare=None,
                       progress: bool = False) -> Path | None:
    """The model of ``method`` trained ``iters`` iterations with ``seed``: trained now if no run has it.

    Looks for, in order: the shipped checkpoint (``use_shipped``, full budget and seed 0 only); the
    run's ``model.pt`` in ``runs/bench/`` or an older layout. Otherwise trains into ``runs/bench/``
    (resuming its ``last.pt``), unless ``train`` is False: then returns None.

    Args:
        config: the ``TrainConfig`` (default: the tiny preset's, with ``iters`` and ``seed``)
        prepare: called with the run's folder before training (e.g. to put a pre-trained part there)
    """
    if use_shipped and shipped(method, iters, seed) is not None:
        return shipped(method, iters, seed)
    if find_run(method, seed, iters) is not None:
        return find_run(method, seed, iters) / "model.pt"
    if not train:
        return None
    from minivod.engine.evaluate import default_data_root
    from minivod.engine.train import TrainConfig
    from minivod.engine.train import train as train_run

    config = config or TrainConfig.for_preset("tiny", iters=iters, seed=seed)
    folder = run_dir(method, seed, iters)
    print(f"  training {method} (seed {seed}) for {iters} iterations into {folder}", flush=True)
    start = time.time()
    if prepare is not None:
        folder.mkdir(parents=True, exist_ok=True)
        prepare(folder)
    train_run(method, "tiny", default_data_root(), folder, config, device=device,
              resume=(folder / "last.pt").is_file(), progress=progress)
    print(f"  trained {method} in {time.time() - start:.0f} s", flush=True)
    return folder / "model.pt"


# --------------------------------------------------------------------------- records of the seed runs
def evaluate_run(method: str, seed: int, val, device: str, iters: int = ITERS) -> dict:
    """Score a trained run's model.pt on val (cached beside it), write its record to results/runs/; returns the record."""
    from minivod.engine.checkpoint import load_checkpoint
    from minivod.engine.evaluate import evaluate_model, load_model
    from minivod.eval import figures, write_vid_results
    from minivod.eval.cli import to_json

    folder = find_run(method, seed, iters)
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
              "val": figures(result, TAGS), "ms_per_frame": result.get("ms_per_frame")}
    if "trained_as" in meta:  # a run renamed after training, its configuration unchanged (benchmarks/relabel_run.py)
        record["trained_as"] = meta["trained_as"]
    (RESULTS / "runs").mkdir(parents=True, exist_ok=True)
    (RESULTS / "runs" / f"{run_name(method, seed, iters)}.json").write_text(json.dumps(record, indent=1) + "\n")
    return record


def read_dets(method: str, seed: int, gt, iters: int = ITERS):
    """A run's cached val detections, read for ``gt``'s frames."""
    from minivod.eval import read_vid_results

    return read_vid_results(find_run(method, seed, iters) / "val_dets.txt", num_classes=gt.num_classes,
                            frame_indices=gt.frames.keys())
