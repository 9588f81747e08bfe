"""The one-stage detector: a RetinaNet-style FPN (P3-P6) with class and box subnets.

SSVD (Sec. III, IV-B) builds on a single-shot detector: a Feature Pyramid
Network gives maps P3-P6 (strides 8, 16, 32, 64), and on each level a class
subnet and a box subnet (shared by the levels) score and regress A = 9 anchors
per position, trained with the sigmoid focal loss and the smooth L1 loss. On a
single frame that is SSVD's baseline, Table II (a).

Everything standard comes from torchvision: ``BackboneWithFPN`` /
``FeaturePyramidNetwork``, ``AnchorGenerator``, ``BoxCoder``, ``Matcher``, the
``RetinaNetHead`` (focal loss inside) and RetinaNet's own ``compute_loss`` and
``postprocess_detections``, borrowed as methods of ``DenseHead``.

The video plug-in point of a one-stage detector (the third of minivod's three,
see ``faster_rcnn.py``) is ``streams(ref, supports)``: it returns one list of
P3-P6 maps per *stream*, each read by its own ``DenseHead``; the detections of
all streams are pooled before one per-class NMS (SSVD's late fusion). The
single-frame detector has one stream, the reference frame's own maps.

Differences from torchvision's RetinaNet, all in ``OneStageConfig``:

- P6 only (no P7), from a 3x3 stride-2 conv on C5, as SSVD Sec. IV-B says;
- two convs per subnet (SSVD) instead of RetinaNet's four;
- anchors at fixed strides 8..64: torchvision derives a level's stride from
  ``image_size // grid_size``, which is wrong when the padded frame is not a
  multiple of 64 (data_small's 160x120 frames give a 3x2 P6);
- labels 1..num_classes are stored in logit columns 0..num_classes-1 (no unused
  background column);
- per-class NMS at 0.45 (SSVD Sec. III-D).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Optional, Sequence

import torch
from torch import Tensor, nn
from torchvision.models import resnet101
from torchvision.models.detection import RetinaNet
from torchvision.models.detection import _utils as det_utils
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN, _resnet_fpn_extractor
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.retinanet import RetinaNetHead
from torchvision.ops import Conv2dNormActivation, FrozenBatchNorm2d
from torchvision.ops.feature_pyramid_network import ExtraFPNBlock

from .backbone import TinyBackbone, _resnet101_imagenet, load_tiny_backbone
from .base import FrameFeatures, VideoDetectorBase
from .config import DetectorConfig
from .transform import FrameTransform

LEVELS = ("p3", "p4", "p5", "p6")
STRIDES = (8, 16, 32, 64)


@dataclass
class OneStageConfig:
    """The numbers of the one-stage detector that ``DetectorConfig`` (two-stage) does not hold.

    fpn_channels: channels of every pyramid level and of the subnets (SSVD: 256)
    head_convs: 3x3 convs before the last layer of each subnet (SSVD: 2)
    head_norm_groups: GroupNorm groups in the subnets (0: none, as in SSVD / RetinaNet)
    anchor_sizes: base anchor size on P3..P6 (SSVD: areas 32^2 to 256^2)
    anchor_scales, anchor_ratios: A = 3 x 3 anchors per position (RetinaNet)
    fg_iou_thresh, bg_iou_thresh: anchor assignment (RetinaNet: 0.5 / 0.4)
    topk_candidates: per level before NMS (RetinaNet: 1000)
    nms_thresh: per-class NMS, also the late fusion of SSVD's streams (0.45)
    tiny_channels, tiny_strides: stages of the tiny backbone (C3, C4, C5 = the last three)
    """

    fpn_channels: int = 256
    head_convs: int = 2
    head_norm_groups: int = 0
    anchor_sizes: tuple[int, ...] = (32, 64, 128, 256)
    anchor_scales: tuple[float, ...] = (1.0, 2 ** (1 / 3), 2 ** (2 / 3))
    anchor_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)
    fg_iou_thresh: float = 0.5
    bg_iou_thresh: float = 0.4
    topk_candidates: int = 1000
    nms_thresh: float = 0.45
    tiny_channels: tuple[int, ...] = (16, 32, 64, 96, 128)
    tiny_strides: tuple[int, ...] = (2, 2, 2, 2, 2)

    @staticmethod
    def for_detector(cfg: DetectorConfig) -> "OneStageConfig":
        """The paper setting for ResNet-101, a small one for the tiny preset (64-ch FPN, anchors 16..128 px)."""
        if cfg.backbone == "tiny":
            return OneStageConfig(fpn_channels=64, head_norm_groups=16, anchor_sizes=(16, 32, 64, 128),
                                  topk_candidates=300)
        return OneStageConfig()


# --------------------------------------------------------------------------- parts
class LastLevelP6(ExtraFPNBlock):
    """P6 = 3x3 stride-2 conv on C5 (SSVD Sec. IV-B; RetinaNet's P7 is left out)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.p6 = nn.Conv2d(in_channels, out_channels, 3, stride=2, padding=1)
        nn.init.kaiming_uniform_(self.p6.weight, a=1)
        nn.init.zeros_(self.p6.bias)

    def forward(self, p: list[Tensor], c: list[Tensor], names: list[str]) -> tuple[list[Tensor], list[str]]:
        return p + [self.p6(c[-1])], names + ["p6"]


def shared_tiny_trunk(cfg: DetectorConfig) -> tuple[nn.Sequential, dict, list[int]]:
    """The two-stage methods' pre-trained tiny backbone as an FPN body: (body, return_layers, C3-C5 channels).

    The backbone's final map (stride 8) is C3; two Conv-BN-ReLU stages of stride 2
    on top of it, trained from scratch as FPN's extra levels are, give C4 (stride 16)
    and C5 (stride 32). So SSVD and the two-stage methods start from the same
    pre-trained trunk, as the papers' detectors all start from one ResNet-101.
    """
    trunk = load_tiny_backbone(cfg.tiny_backbone_weights, cfg.tiny_channels, cfg.tiny_strides)
    c = trunk.out_channels
    layers = list(trunk.body)  # stem, then two convs per stage; the last one is C3
    n = len(layers)
    for _ in range(2):
        layers += [Conv2dNormActivation(c, c, kernel_size=3, stride=2), Conv2dNormActivation(c, c, kernel_size=3)]
    return_layers = {str(n - 1): "c3", str(n + 1): "c4", str(n + 3): "c5"}
    return nn.Sequential(*layers), return_layers, [c, c, c]


def build_fpn(cfg: DetectorConfig, opts: OneStageConfig) -> BackboneWithFPN:
    """FPN P3-P6 on the tiny CNN or on ResNet-101 (conv3-conv5).

    Tiny: with ``cfg.pretrained_backbone`` (the tiny preset's default) C3 is the shared
    pre-trained trunk's final map (:func:`shared_tiny_trunk`); from scratch, C3-C5 are the
    last three stages of a five-stage CNN of its own (``opts.tiny_channels``), the trunk
    SSVD's checkpoints had before the pre-trained backbone.
    """
    if cfg.backbone == "tiny" and cfg.pretrained_backbone:
        body, return_layers, channels = shared_tiny_trunk(cfg)
        return BackboneWithFPN(body, return_layers, channels, opts.fpn_channels,
                               extra_blocks=LastLevelP6(channels[-1], opts.fpn_channels))
    if cfg.backbone == "tiny":
        body = TinyBackbone(opts.tiny_channels, opts.tiny_strides).body
        n = len(opts.tiny_channels)  # body = [stem, stage 1 (2 convs), ..., stage n (2 convs)]
        return_layers = {str(2 * k): f"c{k + 5 - n}" for k in range(n - 2, n + 1)}  # the last convs of C3, C4, C5
        return BackboneWithFPN(body, return_layers, list(opts.tiny_channels[-3:]), opts.fpn_channels,
                               extra_blocks=LastLevelP6(opts.tiny_channels[-1], opts.fpn_channels))
    kwargs = dict(norm_layer=FrozenBatchNorm2d)
    net = _resnet101_imagenet(**kwargs) if cfg.pretrained_backbone else resnet101(weights=None, **kwargs)
    return _resnet_fpn_extractor(net, cfg.trainable_backbone_layers, returned_layers=[2, 3, 4],
                                 extra_blocks=LastLevelP6(2048, opts.fpn_channels))


class StridedAnchorGenerator(AnchorGenerator):
    """torchvision's ``AnchorGenerator`` with each level's stride given, not derived from the padded size."""

    def __init__(self, sizes, aspect_ratios, strides):
        super().__init__(sizes, aspect_ratios)
        self.strides = tuple(strides)

    def forward(self, image_list: ImageList, feature_maps: list[Tensor]) -> list[Tensor]:
        grid_sizes = [f.shape[-2:] for f in feature_maps]
        dtype, device = feature_maps[0].dtype, feature_maps[0].device
        strides = [[torch.tensor(s, dtype=torch.int64, device=device)] * 2 for s in self.strides]
        self.set_cell_anchors(dtype, device)
        anchors = torch.cat(self.grid_anchors(grid_sizes, strides))  # (sum_l h_l * w_l * A, 4)
        return [anchors for _ in image_list.image_sizes]


def build_anchor_generator(opts: OneStageConfig) -> StridedAnchorGenerator:
    sizes = tuple(tuple(s * k for k in opts.anchor_scales) for s in opts.anchor_sizes)
    return StridedAnchorGenerator(sizes, (opts.anchor_ratios,) * len(sizes), STRIDES)


class DenseHead(nn.Module):
    """Class and box subnets on every pyramid level, with RetinaNet's losses and post-processing.

    ``compute_loss`` (anchor matching; sigmoid focal loss and box regression, each over the
    foreground count) and ``postprocess_detections`` (score threshold, top-k per level, box
    decoding, per-class NMS) are torchvision's ``RetinaNet`` methods, which read only the
    attributes set here.
    """

    compute_loss = RetinaNet.compute_loss
    postprocess_detections = RetinaNet.postprocess_detections

    def __init__(self, in_channels: int, num_anchors: int, num_classes: int, opts: OneStageConfig,
                 score_thresh: float, detections_per_img: int):
        super().__init__()
        norm = functools.partial(nn.GroupNorm, opts.head_norm_groups) if opts.head_norm_groups else None
        self.head = RetinaNetHead(in_channels, num_anchors, num_classes, norm_layer=norm)
        for subnet in (self.head.classification_head, self.head.regression_head):  # SSVD: 2 convs, not 4
            subnet.conv = nn.Sequential(*[Conv2dNormActivation(in_channels, in_channels, norm_layer=norm)
                                          for _ in range(opts.head_convs)])
            for layer in subnet.conv.modules():
                if isinstance(layer, nn.Conv2d):
                    nn.init.normal_(layer.weight, std=0.01)
                    if layer.bias is not None:  # none before a norm layer
                        nn.init.zeros_(layer.bias)
        self.head.regression_head._loss_type = "smooth_l1"  # SSVD Eq. (4): L_Loc is smooth L1
        self.proposal_matcher = det_utils.Matcher(opts.fg_iou_thresh, opts.bg_iou_thresh,
                                                  allow_low_quality_matches=True)
        self.box_coder = det_utils.BoxCoder(weights=(1.0, 1.0, 1.0, 1.0))
        self.score_thresh, self.nms_thresh = score_thresh, opts.nms_thresh
        self.detections_per_img, self.topk_candidates = detections_per_img, opts.topk_candidates

    def forward(self, levels: list[Tensor]) -> dict[str, Tensor]:
        """levels: P3..P6 (N, C, h_l, w_l) -> ``cls_logits (N, sum_l h_l w_l A, K)``, ``bbox_regression (N, ., 4)``."""
        return self.head(levels)


# --------------------------------------------------------------------------- the detector
class OneStageDetector(VideoDetectorBase):
    """A single-shot detector on P3-P6; video methods override ``streams`` (and ``frame_maps``).

    Args:
        cfg (DetectorConfig): input size, normalisation, backbone kind, score threshold,
            detections per image, number of classes (the two-stage fields are not used)
        opts (OneStageConfig, optional): default ``OneStageConfig.for_detector(cfg)``
        num_streams (int): how many dense heads (one per stream of aggregated maps)
    """

    def __init__(self, cfg: DetectorConfig, opts: Optional[OneStageConfig] = None, num_streams: int = 1):
        super().__init__()
        self.cfg = cfg
        self.opts = opts = opts or OneStageConfig.for_detector(cfg)
        self.transform = FrameTransform(cfg.min_size, cfg.max_size, cfg.image_mean, cfg.image_std, cfg.size_divisible)
        self.fpn = build_fpn(cfg, opts)
        self.anchor_generator = build_anchor_generator(opts)
        num_anchors = self.anchor_generator.num_anchors_per_location()[0]
        self.heads = nn.ModuleList(
            DenseHead(opts.fpn_channels, num_anchors, cfg.num_classes, opts, cfg.box_score_thresh,
                      cfg.detections_per_img) for _ in range(num_streams))

    # --- per-frame, cacheable --------------------------------------------------------
    def frame_maps(self, batch: Tensor) -> dict[str, Tensor]:
        """Per-frame maps of a normalised, padded batch (N, 3, H, W): P3..P6, ``(N, C, H/s, W/s)`` each."""
        return dict(zip(LEVELS, self.fpn(batch).values()))

    def frame_features(self, images: Tensor) -> FrameFeatures:
        """FPN maps of ``images (Tensor[N, 3, H, W])`` float RGB in [0, 1]; ``proposals`` is None."""
        batch, image_sizes, original_sizes = self.transform(images)  # (N, 3, H_pad, W_pad)
        return FrameFeatures(self.frame_maps(batch), image_sizes, original_sizes)

    # --- the plug-in point -------------------------------------------------------------
    def streams(self, ref: FrameFeatures, supports: Optional[FrameFeatures]) -> list[list[Tensor]]:
        """P3..P6 maps for each head: here the reference frames' own maps (B, C, h_l, w_l), the same for
        every head (one head, unless built with more as a control)."""
        return [[ref.maps[k] for k in LEVELS]] * len(self.heads)

    # --- detection and training ------------------------------------------------------
    def detect(self, ref: FrameFeatures, supports: Optional[FrameFeatures] = None,
               only: Optional[Sequence[str]] = None) -> list[dict[str, Tensor]]:
        """Detections of the B reference frames; the streams' boxes meet in one per-class NMS (late fusion).

        ``only``: names of the streams to keep (e.g. ``("motion",)`` to see one stream of SSVD alone).
        """
        streams = self.streams(ref, supports)
        keep = [i for i, name in enumerate(self.stream_names) if only is None or name in only]
        outputs = [self.heads[i](streams[i]) for i in keep]  # per kept stream: cls_logits, bbox_regression
        return self.fuse_detections(outputs, streams[0], ref)

    def detect_subsets(self, ref: FrameFeatures, supports: Optional[FrameFeatures],
                       subsets: dict[str, Optional[Sequence[str]]]) -> list[dict[str, dict[str, Tensor]]]:
        """``detect`` for several subsets of the streams, the streams and their heads computed once.

        ``subsets``: ``{name: only}`` (``only`` as in ``detect``; None keeps every stream). Returns, for
        each of the B reference frames, ``{name: detections}``, each what ``detect(ref, supports, only)``
        gives.
        """
        streams = self.streams(ref, supports)
        outputs = [head(levels) for head, levels in zip(self.heads, streams)]  # per stream
        per_subset = {name: self.fuse_detections([o for o, stream in zip(outputs, self.stream_names)
                                                  if only is None or stream in only], streams[0], ref)
                      for name, only in subsets.items()}
        return [{name: dets[b] for name, dets in per_subset.items()} for b in range(len(ref))]

    def fuse_detections(self, outputs: list[dict[str, Tensor]], levels: list[Tensor],
                        ref: FrameFeatures) -> list[dict[str, Tensor]]:
        """The boxes of every head output in ``outputs`` pooled into one per-class NMS (late fusion).

        Args:
            outputs: per stream, its head's ``cls_logits (B, sum_l h_l w_l A, K)`` and ``bbox_regression (B, ., 4)``
            levels: one stream's P3..P6 maps (B, C, h_l, w_l), for the anchors
        """
        anchors = self.anchors(levels, ref.image_sizes)  # B x (sum_l h_l w_l A, 4)
        split = [f.shape[-2] * f.shape[-1] * self.anchor_generator.num_anchors_per_location()[0] for f in levels]
        per_level = {"cls_logits": [], "bbox_regression": []}  # per (stream, level): (B, h_l w_l A, K or 4)
        for out in outputs:
            for key, value in out.items():
                per_level[key] += [v.float() for v in value.split(split, dim=1)]  # bf16 autocast: decode in fp32
        per_level_anchors = [list(a.split(split)) * len(outputs) for a in anchors]
        detections = self.heads[0].postprocess_detections(per_level, per_level_anchors, ref.image_sizes)
        for d in detections:
            d["labels"] = d["labels"] + 1  # logit column k is class k + 1
        return self.transform.postprocess(detections, ref.image_sizes, ref.original_sizes)

    def compute_losses(self, images: Tensor, targets: list[dict[str, Tensor]]) -> dict[str, Tensor]:
        """Focal + smooth L1 losses of every stream for clips ``images (Tensor[B, T, 3, H, W])`` (SSVD Eq. 4)."""
        B, T = images.shape[:2]
        frames = self.frame_features(images.flatten(0, 1))  # from (B*T, 3, H, W), clip-major
        ref, supports = frames.split_clips(B, T)
        targets = self.transform.resize_targets(targets, ref.original_sizes, ref.image_sizes)
        targets = [{**t, "labels": t["labels"] - 1} for t in targets]  # logit column of each class
        streams = self.streams(ref, supports)
        anchors = self.anchors(streams[0], ref.image_sizes)
        losses = {}
        for s, (head, levels) in enumerate(zip(self.heads, streams)):
            suffix = "" if len(streams) == 1 else f"_{self.stream_names[s]}"
            for name, value in head.compute_loss(targets, head(levels), anchors).items():
                losses[name + suffix] = self.loss_scale * value
        return losses

    stream_names: tuple[str, ...] = ("frame",)
    loss_scale: float = 1.0  # every loss multiplied by this (a control: ssvd_single_loss2)

    def anchors(self, levels: list[Tensor], image_sizes) -> list[Tensor]:
        """Anchors of every image: B x (sum_l h_l w_l A, 4), (x1, y1, x2, y2) in resized-frame pixels."""
        return self.anchor_generator(ImageList(levels[0], list(image_sizes)), levels)


def build_one_stage(cfg: DetectorConfig, heads: int = 1, loss_scale: float = 1.0) -> OneStageDetector:
    """The single-frame one-stage detector (SSVD Table II (a)).

    ``heads = 2`` is a control that is not in the paper: two dense heads on the same single-frame maps,
    late-fused like SSVD's two streams, trained with both losses (``ssvd_single_2heads``): SSVD
    without any support frame. ``loss_scale = 2`` is the other control (``ssvd_single_loss2``): one
    head, its loss doubled, which is what two agreeing heads' summed losses do to a shared FPN's step.
    """
    model = OneStageDetector(cfg, num_streams=heads)
    model.loss_scale = float(loss_scale)
    if heads > 1:
        model.stream_names = tuple(f"head{i}" for i in range(heads))
    return model
