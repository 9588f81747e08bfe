"""minivod: a compact, readable reference for video object detection.

Subpackages and modules (one idea per file), in the order data flows through them:

- ``minivod.data``        the ImageNet VID layout reader, clip samplers, clip augmentation,
                          motion IoU and the ``data_small`` generator
- ``minivod.boxes``       box geometry with the ImageNet VID +1-pixel convention
- ``minivod.models``      the single-frame detectors (Faster R-CNN ``VODetector``, a one-stage
                          detector) with the plug-in points where video methods aggregate
- ``minivod.methods``     one paper per file (SELSA, DSFNet, MST, PSLA, SSVD) and the registry
                          of methods (``METHODS``: name -> ``MethodSpec``)
- ``minivod.engine``      training and video inference shared by every method, checkpoints,
                          the tiny backbone's pre-training
- ``minivod.eval``        the ImageNet VID evaluation protocol, Seq-NMS, the paired bootstrap,
                          the class oracle and the texture probe
- ``minivod.demo``        every shipped method on data_small val (``python -m minivod demo``)
- ``minivod.viz``         drawing helpers for the notebooks
- ``minivod.cli``         the command line, ``python -m minivod <command> --help``
- ``minivod/checkpoints`` the shipped tiny checkpoints (see its README.md)
"""

__version__ = "0.1.0"
