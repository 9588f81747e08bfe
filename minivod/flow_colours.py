"""The optical-flow colour wheel: direction as hue, length as brightness (HSV value), and its key.

A flow field ``(2, H, W)`` of ``(dx, dy)`` in pixels (y pointing down, as in an image) becomes an RGB
image: the hue is the direction of the motion, the value its length divided by ``max_magnitude``
(black: no motion; full brightness: ``max_magnitude`` or more), full saturation. The key is the
same coding applied to a disc of flows, ``(dx, dy) = (x, y)`` from its centre, so a colour in a flow
image reads off the key as the arrow from the key's centre to where that colour sits.
"""
from __future__ import annotations

import numpy as np


def flow_colours(flow, max_magnitude: float | None = None) -> np.ndarray:
    """A flow field (2, H, W) as an RGB image (H, W, 3) in [0, 1].

    Args:
        flow (ndarray or Tensor[2, H, W]): (dx, dy) in pixels
        max_magnitude: the length shown at full brightness (default: the field's largest)
    """
    import matplotlib.colors as mcolors

    flow = flow.detach().cpu().numpy() if hasattr(flow, "detach") else np.asarray(flow)
    dx, dy = flow[0].astype(np.float64), flow[1].astype(np.float64)
    length = np.hypot(dx, dy)  # (H, W)
    top = max_magnitude or max(float(length.max()), 1e-6)
    hue = (np.arctan2(dy, dx) / (2 * np.pi)) % 1.0  # (H, W): right = red, then down, left, up
    hsv = np.stack([hue, np.ones_like(hue), np.clip(length / top, 0, 1)], axis=-1)  # (H, W, 3)
    return mcolors.hsv_to_rgb(hsv)


def colour_wheel(max_magnitude: float, size: int = 101) -> np.ndarray:
    """The key: an RGB image (size, size, 4) with alpha, a disc of radius ``max_magnitude`` in which the
    pixel at (x, y) from the centre shows the flow (dx, dy) = (x, y) (scaled to the disc)."""
    r = np.linspace(-max_magnitude, max_magnitude, size)
    dy, dx = np.meshgrid(r, r, indexing="ij")  # (size, size) each, y down as in an image
    rgb = flow_colours(np.stack([dx, dy]), max_magnitude)  # (size, size, 3)
    alpha = (np.hypot(dx, dy) <= max_magnitude).astype(np.float64)[..., None]
    return np.concatenate([rgb, alpha], axis=-1)  # (size, size, 4)


def show_colour_wheel(ax, max_magnitude: float, unit: str = "px") -> None:
    """Draw the key on ``ax``: the wheel with its axes in flow units (dx right, dy down)."""
    ax.imshow(colour_wheel(max_magnitude), extent=(-max_magnitude, max_magnitude, max_magnitude, -max_magnitude))
    ax.axhline(0, color="0.6", lw=0.5)
    ax.axvline(0, color="0.6", lw=0.5)
    ax.set_xlabel(f"dx ({unit})", fontsize=8)
    ax.set_ylabel(f"dy ({unit}, down)", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.set_title(f"key (edge: {max_magnitude:.1f} {unit})", fontsize=9)
