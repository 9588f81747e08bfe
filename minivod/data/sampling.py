"""Which frames a method sees: support-frame sampling for training and testing.

Frames are positions ``0 .. num_frames - 1`` within one video; every function
returns positions of the same video (a DET still is a one-frame video and
serves as its own support).

Training (SELSA Sec. 4.1, MST, DSFNet): a reference frame plus ``k`` support
frames drawn at random from the whole video, or within ``+-window`` frames.

Testing:
- ``sequential``: the ``K`` frames nearest the reference, as one block;
- ``strided``:    frames ``ref +- stride * j`` (SELSA Fig. 3, DSFNet Fig. 3 "fixed interval");
- ``shuffled``:   the video's frames in a fixed random order; a reference takes the
                  ``K`` frames that follow it in that order (SELSA's "shuffled" test,
                  DSFNet's stochastic sampling), so support comes from the whole video;
- key frames:     every ``interval``-th frame is a key frame (PSLA);
- sliding window: the frames within ``+-T`` of the reference, or only the past ``T``
                  frames when frames arrive online (MST, SSVD).
"""
from __future__ import annotations

import numpy as np

TEST_MODES = ("sequential", "strided", "shuffled")


def _reflect(pos: int, n: int) -> int:
    """Fold a position back into ``[0, n)`` by mirroring at the ends."""
    if n == 1:
        return 0
    period = 2 * (n - 1)
    pos = pos % period
    return pos if pos < n else period - pos


def train_support(num_frames: int, ref: int, k: int, rng: np.random.Generator, window: int | None = None) -> list[int]:
    """``k`` random support frames for a training reference frame.

    Drawn without replacement from the other frames of the video (within
    ``+-window`` if given); with replacement when there are fewer than ``k``.
    A one-frame video (a DET still) is its own support.
    """
    if num_frames == 1:
        return [ref] * k
    lo, hi = (0, num_frames) if window is None else (max(0, ref - window), min(num_frames, ref + window + 1))
    candidates = [t for t in range(lo, hi) if t != ref] or [ref]
    replace = len(candidates) < k
    return [int(t) for t in rng.choice(candidates, size=k, replace=replace)]


def sequential_support(num_frames: int, ref: int, k: int) -> list[int]:
    """The ``k`` frames nearest ``ref`` as one contiguous block, shifted to stay in the video."""
    if num_frames == 1:
        return [ref] * k
    start = min(max(ref - k // 2, 0), max(num_frames - (k + 1), 0))
    block = [t for t in range(start, start + k + 1) if t != ref][:k]
    return [_reflect(t, num_frames) for t in block]


def strided_support(num_frames: int, ref: int, k: int, stride: int) -> list[int]:
    """Frames ``ref - s, ref + s, ref - 2s, ref + 2s, ...`` (``k`` of them), mirrored at the ends."""
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    out, j = [], 1
    while len(out) < k:
        for sign in (-1, 1):
            if len(out) < k:
                out.append(_reflect(ref + sign * j * stride, num_frames))
        j += 1
    return out


def shuffled_order(num_frames: int, seed: int = 0) -> np.ndarray:
    """A fixed random order of a video's frames (the same for every reference frame)."""
    return np.random.default_rng(seed).permutation(num_frames)


def shuffled_support(num_frames: int, ref: int, k: int, seed: int = 0) -> list[int]:
    """The ``k`` frames that follow ``ref`` in the video's shuffled order (cyclically)."""
    order = shuffled_order(num_frames, seed)
    pos = int(np.flatnonzero(order == ref)[0])
    return [int(order[(pos + j) % num_frames]) for j in range(1, k + 1)]


def test_support(num_frames: int, ref: int, k: int, mode: str = "shuffled", stride: int = 1, seed: int = 0) -> list[int]:
    """Support frames for testing, by mode (``sequential``, ``strided`` or ``shuffled``)."""
    if mode == "sequential":
        return sequential_support(num_frames, ref, k)
    if mode == "strided":
        return strided_support(num_frames, ref, k, stride)
    if mode == "shuffled":
        return shuffled_support(num_frames, ref, k, seed)
    raise ValueError(f"unknown test sampling mode {mode!r}; choose one of {TEST_MODES}")


test_support.__test__ = False  # not a pytest test, despite its name


def key_frame_schedule(num_frames: int, interval: int) -> tuple[list[bool], list[int]]:
    """PSLA's fixed schedule: frame ``t`` is a key frame when ``t % interval == 0``.

    Returns:
        ``is_key`` per frame, and for each frame the latest key frame at or before it.
    """
    if interval < 1:
        raise ValueError(f"key-frame interval must be >= 1, got {interval}")
    is_key = [t % interval == 0 for t in range(num_frames)]
    latest_key = [t - t % interval for t in range(num_frames)]
    return is_key, latest_key


def sliding_window(num_frames: int, t: int, radius: int, online: bool = False) -> list[int]:
    """Frames within ``+-radius`` of ``t`` (excluding ``t``); only past ones when ``online``."""
    lo, hi = max(0, t - radius), t if online else min(num_frames, t + radius + 1)
    return [s for s in range(lo, hi) if s != t]
