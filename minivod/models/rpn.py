"""The region proposal network, which also returns each proposal's objectness.

torchvision's ``RegionProposalNetwork`` computes the objectness of the
proposals it keeps but returns only their boxes. Video methods need the
objectness of the support frames' proposals (to pick the top-N, and as an
input of RoI aggregation), so ``ProposalNetwork`` subclasses it and chains the
same parent methods (head, anchors, ``BoxCoder``, ``filter_proposals``,
``assign_targets_to_anchors``, ``compute_loss``) in a forward that returns
``(proposals, objectness, losses)``. It also works on a bare feature tensor,
so a cached or aggregated frame map can be re-proposed without the images.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.rpn import RegionProposalNetwork, RPNHead, concat_box_prediction_layers

from .config import DetectorConfig


class ProposalNetwork(RegionProposalNetwork):
    """Faster R-CNN's RPN on one feature level, returning proposals *and* their objectness.

    Args:
        anchor_generator, head, ...: as ``torchvision.models.detection.rpn.RegionProposalNetwork``
        stride (int): stride of the feature map in image pixels (anchor spacing)
    """

    def __init__(self, *args, stride: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.stride = stride

    def anchors(self, maps: Tensor) -> Tensor:
        """Anchors (Tensor[h*w*A, 4]) in (x1, y1, x2, y2) for feature maps (N, C, h, w), A per cell."""
        self.anchor_generator.set_cell_anchors(torch.float32, maps.device)
        grid = [list(maps.shape[-2:])]
        return self.anchor_generator.grid_anchors(grid, [[self.stride, self.stride]])[0]  # (h*w*A, 4)

    def forward(
        self,
        maps: Tensor,
        image_sizes: list[tuple[int, int]],
        targets: Optional[list[dict[str, Tensor]]] = None,
    ) -> tuple[list[Tensor], list[Tensor], dict[str, Tensor]]:
        """
        Args:
            maps (Tensor[N, C, h, w]): RPN feature maps, one per frame
            image_sizes (list[tuple[int, int]]): (height, width) of each resized frame before padding
            targets (list[dict] or None): ``boxes (Tensor[M, 4])`` in (x1, y1, x2, y2) per frame;
                given, the RPN losses are computed (training)
        Returns:
            proposals (list[Tensor[P, 4]]): per frame, (x1, y1, x2, y2), sorted by objectness (highest first)
            objectness (list[Tensor[P]]): per frame, sigmoid objectness of each proposal
            losses (dict[str, Tensor]): ``loss_objectness``, ``loss_rpn_box_reg`` (empty without targets)
        """
        n = maps.shape[0]
        logits, deltas = self.head([maps])  # [(N, A, h, w)], [(N, A*4, h, w)]
        anchors = [self.anchors(maps)] * n  # N x (h*w*A, 4)
        num_anchors_per_level = [logits[0][0].numel()]  # [A*h*w]
        logits, deltas = concat_box_prediction_layers(logits, deltas)  # (N*h*w*A, 1), (N*h*w*A, 4)
        logits, deltas = logits.float(), deltas.float()  # decode and NMS in float32 under autocast
        # Faster R-CNN does not backpropagate through the proposal coordinates.
        proposals = self.box_coder.decode(deltas.detach(), anchors).view(n, -1, 4)  # (N, h*w*A, 4)
        boxes, scores = self.filter_proposals(proposals, logits, image_sizes, num_anchors_per_level)

        losses = {}
        if targets is not None:
            labels, matched_gt_boxes = self.assign_targets_to_anchors(anchors, targets)
            regression_targets = self.box_coder.encode(matched_gt_boxes, anchors)
            loss_objectness, loss_rpn_box_reg = self.compute_loss(logits, deltas, labels, regression_targets)
            losses = {"loss_objectness": loss_objectness, "loss_rpn_box_reg": loss_rpn_box_reg}
        return boxes, scores, losses


def build_rpn(cfg: DetectorConfig, in_channels: int) -> ProposalNetwork:
    """torchvision's anchor generator and ``RPNHead`` in a ``ProposalNetwork`` set up by ``cfg``."""
    anchor_generator = AnchorGenerator(sizes=(tuple(cfg.anchor_sizes),), aspect_ratios=(tuple(cfg.anchor_ratios),))
    head = RPNHead(in_channels, anchor_generator.num_anchors_per_location()[0])
    return ProposalNetwork(
        anchor_generator,
        head,
        fg_iou_thresh=cfg.rpn_fg_iou_thresh,
        bg_iou_thresh=cfg.rpn_bg_iou_thresh,
        batch_size_per_image=cfg.rpn_batch_size_per_image,
        positive_fraction=cfg.rpn_positive_fraction,
        pre_nms_top_n=dict(training=cfg.rpn_pre_nms_top_n_train, testing=cfg.rpn_pre_nms_top_n_test),
        post_nms_top_n=dict(training=cfg.rpn_post_nms_top_n_train, testing=cfg.rpn_post_nms_top_n_test),
        nms_thresh=cfg.rpn_nms_thresh,
        stride=cfg.stride,
    )
