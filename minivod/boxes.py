"""Box geometry with the ImageNet VID convention.

Boxes are ``(x1, y1, x2, y2)`` in pixels. ImageNet VID annotations (and the
FGFA / SELSA evaluation code the papers used) treat both corners as inclusive
pixels, so a box's width is ``x2 - x1 + 1``. Everything here follows that
"+1-pixel" convention; the detectors themselves use torchvision's continuous
convention (``x2 - x1``), and the difference only matters for evaluation and
for the motion IoU.
"""
from __future__ import annotations

import numpy as np
import torch


def box_area_vid(boxes):
    """Areas of ``boxes (Tensor[N, 4] or ndarray[N, 4])`` with the +1 convention."""
    w = boxes[..., 2] - boxes[..., 0] + 1
    h = boxes[..., 3] - boxes[..., 1] + 1
    return w * h


def box_iou_vid(a, b):
    """Pairwise IoU with the +1-pixel convention.

    Args:
        a (Tensor[N, 4] or ndarray[N, 4]): boxes in (x1, y1, x2, y2)
        b (Tensor[M, 4] or ndarray[M, 4]): boxes in (x1, y1, x2, y2)
    Returns:
        Tensor[N, M] or ndarray[N, M] (the type of ``a``)
    """
    xp = torch if isinstance(a, torch.Tensor) else np
    if xp is torch:
        b = torch.as_tensor(b, dtype=a.dtype, device=a.device)
        clip = lambda x: x.clamp(min=0)  # noqa: E731
    else:
        a = np.asarray(a, dtype=np.float64)
        b = np.asarray(b, dtype=np.float64)
        clip = lambda x: np.maximum(x, 0)  # noqa: E731
    ix1 = xp.maximum(a[:, None, 0], b[None, :, 0])  # (N, M)
    iy1 = xp.maximum(a[:, None, 1], b[None, :, 1])
    ix2 = xp.minimum(a[:, None, 2], b[None, :, 2])
    iy2 = xp.minimum(a[:, None, 3], b[None, :, 3])
    inter = clip(ix2 - ix1 + 1) * clip(iy2 - iy1 + 1)  # (N, M)
    union = box_area_vid(a)[:, None] + box_area_vid(b)[None, :] - inter
    return inter / union


def vid_iou_threshold(gt_boxes):
    """Per-ground-truth IoU threshold of the ImageNet VID protocol.

    ``thr = min(0.5, w*h / ((w + 10) * (h + 10)))`` with ``w = x2 - x1 + 1``:
    small objects get a relaxed threshold, so that a detection a few pixels off
    still counts.
    """
    w = gt_boxes[..., 2] - gt_boxes[..., 0] + 1
    h = gt_boxes[..., 3] - gt_boxes[..., 1] + 1
    thr = (w * h) / ((w + 10.0) * (h + 10.0))
    if isinstance(thr, torch.Tensor):
        return thr.clamp(max=0.5)
    return np.minimum(thr, 0.5)


def vid_to_continuous(boxes):
    """Inclusive pixel corners (VID XML) -> torchvision's continuous boxes: ``x2 + 1, y2 + 1``.

    A box covering pixels 10..29 spans [10, 30) in continuous coordinates; the
    detectors train and predict in that convention.
    """
    out = boxes.clone() if isinstance(boxes, torch.Tensor) else np.array(boxes, dtype=np.float64)
    out[..., 2:] += 1
    return out


def continuous_to_vid(boxes):
    """The inverse of :func:`vid_to_continuous`, for scoring detections with the VID protocol.

    A box thinner than a pixel (torchvision keeps boxes down to 0.01 px) becomes a
    one-pixel box (``x2 = x1``) rather than an inverted one.
    """
    if isinstance(boxes, torch.Tensor):
        return torch.cat([boxes[..., :2], torch.maximum(boxes[..., 2:] - 1, boxes[..., :2])], dim=-1)
    out = np.array(boxes, dtype=np.float64)
    out[..., 2:] = np.maximum(out[..., 2:] - 1, out[..., :2])
    return out
