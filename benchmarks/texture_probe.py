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
import json
import platform
from pathlib import Path

import torch
from torchvision.ops import roi_align

from minivod.boxes import vid_to_continuous
from minivod.data.crops import BLUR_TAGS
from minivod.data.vid import VIDDataset, load_image
from minivod.engine.evaluate import CHECKPOINT_DIR, default_data_root, load_model, shipped_checkpoint
from minivod.engine.train import resolve_device
from minivod.models.backbone import load_tiny_backbone
from minivod.models.config import tiny_config
from minivod.models.transform import FrameTransform

OUT = Path(__file__).parent / "results"
DEPTHS = {"stem (stride 1)": 1, "stage 1 (stride 2)": 3, "stage 2 (stride 4)": 5,
          "stage 3 (stride 8)": 7, "stage 4 (stride 8, the final map)": 9}
GROUPS = ("clean", "motion-blurred or defocused", "other degradations")


def box_group(tags) -> str:
    if not tags:
        return "clean"
    return GROUPS[1] if any(t in BLUR_TAGS for t in tags) else GROUPS[2]


@torch.no_grad()
def box_features(body, transform, dataset, device, max_frames=None, detector=None):
    """Per depth: features of every ground-truth box; plus texture bits, groups and (detector) answers."""
    feats = {name: [] for name in DEPTHS}
    if detector is not None:
        feats["box head FC (256-d)"] = []
    texture, groups, answer = [], [], []
    frames = [f for v in dataset.videos for f in v.frames if len(f)]
    frames = frames[:max_frames] if max_frames else frames
    for f in frames:
        image = load_image(f.image_path).unsqueeze(0).to(device)  # (1, 3, H, W)
        x, _, _ = transform(image)  # normalised (1, 3, H, W); tiny frames are not resized
        boxes = vid_to_continuous(torch.from_numpy(f.boxes).float()).to(device)  # (M, 4)
        rois = torch.cat([boxes.new_zeros(len(boxes), 1), boxes], dim=1)  # (M, 5) batch index first
        for i, layer in enumerate(body):
            x = layer(x)  # (1, C_i, H/s, W/s)
            stride = image.shape[-1] // x.shape[-1]
            for name, end in DEPTHS.items():
                if i + 1 == end:
                    pooled = roi_align(x, rois, (7, 7), spatial_scale=1.0 / stride, sampling_ratio=2, aligned=False)
                    feats[name].append(pooled.flatten(1).cpu())  # (M, C_i * 49)
        if detector is not None:
            pooled = detector.roi_heads.box_roi_pool(x, [boxes])  # (M, 128, 7, 7), as the detector pools
            h = pooled.flatten(1)  # (M, 128 * 49)
            for fc in detector.roi_heads.box_head.fcs:
                h = torch.relu(fc(h))  # (M, 256)
            feats["box head FC (256-d)"].append(h.cpu())
            logits, _ = detector.roi_heads.box_predictor(h)  # (M, K + 1)
            answer.append(logits[:, 1:].argmax(1).cpu() + 1)
        texture.append(torch.from_numpy(f.labels % 2))
        groups += [box_group(t) for t in f.tags]
    answer = torch.cat(answer) if answer else None
    return {k: torch.cat(v) for k, v in feats.items()}, torch.cat(texture).float(), groups, answer


def fit_probe(x, y, steps=200, weight_decay=1e-3):
    """Logistic regression on standardised features (L-BFGS); returns a predictor."""
    mean, std = x.mean(0), x.std(0) + 1e-6
    z = (x - mean) / std
    w = torch.zeros(z.shape[1], requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(z @ w + b, y) + weight_decay * (w ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return lambda q: (((q - mean) / std) @ w.detach() + b.detach()) > 0


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
    tr_feats, tr_y, tr_groups, _ = box_features(body, transform, train, device, args.train_frames, detector)
    va_feats, va_y, va_groups, va_answer = box_features(body, transform, val, device, None, detector)
    keep = torch.tensor([g == "clean" for g in tr_groups])
    masks = {g: torch.tensor([x == g for x in va_groups]) for g in GROUPS}
    rows = {}
    for name in tr_feats:
        predict = fit_probe(tr_feats[name][keep], tr_y[keep])
        right = (predict(va_feats[name]).float() == va_y)
        rows[name] = {g: float(right[m].float().mean()) for g, m in masks.items()}
    if va_answer is not None:
        own = ((va_answer % 2).float() == va_y)
        rows[f"{args.method}'s own classifier"] = {g: float(own[m].float().mean()) for g, m in masks.items()}
    lines = [f"Texture (striped / checked) of `{Path(root).name}` val ground-truth boxes read by a linear probe on "
             f"RoIAlign 7x7 features at each depth of {what} (fitted on {int(keep.sum())} clean training boxes); "
             "chance 0.5.\n",
             "| features | " + " | ".join(f"{g} ({int(m.sum())} boxes)" for g, m in masks.items()) + " |",
             "| --- |" + " ---: |" * len(masks)]
    lines += [f"| {name} | " + " | ".join(f"{r[g]:.3f}" for g in GROUPS) + " |" for name, r in rows.items()]
    command = "python benchmarks/texture_probe.py" + (f" --method {args.method}" if args.method else "")
    text = "\n".join(lines) + f"\n\nCommand: `{command}`\n"
    print(text)
    OUT.mkdir(parents=True, exist_ok=True)
    machine = {"platform": platform.platform(), "torch": torch.__version__, "device": device}
    record = {"machine": machine, "probed": what, "command": command, "train_boxes": int(keep.sum()),
              "val_boxes": {g: int(m.sum()) for g, m in masks.items()}, "probes": rows}
    (OUT / f"texture_probe_{tag}.json").write_text(json.dumps(record, indent=2) + "\n")
    (OUT / f"texture_probe_{tag}.md").write_text(text)


if __name__ == "__main__":
    main()
