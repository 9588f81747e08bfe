"""Reading the seed benchmark back (minivod.eval.seeds) and the gain figure (plots.plot_gains)."""
import math

import pytest
from matplotlib.figure import Figure

from minivod.eval.plots import plot_gains
from minivod.eval.seeds import NO_RUNS, REFERENCE, fmt_mean_std, mean_std, seed_rows, seed_table, verdict_lines
from minivod.eval.verdict import FAILS, HOLDS, NOT_ESTABLISHED


def run(seed, m, fast=0.5):
    return {"seed": seed, "val": {"mAP": m, "mAP_fast": fast}}


def entry(diff, low, high):
    return {"a": 0.5, "b": 0.5 + diff, "diff": diff, "low": low, "high": high}


SEEDS = {
    "runs": {"base": [run(0, 0.80), run(1, 0.81), run(2, 0.79)],
             "good": [run(0, 0.86, 0.7), run(1, 0.85, 0.7), run(2, 0.87, 0.7)],
             "noisy": [run(0, 0.82), run(1, 0.78), run(2, 0.80)],
             "bad": [run(0, 0.70)]},
    "comparisons": {
        "good": {"against": "base", "seed": 0, "interval": {"mAP": entry(0.06, 0.03, 0.09),
                                                            "mAP_fast": entry(0.2, 0.1, 0.3)}},
        "noisy": {"against": "base", "seed": 0, "interval": {"mAP": entry(0.02, 0.005, 0.04),
                                                             "mAP_fast": entry(0.0, -0.1, 0.1)}},
        "bad": {"against": "base", "seed": 0, "interval": {"mAP": entry(-0.1, -0.15, -0.05),
                                                           "mAP_fast": entry(0.0, -0.1, 0.1)}},
    },
    "missing": [["bad", 1], ["bad", 2]],
}


def test_mean_std_is_the_sample_std():
    assert mean_std([0.8]) == (0.8, 0.0)
    m, s = mean_std([1.0, 2.0, 3.0])
    assert m == pytest.approx(2.0) and s == pytest.approx(1.0)


def test_rows_and_verdicts():
    rows = {r["method"]: r for r in seed_rows(SEEDS, ["base", "good", "noisy", "bad", "later"])}
    assert rows["base"]["verdict"] == REFERENCE and rows["base"]["gain"] is None
    assert rows["good"]["mean"] == pytest.approx(0.86) and rows["good"]["verdict"] == HOLDS
    # interval above zero, but seed ranges 0.78-0.82 and 0.79-0.81 overlap
    assert rows["noisy"]["verdict"] == NOT_ESTABLISHED
    assert rows["bad"]["verdict"] == NOT_ESTABLISHED  # below zero, but a single seed ranks nothing
    assert rows["later"]["verdict"] == NO_RUNS and rows["later"]["values"] == []
    fast = {r["method"]: r for r in seed_rows(SEEDS, ["good", "noisy"], "mAP_fast")}
    assert fast["good"]["verdict"] == HOLDS and fast["noisy"]["verdict"] == NOT_ESTABLISHED
    empty = {**SEEDS, "comparisons": {"good": {"against": "base", "interval": {"mAP": dict.fromkeys(entry(0, 0, 0))}}}}
    row = seed_rows(empty, ["good"])[0]  # a figure without a value (null in the file)
    assert row["verdict"] == NOT_ESTABLISHED and "-" in seed_table(empty, ["good"]).splitlines()[1].split()
    three = {**SEEDS, "runs": {**SEEDS["runs"], "bad": [run(0, 0.70), run(1, 0.71), run(2, 0.69)]}}
    assert {r["method"]: r["verdict"] for r in seed_rows(three, ["bad"])} == {"bad": FAILS}


def test_table_names_every_method():
    lines = seed_table(SEEDS, ["base", "good", "later"]).splitlines()
    assert len(lines) == 4 and "mAP mean ± std" in lines[0]
    assert "0.860 ± 0.010" in lines[2] and "+0.060 [+0.030, +0.090]" in lines[2] and lines[2].endswith(HOLDS)
    assert lines[3].split()[0] == "later" and lines[3].endswith(NO_RUNS)
    lines = seed_table(SEEDS, ["bad"]).splitlines()
    assert lines[1].split()[:3] == ["bad", "0.700", "1"]  # one seed: no ± 0.000
    assert lines[-1] == "not trained yet: bad seed 1, bad seed 2"
    assert len(seed_table(SEEDS, ["bad"], missing=False).splitlines()) == 2


def test_verdict_lines_name_each_compared_or_missing_method():
    assert fmt_mean_std([0.7]) == "0.700 (1)" and fmt_mean_std([1.0, 2.0, 3.0]) == "2.000 ± 1.000 (3)"
    measured, verdict = verdict_lines(SEEDS, ["base", "good", "bad", "later"], ["mAP", "mAP_fast"])
    assert measured.splitlines() == [
        "good against base: mAP 0.860 ± 0.010 (3) vs 0.800 ± 0.010 (3), gain +0.060 [+0.030, +0.090]; "
        "fast 0.700 ± 0.000 (3) vs 0.500 ± 0.000 (3), gain +0.200 [+0.100, +0.300]",
        "bad against base: mAP 0.700 (1) vs 0.800 ± 0.010 (3), gain -0.100 [-0.150, -0.050]; "
        "fast 0.500 (1) vs 0.500 ± 0.000 (3), gain +0.000 [-0.100, +0.100]",
        "later: not retrained yet"]  # base, a reference, is left out
    assert verdict.splitlines() == [f"good: mAP {HOLDS}; fast {HOLDS}",
                                    f"bad: mAP {NOT_ESTABLISHED}; fast {NOT_ESTABLISHED}", f"later: {NO_RUNS}"]


def test_gain_figure_has_one_error_bar_series_per_method_and_panel():
    fig = plot_gains(SEEDS["comparisons"])
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    speed, degradation = fig.axes
    assert len(speed.containers) == 3 and [t.get_text() for t in speed.get_xticklabels()] == ["mAP", "slow",
                                                                                             "medium", "fast"]
    line = speed.containers[0].lines[0]  # "good": mAP and fast have intervals, slow and medium none
    assert list(line.get_ydata()) == pytest.approx([0.06, 0.2])
    assert len(degradation.containers[0].lines[0].get_ydata()) == 0  # no clean / degraded entries
    assert [t.get_text() for t in degradation.get_legend().get_texts()] == ["good - base", "noisy - base",
                                                                            "bad - base"]
    nan = {"x": {"against": "base", "interval": {"mAP": entry(math.nan, math.nan, math.nan)}}}
    assert len(plot_gains(nan).axes[0].containers[0].lines[0].get_ydata()) == 0
    assert isinstance(plot_gains({}), Figure)


def test_ablation_table_reads_the_pairs_and_names_the_missing(tmp_path):
    import json

    from minivod.eval.ablations import NOT_MEASURED, ablation_table, pair_key, read_ablations

    assert read_ablations(tmp_path / "none.json") == {}
    entry = {"row": "ssvd", "against": "ssvd_single_2heads", "mAP": [0.81, 0.79], "verdict": NOT_ESTABLISHED,
             "interval": {"mAP": {"diff": 0.02, "low": -0.01, "high": 0.05},
                          "mAP_fast": {"diff": 0.05, "low": 0.01, "high": 0.09},
                          "mAP_degraded": {"diff": None, "low": None, "high": None}}}
    (tmp_path / "ablations.json").write_text(json.dumps({"pairs": {pair_key("ssvd", "ssvd_single_2heads"): entry}}))
    pairs = read_ablations(tmp_path / "ablations.json")
    lines = ablation_table(pairs, [("ssvd", "ssvd_single_2heads"), ("ssvd_motion", "ssvd_single")]).splitlines()
    assert len(lines) == 3
    assert "0.810 / 0.790" in lines[1] and "+0.020 [-0.010, +0.050]" in lines[1] and "+0.050 [+0.010, +0.090]" in lines[1]
    assert lines[1].rstrip().endswith(NOT_ESTABLISHED) and " - " in lines[1]  # no degraded value: a dash
    assert lines[2].startswith("ssvd_motion") and NOT_MEASURED in lines[2]
