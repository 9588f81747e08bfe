"""Training and video inference shared by every method (``train.py``, ``inference.py``)."""
