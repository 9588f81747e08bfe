"""The Markdown table every accuracy benchmark prints: one row per setting.

Imported by the scripts in this folder (``python benchmarks/X.py`` puts the folder on ``sys.path``).
"""
from __future__ import annotations

COLUMNS = (("mAP", "mAP"), ("mAP_slow", "slow"), ("mAP_medium", "medium"), ("mAP_fast", "fast"),
           ("clean", "clean"), ("degraded", "degraded"))


def _cell(v) -> str:
    if v is None:
        return "-"
    return f"{v:,}" if isinstance(v, int) else f"{v:.3f}" if isinstance(v, float) else str(v)


def md_table(title: str, rows: dict, extra=(), first: str = "setting", ms_digits: int = 1) -> str:
    """``rows``: ``{setting: {mAP, mAP_slow, mAP_medium, mAP_fast, clean, degraded, ms_per_frame, *extra}}``."""
    head = f"| {first} | " + " | ".join(t for _, t in COLUMNS) + " | ms/frame |" + "".join(f" {e} |" for e in extra)
    lines = [f"### {title}", "", head, "| --- |" + " ---: |" * (len(COLUMNS) + 1 + len(extra))]
    for name, r in rows.items():
        ms = r.get("ms_per_frame")
        cells = [_cell(r.get(k)) for k, _ in COLUMNS] + ["-" if ms is None else f"{ms:.{ms_digits}f}"]
        cells += [_cell(r.get(e)) for e in extra]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def mean_std(values) -> tuple[float, float]:
    """Mean and sample standard deviation (n - 1; 0 for a single run) of a row's runs."""
    import statistics

    values = [float(v) for v in values]
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def fmt_mean_std(values) -> str:
    """``0.871 ± 0.012 (3)``: mean ± std over the runs of a row, and how many runs."""
    m, s = mean_std(values)
    return f"{m:.3f} ± {s:.3f} ({len(values)})"


def fmt_interval(c: dict) -> str:
    """``+0.052 [+0.011, +0.093]``: a paired-bootstrap entry (``minivod.eval.bootstrap``) as text."""
    if any(c[k] is None or c[k] != c[k] for k in ("diff", "low", "high")):  # no value (NaN / null)
        return "-"
    return f"{c['diff']:+.3f} [{c['low']:+.3f}, {c['high']:+.3f}]"


def seeds_table(title: str, runs: dict, figures=("mAP", "mAP_slow", "mAP_medium", "mAP_fast", "mAP_clean",
                                                 "mAP_degraded")) -> str:
    """``runs``: ``{row: [result dict per seed]}`` -> one Markdown row per setting with mean ± std per figure."""
    head = "| setting | " + " | ".join(f.replace("mAP_", "") for f in figures) + " |"
    lines = [f"### {title}", "", head, "| --- |" + " ---: |" * len(figures)]
    for name, results in runs.items():
        lines.append(f"| {name} | " + " | ".join(fmt_mean_std([r[f] for r in results]) for f in figures) + " |")
    return "\n".join(lines) + "\n"
