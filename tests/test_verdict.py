"""The verdict rule every notebook's closing box and the seed table use."""
import doctest
import math

import minivod.eval.verdict as verdict_module
from minivod.eval.verdict import FAILS, HOLDS, NOT_ESTABLISHED, claim_verdict, verdict_box


def test_interval_alone_decides_without_seeds():
    assert claim_verdict(0.01, 0.05) == HOLDS
    assert claim_verdict(-0.05, -0.01) == FAILS
    assert claim_verdict(-0.01, 0.05) == NOT_ESTABLISHED
    assert claim_verdict(math.nan, 0.05) == NOT_ESTABLISHED


def test_seed_ranges_must_not_overlap():
    assert claim_verdict(0.01, 0.05, [0.85, 0.86, 0.87], [0.80, 0.81, 0.82]) == HOLDS
    # the interval is above zero, but the seeds overlap: the gap may be training noise
    assert claim_verdict(0.01, 0.05, [0.845, 0.859, 0.855], [0.835, 0.848, 0.835]) == NOT_ESTABLISHED
    assert claim_verdict(-0.05, -0.01, [0.70, 0.72], [0.80, 0.81]) == FAILS
    # one seed per row cannot rank two models
    assert claim_verdict(0.01, 0.05, [0.9], [0.8]) == NOT_ESTABLISHED


def test_box_wraps_long_text_inside_its_border():
    box = verdict_box("x " * 80, "y", "holds", width=60)
    lines = box.splitlines()
    assert all(len(line) == 60 for line in lines)
    assert lines[1].startswith("| Paper's claim") and "holds" in lines[-2]


def test_docstring_example():
    assert doctest.testmod(verdict_module).failed == 0
