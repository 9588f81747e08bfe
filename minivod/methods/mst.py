"""MST: DAlign and multi-level spatial-temporal aggregation (Sun et al., IEEE TCSVT 2022).

Faster R-CNN whose reference frame t reads the frames t-T..t+T at four places,
in the order of the paper's pipeline (Fig. 2):

1. DAlign (``dalign.py``, Eq. 1-3): every frame map is aligned to the reference
   by deformable convolutions with offsets predicted from [F_t, F_tau].
2. Frame level (``mst_frame.py``, Eq. 4-6): attention over the positions of all
   aligned frames; every frame is updated ("query-all", Table IX).
   1 and 2 together are ``VODetector``'s ``frame_aggregator``.
3. Proposal level (Eq. 7-11): the reference proposals read the top-K proposals of
   the support frames with appearance and geometric (width / height ratio, Eq. 9)
   similarity: the shared ``RelationBlock`` with ``geometry="scale"`` and only the
   supports as neighbours, after each of the two FC layers of the box head
   ("two stacked layers"), i.e. ``VODetector``'s ``roi_aggregators``.
4. Instance level (``mst_instance.py``, Eq. 12): one more relation layer after the
   second proposal-level one, restricted to proposals of the same object.

``MSTDetector`` is ``VODetector`` with two differences, both where the paper
puts them:

- The RPN runs on the enhanced maps F'' of the support frames too ("we feed
  enhanced features F'' into RPN to generate ... reference proposals R^r and all
  support proposals R^s"): the support maps have been aligned to the reference,
  so proposals found on a support frame's own map would point at the wrong place
  of its aligned map. The backbone still runs once per frame; this RPN pass is
  cross-frame work, like the reference's.
- In training it hands the ground truth (boxes and track ids of the reference
  and the support frames) to the instance-level module for the IoU assignment.

Online inference: ``test_window = T`` makes the engines use the frames within
+-T as supports, from a ``FeatureCache`` (each frame's backbone once), the
paper's sliding feature buffer; ``minivod.engine.inference.detect_video_online``
runs it with past frames only.

``MSTConfig`` switches each part off for Table III (and picks the flow-based
alignment of Table IV, or query-ref of Table IX).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor, nn

from minivod.models import VODetector
from minivod.models.base import FrameFeatures
from minivod.models.config import DetectorConfig

from .dalign import DAlign, FlowAlign
from .mst_frame import FrameAttention
from .mst_instance import InstanceAggregator, InstanceTargets, StackedAggregators
from .relation import RelationAggregator, RelationConfig
from .spec import MethodSpec

WINDOW = 3  # T of data_small: supports within +-3 frames (6 at test time, 2 drawn in training)


@dataclass
class MSTConfig:
    """Options of MST (defaults: the full model, Table III (g)).

    alignment: "dalign" (Sec. III-B), "flow" (Table IV's FlowNet-style warp) or None
    frame_level, proposal_level, instance_level: the three aggregations
    query: "all" or "ref", which frames the frame level updates (Table IX)
    frame_heads, frame_key_dim: of the frame-level attention (channels of Q and K; None: min(C, 256))
    dalign_hidden, offset_groups: of DAlign (hidden None: C // 4; 32 for tiny's 128 channels)
    num_heads: of the relation blocks; None: D // 64 (Relation Networks' 64-d heads)
    support_top_k: proposals per support frame the proposal and instance levels read (the "top-K
        support proposals" of Eq. 7-11; None: the detector's ``num_support_rois``)
    top_k, ratio: K and r of the instance level at test time (Tables VI, VII)
    instance_iou: IoU for assigning proposals to instances in training
    instance_train_selection: "test" (default: the instance level selects in training as at
        test time) or "ground_truth" (the paper's IoU assignment, which leaks the foreground
        label into the features; ``mst_gt_selection``). See ``mst_instance``.
    """

    alignment: Optional[str] = "dalign"
    frame_level: bool = True
    proposal_level: bool = True
    instance_level: bool = True
    query: str = "all"
    frame_heads: int = 4
    frame_key_dim: Optional[int] = 64
    dalign_hidden: Optional[int] = None
    offset_groups: int = 4
    num_heads: Optional[int] = None
    support_top_k: Optional[int] = 32
    top_k: int = 20
    ratio: float = 0.2
    instance_iou: float = 0.5
    instance_train_selection: str = "test"

    def __post_init__(self):
        if self.alignment not in (None, "dalign", "flow"):
            raise ValueError(f"alignment must be 'dalign', 'flow' or None, got {self.alignment!r}")


class MSTDetector(VODetector):
    """Faster R-CNN with DAlign, frame-, proposal- and instance-level aggregation.

    Args:
        cfg (DetectorConfig): the detector (``preset("tiny")`` / ``preset("paper")``)
        mst (MSTConfig): which parts are on, and their sizes
    """

    def __init__(self, cfg: DetectorConfig, mst: Optional[MSTConfig] = None):
        super().__init__(cfg)
        self.mst = mst = mst or MSTConfig()
        C = self.backbone.out_channels
        stages = []
        if mst.alignment == "dalign":
            stages.append(DAlign(C, mst.dalign_hidden or C // 4, mst.offset_groups))  # Eq. (1)-(3)
        elif mst.alignment == "flow":
            stages.append(FlowAlign(C, mst.dalign_hidden or C // 4))  # Table IV's alternative
        if mst.frame_level:
            stages.append(FrameAttention(C, mst.frame_heads, mst.frame_key_dim, mst.query))  # Eq. (4)-(6)
        if stages:
            self.frame_aggregator = nn.Sequential(*stages)
        relation = [RelationConfig(d, mst.num_heads or max(1, d // 64), geometry="scale") for d in cfg.box_fc_dims]
        aggregators = list(self.roi_aggregators)  # identities
        if mst.proposal_level:  # Eq. (7)-(11): supports only, one layer after each FC ("two stacked layers")
            aggregators = [RelationAggregator(c, include_reference=False) for c in relation]
        self.instance = None
        if mst.instance_level:  # Eq. (12): after the last proposal-level layer
            self.instance = InstanceAggregator(relation[-1], mst.top_k, mst.ratio, mst.instance_iou,
                                                mst.instance_train_selection)
            aggregators[-1] = StackedAggregators(aggregators[-1], self.instance)
        self.roi_aggregators = nn.ModuleList(aggregators)

    # --- the support proposals, on the enhanced maps ---------------------------------
    def support_proposals_on(self, maps: Tensor, image_sizes, cached: Optional[FrameFeatures] = None):
        """Proposals and objectness of the support frames of ``maps (Tensor[B, T, C, h, w])`` for RoI aggregation.

        On the enhanced maps F'' when frames are aggregated (the paper's R^s), else the cached ones;
        None when no RoI aggregator looks at them. No gradient: proposals carry none.
        """
        if maps.shape[1] == 1 or not self.aggregates_rois:
            return None
        if not self.aggregates_frames and cached is not None:
            top = self.mst.support_top_k
            return [p[:top] for p in cached.proposals], [o[:top] for o in cached.objectness]
        with torch.no_grad():
            rpn_maps = self.backbone.split(maps[:, 1:].flatten(0, 1))[0]  # (B*(T-1), C_rpn, h, w)
            proposals, objectness, _ = self.rpn(rpn_maps, image_sizes)
        top = self.mst.support_top_k  # proposals come sorted by objectness
        return [p[:top] for p in proposals], [o[:top] for o in objectness]

    def detect(self, ref: FrameFeatures, supports: Optional[FrameFeatures] = None) -> list[dict[str, Tensor]]:
        """As ``VODetector.detect``, with the support proposals taken on the enhanced support maps."""
        maps = self.frame_aggregator(self.clip_maps(ref, supports))  # F'': (B, T, C, h, w)
        rpn_maps, ref_roi_maps = self.backbone.split(maps[:, 0])  # (B, C_rpn, h, w), (B, C_roi, h, w)
        ref_proposals = ref.proposals
        if self.aggregates_frames:
            ref_proposals, _, _ = self.rpn(rpn_maps, ref.image_sizes)  # R^r on F''_t
        found = None if supports is None else self.support_proposals_on(maps, supports.image_sizes, supports)
        support = None if found is None else self.support_rois(maps, *found)  # top-K of R^s
        detections, _ = self.roi_heads(ref_roi_maps, ref_proposals, ref.image_sizes, support, self.roi_aggregators)
        return self.transform.postprocess(detections, ref.image_sizes, ref.original_sizes)

    # --- training -------------------------------------------------------------------------
    def compute_losses(self, images: Tensor, targets: list[dict[str, Tensor]]) -> dict[str, Tensor]:
        """RPN and Fast R-CNN losses for clips ``images (Tensor[B, T, 3, H, W])``.

        ``targets`` as ``VODetector``'s, plus for the instance level (optional: without them the
        instance level selects as at test time) ``track_ids (Tensor[M])`` and ``support``: per
        support frame a dict of ``boxes`` (input pixels), ``labels`` and ``track_ids``.
        """
        B, T = images.shape[:2]
        batch, image_sizes, original_sizes = self.transform(images.flatten(0, 1))  # (B*T, 3, H_pad, W_pad)
        ref_at = [b * T for b in range(B)]  # clip-major: frame t of clip b at b*T + t
        sup_at = [b * T + t for b in range(B) for t in range(1, T)]
        ref_sizes = [image_sizes[i] for i in ref_at]
        ref_targets = self.transform.resize_targets(targets, [original_sizes[i] for i in ref_at], ref_sizes)
        maps = self.frame_aggregator(self.backbone(batch).unflatten(0, (B, T)))  # F'': (B, T, C, h, w)
        rpn_maps, ref_roi_maps = self.backbone.split(maps[:, 0])  # (B, C_rpn, h, w), (B, C_roi, h, w)
        ref_proposals, _, rpn_losses = self.rpn(rpn_maps, ref_sizes, ref_targets)
        found = self.support_proposals_on(maps, [image_sizes[i] for i in sup_at])
        support = None if found is None else self.support_rois(maps, *found)
        if self.instance is not None and self.instance.train_selection == "ground_truth":
            self.instance.targets = self.instance_targets(ref_targets, targets, original_sizes, image_sizes, T)
        try:
            _, roi_losses = self.roi_heads(ref_roi_maps, ref_proposals, ref_sizes, support, self.roi_aggregators,
                                           ref_targets)
        finally:
            if self.instance is not None:
                self.instance.targets = None
        return {**rpn_losses, **roi_losses}

    def instance_targets(self, ref_targets, targets, original_sizes, image_sizes, T: int) -> Optional[InstanceTargets]:
        """Ground-truth boxes (resized like the frames) and track ids of every frame, for Eq. (12)'s assignment."""
        if T == 1 or any("support" not in t for t in targets):
            return None
        ref_ids = [t.get("track_ids", torch.arange(len(t["boxes"]), device=t["boxes"].device)) for t in ref_targets]
        support_boxes, support_ids = [], []
        for b, t in enumerate(targets):
            frames = t["support"]  # T - 1 dicts
            at = [b * T + k for k in range(1, T)]
            resized = self.transform.resize_targets(frames, [original_sizes[i] for i in at],
                                                    [image_sizes[i] for i in at])
            support_boxes += [f["boxes"] for f in resized]
            support_ids += [f.get("track_ids", torch.full((len(f["boxes"]),), -2, dtype=torch.int64))
                            for f in resized]  # no ids: -2 never equals a reference id
        return InstanceTargets([t["boxes"] for t in ref_targets], ref_ids, support_boxes, support_ids)


def build_mst(cfg: DetectorConfig, **options) -> MSTDetector:
    """MST with the fields of ``MSTConfig`` as options, e.g. ``build_mst(cfg, instance_level=False)``."""
    return MSTDetector(cfg, MSTConfig(**options))


# --------------------------------------------------------------------------- registry rows
# 2 supports within +-T in training, all frames within +-T at test time (T = WINDOW), and the
# supports' boxes and track ids (for the paper's instance-level assignment)
MST_SPEC = MethodSpec("mst", build_mst, train_support=2, train_window=WINDOW, test_support=2 * WINDOW,
                      test_window=WINDOW, support_targets=True)
SPECS = [
    MST_SPEC,
    # Table III (b)-(f)
    MST_SPEC.variant("mst_frame", {"alignment": None, "proposal_level": False, "instance_level": False}),
    MST_SPEC.variant("mst_proposal", {"alignment": None, "frame_level": False, "instance_level": False}),
    MST_SPEC.variant("mst_dalign_frame", {"proposal_level": False, "instance_level": False}),
    MST_SPEC.variant("mst_dalign_proposal", {"frame_level": False, "instance_level": False}),
    MST_SPEC.variant("mst_no_instance", {"instance_level": False}),
    MST_SPEC.variant("mst_flow", {"alignment": "flow"}),  # Table IV: a flow warp instead of DAlign
    MST_SPEC.variant("mst_query_ref", {"query": "ref"}),  # Table IX
    # the paper's training rule for the instance level (Eq. 12's IoU assignment), which leaks the
    # foreground label; "mst" trains with the test-time selection (see mst_instance.py)
    MST_SPEC.variant("mst_gt_selection", {"instance_train_selection": "ground_truth"}),
]
