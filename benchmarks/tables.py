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
