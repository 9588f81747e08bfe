"""Object and background crops: the classification data that pre-trains the tiny backbone.

The papers start every detector from a backbone pre-trained on ImageNet
classification. The tiny preset's stand-in is a classifier trained on crops of
the training split (VID frames and DET stills, never val): one fixed-size window
around each *sharp* object (a box with no degradation tag), labelled with its
class, and background windows that hold no object centre and little of any box,
labelled 0. Windows keep the frame's scale (no resizing), so the backbone learns
the textures at the size the detector will see them.

A :class:`CropSet` keeps the frames (uint8) and the crop centres; ``batch``
cuts a jittered, optionally flipped batch out of them, so an epoch needs no
image decoding.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from minivod.data.transforms import MEAN_FILL
from minivod.data.vid import DataError, VIDDataset, load_image

BLUR_TAGS = ("motion_blur", "defocus")


@dataclass
class CropSet:
    """Crop centres on a stack of padded frames.

    frames (list of Tensor[3, H + 2p, W + 2p] uint8): frames padded by ``pad`` px with the mean colour
    centres (ndarray[N, 2] float): crop centres (x, y) in unpadded frame pixels
    frame_of (ndarray[N] int): which frame each crop comes from
    labels (ndarray[N] int): 0 background, 1..C the class
    blurred (ndarray[N] bool): the box is tagged motion_blur or defocus (evaluation crops only)
    size: crop side in px
    """

    frames: list[Tensor]
    centres: np.ndarray
    frame_of: np.ndarray
    labels: np.ndarray
    blurred: np.ndarray
    size: int
    pad: int

    def __len__(self) -> int:
        return len(self.labels)

    def batch(self, idx: np.ndarray, rng: np.random.Generator | None = None, jitter: int = 0,
              flip: bool = False) -> tuple[Tensor, Tensor]:
        """Crops ``idx`` as float images (B, 3, size, size) in [0, 1] and their labels (B,)."""
        centres = self.centres[idx]
        if rng is not None and jitter:
            centres = centres + rng.integers(-jitter, jitter + 1, size=centres.shape)
        x0 = np.rint(centres[:, 0] - self.size / 2).astype(int) + self.pad  # left edge in padded pixels
        y0 = np.rint(centres[:, 1] - self.size / 2).astype(int) + self.pad
        crops = []
        for f, x, y in zip(self.frame_of[idx], x0, y0):
            frame = self.frames[f]  # (3, H + 2p, W + 2p)
            x = min(max(x, 0), frame.shape[-1] - self.size)
            y = min(max(y, 0), frame.shape[-2] - self.size)
            crops.append(frame[:, y:y + self.size, x:x + self.size])
        crops = torch.stack(crops)  # (B, 3, size, size) uint8
        if rng is not None and flip:
            mirror = torch.from_numpy(rng.random(len(idx)) < 0.5)
            crops[mirror] = crops[mirror].flip(-1)
        return crops.float().div_(255), torch.from_numpy(self.labels[idx]).long()


def _padded_uint8(path, pad: int) -> Tensor:
    image = (load_image(path) * 255).round().to(torch.uint8)  # (3, H, W)
    fill = torch.tensor([round(255 * c) for c in MEAN_FILL], dtype=torch.uint8).view(3, 1, 1)
    out = fill.expand(3, image.shape[1] + 2 * pad, image.shape[2] + 2 * pad).clone()
    out[:, pad:pad + image.shape[1], pad:pad + image.shape[2]] = image
    return out


def _background_centre(rng, boxes: np.ndarray, width: int, height: int, size: int, tries: int = 20):
    """A window centre whose window covers no box centre and at most 10% of any box, or None."""
    half = size / 2
    for _ in range(tries):
        cx, cy = rng.uniform(half / 2, width - half / 2), rng.uniform(half / 2, height - half / 2)
        if not len(boxes):
            return cx, cy
        ix = np.clip(np.minimum(boxes[:, 2] + 1, cx + half) - np.maximum(boxes[:, 0], cx - half), 0, None)
        iy = np.clip(np.minimum(boxes[:, 3] + 1, cy + half) - np.maximum(boxes[:, 1], cy - half), 0, None)
        area = (boxes[:, 2] - boxes[:, 0] + 1) * (boxes[:, 3] - boxes[:, 1] + 1)
        if (ix * iy / area).max() <= 0.1:
            return cx, cy
    return None


def build_crops(dataset: VIDDataset, size: int = 48, sharp_only: bool = True, background_per_frame: float = 0.5,
                seed: int = 0, frame_step: int = 1) -> CropSet:
    """Crops of every frame of ``dataset`` (every ``frame_step``-th frame of each video).

    Args:
        sharp_only: keep only boxes without any degradation tag (pre-training); else keep
            every box and mark the motion-blurred / defocused ones (evaluation)
        background_per_frame: expected background crops per frame
    """
    rng = np.random.default_rng((seed, 11))
    pad = size // 2
    frames, centres, frame_of, labels, blurred = [], [], [], [], []
    for video in dataset.videos:
        for frame in video.frames[::frame_step]:
            keep = [i for i, tags in enumerate(frame.tags) if not (sharp_only and tags)]
            wants_background = rng.random() < background_per_frame
            bg = _background_centre(rng, frame.boxes, frame.width, frame.height, size) if wants_background else None
            if not keep and bg is None:
                continue
            k = len(frames)
            frames.append(_padded_uint8(frame.image_path, pad))
            for i in keep:
                x1, y1, x2, y2 = frame.boxes[i]
                centres.append(((x1 + x2 + 1) / 2, (y1 + y2 + 1) / 2))
                frame_of.append(k)
                labels.append(int(frame.labels[i]))
                blurred.append(any(t in BLUR_TAGS for t in frame.tags[i]))
            if bg is not None:
                centres.append(bg)
                frame_of.append(k)
                labels.append(0)
                blurred.append(False)
    if not any(labels):
        raise DataError(f"{dataset.root} ({dataset.split}): no {'sharp ' if sharp_only else ''}object boxes to "
                        "crop; pre-training needs annotated training frames")
    return CropSet(frames, np.asarray(centres, np.float64), np.asarray(frame_of),
                   np.asarray(labels, np.int64), np.asarray(blurred, bool), size, pad)
