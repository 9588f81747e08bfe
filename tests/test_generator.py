"""The data_small generator: determinism, speed groups, flow, and the committed copy."""
import hashlib
import json

import numpy as np
import pytest

from minivod.data.generate import generate, load_scene
from minivod.data.motion import motion_group
from minivod.data.synthetic import gt_flow, render_frame, warp_backward
from minivod.data.vid import VIDDataset


def _digest(root):
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("gen") / "a"
    generate(root, seed=3, train_videos=2, val_videos=2, frames=24, det_images=4, progress=False)
    return root


def test_same_seed_same_files(small_set, tmp_path):
    again = tmp_path / "a"  # same folder name, so the README's command line matches too
    generate(again, seed=3, train_videos=2, val_videos=2, frames=24, det_images=4, progress=False)
    assert _digest(small_set) == _digest(again)
    other = tmp_path / "b" / "a"
    generate(other, seed=4, train_videos=2, val_videos=2, frames=24, det_images=4, progress=False)
    assert _digest(small_set) != _digest(other)


def test_reads_back_in_vid_layout(small_set):
    ds = VIDDataset(small_set, "val")
    assert len(ds.videos) == 2 and all(len(v) == 24 for v in ds.videos)
    det = VIDDataset(small_set, "train", with_det=True)
    assert sum(v.is_still for v in det.videos) == 4
    stats = json.loads((small_set / "stats.json").read_text())
    assert stats["val"]["boxes"] == sum(len(f) for f in ds.frames())


def test_speed_groups_match_motion_iou_definition(small_set):
    """Recompute motion IoU from the XML boxes, independently of the reader's helper."""
    ds = VIDDataset(small_set, "val")
    for video in ds.videos:
        tracks = {}
        for t, f in enumerate(video.frames):
            for j, tid in enumerate(f.track_ids):
                tracks.setdefault(int(tid), {})[t] = (f.boxes[j], f.motion_iou[j])
        for seen in tracks.values():
            for t, (box, miou) in seen.items():
                ious = []
                for s, (other, _) in seen.items():
                    if s != t and abs(s - t) <= 10:
                        iw = min(box[2], other[2]) - max(box[0], other[0]) + 1
                        ih = min(box[3], other[3]) - max(box[1], other[1]) + 1
                        inter = max(iw, 0) * max(ih, 0)
                        area = lambda b: (b[2] - b[0] + 1) * (b[3] - b[1] + 1)  # noqa: E731
                        ious.append(inter / (area(box) + area(other) - inter))
                expected = np.mean(ious) if ious else 0.0
                assert miou == pytest.approx(expected, abs=1e-5)


def test_flow_reproduces_the_next_frame_on_objects():
    """Backward-warping frame t+1 by the ground-truth flow gives frame t on object pixels.

    The fine texture (2-px cells) can't survive bilinear resampling exactly, so
    the check is relative: the true flow must explain the change far better than
    no flow or the reversed flow.
    """
    from minivod.data.generate import sample_scene
    scene = sample_scene(np.random.default_rng(7), 16, 160, 120)
    checked = 0
    for t in range(15):
        img0, alphas = render_frame(scene, t, degrade=False)
        img1, _ = render_frame(scene, t + 1, degrade=False)
        flow, valid = gt_flow(scene, t)
        f0, f1 = (i.transpose(2, 0, 1).astype(np.float32) for i in (img0, img1))  # (3, H, W)
        solid = np.zeros(valid.shape, bool)
        for a in alphas:  # well inside a silhouette, away from blended edges
            solid |= a > 0.999
        mask = solid & valid & (np.hypot(flow[0], flow[1]) > 1.0)
        if mask.sum() < 50:
            continue
        err = np.abs(warp_backward(f1, flow) - f0)[:, mask].mean()
        err_none = np.abs(f1 - f0)[:, mask].mean()
        err_reversed = np.abs(warp_backward(f1, -flow) - f0)[:, mask].mean()
        assert err < 0.6 * err_none and err < 0.6 * err_reversed, (t, err, err_none, err_reversed)
        checked += 1
    assert checked >= 3


def test_committed_data_small(data_small):
    """The committed data_small is what the default command makes, and meets the testbed's counts."""
    stats = json.loads((data_small / "stats.json").read_text())
    assert stats["settings"]["seed"] == 0
    assert stats["val"]["videos"] >= 48
    for group in ("slow", "medium", "fast"):
        assert stats["val"]["speed_groups"][group] >= 600
    ds = VIDDataset(data_small, "val")
    groups = np.concatenate([motion_group(f.motion_iou) for f in ds.frames()])
    assert {g: int((groups == g).sum()) for g in ("slow", "medium", "fast")} == stats["val"]["speed_groups"]
    scene = load_scene(data_small, "val", ds.videos[0].name)
    assert scene["num_frames"] == len(ds.videos[0])
    size = sum(p.stat().st_size for p in data_small.rglob("*") if p.is_file())
    assert size <= 30e6  # apparent size


def test_tags_mean_the_texture_is_gone():
    """Where motion_blur or defocus is tagged, under 5% of the texture's contrast is left; slow motion is sharp."""
    from minivod.data.generate import (BLUR_SIGMA_RATIO, MAX_SHAKE_SIGMA, SHUTTER_SPEED, TAG_BLUR_LEN, TAG_DEFOCUS,
                                       blur_length, texture_contrast)

    assert texture_contrast(min(BLUR_SIGMA_RATIO * TAG_BLUR_LEN, MAX_SHAKE_SIGMA)) < 0.05
    assert texture_contrast(TAG_DEFOCUS) < 0.05
    assert texture_contrast(0.0) == 1.0
    assert blur_length(SHUTTER_SPEED * 0.99) == 0.0 and blur_length(SHUTTER_SPEED + 1.0) > TAG_BLUR_LEN


def test_val_videos_can_be_shorter(tmp_path):
    stats = generate(tmp_path / "d", seed=1, train_videos=1, val_videos=2, frames=12, val_frames=10, det_images=1,
                     progress=False)
    assert stats["train"]["frames"] == 12 and stats["val"]["frames"] == 20
