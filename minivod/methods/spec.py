"""``MethodSpec``: how a method is built and which frames it sees.

Each method module exports its specs (``SPECS``: the method and its ablation rows,
the rows made with :meth:`MethodSpec.variant`); ``minivod.methods`` merges them into
one registry. The engines read a spec's fields and need no per-method code.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable, Optional

from minivod.models.base import VideoDetectorBase
from minivod.models.config import DetectorConfig


@dataclass(frozen=True)
class MethodSpec:
    """How a method is built and which frames it sees.

    builder: ``(cfg, **options) -> model``; ``options`` are its keyword arguments for this
        row (stored in a trained checkpoint's metadata as ``method_options``)
    train_support: support frames per training clip (0: single frame); a model can choose
        them itself with ``VideoDetectorBase.train_support_fn`` (PSLA's key frames)
    train_window: draw them within +-window frames (None: the whole video)
    test_support: support frames per reference frame at test time
    test_mode, test_stride: ``sequential``, ``strided`` or ``shuffled`` (``minivod.data.sampling``)
    test_window: supports are the frames within +-window of the reference instead (MST)

    A model whose test frames are not reference + supports declares a schedule instead
    (``VideoDetectorBase.test_schedule``: PSLA's key frames, SSVD's buffer); the engine runs it.
    support_targets: training targets carry the support frames' boxes, labels and track
        ids as ``target["support"]`` (one dict per support frame)
    prepare: ``(model, data_root, device, out, progress) -> dict`` run once before the
        training loop of a fresh run (SSVD's flow pre-training); what it returns is stored
        in the checkpoint's metadata under ``"prepare"``
    """

    name: str
    builder: Callable[..., VideoDetectorBase]
    options: dict[str, Any] = field(default_factory=dict)
    train_support: int = 0
    train_window: Optional[int] = None
    test_support: int = 0
    test_mode: str = "sequential"
    test_stride: int = 1
    test_window: Optional[int] = None
    support_targets: bool = False
    prepare: Optional[Callable] = None

    def build(self, cfg: DetectorConfig, **overrides) -> VideoDetectorBase:
        """A fresh model of this row: ``builder(cfg, **options, **overrides)``."""
        return self.builder(cfg, **{**self.options, **overrides})

    def variant(self, name: str, options: Optional[dict[str, Any]] = None, **fields) -> "MethodSpec":
        """Another row of the same method: ``options`` added to the builder's, ``fields`` replaced."""
        return replace(self, name=name, options={**self.options, **(options or {})}, **fields)


def registry(*spec_lists) -> dict[str, MethodSpec]:
    """The specs of several modules by name; a name given twice is an error."""
    out: dict[str, MethodSpec] = {}
    for specs in spec_lists:
        for spec in specs:
            if spec.name in out:
                raise ValueError(f"method {spec.name!r} is registered twice")
            out[spec.name] = spec
    return out
