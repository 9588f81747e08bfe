"""minivod: a compact, readable reference for video object detection.

Subpackages and modules (one idea per file):

- ``minivod.boxes``       box geometry with the ImageNet VID +1-pixel convention
- ``minivod.data``        the ImageNet VID layout reader, clip samplers, clip
                          augmentation, motion IoU and the ``data_small`` generator
- ``minivod.eval``        the ImageNet VID evaluation protocol and Seq-NMS
"""

__version__ = "0.1.0"
