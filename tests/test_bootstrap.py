"""The paired bootstrap over videos: the fast path equals the slow reference; intervals behave."""
import json
import subprocess
import sys

import numpy as np
import pytest

from minivod.eval import evaluate_vid
from minivod.eval.bootstrap import bootstrap_reference, paired_bootstrap, replicate_figures
from minivod.eval.ground_truth import FrameGroundTruth, GroundTruth
from minivod.eval.results_io import VIDDetections, write_vid_results

TAGS = [(), (), ("motion_blur",), ("defocus", "occlusion"), ()]


def make_case(seed=0, videos=6, frames=5, classes=3):
    """Ground truth with speed and tag info (some frames empty) and a detector's output on it."""
    rng = np.random.default_rng(seed)
    gt_frames, video_of, rows = {}, {}, []
    index = 1
    for v in range(videos):
        for t in range(frames):
            n = int(rng.integers(0, 4)) if (v + t) % 7 else 0
            xy = rng.uniform(0, 80, (n, 2))
            wh = rng.uniform(12, 30, (n, 2))
            boxes = np.concatenate([xy, xy + wh], 1)
            labels = rng.integers(1, classes + 1, n)
            if v == videos - 1:
                labels[:] = 1  # the last video alone holds... a class-1-only world: some draws miss classes 2, 3
            gt_frames[index] = FrameGroundTruth(boxes, labels, rng.uniform(0.5, 1.0, n),
                                                [TAGS[int(k)] for k in rng.integers(0, len(TAGS), n)])
            video_of[index] = f"video_{v:02d}"
            for b, lab in zip(boxes, labels):  # a detection on most boxes, sometimes of the wrong class
                if rng.random() < 0.85:
                    wrong = rng.random() < 0.2
                    rows.append((index, (lab % classes) + 1 if wrong else lab, rng.uniform(0.3, 1.0),
                                 *(b + rng.normal(0, 1.5, 4))))
            for _ in range(int(rng.integers(0, 3))):  # false positives, also on empty frames
                x, y = rng.uniform(0, 90, 2)
                rows.append((index, rng.integers(1, classes + 1), rng.uniform(0, 0.8), x, y, x + 15, y + 15))
            index += 1
    r = np.array(rows, dtype=np.float64)
    r[:, 5] = np.maximum(r[:, 5], r[:, 3])
    r[:, 6] = np.maximum(r[:, 6], r[:, 4])
    dets = VIDDetections(r[:, 0], r[:, 1], r[:, 2], r[:, 3:7])
    return GroundTruth(gt_frames, [f"c{k}" for k in range(1, classes + 1)]), dets, video_of


@pytest.mark.parametrize("drawn", [
    ["video_00", "video_01", "video_02", "video_03", "video_04", "video_05"],  # the split itself
    ["video_00", "video_00", "video_02", "video_03", "video_03", "video_03"],  # repeats
    ["video_05", "video_05", "video_05", "video_05", "video_05", "video_05"],  # classes 2, 3 missing
    ["video_01", "video_02", "video_02", "video_04", "video_05", "video_05"],
])
def test_fast_path_equals_the_reference(drawn):
    gt, dets, videos = make_case()
    names = sorted(set(videos.values()))
    counts = np.array([drawn.count(n) for n in names])
    fast = replicate_figures(gt, dets, videos, counts)
    slow = bootstrap_reference(gt, dets, videos, sorted(drawn))
    assert set(fast) == set(slow) == {"mAP", "mAP_slow", "mAP_medium", "mAP_fast", "mAP_clean", "mAP_degraded"}
    for k in slow:
        assert fast[k] == pytest.approx(slow[k], abs=1e-9), k


def test_full_sample_matches_evaluate_vid():
    gt, dets, videos = make_case(seed=1)
    full = evaluate_vid(dets, gt)
    out = paired_bootstrap(gt, dets, dets, videos, resamples=50)
    assert out["mAP"]["a"] == pytest.approx(full["mAP"], abs=1e-12)
    assert out["mAP_fast"]["a"] == pytest.approx(full["mAP_fast"], abs=1e-12)
    assert out["mAP_degraded"]["b"] == pytest.approx(full["mAP_by_tag"]["degraded"], abs=1e-12)


def test_a_detector_against_itself_is_zero():
    gt, dets, videos = make_case(seed=2)
    out = paired_bootstrap(gt, dets, dets, videos, resamples=200)
    for k, c in out.items():
        if not k.startswith("_"):
            assert c["diff"] == 0 and c["low"] == 0 and c["high"] == 0


def test_small_noise_is_not_established_and_a_clear_gain_is():
    gt, dets, videos = make_case(seed=3, videos=12)
    rng = np.random.default_rng(0)
    jittered = VIDDetections(dets.frame_index, dets.labels, dets.scores * rng.uniform(0.97, 1.03, len(dets)),
                             dets.boxes)
    noise = paired_bootstrap(gt, dets, jittered, videos, resamples=300)
    assert noise["mAP"]["low"] <= 0 <= noise["mAP"]["high"]
    # A loses the true positives of half its frames: B (the full detector) is clearly better
    keep = (dets.frame_index % 2 == 0) | (dets.scores < 0.3)
    worse = VIDDetections(dets.frame_index[keep], dets.labels[keep], dets.scores[keep], dets.boxes[keep])
    gain = paired_bootstrap(gt, worse, dets, videos, resamples=300)
    assert gain["mAP"]["diff"] > 0 and gain["mAP"]["low"] > 0


def test_compare_cli(tmp_path, vid_mini):
    from minivod.data.vid import VIDDataset

    val = VIDDataset(vid_mini, "val")
    f = val.videos[0].frames
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    frame, box = f[0], f[0].boxes[0]
    write_vid_results(a, VIDDetections([frame.index], [frame.labels[0]], [0.9], [box]))
    write_vid_results(b, VIDDetections([frame.index, f[1].index], [frame.labels[0]] * 2, [0.9, 0.8],
                                       [box, box + 40]))
    out = tmp_path / "diff.json"
    cmd = [sys.executable, "-m", "minivod", "compare", "--data", str(vid_mini), "--split", "val",
           "--dets", str(a), str(b), "--out", str(out), "--resamples", "20"]
    run = subprocess.run(cmd, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    result = json.loads(out.read_text())
    assert {"a", "b", "diff", "low", "high"} <= set(result["mAP"])
    assert result["mAP"]["diff"] == pytest.approx(result["mAP"]["b"] - result["mAP"]["a"])
    bad = tmp_path / "bad.txt"
    bad.write_text(f"{frame.index} 1 0.5 1 1 5 5\n99999 1 0.5 1 1 5 5\n")
    run = subprocess.run(cmd[:-6] + [str(a), str(bad)], capture_output=True, text=True)
    assert run.returncode == 2 and f"{bad}:2" in run.stderr and "not a frame of the split" in run.stderr
