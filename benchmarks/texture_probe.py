"""Does the texture survive the network? A linear probe at each depth of a trained detector.

    python benchmarks/texture_probe.py [--method baseline] [--device cpu]

data_small's classes come in pairs that differ only in texture (stripes or checks,
2-px cells). The shipped detectors give the other class of the pair on about a
third of *clean* boxes (``benchmarks/pair_confusion.py``). Is the texture lost
inside the network, or is it there and the classifier does not use it?

For every ground-truth box, RoIAlign (7x7) takes the box from the maps after the
full-resolution stem and after each of the four stages of the tiny backbone, and
the box head's last FC gives its 256-d feature. A logistic regression per depth,
fitted on the clean boxes of the training split, predicts the texture (odd class
id: striped, even: checked) of the validation boxes, clean and degraded apart.
Chance is 0.5. The detector's own answer is the texture of its top-scoring class
on the box. Writes benchmarks/results/texture_probe.json and .md.
"""
from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import torch
from torchvision.ops import roi_align

from minivod.boxes import vid_to_continuous
from minivod.data.vid import VIDDataset, load_image
from minivod.engine.evaluate import default_data_root, load_model, shipped_checkpoint
from minivod.engine.train import resolve_device

OUT = Path(__file__).parent / "results"


@torch.no_grad()
def box_features(model, dataset, device, max_frames=None):
    """Per depth: features of every ground-truth box; plus texture bits, degraded flags, detector answers."""
    body = model.backbone.body  # stem, then two blocks per stage
    depths = {"stem (stride 1)": 1, "stage 1 (stride 2)": 3, "stage 2 (stride 4)": 5,
              "stage 3 (stride 8)": 7, "stage 4 (stride 8)": 9}
    feats = {name: [] for name in [*depths, "box head FC (256-d)"]}
    texture, degraded, answer = [], [], []
    frames = [f for v in dataset.videos for f in v.frames if len(f)]
    frames = frames[:max_frames] if max_frames else frames
    for f in frames:
        image = load_image(f.image_path).unsqueeze(0).to(device)  # (1, 3, H, W)
        x, _, _ = model.transform(image)  # normalised (1, 3, H, W); tiny frames are not resized
        boxes = vid_to_continuous(torch.from_numpy(f.boxes).float()).to(device)  # (M, 4)
        rois = torch.cat([boxes.new_zeros(len(boxes), 1), boxes], dim=1)  # (M, 5) batch index first
        stride = 1
        for i, layer in enumerate(body):
            x = layer(x)  # (1, C_i, H/s, W/s)
            stride = image.shape[-1] // x.shape[-1]
            for name, end in depths.items():
                if i + 1 == end:
                    pooled = roi_align(x, rois, (7, 7), spatial_scale=1.0 / stride, sampling_ratio=2, aligned=False)
                    feats[name].append(pooled.flatten(1).cpu())  # (M, C_i * 49)
        pooled = model.roi_heads.box_roi_pool(x, [boxes])  # (M, 128, 7, 7), as the detector pools
        h = pooled.flatten(1)  # (M, 128 * 49)
        for fc in model.roi_heads.box_head.fcs:
            h = torch.relu(fc(h))  # (M, 256)
        feats["box head FC (256-d)"].append(h.cpu())
        logits, _ = model.roi_heads.box_predictor(h)  # (M, K + 1)
        answer.append(logits[:, 1:].argmax(1).cpu() + 1)
        texture.append(torch.from_numpy(f.labels % 2))
        degraded.append(torch.tensor([bool(t) for t in f.tags]))
    return ({k: torch.cat(v) for k, v in feats.items()}, torch.cat(texture).float(), torch.cat(degraded),
            torch.cat(answer))


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
    parser.add_argument("--method", default="baseline", help="a shipped two-stage method with a tiny backbone")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--train-frames", type=int, default=1500, help="training frames for the probes")
    args = parser.parse_args()
    device = resolve_device(args.device)
    torch.manual_seed(0)
    root = default_data_root()
    train, val = VIDDataset(root, "train"), VIDDataset(root, "val")
    model, _ = load_model(args.method, shipped_checkpoint(args.method), device, len(val.class_map))
    model.float()
    tr_feats, tr_y, tr_deg, _ = box_features(model, train, device, args.train_frames)
    va_feats, va_y, va_deg, va_answer = box_features(model, val, device)
    keep = ~tr_deg
    rows = {}
    for name in tr_feats:
        predict = fit_probe(tr_feats[name][keep], tr_y[keep])
        right = (predict(va_feats[name]).float() == va_y)
        rows[name] = {"clean": float(right[~va_deg].float().mean()), "degraded": float(right[va_deg].float().mean())}
    own = ((va_answer % 2).float() == va_y)
    rows[f"{args.method}'s own classifier"] = {"clean": float(own[~va_deg].float().mean()),
                                                "degraded": float(own[va_deg].float().mean())}
    lines = [f"Texture (striped / checked) of data_small val ground-truth boxes read by a linear probe at each depth "
             f"of the shipped `{args.method}` (fitted on {int(keep.sum())} clean training boxes); chance 0.5.\n",
             f"| features | clean ({int((~va_deg).sum())} boxes) | degraded ({int(va_deg.sum())} boxes) |",
             "| --- | ---: | ---: |"]
    lines += [f"| {name} | {r['clean']:.3f} | {r['degraded']:.3f} |" for name, r in rows.items()]
    text = "\n".join(lines) + "\n"
    print(text)
    OUT.mkdir(parents=True, exist_ok=True)
    machine = {"platform": platform.platform(), "torch": torch.__version__, "device": device}
    (OUT / "texture_probe.json").write_text(json.dumps({"machine": machine, "method": args.method,
                                                        "train_boxes": int(keep.sum()), "probes": rows}, indent=2) + "\n")
    (OUT / "texture_probe.md").write_text(text)


if __name__ == "__main__":
    main()
