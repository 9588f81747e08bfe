"""Tests of minivod.eval.ratio_bootstrap: a pooled ratio and its interval over resampled videos."""
from __future__ import annotations

import numpy as np
import pytest

from minivod.eval.ratio_bootstrap import ratio_interval


def test_value_is_the_pooled_ratio_and_a_constant_ratio_has_no_spread():
    num, den, video = [1, 2, 3, 6], [2, 4, 6, 12], ["a", "a", "b", "c"]
    r = ratio_interval(num, den, video)
    assert r["value"] == pytest.approx(0.5) and r["low"] == pytest.approx(0.5) and r["high"] == pytest.approx(0.5)
    assert (r["num_videos"], r["num_items"]) == (3, 4)


def test_interval_matches_an_explicit_resampling_loop():
    rng = np.random.default_rng(1)
    video = np.repeat(np.arange(6), 5)  # 6 videos of 5 items
    num, den = rng.random(30) + video * 0.1, np.ones(30)
    r = ratio_interval(num, den, video, resamples=200, seed=3)
    draws = np.random.default_rng(3).multinomial(6, np.full(6, 1 / 6), size=200)  # the same draws
    by_hand = []
    for counts in draws:  # copy each drawn video's items as many times as it was drawn
        items = np.concatenate([np.flatnonzero(video == v) for v in range(6) for _ in range(counts[v])])
        by_hand.append(num[items].sum() / den[items].sum())
    low, high = np.percentile(by_hand, [2.5, 97.5])
    assert r["low"] == pytest.approx(low) and r["high"] == pytest.approx(high)
    assert r["value"] == pytest.approx(num.mean())
    assert r["low"] < r["value"] < r["high"]


def test_no_items_is_an_error():
    with pytest.raises(ValueError):
        ratio_interval([], [], [])
