"""R-FCN's head: position-sensitive score maps and PS-RoIAlign (Dai et al., NIPS 2016).

PSLA's task network N_t (Sec. 3.5) is an RPN and an R-FCN head. Instead of
pooling RoI features and running FC layers per RoI (the baseline's box head),
R-FCN computes everything per position, once per frame:

    x           = relu(conv_1x1(map))  (optional: R-FCN's 1x1 reduction "conv_new_1" after res5)
    score maps  = conv_1x1(x)      (k^2 (K+1) channels: one per class and grid cell)
    box maps    = conv_1x1(x)      (k^2 4 channels, class-agnostic as in R-FCN's code)
    r_c(RoI)    = mean over the k x k bins of PS-RoIAlign(score maps, RoI)   bin (i, j) reads
                  only its own channel group (i, j): position-sensitive pooling, then voting

so the per-RoI work is a pooling and a mean. ``RFCNRoIHeads`` keeps torchvision's
``RoIHeads`` for the rest (proposal sampling, ``fastrcnn_loss``,
``postprocess_detections``); the class-agnostic box deltas are repeated for
every class, which is what those functions read.
"""
from __future__ import annotations

from typing import Optional

from torch import Tensor, nn
from torchvision.models.detection.roi_heads import RoIHeads, fastrcnn_loss
from torchvision.ops import ps_roi_align

from .config import DetectorConfig


class PSRoIPredictor(nn.Module):
    """Position-sensitive score and box maps, pooled per RoI and averaged (R-FCN's voting).

    Args:
        in_channels (int): C of the RoI maps
        num_classes (int): K + 1, background included
        k (int): the k x k grid of position-sensitive bins (7 in R-FCN)
        spatial_scale (float): 1 / stride of the maps
        sampling_ratio (int): bilinear samples per bin side (as RoIAlign)
        hidden (int, optional): channels of a 1x1 conv + ReLU before the score maps (None: none)
    """

    def __init__(self, in_channels: int, num_classes: int, k: int = 7, spatial_scale: float = 1 / 16,
                 sampling_ratio: int = 2, hidden: Optional[int] = None):
        super().__init__()
        self.num_classes, self.k, self.spatial_scale, self.sampling_ratio = num_classes, k, spatial_scale, sampling_ratio
        self.reduce = nn.Identity()
        if hidden is not None:
            self.reduce = nn.Sequential(nn.Conv2d(in_channels, hidden, 1), nn.ReLU(inplace=True))
            in_channels = hidden
        self.cls_maps = nn.Conv2d(in_channels, k * k * num_classes, 1)  # channel c * k^2 + i * k + j
        self.box_maps = nn.Conv2d(in_channels, k * k * 4, 1)
        for conv in (self.cls_maps, self.box_maps):
            nn.init.normal_(conv.weight, std=0.01)
            nn.init.zeros_(conv.bias)

    def score_maps(self, maps: Tensor) -> tuple[Tensor, Tensor]:
        """(B, C, h, w) -> class maps (B, k^2 (K+1), h, w) and box maps (B, k^2 4, h, w); per frame, once."""
        x = self.reduce(maps)  # (B, C', h, w)
        return self.cls_maps(x), self.box_maps(x)

    def forward(self, maps: Tensor, rois: list[Tensor]) -> tuple[Tensor, Tensor]:
        """
        Args:
            maps (Tensor[B, C, h, w]): RoI maps of B frames
            rois (list[Tensor[P_b, 4]]): per frame, (x1, y1, x2, y2) in resized-frame pixels
        Returns:
            class_logits (Tensor[N, K+1]), box_regression (Tensor[N, (K+1) * 4]) for the N = sum P_b RoIs
        """
        cls_maps, box_maps = self.score_maps(maps)
        cls_maps, box_maps = cls_maps.to(rois[0].dtype), box_maps.to(rois[0].dtype)  # bf16 autocast: as the RoIs
        pool = dict(output_size=self.k, spatial_scale=self.spatial_scale, sampling_ratio=self.sampling_ratio)
        class_logits = ps_roi_align(cls_maps, rois, **pool).mean((2, 3))  # (N, K+1, k, k) -> vote (N, K+1)
        deltas = ps_roi_align(box_maps, rois, **pool).mean((2, 3))  # (N, 4, k, k) -> (N, 4)
        return class_logits, deltas.repeat(1, self.num_classes)  # class-agnostic: (N, (K+1) * 4)


class RFCNRoIHeads(RoIHeads):
    """torchvision's ``RoIHeads`` (sampling, loss, post-processing) around a ``PSRoIPredictor``."""

    def forward(self, maps: Tensor, proposals: list[Tensor], image_sizes: list[tuple[int, int]],
                targets: Optional[list[dict[str, Tensor]]] = None):
        """
        Args:
            maps (Tensor[B, C, h, w]): RoI maps of B frames
            proposals (list[Tensor[P, 4]]): per frame, (x1, y1, x2, y2) in resized-frame pixels
            image_sizes (list[tuple[int, int]]): resized (height, width) per frame
            targets (list[dict], training): ``boxes (Tensor[M, 4])`` and ``labels (Tensor[M])`` per frame
        Returns:
            detections (evaluation): per frame ``boxes``, ``scores``, ``labels`` in resized-frame pixels
            losses (training): ``loss_classifier``, ``loss_box_reg``
        """
        if self.training:
            proposals, _, labels, regression_targets = self.select_training_samples(proposals, targets)
        class_logits, box_regression = self.box_predictor(maps, proposals)  # (N, K+1), (N, (K+1)*4)
        class_logits, box_regression = class_logits.float(), box_regression.float()
        if self.training:
            loss_classifier, loss_box_reg = fastrcnn_loss(class_logits, box_regression, labels, regression_targets)
            return [], {"loss_classifier": loss_classifier, "loss_box_reg": loss_box_reg}
        boxes, scores, labels = self.postprocess_detections(class_logits, box_regression, proposals, image_sizes)
        return [dict(boxes=b, scores=s, labels=c) for b, s, c in zip(boxes, scores, labels)], {}


def build_rfcn_heads(cfg: DetectorConfig, in_channels: int, k: Optional[int] = None,
                     hidden: Optional[int] = None) -> RFCNRoIHeads:
    """An R-FCN head set up by ``cfg`` (k defaults to ``cfg.roi_output_size``, 7)."""
    predictor = PSRoIPredictor(in_channels, cfg.num_classes_with_background, k or cfg.roi_output_size,
                               1.0 / cfg.stride, cfg.roi_sampling_ratio, hidden)
    return RFCNRoIHeads(
        box_roi_pool=None, box_head=None, box_predictor=predictor,
        fg_iou_thresh=cfg.box_fg_iou_thresh, bg_iou_thresh=cfg.box_bg_iou_thresh,
        batch_size_per_image=cfg.box_batch_size_per_image, positive_fraction=cfg.box_positive_fraction,
        bbox_reg_weights=cfg.bbox_reg_weights, score_thresh=cfg.box_score_thresh, nms_thresh=cfg.box_nms_thresh,
        detections_per_img=cfg.detections_per_img,
    )
