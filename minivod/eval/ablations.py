"""The ablation benchmark read back: one trained run against the run it is compared with.

``benchmarks/bench_ablations.py`` writes ``benchmarks/results/ablations.json``:
``{"pairs": {"<row> vs <against>": {"row", "against", "claim", "seed", "mAP": [row, against],
"interval": {figure: {a, b, diff, low, high}}, "verdict", "commands"}}}``, the gain of ``row`` over
``against`` (seed 0 of each) with its 95% paired bootstrap interval over val videos.
:func:`ablation_table` prints the pairs a notebook asks for, naming those not measured yet.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from minivod.eval.seeds import fmt_gain

NOT_MEASURED = "not trained yet"


def read_ablations(path) -> dict:
    """``{"<row> vs <against>": entry}`` from ``ablations.json``; {} when the file does not exist yet."""
    path = Path(path)
    return json.loads(path.read_text())["pairs"] if path.is_file() else {}


def pair_key(row: str, against: str) -> str:
    return f"{row} vs {against}"


def ablation_table(pairs: dict, wanted: Sequence[tuple[str, str]],
                   figures: Sequence[str] = ("mAP", "mAP_fast", "mAP_degraded")) -> str:
    """One aligned line per ``(row, against)`` in ``wanted``: both mAPs, the gain of each figure with its
    interval, and the verdict on mAP; a pair without an entry says :data:`NOT_MEASURED`."""
    head = ["row", "against", "mAP (row / against)"] + [f"{f.replace('mAP_', '')} gain [95%]" for f in figures] \
        + ["verdict"]
    body = []
    for row, against in wanted:
        e = pairs.get(pair_key(row, against))
        if e is None:
            body.append([row, against, NOT_MEASURED] + ["-"] * len(figures) + ["-"])
            continue
        body.append([row, against, f"{e['mAP'][0]:.3f} / {e['mAP'][1]:.3f}"]
                    + [fmt_gain(e["interval"].get(f)) for f in figures] + [e["verdict"]])
    widths = [max(len(x) for x in col) for col in zip(head, *body)]
    return "\n".join("  ".join(x.ljust(w) for x, w in zip(r, widths)).rstrip() for r in [head] + body)
