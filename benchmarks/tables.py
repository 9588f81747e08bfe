"""The rows and Markdown tables of the benchmarks.

A benchmark row is the evaluator's headline figures (``minivod.eval.figures``, the demo's row too)
with ms/frame. In the ablation results files (``selsa_dsfnet``, ``mst``, ``psla``, ``ssvd``) the
clean / degraded figures are keyed ``clean`` and ``degraded`` (:func:`row`); the run records and
the seed tables keep the evaluator's ``mAP_clean`` / ``mAP_degraded``. Imported by the scripts in
this folder (``python benchmarks/X.py`` puts the folder on ``sys.path``).
"""
from __future__ import annotations

from minivod.eval import FIGURES, figures
from minivod.eval.seeds import fmt_gain, fmt_mean_std, mean_std  # noqa: F401  (re-exported for the benchmarks)

COLUMNS = (("mAP", "mAP"), ("mAP_slow", "slow"), ("mAP_medium", "medium"), ("mAP_fast", "fast"),
           ("clean", "clean"), ("degraded", "degraded"))


# --------------------------------------------------------------------------- rows
def row(result: dict, ms_per_frame: float) -> dict:
    """An ``evaluate_vid`` result and its ms/frame as one row of an ablation table."""
    f = figures(result)
    return {"mAP": f["mAP"], "mAP_slow": f["mAP_slow"], "mAP_medium": f["mAP_medium"], "mAP_fast": f["mAP_fast"],
            "clean": f["mAP_clean"], "degraded": f["mAP_degraded"], "ms_per_frame": ms_per_frame}


def show(label: str, r: dict, ms_digits: int = 1) -> None:
    """Print a row as it is measured (the tables come at the end)."""
    cells = "  ".join(f"{t} {'-' if r.get(k) is None else format(r[k], '.3f')}" for k, t in COLUMNS)
    print(f"  {label:<40} {cells}  {r['ms_per_frame']:.{ms_digits}f} ms/frame", flush=True)


# --------------------------------------------------------------------------- cells
def _cell(v) -> str:
    if v is None:
        return "-"
    return f"{v:,}" if isinstance(v, int) else f"{v:.3f}" if isinstance(v, float) else str(v)


def intervals(comparison: dict, figures=FIGURES) -> list[str]:
    """The cells of one paired-bootstrap comparison (``{figure: entry}``), one per figure."""
    return [fmt_gain(comparison[f]) for f in figures]  # +0.052 [+0.011, +0.093]


def short(figure: str) -> str:
    """A figure's column title: ``mAP_slow`` -> ``slow``."""
    return figure.replace("mAP_", "")


# --------------------------------------------------------------------------- tables
def markdown_table(head, rows, align: str | None = None) -> str:
    """``head``: column titles; ``rows``: lists of cell texts (an empty one is ``| |``); ``align``: ``l`` /
    ``r`` per column (default: the first left, the others right). No trailing newline."""
    align = align or "l" + "r" * (len(head) - 1)
    def line(cells):
        return "|" + "|".join(f" {c} " if c else " " for c in cells) + "|"

    return "\n".join([line(head), "|" + "".join(" --- |" if a == "l" else " ---: |" for a in align)]
                     + [line(cells) for cells in rows])


def md_table(title: str, rows: dict, extra=(), first: str = "setting", ms_digits: int = 1) -> str:
    """``rows``: ``{setting: {mAP, mAP_slow, mAP_medium, mAP_fast, clean, degraded, ms_per_frame, *extra}}``."""
    head = [first] + [t for _, t in COLUMNS] + ["ms/frame"] + list(extra)
    body = []
    for name, r in rows.items():
        ms = r.get("ms_per_frame")
        body.append([name] + [_cell(r.get(k)) for k, _ in COLUMNS] + ["-" if ms is None else f"{ms:.{ms_digits}f}"]
                    + [_cell(r.get(e)) for e in extra])
    return f"### {title}\n\n" + markdown_table(head, body) + "\n"
