"""data_small's premise, measured per box: texture energy of every box and of its track's best frame."""
import numpy as np

from minivod.data.ambiguity import box_texture_energy, degraded_example, texture_energy
from minivod.data.stats import every_box
from minivod.data.vid import VIDDataset, load_image


def test_box_texture_energy_follows_every_box_and_takes_the_track_maximum(data_small):
    val = VIDDataset(data_small, "val").subset([3])
    energy, track_best = box_texture_energy(val)
    boxes = every_box(val)
    assert energy.shape == track_best.shape == (len(boxes),)
    for g in (0, len(boxes) // 2, len(boxes) - 1):  # the same value as the function on one box
        f, j = boxes[g]
        assert energy[g] == texture_energy(load_image(f.image_path), f.boxes[j])
    tracks = np.array([int(f.track_ids[j]) for f, j in boxes])
    for tid in np.unique(tracks):
        on = tracks == tid
        assert np.all(track_best[on] == np.nanmax(energy[on]))
    assert np.all(track_best >= np.nan_to_num(energy, nan=-1))


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
