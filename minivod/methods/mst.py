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

``MSTDetector`` is ``VODetector`` with one override, where the paper puts it:

- The RPN runs on the enhanced maps F'' of the support frames too ("we feed
  enhanced features F'' into RPN to generate ... reference proposals R^r and all
  support proposals R^s"): the support maps have been aligned to the reference,
  so proposals found on a support frame's own map would point at the wrong place
  of its aligned map. The backbone still runs once per frame; this RPN pass is
  cross-frame work, like the reference's. This is ``VODetector``'s third plug-in
  point, ``propose_supports``; everything else is the baseline's ``detect`` and
  ``compute_losses``.

With the paper's training rule for the instance level (``mst_gt_selection``) the
ground truth of the reference and support frames reaches it in
``RoIContext.targets`` (the spec's ``support_targets``).

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
from .mst_instance import InstanceAggregator, StackedAggregators
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

    # --- plug-in point (c): the support proposals, on the enhanced maps --------------------
    def propose_supports(self, raw: Tensor, maps: Tensor, image_sizes, cached: Optional[FrameFeatures] = None):
        """The top-K proposals of each support frame (``support_top_k``), taken by the RPN on the
        enhanced maps F'' when frames are aggregated (the paper's R^s), else the cached ones."""
        found = None
        if self.aggregates_frames and raw.shape[1] > 1 and self.aggregates_rois:
            with torch.no_grad():
                rpn_maps = self.backbone.split(maps[:, 1:].flatten(0, 1))[0]  # (B*(T-1), C_rpn, h, w)
                proposals, objectness, _ = self.rpn(rpn_maps, image_sizes)
            found = proposals, objectness
        else:
            found = super().propose_supports(raw, maps, image_sizes, cached)
        if found is None:
            return None
        top = self.mst.support_top_k  # proposals come sorted by objectness
        return [p[:top] for p in found[0]], [o[:top] for o in found[1]]


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
