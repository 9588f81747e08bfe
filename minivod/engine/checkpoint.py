"""Checkpoints: written atomically, read with ``torch.load(weights_only=True)``.

A checkpoint is a plain dict of tensors and built-in types, so it loads without
unpickling arbitrary objects:

    {"meta": {"method", "preset", "num_classes", "class_names", "config", "iteration", ...},
     "model": state_dict, "optimizer": ..., "scheduler": ..., "rng": ...}

Loading one into a model of another method or preset is refused with a message
that says what the checkpoint holds.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch


class CheckpointMismatch(ValueError):
    """The checkpoint was made for another method, preset or class list."""


def save_checkpoint(path, state: dict) -> None:
    """Write ``state`` to ``path`` atomically (a temporary file in the same folder, then a rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(state, tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a checkpoint is an ordinary file
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_checkpoint(path, map_location="cpu") -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    return torch.load(path, map_location=map_location, weights_only=True)


def check_compatible(ckpt: dict, method: str, preset: str, num_classes: int | None = None, path="checkpoint"):
    """Refuse a checkpoint of another method, preset or number of classes."""
    meta = ckpt.get("meta", {})
    got = (meta.get("method"), meta.get("preset"))
    if got != (method, preset):
        raise CheckpointMismatch(
            f"{path} holds a {got[0]!r} model with the {got[1]!r} preset, but a {method!r} model with the "
            f"{preset!r} preset was asked for; pass --method {got[0]} --preset {got[1]}, or another checkpoint")
    if num_classes is not None and meta.get("num_classes") != num_classes:
        raise CheckpointMismatch(f"{path} was trained for {meta.get('num_classes')} classes, "
                                 f"the dataset has {num_classes}")
