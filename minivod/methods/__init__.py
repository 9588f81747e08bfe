"""The methods minivod implements, by name: how to build each and how it samples frames.

Every method is a :class:`~minivod.models.base.VideoDetectorBase`; the two-stage
ones are the baseline ``VODetector`` with modules plugged in. A
:class:`MethodSpec` also says how many support frames the method trains and
tests with and how it picks them, so the engines need no per-method code.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable, Optional

from minivod.models import VODetector, preset
from minivod.models.base import VideoDetectorBase
from minivod.models.config import DetectorConfig

from .dsfnet import build_dsfnet
from .selsa import build_selsa

METHOD_NAMES = ("baseline", "selsa", "dsfnet", "mst", "psla", "ssvd")


@dataclass(frozen=True)
class MethodSpec:
    """How a method is built and which frames it sees.

    train_support: support frames per training clip (0: single frame)
    train_window: draw them within +-window frames (None: the whole video)
    test_support: support frames per reference frame at test time
    test_mode: ``sequential``, ``strided`` or ``shuffled`` (see ``minivod.data.sampling``)
    online: frames arrive one by one; supports are past frames only

    Hooks for methods whose frames do not fit the fields above (the engines call them
    when set, so they still need no per-method code):

    train_support_fn: ``(num_frames, ref, rng) -> positions`` of a training clip's support
        frames (e.g. PSLA's key frames before a non-key reference)
    test_support_fn: ``(num_frames, t) -> positions`` of frame ``t``'s supports at test time
    test_window: supports are the frames within +-window of the reference (MST, SSVD)
    predict_video: ``(model, video, device) -> (detections, cache, seconds)`` replacing
        ``minivod.engine.inference.detect_video`` (e.g. PSLA's key-frame schedule)
    support_targets: training targets carry the support frames' boxes, labels and track
        ids as ``target["support"]`` (a list of dicts, one per support frame; MST's
        instance-level assignment)
    prepare: ``(model, data_root, device, out, progress) -> dict`` run once before the
        training loop of a fresh run (e.g. SSVD's flow pre-training); what it returns is
        stored in the checkpoint's metadata under ``"prepare"``

    A model may also define ``set_iteration(iteration, total)``; the training loop calls
    it before every step (e.g. SSVD's two training phases).
    """

    name: str
    build: Callable[[DetectorConfig], VideoDetectorBase]
    train_support: int = 0
    train_window: Optional[int] = None
    test_support: int = 0
    test_mode: str = "sequential"
    test_stride: int = 1
    online: bool = False
    train_support_fn: Optional[Callable[[int, int, Any], list[int]]] = None
    test_support_fn: Optional[Callable[[int, int], list[int]]] = None
    test_window: Optional[int] = None
    predict_video: Optional[Callable] = None
    support_targets: bool = False
    prepare: Optional[Callable] = None


# Video methods train on the reference + 2 random frames of the same video (SELSA
# Sec. 4.1) and test with 8 shuffled frames on data_small's 48-frame videos (the
# papers use 21 on ImageNet VID: pass num_support=20 to the evaluator there).
METHODS: dict[str, MethodSpec] = {
    "baseline": MethodSpec("baseline", VODetector),
    "selsa": MethodSpec("selsa", build_selsa, train_support=2, test_support=8, test_mode="shuffled"),
    "dsfnet": MethodSpec("dsfnet", build_dsfnet, train_support=2, test_support=8, test_mode="shuffled"),
    # ablations (SELSA Table 1 (b); DSFNet Table 1)
    "selsa_frame_only": MethodSpec("selsa_frame_only", functools.partial(build_selsa, within_frame_only=True)),
    "dsfnet_frame": MethodSpec("dsfnet_frame", functools.partial(build_dsfnet, instance_level=False),
                               train_support=2, test_support=8, test_mode="shuffled"),
    "dsfnet_instance": MethodSpec("dsfnet_instance", functools.partial(build_dsfnet, frame_level=False),
                                  train_support=2, test_support=8, test_mode="shuffled"),
    # --- MST entries (issue 6) ---
    # --- PSLA entries (issue 7) ---
    # --- SSVD entries (issue 8) ---
}
ABLATIONS = ("selsa_frame_only", "dsfnet_frame", "dsfnet_instance")


def get_method(name: str) -> MethodSpec:
    if name not in METHODS:
        missing = " (not implemented yet in this version)" if name in METHOD_NAMES else ""
        raise ValueError(f"unknown method {name!r}{missing}; available: {sorted(METHODS)}")
    return METHODS[name]


def build_model(method: str, preset_name: str, num_classes: int, **overrides) -> VideoDetectorBase:
    """A fresh model of ``method`` with the ``preset_name`` configuration."""
    return get_method(method).build(preset(preset_name, num_classes, **overrides))
