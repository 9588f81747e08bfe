"""Plots of an ImageNet VID evaluation: PR curves per class, AP by speed group and by tag, gains with intervals.

Every function returns a ``matplotlib.figure.Figure`` built without pyplot (no
global state, nothing shown): display it in a notebook or ``fig.savefig(...)``.
"""
from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure

from minivod.eval.breakdown import SPEED_GROUPS


def thin_curve(recall, precision):
    """The first and last point of each recall level: the same curve and envelope, far fewer points.

    Args:
        recall (ndarray[K]), precision (ndarray[K]): along the score ranking
    """
    first = np.diff(recall, prepend=-np.inf) != 0  # (K,) a TP: the level's highest precision
    last = np.diff(recall, append=np.inf) != 0  # (K,) after the level's FPs
    keep = np.flatnonzero(first | last)
    return recall[keep], precision[keep]


def plot_pr_curves(result: dict, classes=None, ncols: int = 6) -> Figure:
    """Precision-recall curve of each class, with its interpolated envelope and AP.

    Args:
        result: from ``evaluate_vid(..., return_curves=True)``
        classes: class names to plot (default: every class with ground truth)
        ncols: panels per row
    """
    if "pr_curves" not in result:
        raise ValueError("no PR curves in the result: call evaluate_vid(..., return_curves=True)")
    curves = result["pr_curves"]
    names = list(curves) if classes is None else list(classes)
    nrows = max(1, math.ceil(len(names) / ncols))
    fig = Figure(figsize=(2.3 * ncols, 2.1 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, sharex=True, sharey=True)  # (nrows, ncols)
    for ax, name in zip(axes.flat, names):
        recall, precision = thin_curve(*curves[name])
        envelope = np.maximum.accumulate(precision[::-1])[::-1]  # p_interp(r) = max_{r' >= r} p(r')
        ax.plot(recall, precision, lw=0.8, color="tab:blue", alpha=0.6)
        ax.step(recall, envelope, where="pre", lw=1.2, color="tab:blue")
        ax.set_title(f"{name}  AP {result['per_class'][name]:.3f}", fontsize=8)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.tick_params(labelsize=7)
    for ax in axes.flat[len(names):]:
        ax.set_axis_off()
    fig.supxlabel("recall")
    fig.supylabel("precision")
    return fig


def _bars(ax, labels, values, counts, title, color):
    heights = [0.0 if v is None or math.isnan(v) else v for v in values]
    ax.bar(range(len(labels)), heights, color=color)
    for x, (v, n) in enumerate(zip(values, counts)):
        text = "n/a" if v is None or math.isnan(v) else f"{v:.3f}"
        ax.text(x, heights[x] + 0.01, f"{text}\n({n})", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylim(0, 1.15)
    ax.set_ylabel("mAP")
    ax.set_title(title, fontsize=9)


def plot_ap_by_group(result: dict) -> Figure:
    """mAP overall and by speed group (left), and by degradation tag (right).

    Bars are labelled with the mAP and, in brackets, the number of ground-truth
    boxes in the group. Args: ``result`` from :func:`~minivod.eval.evaluate_vid`.
    """
    counts = result["num_gt"]
    panels = []
    speeds = [g for g in SPEED_GROUPS if f"mAP_{g}" in result]
    if speeds:
        panels.append((["all"] + speeds, [result["mAP"]] + [result[f"mAP_{g}"] for g in speeds],
                       [counts["all"]] + [counts[g] for g in speeds], "by motion speed", "tab:blue"))
    if "mAP_by_tag" in result:
        tags = list(result["mAP_by_tag"])
        panels.append((tags, [result["mAP_by_tag"][t] for t in tags], [counts[t] for t in tags],
                       "by degradation", "tab:orange"))
    if not panels:
        panels.append((["all"], [result["mAP"]], [counts["all"]], "overall", "tab:blue"))
    widths = [max(len(p[0]), 2) for p in panels]
    fig = Figure(figsize=(0.8 * sum(widths) + 2, 3.2), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False, gridspec_kw={"width_ratios": widths})[0]
    for ax, panel in zip(axes, panels):
        _bars(ax, *panel)
    return fig


GAIN_PANELS = (("by motion speed", ("mAP", "mAP_slow", "mAP_medium", "mAP_fast")),
               ("by degradation", ("mAP_clean", "mAP_degraded")))


def _has_interval(entry) -> bool:
    return entry is not None and all(entry.get(k) is not None and not math.isnan(entry[k])
                                     for k in ("diff", "low", "high"))


def plot_gains(comparisons: dict, panels=GAIN_PANELS) -> Figure:
    """Each method's gain over the detector it is compared with, with its 95% interval, per figure.

    One panel per group of figures (default: all / slow / medium / fast, and clean / degraded); in
    each, one point per method and figure at the gain on the split, the error bar its interval.

    Args:
        comparisons: ``{method: {"against": name, "interval": {figure: {"diff", "low", "high"}}}}``,
            the ``comparisons`` of ``benchmarks/results/seeds.json`` (:mod:`minivod.eval.seeds`)
    """
    methods = list(comparisons)
    widths = [len(figs) for _, figs in panels]
    fig = Figure(figsize=(1.1 * sum(widths) + 2.5, 3.4), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False, sharey=True, gridspec_kw={"width_ratios": widths})[0]
    step = 0.7 / max(len(methods), 1)
    for ax, (title, figs) in zip(axes, panels):
        ax.axhline(0, color="0.5", lw=0.8)
        for k, m in enumerate(methods):
            interval = comparisons[m]["interval"]
            shown = [i for i, f in enumerate(figs) if _has_interval(interval.get(f))]  # figures with a value
            x = [i - 0.35 + step * (k + 0.5) for i in shown]
            c = [interval[figs[i]] for i in shown]
            diff = np.array([e["diff"] for e in c], dtype=float)  # (F,)
            err = np.array([[e["diff"] - e["low"] for e in c], [e["high"] - e["diff"] for e in c]], dtype=float)  # (2, F)
            ax.errorbar(x, diff, yerr=err.reshape(2, -1), fmt="o", ms=4, capsize=3, color=f"C{k}",
                        label=f"{m} - {comparisons[m]['against']}")
        ax.set_xticks(range(len(figs)), [f.replace("mAP_", "") for f in figs], fontsize=8)
        ax.set_xlim(-0.5, len(figs) - 0.5)
        ax.set_title(title, fontsize=9)
        ax.tick_params(labelsize=8)
    axes[0].set_ylabel("gain in mAP (95% interval)", fontsize=8)
    fig.suptitle("gain of each method over the detector it builds on: seed 0 against seed 0, "
                 "95% paired bootstrap interval over val videos", fontsize=9)
    if methods:
        axes[-1].legend(fontsize=7, loc="best")
    else:
        axes[0].text(0.5, 0.5, "no comparison yet", transform=axes[0].transAxes, ha="center")
    return fig
