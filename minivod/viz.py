"""Drawing helpers shared by the notebooks: frames with boxes, flow images, timelines."""
from __future__ import annotations

import numpy as np

TRACK_COLOURS = ["#ffffff", "#ffde59", "#59ffde", "#ff59de", "#9dff59", "#ff9d59", "#59a8ff", "#c8c8c8"]


def to_hwc(image):
    """A (3, H, W) tensor/array in [0, 1] or an (H, W, 3) uint8 array -> (H, W, 3) for imshow."""
    a = image.detach().cpu().numpy() if hasattr(image, "detach") else np.asarray(image)
    if a.ndim == 3 and a.shape[0] == 3:
        a = a.transpose(1, 2, 0)  # (H, W, 3)
    return a


def draw_boxes(ax, image, boxes, labels=None, track_ids=None, scores=None, class_names=None,
               colour=None, title=None, fontsize=7, continuous=False):
    """Show ``image`` on ``ax`` with ``boxes (N, 4)`` in (x1, y1, x2, y2) and short captions.

    Boxes are VID's inclusive pixel corners, or torchvision's continuous boxes
    (anchors, proposals, raw detections) with ``continuous=True``.
    """
    from matplotlib.patches import Rectangle

    ax.imshow(to_hwc(image))
    boxes = np.asarray(boxes.detach().cpu() if hasattr(boxes, "detach") else boxes, dtype=float).reshape(-1, 4)
    if continuous:
        boxes = boxes - np.array([0, 0, 1, 1])  # [x1, x2) -> pixels x1..x2-1
    for j, (x1, y1, x2, y2) in enumerate(boxes):
        tid = None if track_ids is None else int(track_ids[j])
        c = colour or TRACK_COLOURS[(tid or 0) % len(TRACK_COLOURS)]
        ax.add_patch(Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1 + 1, y2 - y1 + 1, fill=False, color=c, lw=1.2))
        parts = []
        if labels is not None:
            k = int(labels[j])
            parts.append(class_names[k - 1] if class_names else str(k))
        if tid is not None:
            parts.append(f"#{tid}")
        if scores is not None:
            parts.append(f"{float(scores[j]):.2f}")
        if parts:
            ax.text(x1, y1 - 1.5, " ".join(parts), color=c, fontsize=fontsize, va="bottom")
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=fontsize + 1)
    return ax


def flow_to_rgb(flow, max_norm=None):
    """Colour-code a flow field (2, H, W): hue = direction, brightness = magnitude."""
    import matplotlib.colors as mcolors

    dx, dy = flow[0], flow[1]
    mag = np.hypot(dx, dy)
    max_norm = max_norm or max(float(mag.max()), 1e-6)
    hue = (np.arctan2(dy, dx) / (2 * np.pi)) % 1.0
    hsv = np.stack([hue, np.clip(mag / max_norm, 0, 1), np.ones_like(mag)], -1)  # (H, W, 3)
    hsv[..., 2] = np.where(mag > 1e-3, 1.0, 0.92)
    return mcolors.hsv_to_rgb(hsv)


def crop(image_hwc, box, pad=2):
    """The pixels of ``box`` (inclusive corners) with a small margin, clipped to the image."""
    h, w = image_hwc.shape[:2]
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    return image_hwc[max(0, y1 - pad):min(h, y2 + pad + 1), max(0, x1 - pad):min(w, x2 + pad + 1)]
