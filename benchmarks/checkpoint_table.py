"""Re-measure every shipped checkpoint and rewrite the table in minivod/checkpoints/README.md.

    python benchmarks/checkpoint_table.py [--device cpu] [--methods M ...]

For each ``minivod/checkpoints/<method>_tiny.pt``: the command that made it (from
its metadata), its training time, and mAP / slow / medium / fast on data_small
val measured now with ``minivod.engine.evaluate`` (no Seq-NMS). Also writes
benchmarks/results/checkpoints.json. With ``--methods`` only those checkpoints are
measured again; the other rows are kept from checkpoints.json.
"""
from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import torch

from minivod.data.vid import VIDDataset
from minivod.engine.evaluate import CHECKPOINT_DIR, default_data_root, evaluate_model, load_model
from minivod.engine.train import resolve_device
from minivod.models import count_parameters

HEADER = """# Shipped checkpoints

Each file here was made by minivod's own training command on data_small (`tiny` preset, 160x120
frames, trained from scratch, weights stored in float16), then measured on data_small val with
`python -m minivod eval --method METHOD` (ImageNet VID protocol, no Seq-NMS). Regenerate this table
with `python benchmarks/checkpoint_table.py`.

"""


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--methods", nargs="*", default=None,
                        help="re-measure only these checkpoints (default: all); keep the others' rows")
    args = parser.parse_args()
    device = resolve_device(args.device)
    val = VIDDataset(default_data_root(), "val")
    rows = {}
    previous = Path(__file__).parent / "results" / "checkpoints.json"
    kept = json.loads(previous.read_text())["checkpoints"] if previous.is_file() and args.methods else {}
    for path in sorted(CHECKPOINT_DIR.glob("*_tiny.pt")):
        method = path.name[: -len("_tiny.pt")]
        if args.methods is not None and method not in args.methods and method in kept:
            rows[method] = kept[method]
            continue
        model, meta = load_model(method, path, device, len(val.class_map))
        result, _, timing = evaluate_model(model, method, val, device)
        tc = meta["train_config"]
        rows[method] = {
            "file": path.name, "size_MB": round(path.stat().st_size / 1e6, 1),
            "command": f"python -m minivod train --method {method} --preset tiny --iters {tc['iters']}",
            "iterations": meta["iteration"], "batch_size": tc["batch_size"],
            "train_minutes": round(meta.get("train_seconds", float("nan")) / 60, 1),
            "params": count_parameters(model), "ms_per_frame": round(timing["ms_per_frame"], 1),
            **{k: round(result[k], 3) for k in ("mAP", "mAP_slow", "mAP_medium", "mAP_fast")},
        }
        if meta.get("trained_as"):  # how it was trained, when not literally by the command above
            rows[method]["trained_as"] = meta["trained_as"]
        print(method, rows[method])
    lines = ["| file | command | training | mAP | slow | medium | fast | params | size |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows.values():
        lines.append(f"| `{r['file']}` | `{r['command']}` | {r['train_minutes']} min CPU, {r['iterations']} it "
                     f"x {r['batch_size']} clips | {r['mAP']:.3f} | {r['mAP_slow']:.3f} | {r['mAP_medium']:.3f} | "
                     f"{r['mAP_fast']:.3f} | {r['params'] / 1e6:.2f} M | {r['size_MB']} MB |")
    machine = f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {device}"
    text = HEADER + "\n".join(lines) + f"\n\nTraining times were taken on a 2-core CPU machine (one thread per run " \
        f"when several trained at once); mAP measured on {machine}.\n"
    notes = [f"- `{r['file']}` was trained as {r['trained_as']}." for r in rows.values() if r.get("trained_as")]
    if notes:
        text += "\n" + "\n".join(notes) + "\n"
    (CHECKPOINT_DIR / "README.md").write_text(text)
    out = Path(__file__).parent / "results" / "checkpoints.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": machine, "checkpoints": rows}, indent=2) + "\n")
    print(f"wrote {CHECKPOINT_DIR / 'README.md'} and {out}")


if __name__ == "__main__":
    main()
