"""Video inference: each frame's backbone and RPN run once, however often it is used.

A :class:`FeatureCache` computes a frame's :class:`~minivod.models.base.FrameFeatures`
the first time it is asked for and keeps it, so a frame that serves as support
for many reference frames costs one backbone pass. Two modes:

- **offline** (:func:`detect_video`): the whole video is available; each
  reference frame's supports come from a sampler of ``minivod.data.sampling``
  (sequential, strided, shuffled, or a +-T window).
- **online** (:func:`detect_video_online`): frames arrive one at a time; the
  supports are the past ``radius`` frames held in a sliding buffer, and frames
  that leave the window are dropped from it.

A model can declare another schedule (``VideoDetectorBase.test_schedule``), which
the engine runs here too, so loading, device sync, timing and the transfer to the
CPU stay in one place:

- :func:`detect_video_buffered` (``BufferedSchedule``, SSVD Algorithm 2): frames
  arrive one by one; frame t waits for t + K and reads supports from the buffer
  t-K..t+K;
- :func:`detect_video_key_frames` (``KeyFrameSchedule``, PSLA): heavy key frames in
  time order, light frames in between from the key frame's state.

:func:`predict_video` picks the loop for a model. All return per-frame detections
(boxes in the input pixels, on the CPU), a record of the work done (``computed``:
full backbone passes) and the seconds spent.
"""
from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Optional

import torch

from minivod.data.sampling import BufferedSchedule, KeyFrameSchedule, sliding_window, test_support
from minivod.data.vid import Video, load_image
from minivod.models.base import FrameFeatures


def _sync(device):
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


class FeatureCache:
    """Per-frame features of one video, computed on first use and kept (up to ``max_frames``, LRU).

    Args:
        model: a video detector (``frame_features`` is called on batches of frames)
        load: ``t -> Tensor[3, H, W]`` image of frame ``t``
        device: where the model runs
        batch: frames per backbone call when several are missing at once
    """

    def __init__(self, model, load: Callable[[int], torch.Tensor], device, max_frames: Optional[int] = None,
                 batch: int = 8):
        self.model, self.load, self.device, self.max_frames, self.batch = model, load, device, max_frames, batch
        self.frames: "OrderedDict[int, FrameFeatures]" = OrderedDict()
        self.computed = 0  # backbone passes, one per frame (tests count these)

    @torch.no_grad()
    def get(self, positions: list[int]) -> FrameFeatures:
        """Features of the frames at ``positions`` (in that order), computing the missing ones."""
        missing = [t for t in dict.fromkeys(positions) if t not in self.frames]
        for k in range(0, len(missing), self.batch):
            chunk = missing[k:k + self.batch]
            images = torch.stack([self.load(t) for t in chunk]).to(self.device)  # (n, 3, H, W)
            feats = self.model.frame_features(images)
            self.computed += len(chunk)
            for j, t in enumerate(chunk):
                self.frames[t] = feats.select([j])
        for t in positions:
            self.frames.move_to_end(t)
        out = FrameFeatures.cat([self.frames[t] for t in positions])
        if self.max_frames is not None:
            while len(self.frames) > self.max_frames:
                self.frames.popitem(last=False)
        return out

    def drop(self, keep: set[int]) -> None:
        """Forget every frame not in ``keep`` (the online sliding buffer)."""
        for t in [t for t in self.frames if t not in keep]:
            del self.frames[t]


def _to_cpu(det):
    return {k: v.detach().float().cpu() if k != "labels" else v.detach().cpu() for k, v in det.items()}


@torch.no_grad()
def detect_video(model, video: Video, device, num_support: int = 0, mode: str = "sequential", stride: int = 1,
                 seed: int = 0, window: Optional[int] = None, refs_per_batch: int = 4,
                 support_fn: Optional[Callable[[int, int], list[int]]] = None):
    """Offline inference over a whole video.

    Args:
        num_support: support frames per reference frame (0: single-frame detection)
        mode, stride, seed: the test sampler (``minivod.data.sampling.test_support``)
        window: if given, supports are the frames within +-window instead (MST, SSVD)
        support_fn: ``(num_frames, t) -> positions`` overriding the above
    Returns:
        list of per-frame dicts (``boxes``, ``scores``, ``labels``, on the CPU), the
        :class:`FeatureCache` (for its ``computed`` count) and the seconds spent.
    """
    model.eval()
    n = len(video)
    cache = FeatureCache(model, lambda t: load_image(video.frames[t].image_path), device)

    def supports_of(t):
        if support_fn is not None:
            return support_fn(n, t)
        if num_support == 0:
            return []
        if window is not None:
            return sliding_window(n, t, window) or [t]
        return test_support(n, t, num_support, mode=mode, stride=stride, seed=seed)

    _sync(device)
    start = time.perf_counter()
    results = []
    for k in range(0, n, refs_per_batch):
        refs = list(range(k, min(n, k + refs_per_batch)))
        supports = [supports_of(t) for t in refs]
        if any(len(s) != len(supports[0]) for s in supports):  # windows shrink at the ends
            dets = [model.detect(cache.get([t]), cache.get(s) if s else None)[0] for t, s in zip(refs, supports)]
        else:
            flat = [s for group in supports for s in group]
            dets = model.detect(cache.get(refs), cache.get(flat) if flat else None)
        results += [_to_cpu(d) for d in dets]
    _sync(device)
    return results, cache, time.perf_counter() - start


def online_supports(t: int, radius: int) -> list[int]:
    """The past ``radius`` frames of frame ``t``; a short history is repeated to fill the buffer
    (the first frame is its own support), so every reference sees ``radius`` supports."""
    history = sliding_window(t + 1, t, radius, online=True) or [t]
    return (history * radius)[:radius]


@torch.no_grad()
def detect_video_online(model, frames, device, radius: int = 0):
    """Online inference: ``frames`` is an iterable of images (Tensor[3, H, W]) arriving one by one.

    Each new frame is detected with the past ``radius`` frames as supports (none
    for the first frame: it is its own support), from a buffer of cached features.
    Returns per-frame detections, the cache and the seconds spent.
    """
    model.eval()
    arrived: dict[int, torch.Tensor] = {}
    cache = FeatureCache(model, lambda t: arrived[t], device)
    results = []
    _sync(device)
    start = time.perf_counter()
    for t, image in enumerate(frames):
        arrived[t] = image
        ref = cache.get([t])
        supports = cache.get(online_supports(t, radius)) if radius > 0 else None
        results.append(_to_cpu(model.detect(ref, supports)[0]))
        keep = set(range(max(0, t - radius + 1), t + 1))  # the next frame's window
        cache.drop(keep)
        for old in [s for s in arrived if s not in keep]:
            del arrived[old]
    _sync(device)
    return results, cache, time.perf_counter() - start


@torch.no_grad()
def detect_video_buffered(model, video: Video, device, schedule: BufferedSchedule, subsets=None, **detect_kwargs):
    """Buffered online inference (SSVD Algorithm 2): frames enter a feature buffer one by one; frame t
    is detected once frame t + K has arrived (K = ``schedule.window``), with ``schedule.supports``
    from the buffer t-K..t+K, and frames older than t - K leave it. Each frame's features run once.
    ``detect_kwargs`` go to ``model.detect`` (e.g. SSVD's ``only``); with ``subsets`` (``{name: only}``)
    each frame's result is ``{name: detections}`` instead, the streams computed once (``detect_subsets``)."""
    model.eval()
    n, K = len(video), schedule.window
    cache = FeatureCache(model, lambda t: load_image(video.frames[t].image_path), device)
    results = []
    _sync(device)
    start = time.perf_counter()
    for arrival in range(n + K):
        if arrival < n:
            cache.get([arrival])  # the new frame enters the buffer
        t = arrival - K
        if t < 0:
            continue
        supports = schedule.supports(n, t)
        ref, sup = cache.get([t]), cache.get(supports) if supports else None
        if subsets is None:
            results.append(_to_cpu(model.detect(ref, sup, **detect_kwargs)[0]))
        else:
            results.append({k: _to_cpu(d) for k, d in model.detect_subsets(ref, sup, subsets)[0].items()})
        cache.drop(set(range(t - K + 1, min(n, arrival + 1))))  # what frame t + 1 still needs
    _sync(device)
    return results, cache, time.perf_counter() - start


@dataclass
class KeyFrameRecord:
    """What :func:`detect_video_key_frames` ran: ``computed`` heavy passes (key frames), ``light`` the others."""

    computed: int = 0
    light: int = 0


@torch.no_grad()
def detect_video_key_frames(model, video: Video, device, schedule: KeyFrameSchedule):
    """A key-frame schedule over a whole video (PSLA Sec. 3.5).

    Key frames, in time order, go through ``model.detect_key_frame(images, state) -> (detections,
    state)`` (PSLA: N_f and RFU, the state is F_t); the other frames of each key frame's segment
    through ``model.detect_non_key_frames(images, state)`` (PSLA: N_l and DenseFT), up to
    ``schedule.batch`` at once. Images are raw (N, 3, H, W) in [0, 1] on ``device``.
    """
    model.eval()
    n = len(video)
    is_key, key_of = schedule.frames(n)
    record, results, state = KeyFrameRecord(), [None] * n, None

    def load(frames):
        return torch.stack([load_image(video.frames[t].image_path) for t in frames]).to(device)  # (N, 3, H, W)

    _sync(device)
    start = time.perf_counter()
    for key in sorted(set(key_of)):
        dets, state = model.detect_key_frame(load([key]), state)
        results[key] = _to_cpu(dets[0])
        record.computed += 1
        others = [t for t in range(n) if key_of[t] == key and not is_key[t]]
        for k in range(0, len(others), schedule.batch):
            chunk = others[k:k + schedule.batch]
            for t, d in zip(chunk, model.detect_non_key_frames(load(chunk), state)):
                results[t] = _to_cpu(d)
            record.light += len(chunk)
    _sync(device)
    return results, record, time.perf_counter() - start


def predict_video(model, video: Video, device, num_support: int = 0, mode: str = "sequential", stride: int = 1,
                  window: Optional[int] = None):
    """The model's own schedule when it declares one (``model.test_schedule()``), else :func:`detect_video`
    with the given supports. Returns (detections, record with ``computed``, seconds)."""
    schedule = model.test_schedule()
    if isinstance(schedule, BufferedSchedule):
        return detect_video_buffered(model, video, device, schedule)
    if isinstance(schedule, KeyFrameSchedule):
        return detect_video_key_frames(model, video, device, schedule)
    if schedule is not None:
        raise TypeError(f"{type(model).__name__}.test_schedule() returned an unknown schedule {schedule!r}")
    return detect_video(model, video, device, num_support=num_support, mode=mode, stride=stride, window=window)
