"""Input normalisation and resizing for batches of equally sized video frames.

torchvision's ``GeneralizedRCNNTransform`` does the same for a list of images
of any sizes, one image at a time. The frames of a video all have one size, so
here the whole ``(N, 3, H, W)`` batch is normalised, resized and padded at
once, with the same arithmetic (so detections match torchvision's to float
precision) and torchvision's ``resize_boxes`` for the boxes.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.detection.transform import resize_boxes


class FrameTransform(nn.Module):
    """Normalise with (mean, std), resize so that the shorter side is ``min_size``
    (the longer at most ``max_size``), pad to a multiple of ``size_divisible``.

    Args:
        min_size (int), max_size (int): target sizes in pixels
        image_mean (tuple[float]), image_std (tuple[float]): per-channel statistics
        size_divisible (int): padded height and width are multiples of it
    """

    def __init__(self, min_size: int, max_size: int, image_mean, image_std, size_divisible: int = 32):
        super().__init__()
        self.min_size = min_size
        self.max_size = max_size
        self.size_divisible = size_divisible
        # Buffers follow the model's device; not persistent: they are config, not weights.
        self.register_buffer("mean", torch.tensor(image_mean).view(3, 1, 1), persistent=False)  # (3, 1, 1)
        self.register_buffer("std", torch.tensor(image_std).view(3, 1, 1), persistent=False)  # (3, 1, 1)

    def scale_factor(self, height: int, width: int) -> float:
        return min(self.min_size / min(height, width), self.max_size / max(height, width))

    def forward(self, images: Tensor) -> tuple[Tensor, list[tuple[int, int]], list[tuple[int, int]]]:
        """
        Args:
            images (Tensor[N, 3, H, W]): float RGB in [0, 1], all frames of one size
        Returns:
            batch (Tensor[N, 3, H_pad, W_pad]): normalised, resized, zero-padded at bottom/right
            image_sizes (list[tuple[int, int]]): (h, w) after resizing, before padding, per frame
            original_sizes (list[tuple[int, int]]): (H, W) per frame
        """
        if not images.is_floating_point():
            raise TypeError(f"frames must be float in [0, 1], got {images.dtype}")
        n, _, height, width = images.shape
        x = (images - self.mean) / self.std  # (N, 3, H, W)
        scale = self.scale_factor(height, width)
        if scale != 1.0:
            x = F.interpolate(  # (N, 3, h, w)
                x, scale_factor=scale, mode="bilinear", recompute_scale_factor=True, align_corners=False
            )
        h, w = x.shape[-2:]
        d = self.size_divisible
        x = F.pad(x, (0, math.ceil(w / d) * d - w, 0, math.ceil(h / d) * d - h))  # (N, 3, H_pad, W_pad)
        return x, [(h, w)] * n, [(height, width)] * n

    @staticmethod
    def resize_targets(targets: list[dict[str, Tensor]], original_sizes, image_sizes) -> list[dict[str, Tensor]]:
        """Copies of ``targets`` with ``boxes (Tensor[M, 4])`` scaled from original to resized frames."""
        return [
            {**t, "boxes": resize_boxes(t["boxes"], list(o), list(s))}
            for t, o, s in zip(targets, original_sizes, image_sizes)
        ]

    @staticmethod
    def postprocess(detections: list[dict[str, Tensor]], image_sizes, original_sizes) -> list[dict[str, Tensor]]:
        """Map detection ``boxes (Tensor[K, 4])`` from resized back to original frame pixels."""
        return [
            {**d, "boxes": resize_boxes(d["boxes"], list(s), list(o))}
            for d, s, o in zip(detections, image_sizes, original_sizes)
        ]
