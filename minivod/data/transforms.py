"""Clip augmentation: one random draw, applied identically to every frame of a clip.

A *clip* is ``images (Tensor[T, 3, H, W]) in [0, 1]`` (frame 0 is the reference)
and ``targets``, a list of ``T`` dicts with ``boxes (Tensor[N, 4]) in
(x1, y1, x2, y2)`` (torchvision's continuous convention: a box over pixels
0..9 is [0, 10)), ``labels (Tensor[N])`` and ``track_ids (Tensor[N])``.
Because the draw is shared, the frames stay aligned with each other, as the
aggregation methods need. The SSD-style pipeline SELSA trains with:
photometric distortion, random expand, random IoU crop, horizontal flip, and
a resize to a shorter side. The pixel operations are torchvision's.
"""
from __future__ import annotations

import numpy as np
import torch
import torchvision.transforms.v2.functional as TF
from torchvision.ops import box_iou

MEAN_FILL = (0.485, 0.456, 0.406)


def _keep(target, keep):
    return {k: (v[keep] if isinstance(v, torch.Tensor) and v.shape[:1] == keep.shape else v)
            for k, v in target.items()}


def photometric_distort(images, rng):
    """Brightness, contrast, saturation and hue jitter with one draw for the clip."""
    if rng.random() < 0.5:
        images = TF.adjust_brightness(images, float(rng.uniform(0.875, 1.125)))
    if rng.random() < 0.5:
        images = TF.adjust_contrast(images, float(rng.uniform(0.5, 1.5)))
    if rng.random() < 0.5:
        images = TF.adjust_saturation(images, float(rng.uniform(0.5, 1.5)))
    if rng.random() < 0.5:
        images = TF.adjust_hue(images, float(rng.uniform(-0.05, 0.05)))
    return images.clamp(0, 1)


def random_expand(images, targets, rng, max_ratio=2.0):
    """Place the clip on a larger canvas filled with the mean colour (zooms out)."""
    t, c, h, w = images.shape
    ratio = float(rng.uniform(1.0, max_ratio))
    nh, nw = int(h * ratio), int(w * ratio)
    top, left = int(rng.integers(0, nh - h + 1)), int(rng.integers(0, nw - w + 1))
    canvas = images.new_tensor(MEAN_FILL).view(1, 3, 1, 1).expand(t, c, nh, nw).clone()  # (T, 3, nH, nW)
    canvas[:, :, top:top + h, left:left + w] = images
    shift = torch.tensor([left, top, left, top], dtype=torch.float32)
    return canvas, [{**tg, "boxes": tg["boxes"] + shift} for tg in targets]


def random_iou_crop(images, targets, rng, min_ious=(0.1, 0.3, 0.5, 0.7, 0.9), trials=40):
    """SSD's random crop: a window whose IoU with some reference box reaches a drawn minimum.

    Every frame gets the same window; in each frame, boxes whose centre falls
    outside it are dropped and the rest are clipped to it.
    """
    _, _, h, w = images.shape
    ref_boxes = targets[0]["boxes"]
    choice = rng.integers(0, len(min_ious) + 1)
    if choice == len(min_ious) or len(ref_boxes) == 0:
        return images, targets  # "use the whole clip" is one of the options
    min_iou = min_ious[choice]
    for _ in range(trials):
        cw, ch = rng.uniform(0.3, 1.0) * w, rng.uniform(0.3, 1.0) * h
        if not 0.5 <= ch / cw <= 2.0:
            continue
        x0, y0 = rng.uniform(0, w - cw), rng.uniform(0, h - ch)
        window = torch.tensor([[x0, y0, x0 + cw, y0 + ch]], dtype=torch.float32)
        if box_iou(window, ref_boxes).max() < min_iou:
            continue
        ix0, iy0, ix1, iy1 = int(x0), int(y0), int(x0 + cw), int(y0 + ch)
        new_targets = []
        for tg in targets:
            b = tg["boxes"]
            centre = (b[:, :2] + b[:, 2:]) / 2  # (N, 2)
            keep = (centre[:, 0] > ix0) & (centre[:, 0] < ix1) & (centre[:, 1] > iy0) & (centre[:, 1] < iy1)
            tg = _keep(tg, keep)
            shifted = tg["boxes"] - torch.tensor([ix0, iy0, ix0, iy0], dtype=torch.float32)
            shifted[:, 0::2] = shifted[:, 0::2].clamp(0, ix1 - ix0)
            shifted[:, 1::2] = shifted[:, 1::2].clamp(0, iy1 - iy0)
            new_targets.append({**tg, "boxes": shifted})
        if len(new_targets[0]["boxes"]) == 0:
            continue
        return images[:, :, iy0:iy1, ix0:ix1], new_targets
    return images, targets


def hflip(images, targets):
    """Mirror the clip left-right."""
    w = images.shape[-1]
    out = []
    for tg in targets:
        b = tg["boxes"].clone()
        b[:, 0], b[:, 2] = w - tg["boxes"][:, 2], w - tg["boxes"][:, 0]
        out.append({**tg, "boxes": b})
    return images.flip(-1), out


def resize_shorter(images, targets, shorter, max_size=None):
    """Resize so the shorter side is ``shorter`` (and the longer at most ``max_size``)."""
    h, w = images.shape[-2:]
    scale = shorter / min(h, w)
    if max_size is not None:
        scale = min(scale, max_size / max(h, w))
    nh, nw = int(round(h * scale)), int(round(w * scale))
    if (nh, nw) == (h, w):
        return images, targets
    images = TF.resize(images, [nh, nw], antialias=True)
    sx, sy = nw / w, nh / h
    factor = torch.tensor([sx, sy, sx, sy], dtype=torch.float32)
    return images, [{**tg, "boxes": tg["boxes"] * factor} for tg in targets]


class ClipTransform:
    """The training augmentation (``train=True``) or just the resize (``train=False``).

    Args:
        shorter, max_size: the output size (shorter side; cap on the longer side)
        seed: seeds the draws, so a run is reproducible
    """

    def __init__(self, shorter, max_size=None, train=True, expand=True, crop=True, photometric=True,
                 flip=True, seed=0):
        self.shorter, self.max_size, self.train = shorter, max_size, train
        self.expand, self.crop, self.photometric, self.flip = expand, crop, photometric, flip
        self.rng = np.random.default_rng(seed)

    def __call__(self, images, targets, rng=None):
        rng = rng or self.rng
        if self.train:
            if self.photometric:
                images = photometric_distort(images, rng)
            if self.expand and rng.random() < 0.5:
                images, targets = random_expand(images, targets, rng)
            if self.crop:
                images, targets = random_iou_crop(images, targets, rng)
            if self.flip and rng.random() < 0.5:
                images, targets = hflip(images, targets)
        return resize_shorter(images, targets, self.shorter, self.max_size)
