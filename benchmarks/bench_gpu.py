"""Every method on a GPU: ms per frame in fp32 and with AMP, tiny and paper presets, and two short trainings.

    python benchmarks/bench_gpu.py                 # on CUDA (run by scripts/gpu_check.sh)
    python benchmarks/bench_gpu.py --dry-run       # the same steps, tiny sizes, on the CPU, into a temp folder

- **Inference**: each method's shipped tiny checkpoint over the first ``--videos`` val
  videos of data_small, and the ``paper`` preset (ResNet-101, random weights: nothing is
  downloaded) over the first ``--paper-frames`` frames of one val video, which its transform
  upscales to a 600-pixel shorter side. Each in fp32 and under ``torch.autocast`` (fp16 on
  CUDA, bf16 on the CPU). One warm-up pass, then the median of ``--repeats`` passes.
- **Training**: ``--iters`` iterations of the baseline and of SELSA on the tiny preset with
  ``python -m minivod train`` (its ``losses.png`` is copied beside the results).

Writes ``gpu.md`` / ``gpu.json`` (with the GPU's name) to ``--out``
(``benchmarks/results`` by default).
"""
from __future__ import annotations

import argparse
import copy
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from record import REPO, write_results

METHODS = ("baseline", "selsa", "dsfnet", "mst", "psla", "ssvd_single", "ssvd")
TRAINED = ("baseline", "selsa")


def first_frames(dataset, videos: int, frames: int | None = None):
    """The first ``videos`` videos of ``dataset``, each cut to its first ``frames`` frames (None: all)."""
    cut = dataset.subset(list(range(min(videos, len(dataset.videos)))))
    if frames is not None:
        cut.videos = [copy.copy(v) for v in cut.videos]
        for v in cut.videos:
            v.frames = v.frames[:frames]
    return cut


def ms_per_frame(model, method: str, dataset, device: str, amp: bool, repeats: int) -> list[float]:
    """Median-ready ms/frame of ``repeats`` passes (after one warm-up pass) with the engine's schedule."""
    from minivod.engine.evaluate import predict_dataset

    dtype = torch.float16 if device.startswith("cuda") else torch.bfloat16
    device_type = "cuda" if device.startswith("cuda") else "cpu"
    out = []
    for k in range(repeats + 1):
        with torch.autocast(device_type, dtype=dtype, enabled=amp):
            _, timing = predict_dataset(model, method, dataset, device, progress=False)
        if k:
            out.append(timing["ms_per_frame"])
    return out


def train_short(method: str, iters: int, device: str, out: Path, data: Path) -> dict:
    """``python -m minivod train`` for ``iters`` iterations; returns its time and last logged loss."""
    run = out / f"train_{method}"
    cmd = [sys.executable, "-m", "minivod", "train", "--method", method, "--preset", "tiny", "--iters", str(iters),
           "--device", device, "--data", str(data), "--checkpoint-every", str(iters), "--out", str(run)]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=REPO)
    seconds = time.perf_counter() - start
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    return {"command": " ".join(["python"] + cmd[1:]), "seconds": seconds, "first_loss": rows[0]["loss"],
            "last_loss": rows[-1]["loss"], "losses_png": str(run / "losses.png")}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--data", type=Path, default=REPO / "data_small")
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--videos", type=int, default=4)
    parser.add_argument("--paper-frames", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--iters", type=int, default=200)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument("--dry-run", action="store_true",
                        help="check every step on the CPU with tiny sizes; results go to a temp folder")
    args = parser.parse_args(argv)
    if args.dry_run:
        args.device, args.videos, args.paper_frames, args.repeats, args.iters = "cpu", 1, 2, 1, 2
        args.methods = ["baseline", "selsa"]
        args.out = Path(tempfile.mkdtemp(prefix="gpu_check_dry_"))
    elif args.device.startswith("cuda") and not torch.cuda.is_available():
        print("bench_gpu: no CUDA device here (use --dry-run to check the steps on the CPU)", file=sys.stderr)
        return 2

    from minivod.data.vid import VIDDataset
    from minivod.engine.evaluate import load_model, shipped_checkpoint
    from minivod.methods import build_model

    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "CPU (dry run)"
    val = VIDDataset(args.data, "val")
    tiny_data, paper_data = first_frames(val, args.videos, 2 if args.dry_run else None), \
        first_frames(val, 1, args.paper_frames)
    rows = {}
    for m in args.methods:
        tiny = load_model(m, shipped_checkpoint(m), args.device)[0]
        torch.manual_seed(0)
        small = {"min_size": 64, "max_size": 96} if args.dry_run else {}  # the dry run only checks the steps
        paper = build_model(m, "paper", len(val.class_map), **small).to(args.device).eval()
        rows[m] = {}
        for preset, model, data in (("tiny", tiny, tiny_data), ("paper", paper, paper_data)):
            for amp in (False, True):
                runs = ms_per_frame(model, m, data, args.device, amp, args.repeats)
                rows[m][f"{preset}_{'amp' if amp else 'fp32'}"] = statistics.median(runs)
        print(m, {k: round(v, 2) for k, v in rows[m].items()}, flush=True)
        del tiny, paper
        if args.device.startswith("cuda"):
            torch.cuda.empty_cache()
    training = {m: train_short(m, args.iters, args.device, args.out, args.data) for m in TRAINED}

    args.out.mkdir(parents=True, exist_ok=True)
    for m, t in training.items():
        shutil.copy(t["losses_png"], args.out / f"gpu_{m}_losses.png")
    result = {"device": name, "torch": torch.__version__, "when": time.strftime("%Y-%m-%d"),
              "inference_ms_per_frame": rows, "training": training, "videos": args.videos,
              "paper_frames": args.paper_frames, "repeats": args.repeats, "dry_run": args.dry_run}
    base = rows.get("baseline", {})
    lines = [f"# minivod on {name}", "",
             f"`python benchmarks/bench_gpu.py` ({result['when']}, torch {torch.__version__}). Median of "
             f"{args.repeats} passes after a warm-up. Tiny: shipped checkpoints, first {args.videos} val videos; "
             f"paper: ResNet-101 with random weights, {args.paper_frames} frames upscaled to 600 px; AMP is fp16 "
             "autocast.", "",
             "| method | tiny fp32 | tiny AMP | paper fp32 | paper AMP | paper fp32 x baseline |",
             "|---|---|---|---|---|---|"]
    for m, r in rows.items():
        x = r["paper_fp32"] / base["paper_fp32"] if base.get("paper_fp32") else float("nan")
        lines.append(f"| {m} | {r['tiny_fp32']:.1f} | {r['tiny_amp']:.1f} | {r['paper_fp32']:.1f} | "
                     f"{r['paper_amp']:.1f} | {x:.2f} |")
    lines += ["", f"Training, {args.iters} iterations of the tiny preset (loss curves: `gpu_<method>_losses.png`):", "",
              "| method | seconds | first loss | last loss | command |", "|---|---|---|---|---|"]
    for m, t in training.items():
        lines.append(f"| {m} | {t['seconds']:.0f} | {t['first_loss']:.3f} | {t['last_loss']:.3f} | `{t['command']}` |")
    write_results("gpu", result, "\n".join(lines) + "\n", out=args.out)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
