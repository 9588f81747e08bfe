"""Tests of the ImageNet VID evaluation: hand-computed cases, the motion / tag
breakdown rules, invariances, a loop-by-loop FGFA-style reference, a
pycocotools cross-check, the result-file reader, the dataset bridge and the CLI."""
from __future__ import annotations

import contextlib
import io
import json
import random
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from minivod.boxes import box_iou_vid
from minivod.eval import (GroundTruth, VIDDetections, average_precision, evaluate_vid,
                          ground_truth_from_dataset, paired_iou_vid, read_vid_results,
                          speed_group_masks, write_vid_results)
from minivod.eval import vid_eval


def dets(*rows):
    """VIDDetections from rows (frame, class, score, x1, y1, x2, y2)."""
    t = np.array(rows, dtype=np.float64).reshape(-1, 7)
    return VIDDetections(t[:, 0], t[:, 1], t[:, 2], t[:, 3:])


def gt_of(frames, names=("a", "b")):
    """GroundTruth from {frame: [(class, x1, y1, x2, y2, motion_iou, tags), ...]}."""
    out = {}
    for f, boxes in frames.items():
        out[f] = dict(boxes=np.array([b[1:5] for b in boxes], dtype=float).reshape(-1, 4),
                      labels=[b[0] for b in boxes],
                      motion_iou=[b[5] if len(b) > 5 else np.nan for b in boxes],
                      tags=[b[6] if len(b) > 6 else () for b in boxes])
    return GroundTruth(out, list(names))


# --------------------------------------------------------------------------- plain protocol
def test_perfect_detections_give_ap_one():
    gt = gt_of({1: [(1, 0, 0, 99, 99)], 2: [(1, 10, 10, 59, 49), (2, 60, 60, 99, 99)]})
    d = dets((1, 1, 0.9, 0, 0, 99, 99), (2, 1, 0.8, 10, 10, 59, 49), (2, 2, 0.7, 60, 60, 99, 99))
    r = evaluate_vid(d, gt)
    assert r["mAP"] == 1.0 and r["per_class"] == {"a": 1.0, "b": 1.0}


def test_duplicate_is_a_false_positive():
    gt = gt_of({1: [(1, 0, 0, 99, 99)], 2: [(1, 0, 0, 99, 99)]})
    d = dets((1, 1, 0.9, 0, 0, 99, 99), (1, 1, 0.8, 0, 0, 99, 99), (2, 1, 0.7, 0, 0, 99, 99))
    # ranking TP, FP, TP: precision 1 at recall 1/2, 2/3 at recall 1
    assert evaluate_vid(d, gt)["per_class"]["a"] == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)


def test_relaxed_threshold_for_small_boxes():
    # a 10x10 box (+1 convention: x2 = 9) has threshold 100 / (20 * 20) = 0.25
    small = gt_of({1: [(1, 0, 0, 9, 9)]})
    iou_033 = (1, 1, 0.9, 5, 0, 14, 9)     # IoU 50 / 150
    iou_018 = (1, 1, 0.9, 7, 0, 16, 9)     # IoU 30 / 170
    assert evaluate_vid(dets(iou_033), small)["mAP"] == 1.0
    assert evaluate_vid(dets(iou_018), small)["mAP"] == 0.0
    big = gt_of({1: [(1, 0, 0, 99, 99)]})  # threshold min(0.5, 0.83)
    assert evaluate_vid(dets((1, 1, 0.9, 50, 0, 149, 99)), big)["mAP"] == 0.0  # IoU 1/3
    assert evaluate_vid(dets((1, 1, 0.9, 33, 0, 132, 99)), big)["mAP"] == 1.0  # IoU 67/133 >= 0.5


def test_frames_without_ground_truth_count_false_positives():
    gt = gt_of({1: [(1, 0, 0, 99, 99)], 2: []})
    d = dets((2, 1, 0.95, 0, 0, 99, 99), (1, 1, 0.9, 0, 0, 99, 99))
    assert evaluate_vid(d, gt)["mAP"] == pytest.approx(0.5)


def test_class_without_detections_and_class_without_gt():
    gt = gt_of({1: [(1, 0, 0, 99, 99), (2, 200, 0, 299, 99)]}, names=("a", "b", "c"))
    r = evaluate_vid(dets((1, 1, 0.9, 0, 0, 99, 99), (1, 3, 0.9, 0, 0, 9, 9)), gt)
    assert r["per_class"]["a"] == 1.0 and r["per_class"]["b"] == 0.0
    assert np.isnan(r["per_class"]["c"])         # no ground truth: left out of the mean
    assert r["mAP"] == pytest.approx(0.5)


def test_no_detections_and_no_ground_truth():
    none = VIDDetections(np.zeros(0), np.zeros(0), np.zeros(0), np.zeros((0, 4)))
    r = evaluate_vid(none, gt_of({1: [(1, 0, 0, 9, 9, 0.5)]}))
    assert r["mAP"] == 0.0 and r["mAP_fast"] == 0.0 and np.isnan(r["mAP_slow"])
    r = evaluate_vid(dets((1, 1, 0.5, 0, 0, 5, 5)), gt_of({1: []}))
    assert np.isnan(r["mAP"]) and r["num_gt"]["all"] == 0


def test_best_iou_wins_among_thresholded():
    # G1 and G2 (IoU 0.43 with each other) are both within reach of the first detection;
    # it must take G2, where its IoU is highest, so that the second one can take G1
    gt = gt_of({1: [(1, 0, 0, 99, 99), (1, 40, 0, 139, 99)]})
    d = dets((1, 1, 0.9, 22, 0, 121, 99), (1, 1, 0.8, 0, 0, 99, 99))  # IoU 0.64 with G1, 0.69 with G2
    assert evaluate_vid(d, gt)["mAP"] == 1.0
    # an exact tie goes to the earlier ground truth (FGFA: `ov > ovmax`)
    d = dets((1, 1, 0.9, 20, 0, 119, 99), (1, 1, 0.8, 40, 0, 139, 99))  # IoU 2/3 with both
    assert evaluate_vid(d, gt)["mAP"] == 1.0
    d = dets((1, 1, 0.9, 20, 0, 119, 99), (1, 1, 0.8, 0, 0, 99, 99))
    assert evaluate_vid(d, gt)["mAP"] == pytest.approx(0.5)


def test_average_precision_all_point():
    assert average_precision(np.array([0.5, 0.5, 1.0]), np.array([1.0, 0.5, 2 / 3])) == pytest.approx(5 / 6)
    assert average_precision(np.zeros(0), np.zeros(0)) == 0.0


def test_paired_iou_is_the_diagonal_of_box_iou_vid():
    rng = np.random.default_rng(0)
    a = np.sort(rng.integers(0, 50, (20, 4)).reshape(20, 2, 2), axis=1).transpose(0, 2, 1).reshape(20, 4)
    b = np.sort(rng.integers(0, 50, (20, 4)).reshape(20, 2, 2), axis=1).transpose(0, 2, 1).reshape(20, 4)
    a, b = a[:, [0, 2, 1, 3]].astype(float), b[:, [0, 2, 1, 3]].astype(float)
    np.testing.assert_array_equal(paired_iou_vid(a, b), np.diag(box_iou_vid(a, b)))


# --------------------------------------------------------------------------- breakdown rules
SLOW, FAST = 0.95, 0.5
#: frame 1: two slow boxes A, A2 and one fast box B (class 1); frame 2: no box
MOTION_GT = {1: [(1, 0, 0, 99, 99, SLOW), (1, 0, 200, 99, 299, SLOW), (1, 200, 0, 299, 99, FAST)], 2: []}
B_HIT = (1, 1, 0.8, 200, 0, 299, 99)  # matches B: the fast group's only TP


@pytest.mark.parametrize("extra, expected, rule", [
    ((1, 1, 0.9, 0, 0, 99, 99), 1.0, "matched to an ignored box: neither TP nor FP"),
    ((1, 1, 0.9, 270, 0, 369, 99), 0.5, "FP whose best overlap is a box of the group: 1"),
    ((1, 1, 0.9, 70, 0, 169, 99), 1.0, "FP whose best overlap is an ignored box: 0"),
    ((1, 1, 0.9, 500, 500, 549, 549), 1 / (1 + 2 / 3), "FP overlapping nothing (tie at 0): 2/3 ignored"),
    ((1, 1, 0.9, 90, 0, 209, 99), 1 / (1 + 2 / 3), "FP overlapping A and B equally: 2/3 ignored"),
    ((2, 1, 0.9, 0, 0, 99, 99), 1 / (1 + 1 / 3), "FP in a frame without GT: 1/3 of the split is fast"),
])
def test_motion_group_rules(extra, expected, rule):
    r = evaluate_vid(dets(extra, B_HIT), gt_of(MOTION_GT))
    assert r["mAP_fast"] == pytest.approx(expected), rule
    assert np.isnan(r["mAP_medium"])  # no medium ground truth: left out
    assert r["num_gt"] == {"all": 3, "slow": 2, "medium": 0, "fast": 1, "clean": 3, "degraded": 0}


def test_slow_group_and_positive_count():
    # for "slow", B is ignored: matching it is neither; A and A2 are the positives
    r = evaluate_vid(dets(B_HIT, (1, 1, 0.7, 0, 0, 99, 99)), gt_of(MOTION_GT))
    assert r["mAP_slow"] == pytest.approx(0.5)  # one of two slow boxes, precision 1
    assert r["mAP"] == pytest.approx(2 / 3)


def test_tag_breakdown_uses_the_same_rules():
    frames = {f: [b[:6] + (("motion_blur",) if b[5] == FAST else (),) for b in boxes]
              for f, boxes in MOTION_GT.items()}
    r = evaluate_vid(dets((1, 1, 0.9, 270, 0, 369, 99), B_HIT), gt_of(frames))
    assert r["mAP_by_tag"]["motion_blur"] == pytest.approx(0.5)  # like "fast" above
    assert r["mAP_by_tag"]["clean"] == 0.0                       # A, A2 never found
    assert r["per_class_by_tag"]["motion_blur"]["a"] == pytest.approx(0.5)


def test_speed_groups_match_the_data_layer():
    motion = pytest.importorskip("minivod.data.motion")
    m = np.array([0.0, 0.5, 0.69999, 0.7, 0.8, 0.9, 0.90001, 1.0])
    masks = speed_group_masks(m)
    names = np.select([masks["slow"], masks["medium"], masks["fast"]], ["slow", "medium", "fast"], "none")
    np.testing.assert_array_equal(names, motion.motion_group(m))
    assert not any(mask[0] for mask in speed_group_masks(np.array([np.nan])).values())


# --------------------------------------------------------------------------- reference loop
def _reference(det_rows, gt_frames, num_classes, in_group):
    """FGFA's vid_eval_motion, loop by loop (per frame, per detection, per GT box).

    ``in_group(gt_tuple) -> bool``; returns AP per class (NaN without positives).
    """
    def iou(a, b):
        iw, ih = min(a[2], b[2]) - max(a[0], b[0]) + 1, min(a[3], b[3]) - max(a[1], b[1]) + 1
        if iw <= 0 or ih <= 0:
            return 0.0
        return iw * ih / ((a[2] - a[0] + 1) * (a[3] - a[1] + 1) + (b[2] - b[0] + 1) * (b[3] - b[1] + 1) - iw * ih)

    all_gt = [g for boxes in gt_frames.values() for g in boxes]
    empty_weight = sum(map(in_group, all_gt)) / max(len(all_gt), 1)
    scored = []  # (class, -score, frame, rank, tp, fp)
    for f in sorted(gt_frames):
        gts = gt_frames[f]
        taken = [False] * len(gts)
        frame_dets = sorted((r for r in det_rows if r[0] == f), key=lambda r: (r[1], -r[2], *r[3:]))
        for rank, (_, c, s, *box) in enumerate(frame_dets):
            ovmax, kmax, ov_in, ov_out = -1.0, -1, -1.0, -1.0
            for k, g in enumerate(gts):
                ov = iou(box, g[1:5])
                w, h = g[3] - g[1] + 1, g[4] - g[2] + 1
                if g[0] == c and not taken[k] and ov >= min(0.5, w * h / ((w + 10) * (h + 10))) and ov > ovmax:
                    ovmax, kmax = ov, k
                if in_group(g):
                    ov_in = max(ov_in, ov)
                else:
                    ov_out = max(ov_out, ov)
            if kmax >= 0:
                taken[kmax] = True
                tp, fp = float(in_group(gts[kmax])), 0.0
            elif ov_in != ov_out:
                tp, fp = 0.0, float(ov_in > ov_out)
            else:
                tp, fp = 0.0, (sum(not in_group(g) for g in gts) / len(gts) if gts else empty_weight)
            scored.append((c, -s, f, rank, tp, fp))
    ap = []
    for c in range(1, num_classes + 1):
        npos = sum(1 for g in all_gt if g[0] == c and in_group(g))
        rows = sorted(r for r in scored if r[0] == c)
        ctp = np.cumsum([r[4] for r in rows])
        cfp = np.cumsum([r[5] for r in rows])
        ap.append(_voc_ap_loop(ctp / npos, ctp / np.maximum(ctp + cfp, np.finfo(float).eps)) if npos else np.nan)
    return np.array(ap)


def _voc_ap_loop(rec, prec):
    """FGFA's vid_ap, as a loop."""
    mrec, mpre = [0.0, *rec, 1.0], [0.0, *prec, 0.0]
    for i in range(len(mpre) - 2, -1, -1):
        mpre[i] = max(mpre[i], mpre[i + 1])
    return sum((mrec[i + 1] - mrec[i]) * mpre[i + 1] for i in range(len(mrec) - 1) if mrec[i + 1] != mrec[i])


def _random_split(seed, n_frames=30, num_classes=3):
    rng = random.Random(seed)
    gt_frames, rows = {}, []
    for f in range(1, n_frames + 1):
        gts = []
        for _ in range(rng.choice([0, 0, 1, 2, 3, 4])):
            x, y, w, h = rng.randint(0, 200), rng.randint(0, 200), rng.randint(4, 80), rng.randint(4, 80)
            tags = tuple(t for t in ("motion_blur", "occlusion") if rng.random() < 0.3)
            gts.append((rng.randint(1, num_classes), x, y, x + w, y + h, rng.choice([0.5, 0.8, 0.95]), tags))
        gt_frames[f] = gts
        for g in gts:  # near-copies (sometimes of the wrong class), duplicates
            for _ in range(rng.randint(0, 3)):
                j = [rng.randint(-6, 6) for _ in range(4)]
                box = (g[1] + j[0], g[2] + j[1], max(g[1] + j[0], g[3] + j[2]), max(g[2] + j[1], g[4] + j[3]))
                c = g[0] if rng.random() < 0.8 else rng.randint(1, num_classes)
                rows.append((f, c, round(rng.random(), 1), *box))  # 1 decimal: many score ties
        for _ in range(rng.randint(0, 4)):
            x, y = rng.randint(0, 250), rng.randint(0, 250)
            rows.append((f, rng.randint(1, num_classes), round(rng.random(), 1), x, y,
                         x + rng.randint(0, 60), y + rng.randint(0, 60)))
    return rows, gt_frames


@pytest.mark.parametrize("seed", range(6))
def test_matches_the_reference_loop(seed, monkeypatch):
    rows, gt_frames = _random_split(seed)
    gt = gt_of(gt_frames, names=("a", "b", "c"))
    if seed % 2:
        monkeypatch.setattr(vid_eval, "PAIR_CHUNK", 7)  # exercise the chunked pair building
    r = evaluate_vid(dets(*rows), gt)
    groups = {"mAP": (None, lambda g: True), "slow": ("per_class_by_speed", lambda g: g[5] > 0.9),
              "fast": ("per_class_by_speed", lambda g: g[5] < 0.7),
              "occlusion": ("per_class_by_tag", lambda g: "occlusion" in g[6]),
              "clean": ("per_class_by_tag", lambda g: not g[6]),
              "degraded": ("per_class_by_tag", lambda g: bool(g[6]))}
    for name, (key, in_group) in groups.items():
        got = r["per_class"] if key is None else r[key][name]
        want = _reference(rows, gt_frames, 3, in_group)
        np.testing.assert_allclose(list(got.values()), want, rtol=0, atol=1e-12, err_msg=name)


# --------------------------------------------------------------------------- invariances
def test_shuffling_result_lines_changes_nothing(tmp_path):
    rows, gt_frames = _random_split(11)
    gt = gt_of(gt_frames, names=("a", "b", "c"))
    write_vid_results(tmp_path / "a.txt", dets(*rows))
    lines = (tmp_path / "a.txt").read_text().splitlines()
    random.Random(0).shuffle(lines)
    (tmp_path / "b.txt").write_text("\n".join(lines) + "\n")
    ra, rb = (evaluate_vid(read_vid_results(tmp_path / n), gt) for n in ("a.txt", "b.txt"))
    assert json.dumps(ra, sort_keys=True) == json.dumps(rb, sort_keys=True)


@pytest.mark.parametrize("seed", range(4))
def test_adding_a_stray_detection_never_raises_ap(seed):
    rows, gt_frames = _random_split(seed)
    gt = gt_of(gt_frames, names=("a", "b", "c"))
    before = evaluate_vid(dets(*rows), gt)
    rng = random.Random(seed)
    for _ in range(5):
        stray = (rng.randint(1, 30), rng.randint(1, 3), rng.random() * 0.2, 1000, 1000, 1010, 1010)
        after = evaluate_vid(dets(*rows, stray), gt)
        for key in ("mAP", "mAP_slow", "mAP_medium", "mAP_fast"):
            assert np.isnan(before[key]) or after[key] <= before[key] + 1e-12, key
        for tag, m in before["mAP_by_tag"].items():
            assert np.isnan(m) or after["mAP_by_tag"][tag] <= m + 1e-12, tag


def test_dict_input_equals_flat_input():
    rows, gt_frames = _random_split(3)
    gt = gt_of(gt_frames, names=("a", "b", "c"))
    d = dets(*rows)
    assert json.dumps(evaluate_vid(d.to_frames(), gt)) == json.dumps(evaluate_vid(d, gt))


# --------------------------------------------------------------------------- pycocotools
def test_plain_ap50_agrees_with_pycocotools():
    """Where the protocols coincide: boxes >= 30 px (VID threshold = 0.5), integer corners,
    continuous scores (no ties). COCO boxes are given width x2 - x1 + 1, so COCO's
    continuous IoU equals the +1-pixel one. COCO interpolates at 101 recall points:
    the same points taken from our PR curves agree exactly; all-point AP within 1/101."""
    coco = pytest.importorskip("pycocotools.coco")
    cocoeval = pytest.importorskip("pycocotools.cocoeval")
    rng = np.random.default_rng(0)
    frames, rows = {}, []
    for f in range(1, 61):
        boxes = []
        for _ in range(rng.integers(0, 4)):
            x, y, w, h = rng.integers(0, 300, 2).tolist() + rng.integers(30, 120, 2).tolist()
            boxes.append((int(rng.integers(1, 4)), x, y, x + w, y + h))
            for _ in range(rng.integers(0, 3)):
                j = rng.integers(-12, 13, 4)
                rows.append((f, boxes[-1][0] if rng.random() < 0.8 else int(rng.integers(1, 4)), rng.random(),
                             x + j[0], y + j[1], x + w + j[2], y + h + j[3]))
        for _ in range(rng.integers(0, 3)):
            x, y = rng.integers(0, 300, 2)
            rows.append((f, int(rng.integers(1, 4)), rng.random(), x, y, x + 40, y + 50))
        frames[f] = boxes
    gt = gt_of(frames, names=("a", "b", "c"))
    result = evaluate_vid(dets(*rows), gt, motion_breakdown=False, tag_breakdown=False, return_curves=True)

    xywh = lambda b: [float(b[0]), float(b[1]), float(b[2] - b[0] + 1), float(b[3] - b[1] + 1)]  # noqa: E731
    cg = coco.COCO()
    cg.dataset = {"images": [{"id": f} for f in frames], "categories": [{"id": c} for c in (1, 2, 3)],
                  "annotations": [{"id": i + 1, "image_id": f, "category_id": b[0], "bbox": xywh(b[1:]),
                                   "area": xywh(b[1:])[2] * xywh(b[1:])[3], "iscrowd": 0}
                                  for i, (f, b) in enumerate((f, b) for f, bs in frames.items() for b in bs)]}
    with contextlib.redirect_stdout(io.StringIO()):
        cg.createIndex()
        cd = cg.loadRes([{"image_id": r[0], "category_id": r[1], "score": r[2], "bbox": xywh(r[3:])} for r in rows])
        E = cocoeval.COCOeval(cg, cd, "bbox")
        E.params.iouThrs, E.params.maxDets = np.array([0.5]), [1000]
        E.params.areaRng, E.params.areaRngLbl = [[0, 1e10]], ["all"]
        E.evaluate()
        E.accumulate()
    for k, name in enumerate(("a", "b", "c")):
        coco_ap101 = E.eval["precision"][0, :, k, 0, 0].mean()
        recall, precision = result["pr_curves"][name]
        envelope = np.maximum.accumulate(precision[::-1])[::-1]
        at = np.searchsorted(recall, np.linspace(0, 1, 101), side="left")
        ours_ap101 = np.where(at < len(recall), envelope[np.minimum(at, len(recall) - 1)], 0).mean()
        assert ours_ap101 == pytest.approx(coco_ap101, abs=1e-12)
        assert result["per_class"][name] == pytest.approx(coco_ap101, abs=1 / 101)


# --------------------------------------------------------------------------- result files
def test_result_file_round_trip(tmp_path):
    d = dets((3, 2, 0.25, 1.5, 2, 30, 40), (1, 1, 0.125, 0, 0, 9, 9))
    write_vid_results(tmp_path / "r.txt", d)
    back = read_vid_results(tmp_path / "r.txt", num_classes=2, frame_indices=[1, 2, 3])
    for name in ("frame_index", "labels", "scores", "boxes"):
        np.testing.assert_array_equal(getattr(back, name), getattr(d, name))
    frames = back.to_frames()
    assert sorted(frames) == [1, 3] and torch.equal(frames[3][2], torch.tensor([2]))


@pytest.mark.parametrize("line, message", [
    ("1 1 0.5 0 0 10", "expected 7 fields"),
    ("1 1 high 0 0 10 10", "score is not a number"),
    ("1 1 0.5 20 0 10 10", "x2 < x1"),
    ("1 1 0.5 0 0 10 nan", "not a finite number"),
    ("1.5 1 0.5 0 0 10 10", "must be integers"),
    ("1 3 0.5 0 0 10 10", "class_index is not a class"),
    ("9 1 0.5 0 0 10 10", "not a frame of the split"),
])
def test_reader_names_file_and_line(tmp_path, line, message):
    path = tmp_path / "bad.txt"
    path.write_text(f"1 1 0.9 0 0 10 10\n\n2 2 0.8 0 0 10 10\n{line}\n1 1 0.1 0 0 5 5\n")
    with pytest.raises(ValueError, match=rf"bad.txt:4: .*{message}"):
        read_vid_results(path, num_classes=2, frame_indices={1, 2})


def test_detection_on_unknown_frame_raises():
    with pytest.raises(ValueError, match="not in the split"):
        evaluate_vid(dets((7, 1, 0.5, 0, 0, 9, 9)), gt_of({1: []}))


# --------------------------------------------------------------------------- dataset, CLI, plots
def test_ground_truth_from_dataset_interface():
    frame = lambda i, n: SimpleNamespace(  # noqa: E731
        index=i, frame_id=f"v/{i:06d}", boxes=np.zeros((n, 4), np.float32) + [0, 0, 9, 9],
        labels=np.ones(n, np.int64), tags=[("occlusion",)] * n, motion_iou=np.full(n, 0.8, np.float32))
    ds = SimpleNamespace(class_map=SimpleNamespace(names=["a", "b"]),
                         videos=[SimpleNamespace(name="v", frames=[frame(1, 2), frame(2, 0)], is_still=False)])
    gt = ground_truth_from_dataset(ds)
    assert gt.num_classes == 2 and sorted(gt.frames) == [1, 2] and len(gt.flat.labels) == 2
    assert gt.frames[1].tags == (("occlusion",), ("occlusion",))


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    generate = pytest.importorskip("minivod.data.generate")
    root = tmp_path_factory.mktemp("data")
    generate.generate(root, seed=0, train_videos=1, val_videos=2, frames=12, det_images=0, progress=False)
    return root


def test_cli_on_generated_data(tiny_data, tmp_path, capsys):
    from minivod.data.vid import VIDDataset
    from minivod.eval.cli import add_evaluate_parser
    import argparse

    gt = ground_truth_from_dataset(VIDDataset(tiny_data, split="val"))
    flat = gt.flat  # perfect detections from the ground truth itself
    perfect = VIDDetections(flat.frame_indices[flat.frame_pos], flat.labels, np.linspace(1, 0.5, len(flat.labels)),
                            flat.boxes)
    write_vid_results(tmp_path / "dets.txt", perfect)
    parser = argparse.ArgumentParser()
    add_evaluate_parser(parser.add_subparsers())
    args = parser.parse_args(["evaluate", "--data", str(tiny_data), "--dets", str(tmp_path / "dets.txt"),
                              "--out", str(tmp_path / "r.json"), "--plots", str(tmp_path / "plots")])
    assert args.func(args) == 0
    out = json.loads((tmp_path / "r.json").read_text())
    assert out["mAP"] == 1.0 and "mAP_fast" in out and "clean" in out["mAP_by_tag"]
    assert "mAP" in capsys.readouterr().out
    assert (tmp_path / "plots" / "pr_curves.png").is_file() and (tmp_path / "plots" / "ap_by_group.png").is_file()
    (tmp_path / "bad.txt").write_text("1 1 0.5 0 0 10\n")
    args = parser.parse_args(["evaluate", "--data", str(tiny_data), "--dets", str(tmp_path / "bad.txt")])
    assert args.func(args) == 2 and "bad.txt:1" in capsys.readouterr().err


def test_plots_return_figures():
    from matplotlib.figure import Figure
    from minivod.eval.plots import plot_ap_by_group, plot_pr_curves, thin_curve

    rows, gt_frames = _random_split(2)
    r = evaluate_vid(dets(*rows), gt_of(gt_frames, names=("a", "b", "c")), return_curves=True)
    for name, (recall, precision) in r["pr_curves"].items():  # thinning keeps the envelope
        assert average_precision(*thin_curve(recall, precision)) == pytest.approx(r["per_class"][name], abs=1e-12)
    fig = plot_pr_curves(r, ncols=2)
    assert isinstance(fig, Figure) and sum(ax.get_visible() and ax.axison for ax in fig.axes) == len(r["pr_curves"])
    assert isinstance(plot_ap_by_group(r), Figure)
    with pytest.raises(ValueError, match="return_curves"):
        plot_pr_curves(evaluate_vid(dets(*rows), gt_of(gt_frames, names=("a", "b", "c"))))
