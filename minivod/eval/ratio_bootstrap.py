"""A ratio of sums over objects, with its bootstrap interval over videos.

Some measurements are made per object (or per frame) and pooled: "how far the learned offsets
miss the true motion, over how far the objects move" is sum(|m - s|) / sum(|m|) over every
object seen. Objects of one video are not independent, so, as in ``bootstrap.py``, the unit of
resampling is the video: a replicate draws the V videos with replacement and recomputes the
ratio with each video counted as often as it was drawn. With ``den = 1`` the ratio is a mean.
"""
from __future__ import annotations

import numpy as np


def ratio_interval(num, den, video, resamples: int = 1000, seed: int = 0, level: float = 0.95) -> dict:
    """sum(num) / sum(den), and its ``level`` percentile interval over video resamples.

    Args:
        num, den (array[N]): the numerator and denominator of each item (an object, a frame)
        video (array[N]): the video of each item (any hashable labels)
        resamples: bootstrap replicates R; seed: of the draws (``numpy.random.default_rng``)
    Returns:
        ``{"value", "low", "high", "num_videos", "num_items"}``
    """
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    _, vid = np.unique(np.asarray(video), return_inverse=True)  # (N,) video k of each item
    V = int(vid.max()) + 1 if len(vid) else 0
    if V == 0:
        raise ValueError("no items to pool")
    num_v = np.bincount(vid, weights=num, minlength=V)  # (V,) per-video sums
    den_v = np.bincount(vid, weights=den, minlength=V)  # (V,)
    draws = np.random.default_rng(seed).multinomial(V, np.full(V, 1.0 / V), size=resamples)  # (R, V)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratios = (draws @ num_v) / (draws @ den_v)  # (R,)
    ratios = ratios[np.isfinite(ratios)]
    low, high = np.percentile(ratios, [50 * (1 - level), 50 * (1 + level)]) if len(ratios) else (np.nan, np.nan)
    return {"value": float(num_v.sum() / den_v.sum()), "low": float(low), "high": float(high),
            "num_videos": V, "num_items": int(len(num))}
