"""The verdict on a paper's claim, from an interval and (where there are several) training seeds.

Every notebook ends with the same box: the paper's claim, what was measured here, and one of
three verdicts. The rule is the project's standard for every number:

- **holds**: the 95% interval of the gain lies above zero and, where seeds were trained, the
  seed ranges of the two rows do not overlap;
- **fails**: the interval lies below zero (and the seed ranges do not overlap, where given);
- **not established**: anything else; a gap inside the noise is not ranked.

``benchmarks/bench_seeds.py`` applies the same rule to the seed table ("worse" there is
"fails" here).
"""
from __future__ import annotations

import math
import textwrap
from typing import Sequence

HOLDS, FAILS, NOT_ESTABLISHED = "holds", "fails", "not established"


def claim_verdict(low: float, high: float, seeds: Sequence[float] | None = None,
                  seeds_against: Sequence[float] | None = None) -> str:
    """holds / fails / not established for a claim "this gain is positive".

    Args:
        low, high: the 95% interval of the gain (e.g. a paired bootstrap over val videos).
        seeds, seeds_against: the figure of each training seed of the two rows compared; when
            both are given, a verdict other than "not established" also needs their ranges
            not to overlap (one seed per row is not enough to rank two models).
    """
    if math.isnan(low) or math.isnan(high):
        return NOT_ESTABLISHED
    if seeds is not None and seeds_against is not None:
        if len(seeds) < 2 or len(seeds_against) < 2:
            return NOT_ESTABLISHED
        apart_above, apart_below = min(seeds) > max(seeds_against), max(seeds) < min(seeds_against)
    else:
        apart_above = apart_below = True
    if low > 0 and apart_above:
        return HOLDS
    if high < 0 and apart_below:
        return FAILS
    return NOT_ESTABLISHED


def verdict_box(claim: str, measured: str, verdict: str, width: int = 96) -> str:
    """The closing box of a notebook as plain text (printed, so nbval compares it).

    >>> print(verdict_box("B beats A", "+0.020 [+0.010, +0.030]", "holds", width=60))
    +----------------------------------------------------------+
    | Paper's claim  B beats A                                 |
    | Measured here  +0.020 [+0.010, +0.030]                   |
    | Verdict        holds                                     |
    +----------------------------------------------------------+
    """
    inner = width - 4
    lines = ["+" + "-" * (width - 2) + "+"]
    for label, text in (("Paper's claim", claim), ("Measured here", measured), ("Verdict", verdict)):
        wrapped = []
        for para in text.split("\n"):
            wrapped += textwrap.wrap(para, inner - 15) or [""]
        for i, chunk in enumerate(wrapped):
            lines.append("| " + f"{label if i == 0 else '':<15}{chunk}".ljust(inner) + " |")
    lines.append("+" + "-" * (width - 2) + "+")
    return "\n".join(lines)
