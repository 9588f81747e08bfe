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

Over a whole split, :func:`box_texture_energy` gives every box's energy, and :func:`degraded_example` finds a degraded box next to the same
track's sharpest clean frame (notebook 00, sections 3 and 4).
"""
from __future__ import annotations

import numpy as np
import torch.nn.functional as F

from minivod.data.generate import BLUR_SIGMA_RATIO, MAX_SHAKE_SIGMA
from minivod.data.stats import every_box
from minivod.data.synthetic import render_object_layer
from minivod.data.vid import load_image


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


def box_texture_energy(dataset) -> np.ndarray:
    """:func:`texture_energy` of every box of a split.

    Args:
        dataset: a :class:`~minivod.data.vid.VIDDataset`
    Returns:
        ndarray[G]: each box's energy, boxes in :func:`~minivod.data.stats.every_box` order (NaN for a
        box under 6 px a side); :func:`~minivod.data.stats.track_max` of it is each track's sharpest frame
    """
    energy = []
    for video in dataset.videos:
        for f in video.frames:
            image = load_image(f.image_path)  # (3, H, W), loaded once for all its boxes
            energy += [texture_energy(image, f.boxes[j]) for j in range(len(f))]
    return np.asarray(energy, dtype=np.float64)  # (G,)


def degraded_example(dataset, tag: str, min_width: int = 15):
    """The first box carrying ``tag`` alone, next to the same track's sharpest clean frame.

    Boxes are searched in :func:`~minivod.data.stats.every_box` order; a box qualifies when its only
    tag is ``tag``, it is at least ``min_width`` px wide (``x2 - x1 >= min_width``, so there is
    texture to see) and its track has a box without any tag (and of measurable energy) in the same
    video.

    Returns:
        ``((frame, j), (sharp_frame, i))``: the degraded box and the same track's clean box with the
        highest :func:`texture_energy`; None if no box qualifies
    """
    for video in dataset.videos:
        for frame in video.frames:
            for j in range(len(frame)):
                if frame.tags[j] != (tag,) or frame.boxes[j, 2] - frame.boxes[j, 0] < min_width:
                    continue
                clean = [(texture_energy(load_image(g.image_path), g.boxes[i]), k, (g, i))
                         for k, g in enumerate(video.frames) for i in range(len(g))
                         if g.track_ids[i] == frame.track_ids[j] and not g.tags[i]]
                clean = [c for c in clean if c[0] == c[0]]  # boxes too small to measure (NaN) left out
                if clean:
                    sharpest = max(clean, key=lambda c: (c[0], -c[1]))[2]  # the earliest on a tie
                    return (frame, j), sharpest
    return None


__all__ = ["pair_contrast", "texture_energy", "best_frame_energy", "box_texture_energy", "degraded_example"]
