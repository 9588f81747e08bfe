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

A model whose test-time frames are not one reference + supports declares a
schedule (``VideoDetectorBase.test_schedule``) that the engine runs:
``KeyFrameSchedule`` (PSLA: heavy key frames, light frames in between) or
``BufferedSchedule`` (SSVD Algorithm 2: frames arrive one by one, each detected
once ``window`` later frames have arrived).
"""
from __future__ import annotations

from dataclasses import dataclass

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


def key_frames(num_frames: int, interval: int, position: str = "middle") -> tuple[list[bool], list[int]]:
    """PSLA's fixed schedule: ``is_key`` per frame and, per frame, the key frame whose F_t it uses.

    ``middle``: segments of ``interval`` frames, the middle frame of each is its key frame (PSLA Sec. 3.5);
    ``first``: every ``interval``-th frame, used by the frames that follow it (online).
    """
    if position == "first":
        return key_frame_schedule(num_frames, interval)
    if position != "middle":
        raise ValueError(f"key_position must be 'middle' or 'first', got {position!r}")
    if interval < 1:
        raise ValueError(f"key-frame interval must be >= 1, got {interval}")
    key_of = []
    for start in range(0, num_frames, interval):
        end = min(num_frames, start + interval)
        key_of += [start + (end - start - 1) // 2] * (end - start)
    return [key_of[t] == t for t in range(num_frames)], key_of


def train_key_frames(num_frames: int, ref: int, rng: np.random.Generator, interval: int = 10) -> list[int]:
    """PSLA Sec. 4.1: the two key frames of a training clip whose non-key frame is ``ref``.

    k1 in [ref - l, ref - l/2], k2 in [ref - l/2, ref + l/2], clipped to the video; a
    one-frame video (a DET still) gives three copies of the same image.
    """
    if num_frames == 1:
        return [ref, ref]
    half = interval // 2
    k1 = int(rng.integers(ref - interval, ref - half + 1))
    k2 = int(rng.integers(ref - half, ref + half + 1))
    return [min(max(k, 0), num_frames - 1) for k in (k1, k2)]


def window_supports(num_frames: int, t: int, window: int, num_support: int) -> list[int]:
    """SSVD Algorithm 2: ``num_support`` frames spread uniformly over the buffer t-K..t+K (the
    reference excluded); all of them when the buffer holds fewer (the first and last K frames)."""
    candidates = [s for s in range(max(0, t - window), min(num_frames, t + window + 1)) if s != t]
    if num_support <= 0:
        return []
    if not candidates:
        return [t] * num_support  # a one-frame video is its own support
    if num_support >= len(candidates):
        return candidates
    picks = np.linspace(0, len(candidates) - 1, num_support).round().astype(int)
    return [candidates[i] for i in picks]


@dataclass(frozen=True)
class KeyFrameSchedule:
    """Key frames every ``interval`` frames (``position`` as in :func:`key_frames`); the engine runs
    the model's ``detect_key_frame`` on them in time order and ``detect_non_key_frames`` on the
    frames between, up to ``batch`` at once."""

    interval: int
    position: str = "middle"
    batch: int = 10

    def frames(self, num_frames: int) -> tuple[list[bool], list[int]]:
        return key_frames(num_frames, self.interval, self.position)


@dataclass(frozen=True)
class BufferedSchedule:
    """Frames arrive one by one into a feature buffer; frame t is detected once frame t + ``window``
    has arrived, with :func:`window_supports` of the buffer t-window..t+window as supports."""

    window: int
    num_support: int

    def supports(self, num_frames: int, t: int) -> list[int]:
        return window_supports(num_frames, t, self.window, self.num_support)
