"""What the first code cell of every notebook calls: the data_small root and the device to run on.

That cell installs minivod when it is missing and then calls :func:`notebook_setup`; in a checkout
with minivod installed it prints nothing. Finding (or generating) data_small is
:func:`minivod.data.locate.find_data_small`.
"""
from __future__ import annotations

from minivod.data.locate import find_data_small


def pick_device() -> str:
    """``"cuda"`` when a GPU is there, else ``"cpu"``."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def notebook_setup():
    """``(ROOT, DEVICE)`` for a notebook: the data_small root and the device to run on."""
    return find_data_small(), pick_device()
