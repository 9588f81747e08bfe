"""MST's instance-level aggregation (Sec. III-C, Eq. 12): proposals look at their own object only.

The proposal-level step (Eq. 7-11) lets every reference proposal read every
top-K support proposal, which mixes in other objects and background. The
instance level repeats the same relation (appearance + geometric similarity,
``RelationBlock``) but only between proposals of one object instance::

    R'' = N_ins(R', R^si)                                             MST Eq. (12)

so the mask of ``RelationBlock.forward`` is "same clip and same instance". Who is an
instance is decided two ways:

- **testing** (no ids): the ``top_k`` reference proposals with the highest
  objectness are the candidate instances (K = 20 in the paper), and each reads
  the ``ratio`` (r = 20%) of its clip's support proposals that are most similar
  to it (mean over heads of the relation logits z + r of Eq. 7).
- **training, the paper's rule** (``train_selection="ground_truth"``): each
  proposal gets the track id of the ground-truth box it overlaps with IoU >= 0.5
  (``assign_instances``; reference proposals against the reference frame's boxes,
  support proposals against their own frame's boxes); a reference proposal reads
  the support proposals with its own id.

Reference proposals that are no instance (background in training, outside the
top K at test time) have no neighbour and pass unchanged (``masked_softmax``
gives their row zero weight, and the block is residual): the paper's
"R''_bg copied from R'".

**Deviation: minivod trains with the test-time selection** (``train_selection="test"``,
the default; ``mst_gt_selection`` keeps the paper's rule). The paper's training rule is
the foreground label itself (IoU >= 0.5), so a proposal is updated in training exactly
when it is an object, and the classifier learns "updated => object". At test time the
K candidates are updated whatever they cover. Measured on a detector trained with the
paper's rule (``benchmarks/mst_leak.py``, ``benchmarks/results/instance_leak_*.md``): the
background proposals among the top 20 get foreground probability 0.99 with the update
and near 0 without it, and so do the true objects: the classifier reads the update, not
the object. The test-time selection depends on objectness rank only, never on labels.

Choices the paper leaves open: "K proposals with the highest objectness from
R^s" is read as the issue reads it, the K reference proposals of highest
objectness are the candidates; the reference proposals arrive from the RPN
sorted by objectness (and torchvision's RoI sampler keeps their order in
training), so the first K rows of each clip are they. The similarity that picks
the r% is the block's own logits before the softmax. With the paper's rule the
ground truth reaches the module in ``RoIContext.targets`` (``RoITargets``, made
by ``VODetector.roi_targets`` when the training targets carry the supports' boxes).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torchvision.ops import box_iou

from minivod.models.roi_heads import RoIContext, RoITargets

from .relation import RelationBlock, RelationConfig, same_clip


def assign_instances(boxes: Tensor, frame_of_box: Tensor, gt_boxes: list[Tensor], gt_ids: list[Tensor],
                     iou_thresh: float = 0.5) -> Tensor:
    """The instance (track id) of each box: its best-overlapping ground truth of its own frame, if IoU >= thresh.

    Args:
        boxes (Tensor[N, 4]): (x1, y1, x2, y2) proposals
        frame_of_box (Tensor[N]): int64 index f of each box's frame into ``gt_boxes`` / ``gt_ids``
        gt_boxes (list[Tensor[M_f, 4]]): ground-truth boxes of each frame, same pixels as ``boxes``
        gt_ids (list[Tensor[M_f]]): int64 track ids (>= 0) of those boxes
    Returns:
        Tensor[N]: int64 track id, -1 for background (no ground truth with IoU >= ``iou_thresh``)
    """
    ids = torch.full((boxes.shape[0],), -1, dtype=torch.int64, device=boxes.device)
    for f, (gt, gid) in enumerate(zip(gt_boxes, gt_ids)):  # a loop over frames, not over proposals
        rows = (frame_of_box == f).nonzero().squeeze(1)  # (n_f,)
        if rows.numel() == 0 or gt.numel() == 0:
            continue
        best_iou, best = box_iou(boxes[rows].float(), gt.float()).max(dim=1)  # (n_f, M_f) -> (n_f,)
        ids[rows] = torch.where(best_iou >= iou_thresh, gid.to(ids)[best], ids[rows])
    return ids


class InstanceAggregator(nn.Module):
    """Eq. (12) as an RoI aggregator: ``(x (N_ref, D), s (N_sup, D), ctx) -> (N_ref, D)``.

    Args:
        cfg (RelationConfig): of its relation block (the same similarity as the proposal level)
        top_k (int): K, candidate instances per reference frame at test time
        ratio (float): r, the fraction of a clip's support proposals each candidate reads at test time
        iou_thresh (float): IoU for assigning a proposal to a ground-truth instance in training
        train_selection (str): who reads whom in training: ``"test"`` (default: the test-time
            selection, top-K candidates and their r% most similar supports; independent of the
            labels) or ``"ground_truth"`` (the paper, Eq. 12's IoU assignment, which leaks the
            foreground label: see the module docstring)
    """

    def __init__(self, cfg: RelationConfig, top_k: int = 20, ratio: float = 0.2, iou_thresh: float = 0.5,
                 train_selection: str = "test"):
        super().__init__()
        if train_selection not in ("ground_truth", "test"):
            raise ValueError(f"train_selection must be 'ground_truth' or 'test', got {train_selection!r}")
        self.block = RelationBlock(cfg)
        self.top_k, self.ratio, self.iou_thresh = top_k, ratio, iou_thresh
        self.train_selection = train_selection

    def training_mask(self, ctx: RoIContext, targets: RoITargets) -> Tensor:
        """(N_ref, N_sup) bool: same clip and same ground-truth instance (both foreground)."""
        ref_ids = assign_instances(ctx.ref_boxes, ctx.ref_clip_index, targets.ref_boxes, targets.ref_ids,
                                   self.iou_thresh)  # (N_ref,)
        supports_per_clip = len(targets.support_boxes) // max(len(targets.ref_boxes), 1)
        support_frame = ctx.support_clip_index * supports_per_clip + ctx.support_frame_index - 1  # (N_sup,)
        support_ids = assign_instances(ctx.support_boxes, support_frame, targets.support_boxes,
                                       targets.support_ids, self.iou_thresh)  # (N_sup,)
        same_instance = (ref_ids[:, None] == support_ids[None, :]) & (ref_ids >= 0)[:, None]  # (N_ref, N_sup)
        return same_clip(ctx.ref_clip_index, ctx.support_clip_index) & same_instance

    def test_mask(self, x: Tensor, s: Tensor, ctx: RoIContext) -> Tensor:
        """(N_ref, N_sup) bool: the top-K reference proposals, each with its r% most similar support proposals."""
        clip = same_clip(ctx.ref_clip_index, ctx.support_clip_index)  # (N_ref, N_sup)
        first_of_clip = torch.searchsorted(ctx.ref_clip_index, ctx.ref_clip_index)  # rows are sorted by clip
        rank = torch.arange(x.shape[0], device=x.device) - first_of_clip  # (N_ref,) objectness rank in its frame
        candidate = rank < self.top_k  # (N_ref,)
        similarity = self.block.logits(x, s, ctx.ref_boxes, ctx.support_boxes, clip).mean(dim=0)  # (N_ref, N_sup)
        similarity = similarity.float().masked_fill(~clip, -math.inf)
        order = similarity.argsort(dim=1, descending=True).argsort(dim=1)  # (N_ref, N_sup): 0 = most similar
        keep = torch.ceil(self.ratio * clip.sum(dim=1).float())  # (N_ref,) r% of the clip's support proposals
        return clip & (order < keep[:, None]) & candidate[:, None]

    def mask(self, x: Tensor, s: Tensor, ctx: RoIContext) -> Tensor:
        """Who reads whom: the training mask in training mode when ``train_selection`` is the paper's
        and the context carries the ground truth (``ctx.targets``), else the test mask."""
        if self.training and ctx.targets is not None and self.train_selection == "ground_truth":
            return self.training_mask(ctx, ctx.targets)
        return self.test_mask(x, s, ctx)

    def forward(self, ref_feats: Tensor, support_feats: Tensor, ctx: RoIContext) -> Tensor:
        """
        Args:
            ref_feats (Tensor[N_ref, D]): reference proposal features R' (after the proposal level)
            support_feats (Tensor[N_sup, D]): support proposal features R^s
            ctx (RoIContext): boxes and clip / frame indices of both
        Returns:
            Tensor[N_ref, D]: R'' of Eq. (12); rows that are no instance are unchanged
        """
        if support_feats.shape[0] == 0:
            return ref_feats
        mask = self.mask(ref_feats, support_feats, ctx)  # (N_ref, N_sup)
        return self.block(ref_feats, support_feats, ctx.ref_boxes, ctx.support_boxes, mask)  # MST Eq. (12)


class StackedAggregators(nn.Module):
    """RoI aggregators applied one after the other at one plug-in point: proposal level, then instance level."""

    def __init__(self, *aggregators: nn.Module):
        super().__init__()
        self.stages = nn.ModuleList(aggregators)

    def forward(self, ref_feats: Tensor, support_feats: Tensor, ctx: RoIContext) -> Tensor:
        for aggregate in self.stages:
            ref_feats = aggregate(ref_feats, support_feats, ctx)  # (N_ref, D)
        return ref_feats
