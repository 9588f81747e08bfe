"""Detectors: the single-frame Faster R-CNN baseline and its video plug-in points.

- ``config``       ``DetectorConfig`` and ``preset(name, num_classes)`` ("paper", "tiny")
- ``backbone``     ResNet-101 (dilated conv5) and a tiny CNN, one frame map per frame
- ``deform_conv``  deformable convolution with a faster CPU path (MST's DAlign, SSVD)
- ``transform``    normalise / resize / pad batches of frames
- ``rpn``          torchvision's RPN, also returning the proposals' objectness
- ``roi_heads``    torchvision's RoIHeads with a box head that calls RoI aggregators
- ``base``         ``FrameFeatures`` and ``VideoDetectorBase``, the engines' interface
- ``faster_rcnn``  ``VODetector``, the two-stage detector with its plug-in points
"""
from .base import FrameFeatures, VideoDetectorBase, count_parameters
from .config import DetectorConfig, preset
from .faster_rcnn import VODetector
from .roi_heads import IdentityRoIAggregator, RoIContext, RoITargets, SupportRoIs

__all__ = [
    "DetectorConfig",
    "FrameFeatures",
    "IdentityRoIAggregator",
    "RoIContext",
    "RoITargets",
    "SupportRoIs",
    "VODetector",
    "VideoDetectorBase",
    "count_parameters",
    "preset",
]
