"""The methods minivod implements, by name: how to build each and how it samples frames.

Every method is a :class:`~minivod.models.base.VideoDetectorBase`; the two-stage
ones are the baseline ``VODetector`` with modules plugged in. A
:class:`~minivod.methods.spec.MethodSpec` also says how many support frames the
method trains and tests with and how it picks them, so the engines need no
per-method code. Each method module exports its rows (``SPECS``) beside its code;
the registry below merges them.
"""
from __future__ import annotations

from minivod.models import VODetector, preset
from minivod.models.base import VideoDetectorBase

from . import dsfnet, mst, psla_detector, selsa, ssvd
from .spec import MethodSpec, registry

METHOD_NAMES = ("baseline", "selsa", "dsfnet", "mst", "psla", "ssvd")  # the headline rows, in paper order

# every method and ablation row by name: each method module's SPECS, plus the baseline
METHODS: dict[str, MethodSpec] = registry(
    [MethodSpec("baseline", VODetector)],
    selsa.SPECS, dsfnet.SPECS, mst.SPECS, psla_detector.SPECS, ssvd.SPECS,
)


def get_method(name: str) -> MethodSpec:
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; available: {sorted(METHODS)}")
    return METHODS[name]


def build_model(method: str, preset_name: str, num_classes: int, **overrides) -> VideoDetectorBase:
    """A fresh model of ``method`` with the ``preset_name`` configuration."""
    return get_method(method).build(preset(preset_name, num_classes, **overrides))
