"""What every video detector offers the training and inference engines.

A video detector works in two steps, so that an engine can run the expensive
per-frame part exactly once per frame of a video and reuse it whenever that
frame serves as a support of another reference frame:

1. ``frame_features(images) -> FrameFeatures``: per-frame work (normalise,
   backbone, and for a two-stage detector the RPN proposals), cacheable.
2. ``detect(ref, supports) -> detections``: everything that mixes frames
   (frame-level aggregation, RoI aggregation, the heads), for the reference
   frames, from cached ``FrameFeatures``.

``forward`` ties them together with the clip convention of the training data:
``images (Tensor[B, T, 3, H, W])`` with frame 0 of each clip the reference.
The two-stage ``VODetector`` and a one-stage detector (SSVD, RetinaNet-style)
both derive from ``VideoDetectorBase``, so the engines treat them alike.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Union

import torch
from torch import Tensor, nn

Maps = Union[Tensor, dict[str, Tensor]]  # one level (N, C, h, w), or named levels (FPN)


def _take(maps: Maps, index: list[int]) -> Maps:
    if isinstance(maps, dict):
        return {k: v[index] for k, v in maps.items()}  # each (len(index), C, h, w)
    return maps[index]  # (len(index), C, h, w)


def _cat(maps: list[Maps]) -> Maps:
    if isinstance(maps[0], dict):
        return {k: torch.cat([m[k] for m in maps]) for k in maps[0]}
    return torch.cat(maps)  # (sum N_i, C, h, w)


@dataclass
class FrameFeatures:
    """The cacheable per-frame results for N frames (all of one size).

    maps (Tensor[N, C, h, w], or dict of such per FPN level): backbone frame maps
        of the normalised, resized and padded frames
    image_sizes (list[tuple[int, int]]): (height, width) of each frame after resizing, before padding
    original_sizes (list[tuple[int, int]]): (height, width) of each input frame
    proposals (list[Tensor[P, 4]] or None): RPN proposals per frame, (x1, y1, x2, y2) in
        resized-frame pixels, sorted by objectness; None for a one-stage detector
    objectness (list[Tensor[P]] or None): sigmoid objectness of each proposal
    memo (list[dict]): one dict per frame where a detector keeps what it derives from that frame
        alone at inference (e.g. its support RoIs' features), so a frame that supports many
        reference frames is worked on once. ``select`` and ``cat`` pass the same dicts along, so
        a frame held in the engine's cache keeps its memo; empty for freshly computed frames.
    """

    maps: Maps
    image_sizes: list[tuple[int, int]]
    original_sizes: list[tuple[int, int]]
    proposals: Optional[list[Tensor]] = None
    objectness: Optional[list[Tensor]] = None
    memo: list[dict] = field(default_factory=list)

    def __post_init__(self):
        if not self.memo:
            self.memo = [{} for _ in self.image_sizes]

    def __len__(self) -> int:
        return len(self.image_sizes)

    def select(self, index: list[int]) -> "FrameFeatures":
        """The frames at positions ``index`` (a copy of their maps), in that order."""
        return FrameFeatures(
            _take(self.maps, index),
            [self.image_sizes[i] for i in index],
            [self.original_sizes[i] for i in index],
            None if self.proposals is None else [self.proposals[i] for i in index],
            None if self.objectness is None else [self.objectness[i] for i in index],
            [self.memo[i] for i in index],
        )

    @staticmethod
    def cat(frames: list["FrameFeatures"]) -> "FrameFeatures":
        """Frames of several ``FrameFeatures`` one after the other (e.g. cached frames into a clip)."""
        has_proposals = frames[0].proposals is not None
        return FrameFeatures(
            _cat([f.maps for f in frames]),
            [s for f in frames for s in f.image_sizes],
            [s for f in frames for s in f.original_sizes],
            [p for f in frames for p in f.proposals] if has_proposals else None,
            [o for f in frames for o in f.objectness] if has_proposals else None,
            [m for f in frames for m in f.memo],
        )

    def split_clips(self, clips: int, frames_per_clip: int) -> tuple["FrameFeatures", Optional["FrameFeatures"]]:
        """Frames ordered clip-major (frame t of clip b at b * T + t) -> (references, supports).

        Returns the B reference frames (t = 0) and the B * (T - 1) support frames, grouped
        by clip (clip-major), the order ``detect`` expects; supports are None when T = 1.
        """
        T = frames_per_clip
        if T == 1:
            return self, None
        refs = [b * T for b in range(clips)]
        supports = [b * T + t for b in range(clips) for t in range(1, T)]
        return self.select(refs), self.select(supports)


class VideoDetectorBase(nn.Module, abc.ABC):
    """The interface shared by the two-stage and one-stage video detectors.

    Subclasses implement ``frame_features``, ``detect`` and ``compute_losses``;
    ``forward`` is the same for all of them.
    """

    @abc.abstractmethod
    def frame_features(self, images: Tensor) -> FrameFeatures:
        """Per-frame, cacheable work on ``images (Tensor[N, 3, H, W])`` float RGB in [0, 1]."""

    @abc.abstractmethod
    def detect(self, ref: FrameFeatures, supports: Optional[FrameFeatures] = None) -> list[dict[str, Tensor]]:
        """Detections for the B frames of ``ref``, each aided by its own T - 1 frames of ``supports``.

        ``supports`` holds B * (T - 1) frames grouped by reference (clip-major), or None.
        Returns per reference frame ``boxes (Tensor[K, 4])`` (x1, y1, x2, y2) in input pixels,
        ``scores (Tensor[K])`` and ``labels (Tensor[K])`` int64 in 1..num_classes. Evaluation mode.
        """

    @abc.abstractmethod
    def compute_losses(self, images: Tensor, targets: list[dict[str, Tensor]]) -> dict[str, Tensor]:
        """Training losses for clips ``images (Tensor[B, T, 3, H, W])`` and reference-frame ``targets``."""

    def set_iteration(self, iteration: int, total: int) -> None:
        """Called by the training loop before every step (SSVD's two training phases); no-op here."""

    def test_schedule(self):
        """A ``minivod.data.sampling`` schedule (``KeyFrameSchedule``, ``BufferedSchedule``) the engine
        runs at test time instead of reference + supports (PSLA, SSVD); None: reference + supports."""
        return None

    def lr_factors(self) -> dict[str, float]:
        """Learning-rate factors by parameter-name prefix for parts that train slower than the rest
        (SSVD's flow network); {}: one learning rate."""
        return {}

    def trains_on_stills(self, iteration: int, total: int) -> bool:
        """Whether the training batch of ``iteration`` may hold DET stills (one-frame clips) when the data
        has them; False draws that batch from the video clips only (SSVD's phase 2 as the paper trains it)."""
        return True

    def train_support_fn(self) -> Optional[Callable[[int, int, Any], list[int]]]:
        """``(num_frames, ref, rng) -> positions`` of a training clip's supports when the model's own
        options decide them (PSLA's key-frame interval l); None: the method spec's sampler."""
        return None

    def forward(self, images: Tensor, targets: Optional[list[dict[str, Tensor]]] = None):
        """
        Args:
            images (Tensor[B, T, 3, H, W]): B clips of T frames, float RGB in [0, 1]; frame 0 of
                each clip is the reference frame, frames 1..T-1 its supports
            targets (list[dict], training only): one per clip, for its reference frame:
                ``boxes (Tensor[M, 4])`` float (x1, y1, x2, y2) in input pixels and
                ``labels (Tensor[M])`` int64 in 1..num_classes
        Returns:
            training: dict of scalar losses
            evaluation: list of B dicts ``boxes (Tensor[K, 4])``, ``scores (Tensor[K])``,
                ``labels (Tensor[K])`` for the reference frames
        """
        if images.dim() != 5:
            raise ValueError(f"expected clips (B, T, 3, H, W), got shape {tuple(images.shape)}")
        if self.training:
            if targets is None:
                raise ValueError("targets are required in training mode")
            return self.compute_losses(images, targets)
        B, T = images.shape[:2]
        frames = self.frame_features(images.flatten(0, 1))  # from (B*T, 3, H, W), clip-major
        ref, supports = frames.split_clips(B, T)
        return self.detect(ref, supports)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters of ``model`` (only those with ``requires_grad`` if ``trainable_only``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
