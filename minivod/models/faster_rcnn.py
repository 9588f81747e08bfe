"""The baseline two-stage video detector: Faster R-CNN with three plug-in points.

``VODetector`` is Faster R-CNN built from torchvision's parts (see
``rpn.py``, ``roi_heads.py``), read the way torchvision's
``generalized_rcnn.py`` reads: transform -> backbone -> RPN -> RoI heads ->
postprocess. The video methods plug into it at two places (the third, a
one-stage head, is the sibling class of ``base.VideoDetectorBase``):

(a) ``frame_aggregator`` (default ``nn.Identity``): called on the frame maps of
    whole clips, ``(B, T, C, h, w) -> (B, T, C, h, w)``, frame 0 the reference,
    before the RPN (DSFNet / MST frame-level fusion, alignment, PSLA propagation).
(b) ``roi_aggregators`` (one per FC layer of the box head, default
    ``IdentityRoIAggregator``): called inside the box head after each FC as
    ``agg(ref_feats (N_ref, D), support_feats (N_sup, D), ctx: RoIContext) -> (N_ref, D)``
    (SELSA). The support RoIs are the top ``num_support_rois`` RPN proposals of
    each support frame, pooled from the (aggregated) support maps.

Proposals and frame aggregation: each frame's proposals are computed once, on
its own backbone map, and cached in ``FrameFeatures``; supports always use
these. The reference's RPN should see the aggregated map, so when
``frame_aggregator`` is not the identity ``detect`` re-runs the RPN on the
aggregated reference map (training does the same: the RPN loss is taken there).

With T = 1 and identity plug-ins this is exactly single-frame Faster R-CNN
(``tests/test_models.py`` checks it against torchvision's ``FasterRCNN``).
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from .backbone import build_backbone
from .base import FrameFeatures, VideoDetectorBase
from .config import DetectorConfig
from .roi_heads import IdentityRoIAggregator, RoITargets, SupportRoIs, build_roi_heads
from .rpn import build_rpn
from .transform import FrameTransform


class VODetector(VideoDetectorBase):
    """Faster R-CNN for video object detection, with frame-level and RoI-level plug-ins.

    Args:
        cfg (DetectorConfig): see ``minivod.models.config.preset``
        frame_aggregator (nn.Module, optional): ``(B, T, C, h, w) -> (B, T, C, h, w)``
        roi_aggregators (nn.ModuleList, optional): one per entry of ``cfg.box_fc_dims``

    Both plug-ins may also be replaced later by assignment, e.g.
    ``model.roi_aggregators = nn.ModuleList([SELSA(1024), SELSA(1024)])``.
    """

    def __init__(
        self,
        cfg: DetectorConfig,
        frame_aggregator: Optional[nn.Module] = None,
        roi_aggregators: Optional[nn.ModuleList] = None,
    ):
        super().__init__()
        self.cfg = cfg
        self.transform = FrameTransform(cfg.min_size, cfg.max_size, cfg.image_mean, cfg.image_std, cfg.size_divisible)
        self.backbone = build_backbone(cfg)
        self.rpn = build_rpn(cfg, self.backbone.rpn_channels)
        self.roi_heads = build_roi_heads(cfg, self.backbone.roi_channels)
        self.frame_aggregator = frame_aggregator if frame_aggregator is not None else nn.Identity()
        if roi_aggregators is None:
            roi_aggregators = nn.ModuleList(IdentityRoIAggregator() for _ in cfg.box_fc_dims)
        self.roi_aggregators = roi_aggregators

    # --- which plug-ins are active ------------------------------------------------
    @property
    def aggregates_frames(self) -> bool:
        return not isinstance(self.frame_aggregator, nn.Identity)

    @property
    def aggregates_rois(self) -> bool:
        return not all(isinstance(agg, IdentityRoIAggregator) for agg in self.roi_aggregators)

    # --- per-frame, cacheable ---------------------------------------------------------
    def frame_features(self, images: Tensor) -> FrameFeatures:
        """Backbone maps and RPN proposals of ``images (Tensor[N, 3, H, W])`` float RGB in [0, 1].

        Per-frame work only, so an engine can cache it: each frame of a video once. In evaluation
        mode the RPN keeps ``rpn_post_nms_top_n_test`` proposals per frame.
        """
        batch, image_sizes, original_sizes = self.transform(images)  # (N, 3, H_pad, W_pad)
        maps = self.backbone(batch)  # (N, C, H_pad/s, W_pad/s)
        rpn_maps, _ = self.backbone.split(maps)
        proposals, objectness, _ = self.rpn(rpn_maps, image_sizes)
        return FrameFeatures(maps, image_sizes, original_sizes, proposals, objectness)

    # --- everything that mixes frames ------------------------------------------------
    def detect(self, ref: FrameFeatures, supports: Optional[FrameFeatures] = None) -> list[dict[str, Tensor]]:
        """Detections for the B frames of ``ref``; ``supports`` holds B * (T - 1) frames, clip-major.

        All frames have one size (one video). Evaluation mode.

        Returns per reference frame ``boxes (Tensor[K, 4])`` (x1, y1, x2, y2) in input pixels,
        ``scores (Tensor[K])``, ``labels (Tensor[K])`` int64 in 1..num_classes.
        """
        raw = self.clip_maps(ref, supports)  # (B, T, C, h, w)
        maps = self.frame_aggregator(raw)  # (B, T, C, h, w)
        rpn_maps, ref_roi_maps = self.backbone.split(maps[:, 0])  # (B, C_rpn, h, w), (B, C_roi, h, w)
        ref_proposals = ref.proposals
        if self.aggregates_frames:  # propose again, on the aggregated reference map
            ref_proposals, _, _ = self.rpn(rpn_maps, ref.image_sizes)
        found = None if supports is None else self.propose_supports(raw, maps, supports.image_sizes, supports)
        support = None if found is None else self.support_rois(maps, *found, supports)
        detections, _ = self.roi_heads(ref_roi_maps, ref_proposals, ref.image_sizes, support, self.roi_aggregators)
        return self.transform.postprocess(detections, ref.image_sizes, ref.original_sizes)

    def compute_losses(self, images: Tensor, targets: list[dict[str, Tensor]]) -> dict[str, Tensor]:
        """RPN and Fast R-CNN losses for clips ``images (Tensor[B, T, 3, H, W])`` (see ``forward``).

        ``targets`` may also carry, per clip, the reference's ``track_ids (Tensor[M])`` and
        ``support``: per support frame a dict of ``boxes`` (input pixels), ``labels`` and
        ``track_ids``; the RoI aggregators then get them in ``RoIContext.targets``.
        """
        B, T = images.shape[:2]
        batch, image_sizes, original_sizes = self.transform(images.flatten(0, 1))  # (B*T, 3, H_pad, W_pad)
        ref_at = [b * T for b in range(B)]  # clip-major: frame t of clip b at b*T + t
        sup_at = [b * T + t for b in range(B) for t in range(1, T)]
        ref_sizes = [image_sizes[i] for i in ref_at]
        ref_targets = self.transform.resize_targets(targets, [original_sizes[i] for i in ref_at], ref_sizes)
        raw = self.backbone(batch).unflatten(0, (B, T))  # (B, T, C, h, w)
        maps = self.frame_aggregator(raw)  # (B, T, C, h, w)
        rpn_maps, ref_roi_maps = self.backbone.split(maps[:, 0])  # (B, C_rpn, h, w), (B, C_roi, h, w)
        ref_proposals, _, rpn_losses = self.rpn(rpn_maps, ref_sizes, ref_targets)
        found = self.propose_supports(raw, maps, [image_sizes[i] for i in sup_at])
        support = None if found is None else self.support_rois(maps, *found)
        roi_targets = self.roi_targets(ref_targets, targets, original_sizes, image_sizes, T)
        _, roi_losses = self.roi_heads(ref_roi_maps, ref_proposals, ref_sizes, support, self.roi_aggregators,
                                       ref_targets, roi_targets)
        return {**rpn_losses, **roi_losses}

    # --- plug-in point (c): the support proposals -----------------------------------------
    def propose_supports(self, raw: Tensor, maps: Tensor, image_sizes,
                         cached: Optional[FrameFeatures] = None) -> Optional[tuple[list[Tensor], list[Tensor]]]:
        """Proposals and objectness of the support frames that the RoI aggregators read.

        Args:
            raw, maps (Tensor[B, T, C, h, w]): the clips' maps before and after frame aggregation
            image_sizes: of the B * (T - 1) support frames (clip-major)
            cached (FrameFeatures, optional): the support frames' cached features (inference)
        Returns:
            per support frame, proposals (Tensor[P, 4]) sorted by objectness and their objectness;
            None when no RoI aggregator reads them (T = 1 or identity aggregators). By default each
            support frame's own proposals on its own map: the cached ones, or computed on ``raw``
            in training. No gradient: proposals carry none.
        """
        if raw.shape[1] == 1 or not self.aggregates_rois:
            return None
        if cached is not None:
            return cached.proposals, cached.objectness
        with torch.no_grad():
            rpn_maps = self.backbone.split(raw[:, 1:].flatten(0, 1))[0]  # (B*(T-1), C_rpn, h, w)
            proposals, objectness, _ = self.rpn(rpn_maps, image_sizes)
        return proposals, objectness

    def roi_targets(self, ref_targets, targets, original_sizes, image_sizes, T: int) -> Optional[RoITargets]:
        """Ground-truth boxes (resized like the frames) and track ids of every frame of the clips, when
        ``targets`` carry the supports' (``target["support"]``); else None."""
        if T == 1 or any("support" not in t for t in targets):
            return None
        ref_ids = [t.get("track_ids", torch.arange(len(t["boxes"]), device=t["boxes"].device)) for t in ref_targets]
        support_boxes, support_ids = [], []
        for b, t in enumerate(targets):
            at = [b * T + k for k in range(1, T)]
            resized = self.transform.resize_targets(t["support"], [original_sizes[i] for i in at],
                                                    [image_sizes[i] for i in at])
            support_boxes += [f["boxes"] for f in resized]
            support_ids += [f.get("track_ids", torch.full((len(f["boxes"]),), -2, dtype=torch.int64))
                            for f in resized]  # no ids: -2 never equals a reference id
        return RoITargets([t["boxes"] for t in ref_targets], ref_ids, support_boxes, support_ids)

    # --- helpers ------------------------------------------------------------------------
    @staticmethod
    def clip_maps(ref: FrameFeatures, supports: Optional[FrameFeatures]) -> Tensor:
        """Stack cached maps into clips: (B, T, C, h, w), frame 0 the reference."""
        ref_maps = ref.maps.unsqueeze(1)  # (B, 1, C, h, w)
        if supports is None:
            return ref_maps
        B = ref_maps.shape[0]
        support_maps = supports.maps.unflatten(0, (B, -1))  # (B, T-1, C, h, w)
        return torch.cat([ref_maps, support_maps], dim=1)  # (B, T, C, h, w)

    @property
    def supports_unchanged(self) -> bool:
        """True when the frame aggregator leaves the support frames' maps as they are (identity,
        or an aggregator declaring ``updates_supports = False``), so support RoIs can be cached per frame."""
        return not self.aggregates_frames or getattr(self.frame_aggregator, "updates_supports", True) is False

    def support_rois(self, maps: Tensor, proposals: list[Tensor], objectness: list[Tensor],
                     frames: Optional[FrameFeatures] = None) -> Optional[SupportRoIs]:
        """RoIAlign of the top ``num_support_rois`` proposals of each support frame, through the FC layers.

        Args:
            maps (Tensor[B, T, C, h, w]): clip maps (after frame aggregation)
            proposals, objectness: per support frame (B * (T-1), clip-major), sorted by objectness
            frames (FrameFeatures, optional): the cached support frames; at inference, when the frame
                aggregator leaves supports unchanged, their RoI features are computed once per frame
                and kept in ``frames.memo`` (the same numbers as pooling ``maps`` again)
        Returns:
            SupportRoIs, or None when no RoI aggregator would look at them
        """
        if not self.aggregates_rois:
            return None  # identity RoI aggregators: skip the supports' RoI work
        top = self.cfg.num_support_rois
        boxes = [p[:top] for p in proposals]  # B*(T-1) x (N, 4)
        if frames is not None and not self.training and self.supports_unchanged:
            layers = self.cached_support_layers(frames, boxes)
        else:
            roi_maps = self.backbone.split(maps[:, 1:].flatten(0, 1))[1]  # (B*(T-1), C_roi, h, w)
            feats = self.roi_heads.box_roi_pool(roi_maps, boxes)  # (N_sup, C_roi, k, k)
            layers = self.roi_heads.box_head.support_layers(feats)  # per FC layer (N_sup, D_k)
        return SupportRoIs.from_frames(layers, boxes, [o[:top] for o in objectness], maps.shape[1] - 1)

    def cached_support_layers(self, frames: FrameFeatures, boxes: list[Tensor]) -> list[Tensor]:
        """``BoxHead.support_layers`` of each frame's ``boxes``, from its own map, computed once per frame.

        Frames seen for the first time are pooled together in one call; the result is kept in
        each frame's ``memo`` under this model's id (evaluation only: the features hold for the
        weights they were computed with, i.e. for one pass of the engine over a video).
        """
        key = ("support_layers", id(self), self.cfg.num_support_rois)
        first = {id(memo): i for i, memo in reversed(list(enumerate(frames.memo)))}  # a frame may repeat
        new = sorted(i for i in first.values() if key not in frames.memo[i])
        if new:
            roi_maps = self.backbone.split(frames.select(new).maps)[1]  # (n_new, C_roi, h, w)
            feats = self.roi_heads.box_roi_pool(roi_maps, [boxes[i] for i in new])  # (sum N_i, C_roi, k, k)
            layers = self.roi_heads.box_head.support_layers(feats)  # per FC layer (sum N_i, D_k)
            per_layer = [layer.split([len(boxes[i]) for i in new]) for layer in layers]  # per layer, per new frame
            for k, i in enumerate(new):
                frames.memo[i][key] = [parts[k] for parts in per_layer]
        per_frame = [memo[key] for memo in frames.memo]  # per frame, per layer (N_i, D_k)
        return [torch.cat([f[k] for f in per_frame]) for k in range(len(self.cfg.box_fc_dims))]
