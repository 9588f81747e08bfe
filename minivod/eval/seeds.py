"""The seed benchmark read back: each method over training seeds, its gain and the verdict.

``benchmarks/bench_seeds.py`` trains every headline method with several seeds and writes
``benchmarks/results/seeds.json``:

- ``runs``: ``{method: [one record per seed: {"seed", "val": {figure: value}, ...}]}``;
- ``comparisons``: ``{method: {"against", "seed", "interval": {figure: {a, b, diff, low, high}}}}``,
  the method's seed-0 run against the seed-0 run of the single-frame detector it builds on, with
  the 95% paired bootstrap interval over val videos (:func:`~minivod.eval.bootstrap.paired_bootstrap`);
- ``missing``: ``[[method, seed], ...]`` runs not trained yet.

:func:`seed_rows` turns it into one row per method (mean ± std over seeds, the gain, the
verdict of :func:`~minivod.eval.verdict.claim_verdict`), :func:`seed_table` prints them,
:func:`verdict_lines` writes them for a verdict box, and :func:`~minivod.eval.plots.plot_gains`
draws the intervals. Notebook 08 reads the file this way,
so its table and its verdict follow the file when more seeds are added.
"""
from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Sequence

from minivod.eval.verdict import claim_verdict

NO_RUNS = "no seeds yet"
REFERENCE = "single-frame reference"


def read_seeds(path) -> dict:
    """``seeds.json`` as written by ``benchmarks/bench_seeds.py``."""
    return json.loads(Path(path).read_text())


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n - 1; 0 for a single run), as ``bench_seeds.py`` reports them."""
    values = [float(v) for v in values]
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def seed_rows(seeds: dict, methods: Sequence[str], figure: str = "mAP") -> list[dict]:
    """One row per method for one figure (``mAP``, ``mAP_fast``, ``mAP_degraded``, ...).

    Returns:
        list of ``{"method", "values" (one per seed), "mean", "std", "against", "gain", "verdict"}``:
        ``gain`` is the comparison entry ``{a, b, diff, low, high}`` (None without a comparison),
        ``verdict`` is :func:`claim_verdict` of the interval and both rows' seed values, or
        :data:`REFERENCE` for a method compared with nothing, :data:`NO_RUNS` for one not trained yet
    """
    rows = []
    for m in methods:
        runs = seeds["runs"].get(m, [])
        values = [r["val"][figure] for r in runs]
        row = {"method": m, "values": values, "mean": None, "std": None, "against": None, "gain": None,
               "verdict": NO_RUNS if not runs else REFERENCE}
        if runs:
            row["mean"], row["std"] = mean_std(values)
        comparison = seeds.get("comparisons", {}).get(m)
        if comparison is not None:
            base = [r["val"][figure] for r in seeds["runs"][comparison["against"]]]
            gain = comparison["interval"][figure]
            low, high = (math.nan if gain[k] is None else gain[k] for k in ("low", "high"))  # null: no value
            row.update(against=comparison["against"], gain=gain, verdict=claim_verdict(low, high, values, base))
        rows.append(row)
    return rows


def fmt_gain(gain: dict | None) -> str:
    """``+0.011 [-0.006, +0.028]``: a gain and its interval (``-`` without one)."""
    if gain is None or any(gain[k] is None or math.isnan(gain[k]) for k in ("diff", "low", "high")):
        return "-"
    return f"{gain['diff']:+.3f} [{gain['low']:+.3f}, {gain['high']:+.3f}]"


def seed_table(seeds: dict, methods: Sequence[str], figure: str = "mAP", missing: bool = True) -> str:
    """:func:`seed_rows` as aligned text: figure mean ± std (seeds), gain over the reference, verdict;
    with ``missing``, a last line naming the seed runs of these methods not trained yet."""
    head = ["method", f"{figure} mean ± std", "seeds", "against", "gain, seed 0 [95% interval]", "verdict"]
    body = []
    for r in seed_rows(seeds, methods, figure):
        n = len(r["values"])
        stat = "-" if not n else f"{r['mean']:.3f}" + (f" ± {r['std']:.3f}" if n > 1 else "")  # no spread of one
        body.append([r["method"], stat, str(n), r["against"] or "-", fmt_gain(r["gain"]), r["verdict"]])
    widths = [max(len(x) for x in col) for col in zip(head, *body)]
    lines = ["  ".join(x.ljust(w) for x, w in zip(row, widths)).rstrip() for row in [head] + body]
    untrained = [(m, s) for m, s in seeds.get("missing", []) if m in methods]
    if missing and untrained:
        lines.append("not trained yet: " + ", ".join(f"{m} seed {s}" for m, s in untrained))
    return "\n".join(lines)


def fmt_mean_std(values: Sequence[float]) -> str:
    """``0.853 ± 0.007 (3)``; a single seed has no spread: ``0.769 (1)``."""
    m, s = mean_std(values)
    return f"{m:.3f}" + (f" ± {s:.3f}" if len(values) > 1 else "") + f" ({len(values)})"


def verdict_lines(seeds: dict, methods: Sequence[str], figures: Sequence[str] = ("mAP",)) -> tuple[str, str]:
    """The "measured" and "verdict" texts of a verdict box (:func:`~minivod.eval.verdict.verdict_box`).

    One line per method in ``methods``: a compared method gets, per figure, its mean ± std (seeds) against
    its reference's and the seed-0 gain with its interval, and the verdict per figure; a method without runs
    is named as not retrained yet; a method with runs and no comparison (a single-frame reference) is left out.
    """
    by_figure = {f: {r["method"]: r for r in seed_rows(seeds, methods, f)} for f in figures}
    measured, verdicts = [], []
    for m in methods:
        rows = [by_figure[f][m] for f in figures]
        if not rows[0]["values"]:
            measured.append(f"{m}: not retrained yet")
            verdicts.append(f"{m}: {NO_RUNS}")
            continue
        against = rows[0]["against"]
        if against is None:
            continue
        base = [[r["val"][f] for r in seeds["runs"][against]] for f in figures]
        measured.append(f"{m} against {against}: " + "; ".join(
            f"{f.replace('mAP_', '')} {fmt_mean_std(r['values'])} vs {fmt_mean_std(b)}, gain {fmt_gain(r['gain'])}"
            for f, r, b in zip(figures, rows, base)))
        verdicts.append(f"{m}: " + "; ".join(f"{f.replace('mAP_', '')} {r['verdict']}" for f, r in zip(figures, rows)))
    return "\n".join(measured), "\n".join(verdicts)
