"""Configuration of the two-stage video detector: one dataclass, two presets.

``DetectorConfig`` holds every number the detector needs; its defaults are the
paper setting shared by the ImageNet VID codebases that SELSA, DSFNet, MST and
PSLA build on (FGFA / Relation Networks / SELSA, MXNet): ResNet-101 with a
dilated conv5, the RPN on conv4, RoIAlign 7x7 on a 256-channel reduction of
conv5, two FC-1024 layers, 300 proposals after NMS 0.7, 600 px shorter side.

``preset(name, num_classes)`` returns a ready configuration:

- ``paper``: the defaults above (ResNet-101, ImageNet VID).
- ``tiny``:  a small model for the synthetic ``data_small`` frames (160x120,
  objects of ~12-50 px, 8 classes) that trains on a laptop CPU, started from
  the pre-trained tiny backbone (``checkpoints/backbone_tiny.pt``) as the paper
  preset starts from ImageNet weights; ``pretrained_backbone=False`` (``minivod
  train --from-scratch``) trains it from scratch.

Edit a preset with ``dataclasses.replace(cfg, min_size=128)``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

BACKBONES = ("resnet101", "tiny")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class DetectorConfig:
    """Everything that defines a ``VODetector``.

    Boxes are ``(x1, y1, x2, y2)`` in pixels; ``num_classes`` counts the
    foreground classes only (ImageNet VID: 30); the background class 0 is added
    inside the detector, so the classifier has ``num_classes + 1`` outputs.
    """

    num_classes: int = 30

    # --- backbone -----------------------------------------------------------
    backbone: str = "resnet101"  # "resnet101" or "tiny"
    # Start from pre-trained weights: for ResNet-101 torchvision's ImageNet
    # weights (needs the network once, or the file in torch.hub's cache); for the
    # tiny backbone the crop classifier of ``minivod pretrain-backbone``.
    pretrained_backbone: bool = False
    # ResNet-101 only: how many of (layer4, layer3, layer2, layer1, conv1) train;
    # 3 freezes conv1 and res2 as FGFA/SELSA do. BatchNorm is always frozen.
    trainable_backbone_layers: int = 3
    # ResNet-101 only: SELSA's ``conv_new_1``, a 1x1 conv + ReLU that reduces
    # conv5 (2048 ch) before RoIAlign.
    roi_reduce_channels: int = 256
    # tiny only: output channels and stride of each of the four stages.
    tiny_channels: tuple[int, ...] = (16, 32, 64, 128)
    tiny_strides: tuple[int, ...] = (2, 2, 2, 1)
    # tiny only: the pre-trained weights ("" = the shipped checkpoints/backbone_tiny.pt)
    tiny_backbone_weights: str = ""

    # --- input (frames come in as float RGB in [0, 1]) ------------------------
    min_size: int = 600  # shorter side after resizing
    max_size: int = 1000  # cap on the longer side
    size_divisible: int = 32  # pad H and W up to a multiple of this
    image_mean: tuple[float, ...] = IMAGENET_MEAN
    image_std: tuple[float, ...] = IMAGENET_STD

    # --- RPN --------------------------------------------------------------------
    anchor_sizes: tuple[int, ...] = (64, 128, 256, 512)  # FGFA: scales 4..32 x stride 16
    anchor_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)  # height / width
    rpn_pre_nms_top_n_train: int = 6000
    rpn_pre_nms_top_n_test: int = 6000
    rpn_post_nms_top_n_train: int = 300
    rpn_post_nms_top_n_test: int = 300
    rpn_nms_thresh: float = 0.7
    rpn_fg_iou_thresh: float = 0.7
    rpn_bg_iou_thresh: float = 0.3
    rpn_batch_size_per_image: int = 256
    rpn_positive_fraction: float = 0.5

    # --- box head -------------------------------------------------------------
    roi_output_size: int = 7
    roi_sampling_ratio: int = 2
    box_fc_dims: tuple[int, ...] = (1024, 1024)  # one RoI aggregator after each
    box_fg_iou_thresh: float = 0.5
    box_bg_iou_thresh: float = 0.5
    box_batch_size_per_image: int = 128
    box_positive_fraction: float = 0.25
    bbox_reg_weights: tuple[float, ...] = (10.0, 10.0, 5.0, 5.0)  # 1 / BBOX_STDS (0.1, 0.2)
    box_score_thresh: float = 1e-3
    box_nms_thresh: float = 0.3  # FGFA / SELSA TEST.NMS
    detections_per_img: int = 300

    # --- video ----------------------------------------------------------------
    # Proposals kept per support frame (top-N by objectness) for RoI aggregation.
    num_support_rois: int = 300

    def __post_init__(self):
        if self.backbone not in BACKBONES:
            raise ValueError(f"backbone must be one of {BACKBONES}, got {self.backbone!r}")
        if self.size_divisible % self.stride != 0:
            raise ValueError(
                f"size_divisible ({self.size_divisible}) must be a multiple of the backbone stride "
                f"({self.stride}) so that anchors line up with the padded image"
            )
        if len(self.tiny_channels) != len(self.tiny_strides):
            raise ValueError("tiny_channels and tiny_strides need one entry per stage")

    @property
    def stride(self) -> int:
        """Total stride of the feature maps the RPN and RoIAlign read."""
        if self.backbone == "resnet101":
            return 16  # conv5 at stride 1 with dilation 2
        return math.prod(self.tiny_strides)

    @property
    def num_classes_with_background(self) -> int:
        return self.num_classes + 1


def paper_config(num_classes: int = 30, **overrides) -> DetectorConfig:
    """ResNet-101 (dilated conv5) Faster R-CNN as in FGFA / SELSA on ImageNet VID."""
    return replace(DetectorConfig(num_classes=num_classes), **overrides)


def tiny_config(num_classes: int = 8, **overrides) -> DetectorConfig:
    """A small detector for 160x120 synthetic frames that trains on a CPU.

    The backbone starts from the pre-trained tiny backbone (``pretrained_backbone``). Four Conv-BN-ReLU stages (16/32/64/128 ch, stride 8) behind a full-
    resolution stem, anchors of 16/32/64 px, RoIAlign 7x7, FC-256 x2, fewer
    proposals (300 after NMS in training, 100 at test, 64 per support frame),
    and frames kept at their native size (min_size 120, max_size 160: no resize).
    """
    cfg = DetectorConfig(
        num_classes=num_classes,
        backbone="tiny",
        pretrained_backbone=True,
        min_size=120,
        max_size=160,
        size_divisible=8,  # = stride: 160x120 frames need no padding
        anchor_sizes=(16, 32, 64),
        roi_sampling_ratio=1,  # RoIs span 2-6 cells of the stride-8 map: one sample per bin is
        # enough, and RoIAlign's CPU backward is then 4x cheaper (a third of a training step)
        rpn_pre_nms_top_n_train=1000,
        rpn_pre_nms_top_n_test=600,
        rpn_post_nms_top_n_train=300,
        rpn_post_nms_top_n_test=100,
        box_fc_dims=(256, 256),
        box_score_thresh=1e-3,
        box_nms_thresh=0.5,
        detections_per_img=100,
        num_support_rois=64,
    )
    return replace(cfg, **overrides)


PRESETS = {"paper": paper_config, "tiny": tiny_config}


def preset(name: str, num_classes: int, **overrides) -> DetectorConfig:
    """The configuration called ``name`` ("paper" or "tiny") for ``num_classes`` foreground classes."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name](num_classes, **overrides)
