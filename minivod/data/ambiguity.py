"""Measuring data_small's premise: degraded frames are ambiguous, their videos are not.

The two classes of a pair differ only in a fine texture. Two measurements show
what degradation does to that difference:

- :func:`pair_contrast`: render one object with both textures, sharp and then
  degraded, and compare the two renderings. Sharp, they differ a lot; blurred,
  they are nearly the same image, so no detector can tell them apart from that
  frame alone.
- :func:`texture_energy`: the fine-detail energy inside a box of a real
  data_small frame (the mean absolute response of a 4-pixel band-pass filter,
  relative to the box's brightness). Degraded boxes have little of it left;
  most of their tracks still have a sharp frame elsewhere in the video.
"""
from __future__ import annotations

import numpy as np
import torch.nn.functional as F

from minivod.data.generate import BLUR_SIGMA_RATIO, MAX_SHAKE_SIGMA
from minivod.data.synthetic import render_object_layer


def pair_contrast(shape, blur_len=0.0, defocus=0.0, size=14.0, theta=0.2, width=64, height=64):
    """Mean absolute difference (0-255 scale) between the striped and checked renderings of an object."""
    layers = []
    for texture in ("striped", "checked"):
        obj = {"shape": shape, "texture": texture, "colour": [0.8, 0.5, 0.3], "size": size}
        pose = [width / 2, height / 2, theta, 1.0, 1.0, 0.3, blur_len, min(BLUR_SIGMA_RATIO * blur_len, MAX_SHAKE_SIGMA) + defocus]
        colour, alpha = render_object_layer(obj, pose, width, height, blur=True)
        layers.append(colour * 255)
    mask = alpha > 0.5
    return float(np.abs(layers[0] - layers[1])[:, mask].mean())


def texture_energy(image, box):
    """Fine-detail energy inside a box: band-pass response at the texture's scale / brightness.

    Args:
        image (Tensor[3, H, W]) in [0, 1]
        box: (x1, y1, x2, y2) inclusive pixels
    """
    x1, y1, x2, y2 = (int(round(float(v))) for v in box)
    patch = image[:, y1:y2 + 1, x1:x2 + 1].mean(0, keepdim=True)[None]  # (1, 1, h, w)
    if patch.shape[-1] < 6 or patch.shape[-2] < 6:
        return float("nan")
    # difference of Gaussians tuned to the 4-px texture period
    fine = F.avg_pool2d(patch, 3, stride=1, padding=1, count_include_pad=False)
    coarse = F.avg_pool2d(patch, 7, stride=1, padding=3, count_include_pad=False)
    band = (patch - fine).abs() + (fine - coarse).abs()
    inner = band[..., 3:-3, 3:-3] if band.shape[-1] > 8 and band.shape[-2] > 8 else band
    return float(inner.mean() / patch.mean().clamp(min=1e-3))


def best_frame_energy(energies_by_track):
    """For each track, the energy of its sharpest frame: what the rest of the video offers."""
    return {tid: max(values) for tid, values in energies_by_track.items()}


__all__ = ["pair_contrast", "texture_energy", "best_frame_energy"]
