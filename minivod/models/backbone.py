"""Backbones: one feature map per frame, read by both the RPN and RoIAlign.

A backbone turns normalised frames ``(N, 3, H, W)`` into one *frame map*
``(N, C, H/s, W/s)`` and says, with ``split``, which channels the RPN reads and
which channels RoIAlign reads. One tensor per frame is what the frame-level
plug-in point (``frame_aggregator``) receives, so a fusion, alignment or
propagation module updates what both the RPN and the box head see.

- ``TinyBackbone``: four Conv-BN-ReLU stages; the RPN and RoIAlign read the
  same 128 channels. The tiny preset starts it from ``checkpoints/backbone_tiny.pt``
  (``python -m minivod pretrain-backbone``: a crop classifier trained on the
  training split, the tiny preset's stand-in for ImageNet pre-training).
- ``ResNetBackbone``: ResNet-101 with conv5 dilated (stride 16 overall). As in
  FGFA, whose aggregated feature is the concatenation of the RPN feature and the
  R-CNN feature, the frame map is ``cat(conv4, conv_new_1(conv5))``: the RPN
  reads conv4 (1024 ch) and RoIAlign reads conv5 reduced to 256 channels by
  SELSA's ``conv_new_1`` (1x1 conv + ReLU).

Every backbone has ``out_channels`` (C of the frame map), ``rpn_channels``,
``roi_channels`` and ``stride``.
"""
from __future__ import annotations

import urllib.error
from pathlib import Path

import torch
from torch import Tensor, nn
from torchvision.models import ResNet101_Weights, resnet101
from torchvision.models._utils import IntermediateLayerGetter
from torchvision.ops import Conv2dNormActivation, FrozenBatchNorm2d

from .config import DetectorConfig


class TinyBackbone(nn.Module):
    """A full-resolution stem and four Conv-BN-ReLU stages (two 3x3 convs each).

    Args:
        channels (tuple[int]): output channels of each stage, e.g. (16, 32, 64, 128)
        strides (tuple[int]): stride of the first conv of each stage, e.g. (2, 2, 2, 1)
    """

    def __init__(self, channels=(16, 32, 64, 128), strides=(2, 2, 2, 1)):
        super().__init__()
        # The stem stays at full resolution so that fine textures (2-px cells in
        # data_small) reach the network before any subsampling.
        layers = [Conv2dNormActivation(3, channels[0], kernel_size=3)]
        in_channels = channels[0]
        for out_channels, stride in zip(channels, strides):
            layers.append(Conv2dNormActivation(in_channels, out_channels, kernel_size=3, stride=stride))
            layers.append(Conv2dNormActivation(out_channels, out_channels, kernel_size=3))
            in_channels = out_channels
        self.body = nn.Sequential(*layers)
        self.out_channels = self.rpn_channels = self.roi_channels = in_channels
        self.stride = 1
        for s in strides:
            self.stride *= s

    def forward(self, images: Tensor) -> Tensor:
        """images (Tensor[N, 3, H, W]) -> frame maps (Tensor[N, C, H/s, W/s])."""
        return self.body(images)

    def split(self, maps: Tensor) -> tuple[Tensor, Tensor]:
        """(RPN maps, RoI maps) of frame maps ``(..., C, h, w)``: the same tensor."""
        return maps, maps


TINY_BACKBONE_WEIGHTS = Path(__file__).resolve().parents[1] / "checkpoints" / "backbone_tiny.pt"


def load_tiny_backbone(path, channels, strides) -> TinyBackbone:
    """A ``TinyBackbone`` with the weights of ``minivod pretrain-backbone`` (``path``; None: the shipped file)."""
    path = Path(path or TINY_BACKBONE_WEIGHTS)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no pre-trained tiny backbone; make one with `python -m minivod pretrain-backbone --out {path}`, "
            "or train from scratch (`minivod train --from-scratch`, or pretrained_backbone=False)")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    meta = ckpt.get("meta", {})
    if (tuple(meta.get("tiny_channels", ())), tuple(meta.get("tiny_strides", ()))) != (tuple(channels), tuple(strides)):
        raise ValueError(f"{path} holds a tiny backbone with channels {meta.get('tiny_channels')} and strides "
                         f"{meta.get('tiny_strides')}, but channels {list(channels)} and strides {list(strides)} "
                         "were asked for")
    backbone = TinyBackbone(channels, strides)
    backbone.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in ckpt["model"].items()})
    return backbone


def _resnet101_imagenet(**kwargs) -> nn.Module:
    """torchvision's ResNet-101 with ImageNet weights, or a RuntimeError that says how to get them."""
    weights = ResNet101_Weights.IMAGENET1K_V1
    try:
        return resnet101(weights=weights, **kwargs)
    except (urllib.error.URLError, OSError) as err:  # URLError is an OSError; so are socket errors
        cache = f"{torch.hub.get_dir()}/checkpoints/{weights.url.rsplit('/', 1)[-1]}"
        raise RuntimeError(
            f"Could not download the ImageNet weights of ResNet-101 ({weights}) from {weights.url}: {err}. "
            f"On a machine with network access, download that file and copy it to {cache} "
            "(torch.hub's cache; set TORCH_HOME to move it), or run "
            "`python -c \"import torchvision; torchvision.models.resnet101(weights='IMAGENET1K_V1')\"` there "
            "and copy the cache over; or build with pretrained_backbone=False."
        ) from err


class ResNetBackbone(nn.Module):
    """ResNet-101 with a dilated conv5; frame map = cat(conv4, conv_new_1(conv5)).

    conv5 runs at stride 1 with dilation 2 (``replace_stride_with_dilation=
    [False, False, True]``), so conv4 and conv5 share the stride-16 grid and
    can be concatenated. (torchvision keeps dilation 1 in the first 3x3 conv of
    conv5 and dilates the later ones; the MXNet codebases dilate all three.)
    BatchNorm is frozen (``FrozenBatchNorm2d``), as in every ImageNet VID
    codebase, and the first ``5 - trainable_layers`` of (conv1, layer1, layer2,
    layer3, layer4) are frozen too. The architecture does not depend on
    ``pretrained``, so a checkpoint loads into a model built without weights;
    but without ImageNet weights frozen BN is the identity and activations
    blow up through 33 blocks: the paper preset is meant to start pretrained.

    Args:
        pretrained (bool): load torchvision's ImageNet weights (``IMAGENET1K_V1``)
        trainable_layers (int): 0..5, counted from layer4 down to conv1
        roi_channels (int): output channels of ``conv_new_1`` (256 in SELSA)
    """

    def __init__(self, pretrained: bool = False, trainable_layers: int = 3, roi_channels: int = 256):
        super().__init__()
        kwargs = dict(replace_stride_with_dilation=[False, False, True], norm_layer=FrozenBatchNorm2d)
        net = _resnet101_imagenet(**kwargs) if pretrained else resnet101(weights=None, **kwargs)
        trainable = ["layer4", "layer3", "layer2", "layer1", "conv1"][:trainable_layers]
        for name, param in net.named_parameters():
            if not any(name.startswith(layer) for layer in trainable):
                param.requires_grad_(False)
        self.body = IntermediateLayerGetter(net, return_layers={"layer3": "conv4", "layer4": "conv5"})
        # SELSA's conv_new_1: 1x1 conv 2048 -> 256 + ReLU on conv5, read by RoIAlign.
        self.conv_new_1 = Conv2dNormActivation(2048, roi_channels, kernel_size=1, norm_layer=None)
        self.rpn_channels = 1024
        self.roi_channels = roi_channels
        self.out_channels = self.rpn_channels + roi_channels
        self.stride = 16

    def forward(self, images: Tensor) -> Tensor:
        """images (Tensor[N, 3, H, W]) -> frame maps (Tensor[N, 1024 + 256, H/16, W/16])."""
        feats = self.body(images)  # conv4 (N, 1024, H/16, W/16), conv5 (N, 2048, H/16, W/16)
        rcnn = self.conv_new_1(feats["conv5"])  # (N, 256, H/16, W/16)
        return torch.cat([feats["conv4"], rcnn], dim=1)  # (N, 1024 + 256, H/16, W/16)

    def split(self, maps: Tensor) -> tuple[Tensor, Tensor]:
        """(RPN maps, RoI maps) of frame maps ``(..., C, h, w)``: conv4 and conv_new_1 channels."""
        return maps[..., : self.rpn_channels, :, :], maps[..., self.rpn_channels :, :, :]


def build_backbone(cfg: DetectorConfig) -> nn.Module:
    """The backbone named by ``cfg.backbone``."""
    if cfg.backbone == "tiny":
        if cfg.pretrained_backbone:
            return load_tiny_backbone(cfg.tiny_backbone_weights, cfg.tiny_channels, cfg.tiny_strides)
        return TinyBackbone(cfg.tiny_channels, cfg.tiny_strides)
    return ResNetBackbone(cfg.pretrained_backbone, cfg.trainable_backbone_layers, cfg.roi_reduce_channels)
