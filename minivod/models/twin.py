"""torchvision's stock ``FasterRCNN`` assembled from the same parts and weights as a ``VODetector``.

Used by the parity test (the same detections) and by the speed benchmark (ours
should not be slower than torchvision's own class).
"""
from __future__ import annotations

from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.rpn import AnchorGenerator
from torchvision.ops import MultiScaleRoIAlign

from .backbone import TinyBackbone
from .faster_rcnn import VODetector


def torchvision_twin(model: VODetector) -> FasterRCNN:
    """torchvision's FasterRCNN assembled from the same parts as ``model``, with its weights."""
    cfg = model.cfg
    k = cfg.roi_output_size
    backbone = TinyBackbone(cfg.tiny_channels, cfg.tiny_strides)
    twin = FasterRCNN(
        backbone,
        num_classes=None,
        min_size=cfg.min_size,
        max_size=cfg.max_size,
        image_mean=list(cfg.image_mean),
        image_std=list(cfg.image_std),
        size_divisible=cfg.size_divisible,
        rpn_anchor_generator=AnchorGenerator((cfg.anchor_sizes,), (cfg.anchor_ratios,)),
        rpn_pre_nms_top_n_train=cfg.rpn_pre_nms_top_n_train,
        rpn_pre_nms_top_n_test=cfg.rpn_pre_nms_top_n_test,
        rpn_post_nms_top_n_train=cfg.rpn_post_nms_top_n_train,
        rpn_post_nms_top_n_test=cfg.rpn_post_nms_top_n_test,
        rpn_nms_thresh=cfg.rpn_nms_thresh,
        rpn_fg_iou_thresh=cfg.rpn_fg_iou_thresh,
        rpn_bg_iou_thresh=cfg.rpn_bg_iou_thresh,
        rpn_batch_size_per_image=cfg.rpn_batch_size_per_image,
        rpn_positive_fraction=cfg.rpn_positive_fraction,
        box_roi_pool=MultiScaleRoIAlign(["0"], k, cfg.roi_sampling_ratio),
        box_head=TwoMLPHead(backbone.out_channels * k * k, cfg.box_fc_dims[0]),
        box_predictor=FastRCNNPredictor(cfg.box_fc_dims[-1], cfg.num_classes + 1),
        box_score_thresh=cfg.box_score_thresh,
        box_nms_thresh=cfg.box_nms_thresh,
        box_detections_per_img=cfg.detections_per_img,
        box_fg_iou_thresh=cfg.box_fg_iou_thresh,
        box_bg_iou_thresh=cfg.box_bg_iou_thresh,
        box_batch_size_per_image=cfg.box_batch_size_per_image,
        box_positive_fraction=cfg.box_positive_fraction,
        bbox_reg_weights=cfg.bbox_reg_weights,
    )
    rename = {  # our BoxHead keeps its FC layers in a list; TwoMLPHead names them fc6, fc7
        "roi_heads.box_head.fcs.0.": "roi_heads.box_head.fc6.",
        "roi_heads.box_head.fcs.1.": "roi_heads.box_head.fc7.",
    }
    state = {}
    for key, value in model.state_dict().items():
        for old, new in rename.items():
            key = key.replace(old, new)
        state[key] = value
    twin.load_state_dict(state)  # strict: every tensor has its counterpart
    return twin.eval()
