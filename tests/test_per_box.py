"""Per-box answers (the best detection on each ground-truth box) and the disagreement finder."""
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from minivod.data.vid import FrameAnnotation, Video
from minivod.eval.per_box import box_answers, disagreements, has_blurred_box


def frame(index, boxes, labels):
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    n = len(boxes)
    return FrameAnnotation(f"v/{index:06d}", index, Path("x.JPEG"), 100, 100, boxes, np.asarray(labels, dtype=np.int64),
                           np.arange(n), np.zeros(n, bool), [()] * n)


def dets(boxes, scores, labels):
    return (torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4), torch.tensor(scores, dtype=torch.float32),
            torch.tensor(labels, dtype=torch.int64))


def test_best_overlapping_detection_answers_each_box():
    f1 = frame(1, [[0, 0, 19, 19], [50, 50, 69, 69]], [3, 4])
    f2 = frame(2, [[0, 0, 19, 19]], [1])
    data = SimpleNamespace(videos=[Video("v", [f1, f2])])
    detections = {
        # box 0: two overlapping detections, the higher-scoring one (label 5) answers; a
        # higher-scoring far-away detection (label 7) must not; box 1: nothing overlaps
        1: dets([[0, 0, 19, 19], [1, 1, 19, 19], [80, 80, 95, 95]], [0.4, 0.6, 0.9], [3, 5, 7]),
        2: dets([], [], []),
    }
    answers = box_answers(detections, data)
    assert answers[1].tolist() == [5, 0]
    assert answers[2].tolist() == [0]


def test_disagreements_rank_frames_by_spread_of_right_answers():
    frames = [frame(i, [[0, 0, 19, 19], [40, 40, 59, 59]], [1, 2]) for i in (1, 2)]
    data = SimpleNamespace(videos=[Video("v", frames)])
    answers = {"a": {1: np.array([1, 2]), 2: np.array([1, 0])},
               "b": {1: np.array([1, 2]), 2: np.array([2, 1])}}  # frame 2: a gets 1 right, b none
    found = disagreements(answers, data)
    assert len(found) == 1 and found[0]["frame"].index == 2
    assert found[0]["right"] == {"a": 1, "b": 0}
    same = {"a": answers["a"], "b": answers["a"]}
    assert disagreements(same, data) == []  # no frame where they differ


def test_disagreements_only_among_the_frames_asked_for():
    frames = [frame(i, [[0, 0, 19, 19], [40, 40, 59, 59]], [1, 2]) for i in (1, 2, 3)]
    frames[0].tags = [("motion_blur",), ()]
    frames[2].tags = [("occlusion",), ("defocus", "truncation")]
    assert [has_blurred_box(f) for f in frames] == [True, False, True]
    data = SimpleNamespace(videos=[Video("v", frames)])
    answers = {"a": {1: np.array([1, 0]), 2: np.array([1, 2]), 3: np.array([1, 0])},
               "b": {1: np.array([1, 2]), 2: np.array([0, 0]), 3: np.array([1, 2])}}
    assert disagreements(answers, data)[0]["frame"].index == 2  # spread 2 beats spread 1
    found = disagreements(answers, data, where=has_blurred_box)
    assert [e["frame"].index for e in found] == [1] and found[0]["right"] == {"a": 1, "b": 2}


def test_subset_keeps_the_chosen_videos(data_small):
    from minivod.data.vid import VIDDataset

    val = VIDDataset(data_small, "val")
    part = val.subset([0, 3])
    assert [v.name for v in part.videos] == [val.videos[0].name, val.videos[3].name]
    assert part.report.frames == len(val.videos[0]) + len(val.videos[3])
    assert len(val.videos) == 48  # the original is untouched


# --------------------------------------------------------------------------- outcomes: right / pair / other / missed
def test_pair_of_swaps_the_two_textures_of_a_shape():
    from minivod.eval.per_box import pair_of

    assert [pair_of(c) for c in range(1, 9)] == [2, 1, 4, 3, 6, 5, 8, 7]


def test_box_outcomes_sort_each_box_into_right_pair_other_missed():
    from minivod.data.stats import box_groups
    from minivod.eval.per_box import box_outcomes, outcome_shares

    # frame 1: truth 3 answered 3 (right), truth 5 answered 6 (its pair), truth 1 answered 7 (other);
    # frame 2: truth 2, nothing overlaps (missed)
    f1 = frame(1, [[0, 0, 19, 19], [30, 30, 49, 49], [60, 60, 79, 79]], [3, 5, 1])
    f2 = frame(2, [[0, 0, 19, 19]], [2])
    f1.tags = [(), ("motion_blur",), ("motion_blur", "defocus")]
    for f in (f1, f2):
        f.motion_iou = np.full(len(f), 0.95, dtype=np.float32)
    f2.motion_iou[:] = 0.5
    data = SimpleNamespace(videos=[Video("v", [f1, f2])])
    detections = {1: dets([[0, 0, 19, 19], [30, 30, 49, 49], [60, 60, 79, 79], [61, 61, 79, 79]],
                          [0.9, 0.8, 0.7, 0.2], [3, 6, 7, 1]),  # the lower-scoring right answer on box 3 loses
                  2: dets([[50, 50, 69, 69]], [0.9], [2])}
    out = box_outcomes(detections, data)
    assert out["outcome"].tolist() == ["right", "pair", "other", "missed"]
    assert out["answer"].tolist() == [3, 6, 7, 0]
    assert out["detection"].tolist() == [0, 1, 2, -1]
    assert out["score"] == pytest.approx([0.9, 0.8, 0.7, 0.0])
    # the labels agree with box_answers, frame by frame
    answers = box_answers(detections, data)
    assert np.concatenate([answers[1], answers[2]]).tolist() == out["answer"].tolist()

    groups = box_groups(data)
    assert groups["clean"].tolist() == [True, False, False, True]
    assert groups["motion_blur"].tolist() == [False, True, True, False]
    assert groups["defocus"].tolist() == [False, False, True, False]
    assert groups["slow"].tolist() == [True, True, True, False] and groups["fast"].tolist() == [False] * 3 + [True]
    shares = outcome_shares(out["outcome"], groups)
    assert shares["all"] == {"right": 0.25, "pair": 0.25, "other": 0.25, "missed": 0.25, "boxes": 4}
    assert shares["motion_blur"] == {"right": 0.0, "pair": 0.5, "other": 0.5, "missed": 0.0, "boxes": 2}
    assert shares["occlusion"]["boxes"] == 0 and shares["occlusion"]["right"] == 0.0


def test_box_outcomes_on_data_small_follow_every_box(data_small):
    from minivod.data.stats import box_groups, every_box
    from minivod.data.vid import VIDDataset
    from minivod.eval.per_box import box_outcomes

    val = VIDDataset(data_small, "val").subset([0, 1])
    # a "detector" that answers every box with its own box: the true class on even frames, the pair's on odd ones
    detections = {}
    for f in val.frames():
        labels = f.labels if f.index % 2 == 0 else np.where(f.labels % 2 == 1, f.labels + 1, f.labels - 1)
        detections[f.index] = dets(f.boxes, np.ones(len(f)), labels)
    out = box_outcomes(detections, val)
    boxes = every_box(val)
    assert len(out["outcome"]) == len(boxes) == val.report.boxes == len(box_groups(val)["all"])
    expected = ["right" if f.index % 2 == 0 else "pair" for f, _ in boxes]
    assert out["outcome"].tolist() == expected


def test_track_scores_and_the_most_flickering_track():
    from minivod.eval.per_box import flickering_track, track_scores

    def f(index, tracks):  # tracks: {track id: (box, label)}
        fr = frame(index, [b for b, _ in tracks.values()], [lab for _, lab in tracks.values()])
        fr.track_ids = np.array(list(tracks), dtype=np.int64)
        return fr

    steady, blinking = ([0, 0, 19, 19], 1), ([40, 40, 59, 59], 2)
    video = Video("v", [f(1, {7: steady, 9: blinking}), f(2, {7: steady, 9: blinking}), f(3, {7: steady})])
    # continuous boxes: VID [0, 0, 19, 19] is [0, 0, 20, 20]
    frames = [dets([[0, 0, 20, 20], [40, 40, 60, 60], [41, 40, 61, 60]], [0.8, 0.9, 0.3], [1, 2, 2]),
              dets([[0, 0, 20, 20], [40, 40, 60, 60]], [0.7, 0.2], [1, 1]),  # track 9: only the wrong class
              dets([[1, 0, 21, 20]], [0.75], [1])]
    assert track_scores(frames, video, 7).tolist() == pytest.approx([0.8, 0.7, 0.75])
    s9 = track_scores(frames, video, 9)
    assert s9[:2].tolist() == pytest.approx([0.9, 0.0]) and np.isnan(s9[2])  # not in frame 3
    data = SimpleNamespace(videos=[video])
    vi, tid, scores = flickering_track([frames], data)
    assert (vi, tid) == (0, 9) and np.array_equal(scores, s9, equal_nan=True)
