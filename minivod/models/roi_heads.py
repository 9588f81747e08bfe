"""The box head with RoI-level plug-in points (where SELSA aggregates).

``VideoRoIHeads`` is torchvision's ``RoIHeads`` (its proposal sampling
``select_training_samples``, its ``postprocess_detections`` and
``fastrcnn_loss``) with a box head that lets the reference frame's RoIs look
at the support frames' RoIs after every FC layer:

    x   = RoIAlign(ref map, ref RoIs)          s   = RoIAlign(support maps, support RoIs)
    for each FC layer k:
        x = fc_k(x)                            s = fc_k(s)          # the same weights
        x = roi_aggregators[k](x, s, ctx)      # (N_ref, D): ref RoIs updated from supports
        x, s = relu(x), relu(s)

This is the ``SelsaBBoxHead`` of mmtracking: the aggregator acts after the FC
and before the ReLU, the supports only go through the FC layers and are not
aggregated themselves (SELSA's MXNet code also lets supports serve as
references; a plug-in that wants that can aggregate ``support_feats`` inside).
An aggregator returns the full updated features, so a residual module returns
``x + f(x, s)`` and the default ``IdentityRoIAggregator`` returns ``x``.

Since the supports are not aggregated, their column depends on the support frame
alone: ``BoxHead.support_layers`` computes it, and at inference ``VODetector``
keeps it per frame, so a frame that supports many reference frames has its RoIs
pooled and passed through the FC layers once.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor
from torchvision.models.detection.roi_heads import RoIHeads, fastrcnn_loss
from torchvision.ops import RoIAlign

from .config import DetectorConfig


def _frame_index(boxes: list[Tensor]) -> Tensor:
    """For boxes given per frame, the frame index of each box: (sum P_i,) int64."""
    device = boxes[0].device if boxes else torch.device("cpu")
    parts = [torch.full((b.shape[0],), i, dtype=torch.int64, device=device) for i, b in enumerate(boxes)]
    return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.int64, device=device)


@dataclass
class SupportRoIs:
    """The support frames' RoIs of a batch of B clips with T - 1 supports each, flat over the batch.

    layers (list[Tensor[N_sup, D_k]]): the support RoIs through the box head's FC layers, the input
        of layer k's RoI aggregator (``BoxHead.support_layers``; supports are not aggregated, so
        this depends on the support frame alone and can be kept per frame)
    boxes (Tensor[N_sup, 4]): (x1, y1, x2, y2) in resized-frame pixels (top-N RPN proposals)
    clip_index (Tensor[N_sup]): int64 clip b in 0..B-1
    frame_index (Tensor[N_sup]): int64 frame t in 1..T-1 of the clip (0 is the reference)
    objectness (Tensor[N_sup]): RPN objectness (sigmoid) of each RoI
    clip_counts (tuple[int], optional): RoIs per clip (rows are clip-major), known from the shapes
    """

    layers: Optional[list[Tensor]]
    boxes: Tensor
    clip_index: Tensor
    frame_index: Tensor
    objectness: Tensor
    clip_counts: Optional[tuple[int, ...]] = None

    @classmethod
    def from_frames(cls, layers: list[Tensor], boxes: list[Tensor], objectness: list[Tensor], supports_per_clip: int):
        """From per-support-frame lists (B * (T-1) frames, clip-major) and the features of every FC layer."""
        frame = _frame_index(boxes)  # (N_sup,) in 0..B*(T-1)-1
        per_frame = [b.shape[0] for b in boxes]
        return cls(
            layers=layers,
            boxes=torch.cat(boxes),  # (N_sup, 4)
            clip_index=frame // supports_per_clip,
            frame_index=frame % supports_per_clip + 1,
            objectness=torch.cat(objectness),  # (N_sup,)
            clip_counts=tuple(sum(per_frame[i:i + supports_per_clip])
                              for i in range(0, len(per_frame), supports_per_clip)),
        )


@dataclass
class RoITargets:
    """Ground truth of one training step for RoI aggregators that use it (boxes in resized-frame pixels).

    ref_boxes, ref_ids: per clip (B), the reference frame's boxes (Tensor[M, 4]) and track ids (Tensor[M])
    support_boxes, support_ids: per support frame, clip-major (B * (T - 1)), the same

    Made by ``VODetector.roi_targets`` when the training targets carry the support frames'
    boxes (``MethodSpec.support_targets``); MST's paper rule assigns RoIs to instances with it.
    """

    ref_boxes: list[Tensor]
    ref_ids: list[Tensor]
    support_boxes: list[Tensor]
    support_ids: list[Tensor]


@dataclass
class RoIContext:
    """Where the RoIs that meet in an RoI aggregator come from (the features are passed beside it).

    ref_boxes (Tensor[N_ref, 4]): reference RoIs, (x1, y1, x2, y2) in resized-frame pixels;
        in training these are the sampled RoIs (RPN proposals plus ground truth)
    ref_clip_index (Tensor[N_ref]): int64 clip b in 0..B-1 of each reference RoI
    support_boxes, support_clip_index, support_frame_index, support_objectness (N_sup rows):
        as ``SupportRoIs``; N_sup = 0 when the clips have no supports (T = 1)

    Rows of one clip only belong together: mask with ``ref_clip_index[:, None] == support_clip_index``.

    ref_counts, support_counts (tuple[int], optional): RoIs per clip on each side when the rows
        are clip-major (as ``build`` makes them); without them ``clips`` finds the rows by index
    memo (dict): for aggregators to keep what they derive from the boxes alone (the same at every
        FC layer, e.g. the relation block's geometric embedding), so it is computed once per pass
    targets (RoITargets, optional): the step's ground truth, in training when the targets carry the
        supports' boxes; None otherwise (never at test time)
    """

    ref_boxes: Tensor
    ref_clip_index: Tensor
    support_boxes: Tensor
    support_clip_index: Tensor
    support_frame_index: Tensor
    support_objectness: Tensor
    ref_counts: Optional[tuple[int, ...]] = None
    support_counts: Optional[tuple[int, ...]] = None
    memo: dict = field(default_factory=dict)
    targets: Optional[RoITargets] = None

    def clips(self) -> list[tuple[Union[slice, Tensor], Union[slice, Tensor], "RoIContext"]]:
        """The batch cut into its clips: per clip, its reference rows, its support rows and its own context.

        Attention between RoIs never crosses clips, so computing it clip by clip gives the same
        numbers as one masked (N_ref, M) table without the B - 1 of B entries that are masked out.
        Rows are slices when the counts are known (no device sync), else index tensors. Kept in
        ``memo``, so each clip's context (and its memo) is the same at every FC layer.
        """
        if "clips" in self.memo:
            return self.memo["clips"]
        if self.ref_counts is not None and self.support_counts is not None:
            ref_at, sup_at = _slices(self.ref_counts), _slices(self.support_counts)
            ref_at += [slice(0, 0)] * (len(sup_at) - len(ref_at))
            sup_at += [slice(0, 0)] * (len(ref_at) - len(sup_at))
        else:  # a hand-built context: find each clip's rows
            ids = torch.cat([self.ref_clip_index, self.support_clip_index]).unique().tolist()
            ref_at = [(self.ref_clip_index == b).nonzero().flatten() for b in ids]
            sup_at = [(self.support_clip_index == b).nonzero().flatten() for b in ids]
        clips = []
        for r, s in zip(ref_at, sup_at):
            support = self.support_clip_index[s]
            sub = RoIContext(self.ref_boxes[r], torch.zeros_like(self.ref_clip_index[r]), self.support_boxes[s],
                             torch.zeros_like(support), self.support_frame_index[s], self.support_objectness[s],
                             (self.ref_boxes[r].shape[0],), (support.shape[0],))
            sub.memo["clips"] = [(slice(None), slice(None), sub)]
            clips.append((r, s, sub))
        self.memo["clips"] = clips
        return clips

    @classmethod
    def build(cls, ref_rois: list[Tensor], support: Optional[SupportRoIs]) -> "RoIContext":
        ref_boxes = torch.cat(ref_rois)  # (N_ref, 4)
        if support is None:
            empty = ref_boxes.new_zeros(0, dtype=torch.int64)
            support = SupportRoIs(None, ref_boxes.new_zeros(0, 4), empty, empty, ref_boxes.new_zeros(0),
                                  (0,) * len(ref_rois))
        return cls(
            ref_boxes,
            _frame_index(ref_rois),
            support.boxes,
            support.clip_index,
            support.frame_index,
            support.objectness,
            tuple(r.shape[0] for r in ref_rois),
            support.clip_counts,
        )


def _slices(counts: tuple[int, ...]) -> list[slice]:
    """Consecutive row ranges of the given lengths."""
    ends = [sum(counts[:i + 1]) for i in range(len(counts))]
    return [slice(end - n, end) for end, n in zip(ends, counts)]


def per_clip(fn, ref_feats: Tensor, support_feats: Tensor, ctx: RoIContext) -> Tensor:
    """``fn(x, s, clip_ctx) -> (N_b, D)`` on each clip of the batch, put back in row order: (N_ref, D).

    For aggregators whose RoIs attend within their own clip only (``RoIContext.clips``).
    """
    clips = ctx.clips()
    if len(clips) == 1 and isinstance(clips[0][0], slice) and clips[0][2] is ctx:
        return fn(ref_feats, support_feats, ctx)
    outs = [fn(ref_feats[r], support_feats[s], sub) for r, s, sub in clips]
    if all(isinstance(r, slice) for r, _, _ in clips):
        return torch.cat(outs) if outs else ref_feats
    out = ref_feats.new_zeros(ref_feats.shape[0], outs[0].shape[1]) if outs else ref_feats
    for (r, _, _), o in zip(clips, outs):
        out[r] = o.to(out.dtype)
    return out


class IdentityRoIAggregator(nn.Module):
    """The default RoI plug-in: leaves the reference RoI features unchanged."""

    def forward(self, ref_feats: Tensor, support_feats: Tensor, ctx: RoIContext) -> Tensor:
        return ref_feats


class BoxHead(nn.Module):
    """FC layers with ReLU (torchvision's ``TwoMLPHead`` for two layers), an RoI aggregator after each FC.

    Args:
        in_features (int): C * k * k of the RoIAlign output
        fc_dims (tuple[int]): output size of each FC layer, e.g. (1024, 1024)
    """

    def __init__(self, in_features: int, fc_dims=(1024, 1024)):
        super().__init__()
        dims = [in_features, *fc_dims]
        self.fcs = nn.ModuleList(nn.Linear(d_in, d_out) for d_in, d_out in zip(dims[:-1], dims[1:]))

    def support_layers(self, support_feats: Tensor) -> list[Tensor]:
        """The support RoIs through the FC layers: ``[fc_1(s), fc_2(relu(fc_1(s))), ...]``.

        Args:
            support_feats (Tensor[N_sup, C, k, k]): RoIAlign output on the support frames
        Returns:
            per FC layer, Tensor[N_sup, D_k]: what that layer's RoI aggregator reads (before the ReLU)
        """
        s = support_feats.flatten(1)  # (N_sup, C*k*k)
        layers = []
        for fc in self.fcs:
            s = fc(s)  # (N_sup, D_k)
            layers.append(s)
            s = F.relu(s)
        return layers

    def forward(self, ref_feats: Tensor, support_layers: Optional[list[Tensor]], ctx: RoIContext,
                aggregators) -> Tensor:
        """
        Args:
            ref_feats (Tensor[N_ref, C, k, k]): reference RoI features
            support_layers (list[Tensor[N_sup, D_k]] or None): ``support_layers`` of the support RoIs
            ctx (RoIContext): boxes and indices of both sides
            aggregators (nn.ModuleList): one module per FC layer, called as
                ``agg(x (N_ref, D), s (N_sup, D), ctx) -> (N_ref, D)``
        Returns:
            Tensor[N_ref, D_last]
        """
        if len(aggregators) != len(self.fcs):
            raise ValueError(f"need one RoI aggregator per FC layer ({len(self.fcs)}), got {len(aggregators)}")
        x = ref_feats.flatten(1)  # (N_ref, C*k*k)
        if support_layers is None:
            support_layers = [x.new_zeros(0, fc.out_features) for fc in self.fcs]  # (0, D_k): no supports
        for fc, aggregate, s in zip(self.fcs, aggregators, support_layers):
            x = F.relu(aggregate(fc(x), s, ctx))  # (N_ref, D_k)
        return x


class VideoRoIHeads(RoIHeads):
    """torchvision's ``RoIHeads`` (sampling, loss, post-processing) around a ``BoxHead`` with plug-ins."""

    def forward(
        self,
        ref_maps: Tensor,
        ref_proposals: list[Tensor],
        image_sizes: list[tuple[int, int]],
        support: Optional[SupportRoIs] = None,
        roi_aggregators: Optional[nn.ModuleList] = None,
        targets: Optional[list[dict[str, Tensor]]] = None,
        roi_targets: Optional[RoITargets] = None,
    ) -> tuple[list[dict[str, Tensor]], dict[str, Tensor]]:
        """
        Args:
            ref_maps (Tensor[B, C, h, w]): RoI maps of the B reference frames
            ref_proposals (list[Tensor[P, 4]]): per reference frame, (x1, y1, x2, y2)
            image_sizes (list[tuple[int, int]]): resized (height, width) per reference frame
            support (SupportRoIs or None): pooled support RoIs, None for single-frame detection
            roi_aggregators (nn.ModuleList): one per FC layer (identity when None)
            targets (list[dict]): per reference frame ``boxes (Tensor[M, 4])`` (x1, y1, x2, y2)
                and ``labels (Tensor[M])`` int64 in 1..num_classes; required in training
            roi_targets (RoITargets, optional): training only, handed to the aggregators in ``RoIContext``
        Returns:
            detections: per reference frame ``boxes (Tensor[K, 4])``, ``scores (Tensor[K])``,
                ``labels (Tensor[K])`` in resized-frame pixels (evaluation; empty in training)
            losses: ``loss_classifier``, ``loss_box_reg`` (training; empty in evaluation)
        """
        if roi_aggregators is None:
            roi_aggregators = [IdentityRoIAggregator() for _ in self.box_head.fcs]
        if self.training:
            ref_proposals, _, labels, regression_targets = self.select_training_samples(ref_proposals, targets)
        ref_feats = self.box_roi_pool(ref_maps, ref_proposals)  # (N_ref, C, k, k)
        ctx = RoIContext.build(ref_proposals, support)
        if self.training:
            ctx.targets = roi_targets
        x = self.box_head(ref_feats, None if support is None else support.layers, ctx, roi_aggregators)  # (N_ref, D)
        class_logits, box_regression = self.box_predictor(x)  # (N_ref, K+1), (N_ref, (K+1)*4)
        class_logits, box_regression = class_logits.float(), box_regression.float()
        if self.training:
            loss_classifier, loss_box_reg = fastrcnn_loss(class_logits, box_regression, labels, regression_targets)
            return [], {"loss_classifier": loss_classifier, "loss_box_reg": loss_box_reg}
        boxes, scores, labels = self.postprocess_detections(class_logits, box_regression, ref_proposals, image_sizes)
        return [dict(boxes=b, scores=s, labels=c) for b, s, c in zip(boxes, scores, labels)], {}


def build_roi_heads(cfg: DetectorConfig, in_channels: int) -> VideoRoIHeads:
    """RoIAlign (``torchvision.ops.RoIAlign``), ``BoxHead`` and ``FastRCNNPredictor`` set up by ``cfg``."""
    k = cfg.roi_output_size
    return VideoRoIHeads(
        box_roi_pool=RoIAlign((k, k), spatial_scale=1.0 / cfg.stride, sampling_ratio=cfg.roi_sampling_ratio),
        box_head=BoxHead(in_channels * k * k, cfg.box_fc_dims),
        box_predictor=FastRCNNPredictor(cfg.box_fc_dims[-1], cfg.num_classes_with_background),
        fg_iou_thresh=cfg.box_fg_iou_thresh,
        bg_iou_thresh=cfg.box_bg_iou_thresh,
        batch_size_per_image=cfg.box_batch_size_per_image,
        positive_fraction=cfg.box_positive_fraction,
        bbox_reg_weights=cfg.bbox_reg_weights,
        score_thresh=cfg.box_score_thresh,
        nms_thresh=cfg.box_nms_thresh,
        detections_per_img=cfg.detections_per_img,
    )
