"""Seq-NMS: hand-made cases, and exact parity with a plain Python reference loop.

``reference_seq_nms`` (``minivod.eval.seq_nms``) is the algorithm as the paper states it, with
lists and loops, recomputing the whole dynamic program for every path; the batched version
must give exactly the same boxes and scores. ``benchmarks/bench_eval.py`` times the two.
"""
from __future__ import annotations

import pytest
import torch

from minivod.eval import seq_nms
from minivod.eval.seq_nms import pad_class, reference_seq_nms, seq_nms_class


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Seq-NMS runs thousands of tiny tensor ops: extra intra-op threads only add
    overhead, and on a busy 2-core machine they make it 100x slower."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _as_rows(output):
    """Per frame, the sorted list of (box, score, label) of a seq_nms output."""
    return [sorted((tuple(b.tolist()), s.item(), lab.item()) for b, s, lab in zip(*f)) for f in output]


def _frames(rows):
    """Frames from lists of (x1, y1, x2, y2, score, label)."""
    out = []
    for r in rows:
        t = torch.tensor(r, dtype=torch.float32).reshape(-1, 6)
        out.append((t[:, :4], t[:, 4], t[:, 5].long()))
    return out


def random_video(seed, T=12, objects=5, clutter=3, num_classes=3):
    """Objects moving smoothly (several jittered boxes each, each object seen in a span of
    frames) and random clutter. Odd seeds draw scores on a 1/8 grid: exact sums, many ties."""
    g = torch.Generator().manual_seed(seed)
    rand = lambda *s: torch.rand(*s, generator=g)  # noqa: E731
    start, size = rand(objects, 2) * 300, 30 + rand(objects, 2) * 80  # (O, 2)
    velocity = (rand(objects, 2) - 0.5) * 16
    label = torch.randint(1, num_classes + 1, (objects,), generator=g)
    first = torch.randint(0, T // 2, (objects,), generator=g)
    last = torch.randint(T // 2, T + 2, (objects,), generator=g)
    frames = []
    for t in range(T):
        if seed % 3 == 0 and t == T // 2:  # an empty frame
            frames.append((torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.long)))
            continue
        centre = start + velocity * t  # (O, 2)
        n = torch.randint(1, 4, (objects,), generator=g) * ((first <= t) & (t <= last))  # boxes per object
        c = centre.repeat_interleave(n, 0) + (rand(int(n.sum()), 2) - 0.5) * 12
        s = size.repeat_interleave(n, 0) * (0.85 + 0.3 * rand(int(n.sum()), 2))
        corner = rand(clutter, 2) * 350  # (K, 2)
        clutter_boxes = torch.cat([corner, corner + 20 + rand(clutter, 2) * 60], 1)  # (K, 4)
        boxes = torch.cat([torch.cat([c - s / 2, c + s / 2], 1), clutter_boxes])  # (N, 4)
        labels = torch.cat([label.repeat_interleave(n), torch.randint(1, num_classes + 1, (clutter,), generator=g)])
        scores = rand(len(boxes))
        if seed % 2:
            scores = (scores * 8).ceil() / 8
        frames.append((boxes, scores, labels))
    return frames


# --------------------------------------------------------------------------- hand-made
#: one object over three frames (links: IoU 0.96), and in frame 1 a box X that links to
#: nothing (IoU 0.43 and 0.47 with frames 0 and 2) but overlaps the track by IoU 0.45
TRACK = [[(0, 0, 100, 100, 0.9, 1)], [(2, 0, 102, 100, 0.3, 1), (40, 0, 140, 100, 0.5, 1)], [(4, 0, 104, 100, 0.9, 1)]]


def test_track_is_rescored_by_its_average_and_overlaps_suppressed():
    out = seq_nms(_frames(TRACK))
    # the path 0.9 + 0.3 + 0.9 (2.1) beats X alone (0.5); X is suppressed (IoU 0.45 >= 0.3)
    assert [len(f[1]) for f in out] == [1, 1, 1]
    for f in out:
        assert f[1].item() == pytest.approx(0.7) and f[1].dtype == torch.float32
    assert out[1][0].tolist() == [[2, 0, 102, 100]]


def test_rescore_max():
    out = seq_nms(_frames(TRACK), rescore="max")
    assert [f[1].item() for f in out] == pytest.approx([0.9, 0.9, 0.9])


def test_other_classes_and_separate_objects_are_kept():
    rows = [r + [(0, 0, 100, 100, 0.4, 2), (300, 300, 350, 350, 0.2, 1)] for r in TRACK]
    out = seq_nms(_frames(rows))
    assert [len(f[1]) for f in out] == [3, 3, 3]
    scores = sorted(round(s, 6) for s in out[1][1].tolist())
    assert scores == [0.2, 0.4, 0.7]  # each path by its own average


def test_best_path_is_taken_first():
    # two chains share the middle box; the higher-sum chain gets it, the other is suppressed there
    rows = [[(0, 0, 100, 100, 0.9, 1), (0, 10, 100, 110, 0.1, 1)], [(0, 5, 100, 105, 0.5, 1)],
            [(0, 0, 100, 100, 0.9, 1)]]
    out = seq_nms(_frames(rows))
    assert out[0][1].tolist() == pytest.approx([(0.9 + 0.5 + 0.9) / 3])  # frame 0's 0.1 box suppressed
    assert len(out[1][1]) == 1


def test_removal_propagates_past_the_path_end():
    # P0-P1 (1.8) wins over P0-S1-K2 (1.4) and suppresses S1; K2 must then stand alone (0.3),
    # not keep the sum it had through S1: the update has to run past the path's last frame
    rows = [[(0, 0, 100, 100, 0.9, 1)], [(0, 0, 100, 100, 0.9, 1), (20, 0, 120, 100, 0.2, 1)],
            [(45, 0, 145, 100, 0.3, 1)]]
    out = seq_nms(_frames(rows))
    assert out[2][1].tolist() == pytest.approx([0.3])
    assert out[1][0].tolist() == [[0, 0, 100, 100]]


def test_ties_go_to_the_earliest_path_end():
    # X0-X1 and Y1-Y2 both sum to 0.5; X ends first, so it is taken first and suppresses Y1
    rows = [[(-20, 0, 80, 100, 0.25, 1)], [(0, 0, 100, 100, 0.25, 1), (30, 0, 130, 100, 0.25, 1)],
            [(60, 0, 160, 100, 0.25, 1)]]
    out = seq_nms(_frames(rows))
    assert out[1][0].tolist() == [[0, 0, 100, 100]]
    assert [len(f[1]) for f in out] == [1, 1, 1]


def test_empty_inputs():
    assert seq_nms([]) == []
    out = seq_nms(_frames([[], [(0, 0, 10, 10, 0.5, 1)], []]))
    assert [len(f[1]) for f in out] == [0, 1, 0] and out[1][1].item() == 0.5


def test_final_nms_is_a_no_op_above_the_suppress_threshold():
    frames = random_video(5)
    assert _as_rows(seq_nms(frames, nms_threshold=0.3)) == _as_rows(seq_nms(frames, nms_threshold=1.0))


def test_batched_box_iou_is_torchvision_box_iou():
    from torchvision.ops import box_iou

    from minivod.eval.seq_nms import batched_box_iou

    frames = random_video(4)[:3]
    a = torch.stack([f[0][:5] for f in frames]).double()  # (3, 5, 4)
    b = torch.stack([f[0][-4:] for f in frames]).double()  # (3, 4, 4)
    assert torch.equal(batched_box_iou(a, b), torch.stack([box_iou(x, y) for x, y in zip(a, b)]))


# --------------------------------------------------------------------------- parity
@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("options", [{}, {"rescore": "max"}, {"nms_threshold": 0.1},
                                     {"link_threshold": 0.3, "suppress_threshold": 0.5}])
def test_matches_reference_loop_exactly(seed, options):
    frames = random_video(seed)
    got = _as_rows(seq_nms(frames, **options))
    want = [sorted((tuple(float(x) for x in b), float(s), lab) for b, s, lab in f)
            for f in reference_seq_nms(frames, **options)]
    assert got == want


def test_parity_has_teeth():
    """The reference is not trivially equal: rescoring really changes scores here."""
    frames = random_video(1)
    ref = reference_seq_nms(frames)
    n_in, n_out = sum(len(f[1]) for f in frames), sum(len(f) for f in ref)
    assert 0 < n_out < n_in
    original = {(tuple(b.tolist()), s.item()) for f in frames for b, s in zip(f[0], f[1])}
    assert any((tuple(float(x) for x in b), float(s)) not in original for f in ref for b, s, _ in f)


def test_score_dataset_passes_the_seq_nms_options(vid_mini):
    from minivod.data.vid import VIDDataset
    from minivod.engine.evaluate import score_dataset

    val = VIDDataset(vid_mini, "val")
    assert len(val.videos) == 1 and len(val.videos[0]) == len(TRACK)
    per_video = [[{"boxes": b, "scores": s, "labels": lab} for b, s, lab in _frames(TRACK)]]
    middle = val.videos[0].frames[1].index
    _, plain = score_dataset(per_video, val)
    _, avg = score_dataset(per_video, val, use_seq_nms=True)
    _, top = score_dataset(per_video, val, use_seq_nms=True, rescore="max")
    assert len(plain[middle][1]) == 2 and len(avg[middle][1]) == 1  # X suppressed
    assert avg[middle][1].tolist() == pytest.approx([0.7]) and top[middle][1].tolist() == pytest.approx([0.9])


@pytest.mark.parametrize("seed", [0, 3])
def test_one_class_padded_gives_what_seq_nms_keeps(seed):
    frames = random_video(seed)
    out = seq_nms(frames)
    for c in (1, 2, 3):
        boxes, scores, valid = pad_class(frames, c)
        assert valid.sum() == sum(int((f[2] == c).sum()) for f in frames)
        on_path, new = seq_nms_class(boxes, scores, valid)
        for t, (b, s, lab) in enumerate(out):  # the final NMS removes nothing (thresholds 0.5 > 0.3)
            expected = sorted(zip(map(tuple, b[lab == c].double().tolist()), s[lab == c].tolist()))
            got = sorted(zip(map(tuple, boxes[t][on_path[t]].tolist()), new[t][on_path[t]].float().tolist()))
            assert got == expected, (c, t)
