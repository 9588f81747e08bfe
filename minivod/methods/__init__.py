"""The methods minivod implements, by name: how to build each and how it samples frames.

Every method is a :class:`~minivod.models.base.VideoDetectorBase`; the two-stage
ones are the baseline ``VODetector`` with modules plugged in. A
:class:`MethodSpec` also says how many support frames the method trains and
tests with and how it picks them, so the engines need no per-method code.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

from minivod.models import VODetector, preset
from minivod.models.base import VideoDetectorBase
from minivod.models.config import DetectorConfig

METHOD_NAMES = ("baseline", "selsa", "dsfnet", "mst", "psla", "ssvd")


@dataclass(frozen=True)
class MethodSpec:
    """How a method is built and which frames it sees.

    train_support: support frames per training clip (0: single frame)
    train_window: draw them within +-window frames (None: the whole video)
    test_support: support frames per reference frame at test time
    test_mode: ``sequential``, ``strided`` or ``shuffled`` (see ``minivod.data.sampling``)
    online: frames arrive one by one; supports are past frames only
    """

    name: str
    build: Callable[[DetectorConfig], VideoDetectorBase]
    train_support: int = 0
    train_window: Optional[int] = None
    test_support: int = 0
    test_mode: str = "sequential"
    test_stride: int = 1
    online: bool = False


METHODS: dict[str, MethodSpec] = {
    "baseline": MethodSpec("baseline", VODetector),
}


def get_method(name: str) -> MethodSpec:
    if name not in METHODS:
        missing = " (not implemented yet in this version)" if name in METHOD_NAMES else ""
        raise ValueError(f"unknown method {name!r}{missing}; available: {sorted(METHODS)}")
    return METHODS[name]


def build_model(method: str, preset_name: str, num_classes: int, **overrides) -> VideoDetectorBase:
    """A fresh model of ``method`` with the ``preset_name`` configuration."""
    return get_method(method).build(preset(preset_name, num_classes, **overrides))
