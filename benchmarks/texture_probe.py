"""Does the texture survive the network? A linear probe at each depth of a backbone or a detector.

    python benchmarks/texture_probe.py                        # the pre-trained tiny backbone
    python benchmarks/texture_probe.py --method baseline      # a shipped detector, depth by depth

data_small's classes come in pairs that differ only in texture (stripes or checks,
2-px cells). For every ground-truth box, RoIAlign (7x7) takes the box from the
maps after the full-resolution stem and after each of the four stages of the tiny
backbone (for a detector, also the box head's last FC). A logistic regression per
depth, fitted on the clean boxes of the training split, predicts the texture (odd
class id: striped, even: checked) of the validation boxes: clean ones (no tag),
motion-blurred or defocused ones, and those with another degradation. Chance is 0.5.

The testbed asks for at least 0.95 on clean val boxes and at most 0.65 on
motion-blurred or defocused ones at the final map of the pre-trained backbone:
the cue is there in sharp frames and gone in blurred ones. Writes
benchmarks/results/texture_probe_<backbone|method>.json and .md.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from minivod.data.vid import VIDDataset
from minivod.engine.evaluate import CHECKPOINT_DIR, default_data_root, load_model, shipped_checkpoint
from minivod.engine.train import resolve_device
from minivod.eval.probe import GROUPS, texture_probe
from minivod.models.backbone import load_tiny_backbone
from minivod.models.config import tiny_config
from minivod.models.transform import FrameTransform

from record import machine, write_results


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default=str(CHECKPOINT_DIR / "backbone_tiny.pt"),
                        help="pre-trained tiny backbone weights (default: the shipped one)")
    parser.add_argument("--method", default=None, help="probe a shipped two-stage detector instead")
    parser.add_argument("--data", default=None, help="dataset root (default: data_small)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--train-frames", type=int, default=1500, help="training frames for the probes")
    args = parser.parse_args()
    device = resolve_device(args.device)
    torch.manual_seed(0)
    root = args.data or default_data_root()
    train, val = VIDDataset(root, "train"), VIDDataset(root, "val")
    detector = None
    if args.method:
        detector, _ = load_model(args.method, shipped_checkpoint(args.method), device, len(val.class_map))
        detector.float()
        body, transform, what = detector.backbone.body, detector.transform, f"the shipped `{args.method}` detector"
        tag = args.method
    else:
        cfg = tiny_config(len(val.class_map))
        body = load_tiny_backbone(args.backbone, cfg.tiny_channels, cfg.tiny_strides).to(device).eval().body
        transform = FrameTransform(cfg.min_size, cfg.max_size, cfg.image_mean, cfg.image_std, cfg.size_divisible)
        what, tag = f"the pre-trained tiny backbone `{Path(args.backbone).name}`", "backbone"
    rows, counts, train_boxes = texture_probe(body, transform, train, val, device, args.train_frames, detector)
    lines = [f"Texture (striped / checked) of `{Path(root).name}` val ground-truth boxes read by a linear probe on "
             f"RoIAlign 7x7 features at each depth of {what} (fitted on {train_boxes} clean training boxes); "
             "chance 0.5.\n",
             "| features | " + " | ".join(f"{g} ({counts[g]} boxes)" for g in GROUPS) + " |",
             "| --- |" + " ---: |" * len(GROUPS)]
    lines += [f"| {name} | " + " | ".join(f"{r[g]:.3f}" for g in GROUPS) + " |" for name, r in rows.items()]
    command = "python benchmarks/texture_probe.py" + (f" --method {args.method}" if args.method else "")
    text = "\n".join(lines) + f"\n\nCommand: `{command}`\n"
    print(text)
    record = {"machine": machine("platform", "torch", device=device), "probed": what, "command": command,
              "train_boxes": train_boxes, "val_boxes": counts, "probes": rows}
    write_results(f"texture_probe_{tag}", record, text)


if __name__ == "__main__":
    main()
