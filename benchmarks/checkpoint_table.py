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

import torch

from minivod.data.vid import VIDDataset
from minivod.engine.evaluate import CHECKPOINT_DIR, default_data_root, evaluate_model, load_model
from minivod.engine.train import resolve_device
from minivod.models import count_parameters

from record import RESULTS, machine, write_results
from tables import markdown_table

HEADER = """# Shipped checkpoints

Each detector here was made by minivod's own training command on data_small (`tiny` preset, 160x120
frames, weights stored in float16), then measured on data_small val with
`python -m minivod eval --method METHOD` (ImageNet VID protocol, no Seq-NMS): on today's data_small, or,
where the column says so, on the previous one (`--methods M` re-measures only those rows). Regenerate
this page with `python benchmarks/checkpoint_table.py`; today's numbers of every shipped method are also
in the README's table (`python benchmarks/gather.py`).

The tiny preset starts every method from `backbone_tiny.pt`, the tiny preset's stand-in for ImageNet
pre-training (below). A detector whose backbone start reads `scratch` predates it: it was trained from
random weights on the previous data_small (16 val videos, weaker blur) and is scored here on data it was
not trained on; it is retrained from the pre-trained backbone in the re-measurement issue.

"""


def backbone_section() -> str:
    """The pre-trained tiny backbone: its command and what it recorded when it was made."""
    path = CHECKPOINT_DIR / "backbone_tiny.pt"
    if not path.is_file():
        return ""
    meta = torch.load(path, map_location="cpu", weights_only=True)["meta"]
    acc = meta["val_accuracy"]
    lines = ["## The pre-trained tiny backbone", "",
             f"`backbone_tiny.pt` ({path.stat().st_size / 1e6:.1f} MB): `{meta['command']}` "
             f"(OMP_NUM_THREADS=2, {meta['train_seconds'] / 60:.1f} CPU-min; {meta['config']['epochs']} epochs of "
             f"{meta['train_crops']['objects']} sharp object crops and {meta['train_crops']['background']} "
             "background crops of the training split, 48x48 px, seed 0). Accuracy of its classifier, recorded "
             "by the command:", "",
             markdown_table(["crops", "count", "class", "texture (the right member of the pair)"],
                            [[name, str(a["crops"]), f"{a['class']:.3f}", f"{a['texture']:.3f}"]
                             for name, a in acc.items()]),
             "", "A linear probe on RoIAlign 7x7 features of its final map reads the texture of clean val boxes "
              "and not of blurred ones: `python benchmarks/texture_probe.py`, "
              "`benchmarks/results/texture_probe_backbone.md`.", ""]
    return "\n".join(lines)


def trained_as_note(trained_as) -> str:
    """A run renamed after training (``benchmarks/relabel_run.py``) keeps its old name and the reason."""
    if isinstance(trained_as, dict):
        return trained_as["note"]
    return f"trained as {trained_as}"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--methods", nargs="*", default=None,
                        help="re-measure only these checkpoints (default: all); keep the others' rows")
    args = parser.parse_args()
    device = resolve_device(args.device)
    val = VIDDataset(default_data_root(), "val")
    rows = {}
    previous = RESULTS / "checkpoints.json"
    kept = json.loads(previous.read_text())["checkpoints"] if previous.is_file() and args.methods else {}
    for path in sorted(CHECKPOINT_DIR.glob("*_tiny.pt")):
        method = path.name[: -len("_tiny.pt")]
        if method == "backbone":  # not a detector: see backbone_section()
            continue
        if args.methods is not None and method not in args.methods and method in kept:
            rows[method] = {"measured_on": "previous data_small", **kept[method]}
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
            "backbone_start": "pre-trained" if meta["config"].get("pretrained_backbone") else "scratch",
            "measured_on": "today's data_small",
            **{k: round(result[k], 3) for k in ("mAP", "mAP_slow", "mAP_medium", "mAP_fast")},
        }
        if meta.get("trained_as"):  # how it was trained, when not literally by the command above
            rows[method]["trained_as"] = meta["trained_as"]
        print(method, rows[method])
    about = machine("processor", "torch", device=device)
    measured_on = f"{about['processor']}, torch {about['torch']}, {device}"
    text = HEADER + detectors_table(rows) + f"\n\nTraining times were taken on a 2-core CPU machine (one thread per " \
        f"run when several trained at once); mAP measured on {measured_on}.\n"
    notes = [f"- `{r['file']}`: {trained_as_note(r['trained_as'])}." for r in rows.values() if r.get("trained_as")]
    if notes:
        text += "\n" + "\n".join(notes) + "\n"
    (CHECKPOINT_DIR / "README.md").write_text(text + "\n" + backbone_section())
    print(f"wrote {CHECKPOINT_DIR / 'README.md'}")
    write_results("checkpoints", {"machine": about, "checkpoints": rows})


def detectors_table(rows: dict) -> str:
    """The README's table of the shipped detectors: how each was made and what it scores."""
    body = [[f"`{r['file']}`", f"`{r['command']}`", r.get("backbone_start", "scratch"),
             f"{r['train_minutes']} min CPU, {r['iterations']} it x {r['batch_size']} clips",
             r.get("measured_on", "previous data_small"),
             *(f"{r[f]:.3f}" for f in ("mAP", "mAP_slow", "mAP_medium", "mAP_fast")),
             f"{r['params'] / 1e6:.2f} M", f"{r['size_MB']} MB"] for r in rows.values()]
    return "## Detectors\n\n" + markdown_table(
        ["file", "command", "backbone start", "training", "measured on", "mAP", "slow", "medium", "fast", "params",
         "size"], body, align="lllllrrrrrr")


if __name__ == "__main__":
    main()
