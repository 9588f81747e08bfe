"""A linear probe for the texture cue: can a feature map tell the two classes of a pair apart?

data_small's classes come in pairs that differ only in a fine texture (stripes
or checks). For every ground-truth box, RoIAlign (7x7) takes the box from the
maps after the stem and after each stage of a tiny backbone (and, for a
detector, the box head's last FC); a logistic regression per depth, fitted on
clean training boxes, predicts the texture bit (odd class index: striped) of
other boxes. Used by ``benchmarks/texture_probe.py`` and notebook 01.
"""
from __future__ import annotations

import torch
from torchvision.ops import roi_align

from minivod.boxes import vid_to_continuous
from minivod.data.crops import BLUR_TAGS
from minivod.data.vid import load_image

DEPTHS = {"stem (stride 1)": 1, "stage 1 (stride 2)": 3, "stage 2 (stride 4)": 5,
          "stage 3 (stride 8)": 7, "stage 4 (stride 8, the final map)": 9}
GROUPS = ("clean", "motion-blurred or defocused", "other degradations")


def box_group(tags) -> str:
    if not tags:
        return "clean"
    return GROUPS[1] if any(t in BLUR_TAGS for t in tags) else GROUPS[2]


@torch.no_grad()
def box_features(body, transform, dataset, device="cpu", max_frames=None, detector=None):
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


def texture_probe(body, transform, train, val, device="cpu", train_frames=1500, detector=None):
    """Probe accuracy per depth and box group of ``val``, probes fitted on clean boxes of ``train``.

    Returns ``({depth: {group: accuracy}}, {group: boxes}, clean training boxes)``; with a
    ``detector``, a last row gives the texture of the detector's own top class on each box.
    """
    tr_feats, tr_y, tr_groups, _ = box_features(body, transform, train, device, train_frames, detector)
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
        rows["the detector's own classifier"] = {g: float(own[m].float().mean()) for g, m in masks.items()}
    return rows, {g: int(m.sum()) for g, m in masks.items()}, int(keep.sum())
