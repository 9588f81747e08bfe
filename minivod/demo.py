"""``python -m minivod demo``: every shipped method on data_small val, side by side.

For each method with a shipped checkpoint (``minivod/checkpoints/``): detect on
every validation video (each frame's backbone once), score with the ImageNet
VID protocol with and without Seq-NMS, and time it. Prints one table and writes
``results.json``, ``results.md`` and ``comparison.png`` to ``--out``.
"""
from __future__ import annotations

import json
import math
import platform
from pathlib import Path

import torch

from minivod.engine.evaluate import (CHECKPOINT_DIR, default_data_root, load_model, predict_dataset,
                                     score_dataset)
from minivod.eval import figures
from minivod.methods import METHOD_NAMES, METHODS
from minivod.models import count_parameters

COLUMNS = [("mAP", "mAP"), ("mAP_slow", "slow"), ("mAP_medium", "medium"), ("mAP_fast", "fast"),
           ("mAP_clean", "clean"), ("mAP_degraded", "degraded"), ("mAP_seq_nms", "+Seq-NMS"),
           ("ms_per_frame", "ms/frame"), ("params_M", "params (M)"), ("backbone_start", "backbone start")]


# the methods compared, in the order of the table: the two single-frame baselines (two-stage, and the
# one-stage detector SSVD builds on), then the video methods
COMPARED = (METHOD_NAMES[0], "ssvd_single", *METHOD_NAMES[1:])


def shipped_methods(preset: str = "tiny") -> list[str]:
    return [m for m in COMPARED if m in METHODS and (CHECKPOINT_DIR / f"{m}_{preset}.pt").is_file()]


def compare(methods, data, device: str, progress: bool = True, dataset=None, keep_detections: bool = False):
    """Evaluate each method's shipped checkpoint on data_small val (or ``dataset``); returns ``{method: row}``.

    With ``keep_detections`` also returns ``{method: detections}`` (VID boxes per frame index,
    as ``minivod.engine.evaluate.score_dataset`` gives them, before Seq-NMS).
    """
    from minivod.data.vid import VIDDataset

    dataset = dataset if dataset is not None else VIDDataset(data, "val")
    rows, kept = {}, {}
    for method in methods:
        model, meta = load_model(method, CHECKPOINT_DIR / f"{method}_tiny.pt", device, len(dataset.class_map))
        per_video, timing = predict_dataset(model, method, dataset, device, progress)
        plain, detections = score_dataset(per_video, dataset)
        with_seq, _ = score_dataset(per_video, dataset, use_seq_nms=True)
        rows[method] = {
            **figures(plain, missing=math.nan), "mAP_seq_nms": with_seq["mAP"],
            "mAP_by_tag": plain.get("mAP_by_tag", {}), "ms_per_frame": timing["ms_per_frame"],
            "params_M": count_parameters(model) / 1e6, "checkpoint_iterations": meta.get("iteration"),
            # checkpoints trained from scratch predate the pre-trained tiny backbone and today's data_small
            "backbone_start": "pre-trained" if meta["config"].get("pretrained_backbone") else "scratch",
        }
        if keep_detections:
            kept[method] = detections
    return (rows, kept) if keep_detections else rows


def table(rows: dict, markdown: bool = False, columns=None) -> str:
    """The comparison as aligned text (or Markdown); ``columns`` is a subset of ``COLUMNS``."""
    columns = COLUMNS if columns is None else columns
    head = ["method"] + [title for _, title in columns]
    lines = []
    def fmt(k, v):
        if isinstance(v, str):
            return v
        return f"{v:.1f}" if k == "ms_per_frame" else (f"{v:.2f}" if k == "params_M" else f"{v:.3f}")
    body = [[m] + [fmt(k, r[k]) for k, _ in columns] for m, r in rows.items()]
    if markdown:
        lines.append("| " + " | ".join(head) + " |")
        lines.append("| --- |" + " ---: |" * len(columns))
        lines += ["| " + " | ".join(row) + " |" for row in body]
    else:
        widths = [max(len(str(x)) for x in col) for col in zip(head, *body)]
        for row in [head] + body:
            lines.append("  ".join(str(x).rjust(w) for x, w in zip(row, widths)))
    return "\n".join(lines)


def plot(rows: dict, path=None):
    """mAP against ms/frame, and AP by speed group per method; saved to ``path`` if given. Returns the figure."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4))
    ax1, ax2 = fig.subplots(1, 2)
    for m, r in rows.items():
        ax1.scatter(r["ms_per_frame"], r["mAP"], s=40)
        ax1.annotate(m, (r["ms_per_frame"], r["mAP"]), textcoords="offset points", xytext=(4, 4))
    ax1.set_xlabel("ms per frame")
    ax1.set_ylabel("mAP (data_small val)")
    ax1.set_title("accuracy against speed")
    groups = ["mAP_slow", "mAP_medium", "mAP_fast"]
    width = 0.8 / max(len(rows), 1)
    for i, (m, r) in enumerate(rows.items()):
        ax2.bar([g + i * width for g in range(3)], [r[k] for k in groups], width, label=m)
    ax2.set_xticks([g + 0.4 - width / 2 for g in range(3)], ["slow", "medium", "fast"])
    ax2.set_ylabel("mAP")
    ax2.set_title("AP by motion speed")
    ax2.set_ylim(0, 1.3)  # room for the legend above the bars
    ax2.legend(fontsize=7, ncol=4, loc="upper center")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=90)
    return fig


def add_parser(subparsers):
    p = subparsers.add_parser(
        "demo", help="compare every shipped method on data_small val (the README's main command)",
        description="Evaluate the shipped checkpoint of every method on data_small val with and without "
                    "Seq-NMS: mAP, slow/medium/fast, clean vs degraded boxes, ms/frame and parameters. "
                    "Prints the table and writes OUT/results.json, OUT/results.md and OUT/comparison.png.")
    p.add_argument("--data", default=None, help="dataset root (default: data_small)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto")
    p.add_argument("--methods", nargs="*", default=None, help="a subset of the shipped methods")
    p.add_argument("--out", default="outputs/demo", help="output folder")
    p.set_defaults(func=run)


def run(args) -> int:
    from minivod.engine.train import resolve_device

    device = resolve_device(args.device)
    methods = args.methods or shipped_methods()
    if not methods:
        print("no shipped checkpoints found in", CHECKPOINT_DIR)
        return 2
    rows = compare(methods, args.data or default_data_root(), device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    machine = {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
               "torch": torch.__version__, "device": device, "threads": torch.get_num_threads()}
    clean = lambda v: None if isinstance(v, float) and math.isnan(v) else v  # noqa: E731
    payload = {"machine": machine, "methods": {m: {k: clean(v) if not isinstance(v, dict) else
                                                   {t: clean(x) for t, x in v.items()} for k, v in r.items()}
                                               for m, r in rows.items()}}
    (out / "results.json").write_text(json.dumps(payload, indent=2) + "\n")
    (out / "results.md").write_text(f"data_small val, measured on {machine['processor']} ({device}), "
                                    f"torch {machine['torch']}\n\n" + table(rows, markdown=True) + "\n")
    plot(rows, out / "comparison.png")
    print(table(rows))
    if any(r["backbone_start"] == "scratch" for r in rows.values()):
        print("backbone start 'scratch': trained from scratch on the previous data_small, before the pre-trained "
              "tiny backbone; compare those rows with the baseline only after they are retrained")
    print(f"wrote {out / 'results.json'}, {out / 'results.md'} and {out / 'comparison.png'}")
    return 0
