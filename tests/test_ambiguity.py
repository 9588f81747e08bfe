"""data_small's premise, measured per box: texture energy of every box and of its track's best frame;
the per-box helpers of ``minivod.data.stats`` that go with it."""
import numpy as np

from minivod.data.ambiguity import box_texture_energy, degraded_example, texture_energy
from minivod.data.stats import box_groups, every_box, track_max
from minivod.data.vid import VIDDataset, load_image


def test_box_texture_energy_follows_every_box_and_track_max_takes_the_track_maximum(data_small):
    val = VIDDataset(data_small, "val").subset([3])
    energy = box_texture_energy(val)
    boxes = every_box(val)
    assert energy.shape == (len(boxes),)
    for g in (0, len(boxes) // 2, len(boxes) - 1):  # the same value as the function on one box
        f, j = boxes[g]
        assert energy[g] == texture_energy(load_image(f.image_path), f.boxes[j])
    track_best = track_max(val, energy)
    tracks = np.array([int(f.track_ids[j]) for f, j in boxes])
    for tid in np.unique(tracks):
        on = tracks == tid
        assert np.all(track_best[on] == np.nanmax(energy[on]))
    has_clean = track_max(val, box_groups(val)["clean"])
    for tid in np.unique(tracks):
        on = tracks == tid
        assert np.all(has_clean[on] == float(any(not f.tags[j] for (f, j), o in zip(boxes, on) if o)))


def test_track_max_keeps_tracks_of_different_videos_apart():
    from pathlib import Path
    from types import SimpleNamespace

    from minivod.data.vid import FrameAnnotation, Video

    def frame(index, track_ids):
        n = len(track_ids)
        return FrameAnnotation(f"v/{index:06d}", index, Path("x.JPEG"), 100, 100, np.zeros((n, 4), np.float32),
                               np.ones(n, np.int64), np.asarray(track_ids), np.zeros(n, bool), [()] * n)

    data = SimpleNamespace(videos=[Video("a", [frame(1, [0, 1]), frame(2, [0])]), Video("b", [frame(3, [0])])])
    # boxes: a/t0, a/t1, a/t0, b/t0 (track 0 of video b is another object than track 0 of video a)
    out = track_max(data, np.array([0.1, np.nan, 0.3, 0.2]))
    assert out[[0, 2, 3]].tolist() == [0.3, 0.3, 0.2] and np.isnan(out[1])


def test_degraded_example_pairs_a_tagged_box_with_the_sharpest_clean_frame_of_its_track(data_small):
    val = VIDDataset(data_small, "val")
    (f, j), (g, i) = degraded_example(val, "motion_blur")
    assert f.tags[j] == ("motion_blur",) and f.boxes[j, 2] - f.boxes[j, 0] >= 15
    assert g.tags[i] == () and g.track_ids[i] == f.track_ids[j]
    video = next(v for v in val.videos if any(h is g for h in v.frames))
    assert any(h is f for h in video.frames)  # the same video
    others = [texture_energy(load_image(h.image_path), h.boxes[k]) for h in video.frames for k in range(len(h))
              if h.track_ids[k] == f.track_ids[j] and not h.tags[k]]
    assert texture_energy(load_image(g.image_path), g.boxes[i]) == np.nanmax(others)
    # a sharp clean frame has far more texture than the blurred one
    assert texture_energy(load_image(g.image_path), g.boxes[i]) > 3 * texture_energy(load_image(f.image_path), f.boxes[j])
    assert degraded_example(val.subset([]), "motion_blur") is None


def test_one_per_video_takes_the_first_hit_of_each_video_in_order(data_small):
    from minivod.data.stats import one_per_video

    val = VIDDataset(data_small, "val").subset([0, 1, 2])
    boxes = every_box(val)
    video = np.array([f.frame_id.split("/")[0] for f, _ in boxes])
    blurred = box_groups(val)["motion_blur"]
    picks = one_per_video(val, blurred, 5)
    assert len(picks) == len({video[g] for g in np.flatnonzero(blurred)})  # one per video holding a hit
    assert [video[g] for g in picks] == sorted({video[g] for g in picks}, key=list(video).index)  # in order
    for g in picks:  # each is its video's first hit
        assert blurred[g] and not blurred[(video == video[g]) & (np.arange(len(boxes)) < g)].any()
    assert one_per_video(val, blurred, 1) == picks[:1]
    assert one_per_video(val, np.zeros(len(boxes), bool), 3) == []
