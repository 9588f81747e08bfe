"""The paired bootstrap over videos: the fast path equals the slow reference; intervals behave; the CLI."""
import json
import math

import numpy as np
import pytest

from minivod.cli import main
from minivod.eval import FIGURES, evaluate_vid
from minivod.eval.bootstrap import (_Matched, _Split, bootstrap_reference, bootstrap_replicates,
                                    paired_bootstrap, percentile_interval, replicate_figures, video_draws)
from minivod.eval.results_io import VIDDetections, write_vid_results
from minivod.eval.synthetic import synthetic_case


def same(x, y, tol=1e-9) -> bool:
    return (math.isnan(x) and math.isnan(y)) or abs(x - y) <= tol


# --------------------------------------------------------------------------- (a) fast == slow reference
@pytest.mark.parametrize("drawn", [
    ["video_00", "video_01", "video_02", "video_03", "video_04", "video_05"],  # the split itself
    ["video_00", "video_00", "video_02", "video_03", "video_03", "video_03"],  # repeats
    ["video_03", "video_01", "video_03", "video_00", "video_01", "video_04"],  # repeats, any order
    ["video_05", "video_05", "video_05", "video_05", "video_05", "video_05"],  # classes 2, 3 missing
    ["video_01", "video_02", "video_02", "video_04", "video_05", "video_05"],
])
def test_fast_path_equals_the_reference(drawn):
    gt, dets, videos = synthetic_case()
    names = sorted(set(videos.values()))
    counts = np.array([drawn.count(n) for n in names])  # (V,) the replicate's video multiplicities
    fast = replicate_figures(gt, dets, videos, counts)
    slow = bootstrap_reference(gt, dets, videos, drawn)
    assert set(fast) == set(FIGURES)
    for k in FIGURES:
        assert same(fast[k], slow[k]), (k, fast[k], slow[k])
    if set(drawn) == {"video_05"}:  # this replicate really has no box of classes 2 and 3
        labels = np.concatenate([gt.frames[i].labels for i, v in videos.items() if v == "video_05"])
        assert set(labels.tolist()) == {1}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fast_path_equals_the_reference_on_random_draws(seed):
    gt, dets, videos = synthetic_case(seed=seed, videos=5, classes=2)
    names = sorted(set(videos.values()))
    rng = np.random.default_rng(seed)
    for _ in range(3):
        drawn = list(rng.choice(names, len(names)))
        fast = replicate_figures(gt, dets, videos, np.array([drawn.count(n) for n in names]))
        slow = bootstrap_reference(gt, dets, videos, drawn)
        for k in FIGURES:
            assert same(fast[k], slow[k]), (drawn, k, fast[k], slow[k])


def test_full_sample_matches_evaluate_vid():
    gt, dets, videos = synthetic_case(seed=1)
    full = evaluate_vid(dets, gt)
    expected = {"mAP": full["mAP"], "mAP_slow": full["mAP_slow"], "mAP_medium": full["mAP_medium"],
                "mAP_fast": full["mAP_fast"], "mAP_clean": full["mAP_by_tag"]["clean"],
                "mAP_degraded": full["mAP_by_tag"]["degraded"]}
    out = paired_bootstrap(gt, dets, dets, videos, resamples=20)
    for k, v in expected.items():
        assert out[k]["a"] == pytest.approx(v, abs=1e-12) and out[k]["b"] == pytest.approx(v, abs=1e-12), k


# --------------------------------------------------------------------------- (b, c, d) intervals
def test_a_detector_against_itself_is_zero():
    gt, dets, videos = synthetic_case(seed=2)
    out = paired_bootstrap(gt, dets, dets, videos, resamples=200)
    assert set(out) == set(FIGURES) | {"_meta"}
    for k in FIGURES:
        assert out[k]["diff"] == 0 and out[k]["low"] == 0 and out[k]["high"] == 0


def test_small_score_noise_is_not_established():
    gt, dets, videos = synthetic_case(seed=3, videos=12)
    rng = np.random.default_rng(0)
    jittered = VIDDetections(dets.frame_index, dets.labels, dets.scores * rng.uniform(0.97, 1.03, len(dets)),
                             dets.boxes)
    out = paired_bootstrap(gt, dets, jittered, videos, resamples=300)
    assert out["mAP"]["low"] <= 0 <= out["mAP"]["high"]


def test_half_the_true_positives_removed_is_clearly_worse():
    gt, dets, videos = synthetic_case(seed=3, videos=12)
    matched = _Matched(dets, _Split(gt, videos))  # the protocol's matching, rows in its canonical order
    is_tp = np.zeros(len(dets), bool)
    is_tp[matched.order] = matched.matched >= 0  # (D,) in the input order
    tps = np.flatnonzero(is_tp)
    keep = np.ones(len(dets), bool)
    keep[tps[::2]] = False  # A: every other true positive gone
    a = VIDDetections(dets.frame_index[keep], dets.labels[keep], dets.scores[keep], dets.boxes[keep])
    out = paired_bootstrap(gt, a, dets, videos, resamples=300)
    assert out["mAP"]["diff"] > 0.1 and out["mAP"]["low"] > 0
    assert paired_bootstrap(gt, dets, a, videos, resamples=300)["mAP"]["high"] < 0  # and the other way round


def test_replicates_of_separate_calls_are_paired():
    """bootstrap_replicates of A and of B, drawn separately with one seed, give paired_bootstrap's B - A."""
    gt, dets, videos = synthetic_case(seed=3, videos=8)
    keep = np.arange(len(dets)) % 3 > 0
    a = VIDDetections(dets.frame_index[keep], dets.labels[keep], dets.scores[keep], dets.boxes[keep])
    ra, rb = (bootstrap_replicates(gt, x, videos, resamples=150, seed=4) for x in (a, dets))
    out = paired_bootstrap(gt, a, dets, videos, resamples=150, seed=4)
    for k in FIGURES:
        assert ra[k].shape == (151,)
        assert same(ra[k][0], out[k]["a"]) and same(rb[k][0], out[k]["b"])
        low, high = percentile_interval(rb[k] - ra[k])
        assert same(low, out[k]["low"]) and same(high, out[k]["high"]), k
    W = video_draws(8, resamples=150, seed=4)  # row r: replicate r's video multiplicities
    assert (W[0] == 1).all() and (W[1:].sum(1) == 8).all()
    r = 17
    assert same(ra["mAP"][r], replicate_figures(gt, a, videos, W[r])["mAP"])
    other = bootstrap_replicates(gt, a, videos, resamples=150, seed=5)["mAP"]
    assert not np.allclose(other[1:], ra["mAP"][1:])  # another seed, other draws


def test_percentile_interval_leaves_out_the_split_and_nans():
    values = np.array([100.0, np.nan] + list(range(1, 101)))  # entry 0 (the split) is not a replicate
    low, high = percentile_interval(values, level=0.9)
    assert low == pytest.approx(np.percentile(np.arange(1, 101), 5)) and high == pytest.approx(95.05)
    assert all(math.isnan(x) for x in percentile_interval(np.array([0.3, np.nan, np.nan])))


# --------------------------------------------------------------------------- (e) the command line
def test_compare_cli(tmp_path, vid_mini, capsys):
    from minivod.data.vid import VIDDataset

    frames = VIDDataset(vid_mini, "val").videos[0].frames
    f0, f1 = frames[0], frames[1]
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    write_vid_results(a, VIDDetections([f0.index], [f0.labels[0]], [0.9], [f0.boxes[0]]))
    write_vid_results(b, VIDDetections([f0.index, f1.index], [f0.labels[0], f1.labels[0]], [0.9, 0.8],
                                       [f0.boxes[0], f1.boxes[0]]))
    out = tmp_path / "diff.json"
    args = ["compare", "--data", str(vid_mini), "--split", "val", "--dets", str(a), str(b), "--out", str(out),
            "--resamples", "20", "--seed", "1"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "95% interval" in printed and "verdict" in printed
    result = json.loads(out.read_text())
    assert "mAP" in result and all(k in FIGURES for k in result if k != "_meta")
    for k, c in result.items():
        if k != "_meta" and c["a"] is not None:
            assert set(c) == {"a", "b", "diff", "low", "high"}
            assert c["diff"] == pytest.approx(c["b"] - c["a"])
    assert result["mAP"]["diff"] > 0
    assert {"a": str(a), "b": str(b), "resamples": 20, "seed": 1, "num_videos": 1}.items() <= result["_meta"].items()

    bad = tmp_path / "bad.txt"
    bad.write_text(f"{f0.index} 1 0.5 1 1 5 5\n{f0.index} 1 0.5 1 1 5\n")  # line 2: six fields
    assert main(args[:6] + [str(a), str(bad)]) == 2
    assert f"{bad}:2" in capsys.readouterr().err
    unknown = tmp_path / "unknown.txt"
    unknown.write_text(f"\n{f0.index} 1 0.5 1 1 5 5\n99999 1 0.5 1 1 5 5\n")  # line 3: not a frame of val
    assert main(args[:6] + [str(unknown), str(b)]) == 2
    err = capsys.readouterr().err
    assert f"{unknown}:3" in err and "not a frame of the split" in err


def test_compare_help_says_what_the_interval_means(capsys):
    with pytest.raises(SystemExit):
        main(["compare", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "percentile" in text and "contains 0" in text and "not established" in text


# --------------------------------------------------------------------------- one detector, two groups
def test_group_gap_is_the_percentile_interval_of_the_replicate_gaps():
    from minivod.eval.bootstrap import group_gap

    gt, dets, videos = synthetic_case(seed=4, videos=8)
    full = evaluate_vid(dets, gt)
    out = group_gap(gt, dets, videos, "mAP_slow", "mAP_fast", resamples=40, seed=3)
    assert out["diff"] == pytest.approx(full["mAP_slow"] - full["mAP_fast"], abs=1e-12)
    assert out["a"] == pytest.approx(full["mAP_fast"], abs=1e-12)
    # the same draws as paired_bootstrap, each replicate scored by the (reference-checked) fast path
    names = sorted(set(videos.values()))
    draws = np.random.default_rng(3).multinomial(len(names), np.full(len(names), 1 / len(names)), size=40)
    gaps = [replicate_figures(gt, dets, videos, c) for c in draws]
    gaps = np.array([g["mAP_slow"] - g["mAP_fast"] for g in gaps])
    low, high = np.percentile(gaps[np.isfinite(gaps)], [2.5, 97.5])
    assert out["low"] == pytest.approx(low, abs=1e-12) and out["high"] == pytest.approx(high, abs=1e-12)
    same = group_gap(gt, dets, videos, "mAP_clean", "mAP_clean", resamples=20)
    assert same["diff"] == same["low"] == same["high"] == 0


def test_group_gap_sees_a_detector_that_misses_every_degraded_box():
    from minivod.boxes import box_iou_vid
    from minivod.eval.bootstrap import group_gap

    gt, dets, videos = synthetic_case(seed=5, videos=12)
    as_is = group_gap(gt, dets, videos, "mAP_clean", "mAP_degraded", resamples=200)
    assert as_is["low"] < 0 < as_is["high"]  # this detector treats both groups alike: no gap established
    # take out every detection on a degraded box: degraded boxes go unfound, clean ones stay as they were
    keep = np.ones(len(dets), dtype=bool)
    for d in range(len(dets)):
        frame = gt.frames[int(dets.frame_index[d])]
        degraded = np.array([len(t) > 0 for t in frame.tags], dtype=bool)
        if len(frame) and (box_iou_vid(dets.boxes[d:d + 1], frame.boxes)[0][degraded] >= 0.5).any():
            keep[d] = False
    blind = VIDDetections(dets.frame_index[keep], dets.labels[keep], dets.scores[keep], dets.boxes[keep])
    out = group_gap(gt, blind, videos, "mAP_clean", "mAP_degraded", resamples=200)
    assert out["a"] == 0 and out["b"] == as_is["b"]
    assert out["low"] > 0.3
    with pytest.raises(ValueError, match="not available"):
        group_gap(gt, blind, videos, "mAP_rare", "mAP")
