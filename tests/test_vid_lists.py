"""The ImageNet VID lists people download (FGFA / SELSA / MEGA / mmtracking), on a hand-written fixture.

``tests/fixtures/vid_lists`` is an ILSVRC2015 copy in miniature: VID snippets nested as in the
release, DET stills under ``ILSVRC2014_train_0000/`` and ``ILSVRC2013_train/<wnid>/``, the
devkit's ``val.txt`` and the codebases' lists beside it in ``ImageSets/``.
"""
import json

import numpy as np
import pytest

from minivod.cli import main
from minivod.data.clips import TrainClips
from minivod.data.lists import read_det_list, read_frame_list, resolve_list
from minivod.data.vid import DataError, VIDDataset
from minivod.eval import read_vid_results

SETS = "ImageSets"
VAL_LISTS = ("VID/val.txt", "VID_val_frames.txt", "VID_val_videos.txt")


@pytest.mark.parametrize("name, split, fmt", [
    ("VID/val.txt", "val", "devkit"), ("VID_val_frames.txt", "val", "frames"), ("VID_val_videos.txt", "val", "videos"),
    ("VID_train_15frames.txt", "train", "snippets"), ("VID_train_every10frames.txt", "train", "snippets")])
def test_each_format_is_recognised_from_the_file(vid_lists, name, split, fmt):
    assert read_frame_list(vid_lists / SETS / name, split).format == fmt


def test_a_trimmed_videos_list_keeps_the_devkit_indices(tmp_path):
    path = tmp_path / "two.txt"
    path.write_text("val/ILSVRC2015_val_00000001 5 0 3\n")  # the second snippet of the fixture only
    listed = read_frame_list(path, "val").frames
    assert [(f.frame_id, f.index) for f in listed] == [("ILSVRC2015_val_00000001/000000", 5),
                                                       ("ILSVRC2015_val_00000001/000001", 6),
                                                       ("ILSVRC2015_val_00000001/000002", 7)]
    one = tmp_path / "one.txt"  # a training list of one snippet listing frame 0 only: frame 0 is the reference
    one.write_text("train/ILSVRC2015_VID_train_0001/ILSVRC2015_train_00001000 1 0 8\n")
    assert [f.references for f in read_frame_list(one, "train").frames] == [1] + [0] * 7


def test_the_three_val_lists_give_the_devkits_frames_and_indices(vid_lists):
    """A val run made from any of them names each frame by the devkit's val.txt index."""
    seen = []
    for name in VAL_LISTS:
        ds = VIDDataset(vid_lists, "val", image_set=vid_lists / SETS / name)
        seen.append([(f.frame_id, f.index, f.boxes.tolist(), f.image_path.name) for f in ds.frames()])
    assert seen[0] == seen[1] == seen[2]
    assert [(fid, i) for fid, i, _, _ in seen[0]][3:6] == [
        ("ILSVRC2015_val_00000000/000003", 4), ("ILSVRC2015_val_00000001/000000", 5),
        ("ILSVRC2015_val_00000001/000001", 6)]
    devkit_lines = (vid_lists / SETS / "VID/val.txt").read_text().split()
    assert [f"{fid} {i}" for fid, i, _, _ in seen[2]] == [" ".join(devkit_lines[k:k + 2])
                                                          for k in range(0, len(devkit_lines), 2)]


def test_fifteen_frames_list_names_the_reference_frames(vid_lists):
    ds = VIDDataset(vid_lists, "train", image_set=vid_lists / SETS / "VID_train_15frames.txt")
    long, short = ds.videos
    assert long.name == "ILSVRC2015_VID_train_0000/ILSVRC2015_train_00000000"
    # all 20 frames are loaded as supports, but frame 5 has no object: skipped and counted
    assert len(long) == 19 and ds.report.skipped_empty_frames == 1
    listed = [0, 1, 3, 4, 5, 7, 8, 10, 11, 12, 14, 15, 16, 18, 19]
    frame_numbers = [int(f.frame_id[-6:]) for f in long.frames]
    assert [frame_numbers[p] for p in long.ref_positions] == [f for f in listed if f != 5]
    assert short.ref_positions == list(range(8))
    # an epoch trains on exactly those references, whatever frames_per_video says
    clips = TrainClips(ds, k=2, frames_per_video=3)
    assert [p for v, p in clips.items if v == 0] == long.ref_positions and len(clips) == 14 + 8


def test_every_tenth_frame_list_and_repeated_references(vid_lists, tmp_path):
    ds = VIDDataset(vid_lists, "train", image_set=vid_lists / SETS / "VID_train_every10frames.txt")
    assert [v.ref_positions for v in ds.videos] == [[0, 9], [0]]  # frame 10 is position 9 once frame 5 is gone
    repeated = tmp_path / "repeated.txt"
    repeated.write_text("train/ILSVRC2015_VID_train_0001/ILSVRC2015_train_00001000 1 2 8\n" * 2)
    ds = VIDDataset(vid_lists, "train", image_set=repeated)
    assert ds.videos[0].ref_positions == [2, 2] and len(ds.videos[0]) == 8


def test_codebases_det_list_with_nested_folders(vid_lists):
    assert [i for _, i, _ in read_det_list(vid_lists / SETS / "DET_train_30classes.txt")] == [0, 0]
    ds = VIDDataset(vid_lists, "train", image_set=vid_lists / SETS / "VID_train_15frames.txt", with_det=True,
                    det_list=vid_lists / SETS / "DET_train_30classes.txt")
    stills = [v for v in ds.videos if v.is_still]
    assert [v.name for v in stills] == ["ILSVRC2014_train_0000/ILSVRC2014_train_00000663",
                                        "ILSVRC2013_train/n02419796/n02419796_1034"]
    assert stills[1].frames[0].image_path == vid_lists / "Data/DET/train/ILSVRC2013_train/n02419796/n02419796_1034.JPEG"
    assert [v.frames[0].labels.tolist() for v in stills] == [[1], [2]]
    assert ds.report.skipped_det_objects == 1  # the wine bottle of the 2014 image is not a VID class


@pytest.mark.parametrize("text, split, message", [
    ("val/ILSVRC2015_val_00000000 1 0\n", "val", r"x\.txt:1: expected .* \(2 columns\) or .* \(4 columns\)"),
    ("val/ILSVRC2015_val_00000000 1 0 4\nval/ILSVRC2015_val_00000001 5 0\n", "val",
     r"x\.txt:2: 3 columns where line 1 has 4"),
    ("train/a/b 1 20 20\n", "train", r"x\.txt:1: frame 20 lies outside its snippet of 20 frames"),
    ("train/a/b 1 0 20\ntrain/a/b 1 3 19\n", "train", r"x\.txt:2: a/b has 19 frames here but 20 on line 1"),
    ("train/a/b 1 two 20\n", "train", r"x\.txt:1: the frame number is not an integer: 'two'"),
    ("val/v/000000 1\nv/000001 2\n", "val", r"x\.txt:2: expected '<split>/<snippet>/<frame>' as on line 1"),
    ("v/000000 1\nv/000001 1\n", "val", r"x\.txt:2: frame index 1 already used on line 1"),
    ("\n\n", "val", r"x\.txt: the list names no frames"),
    # a list for another split than the one read, and val lists of snippets that are not VID_val_videos.txt
    ("train/a/b 1 3 20\n", "val", r"x\.txt:1: names a frame of train/, but the list is read for the val split"),
    ("val/v/000000 1\n", "train", r"x\.txt:1: names a frame of val/, but the list is read for the train split"),
    ("val/a 1 0 4\nval/a 1 0 4\n", "val", r"x\.txt:2: a is listed again \(line 1\); a val list of snippets"),
    ("val/a 1 2 4\n", "val", r"x\.txt:1: frame 2, not 0; a val list of snippets names each snippet once"),
    ("val/a 1 0 4\nval/b 3 0 4\n", "val", r"x\.txt:2: frame index 3 is already used by the snippet on line 1"),
])
def test_bad_list_lines_name_file_and_line(tmp_path, text, split, message):
    path = tmp_path / "x.txt"
    path.write_text(text)
    with pytest.raises(DataError, match=message):
        read_frame_list(path, split)


def test_missing_default_list_says_which_option_names_the_frames(vid_lists):
    with pytest.raises(DataError, match=r"ImageSets/VID/train\.txt: list file not found; name the train frames "
                                        r"with --train-list"):
        VIDDataset(vid_lists, "train")


def test_bad_det_list_and_missing_files(vid_lists, tmp_path):
    path = tmp_path / "det.txt"
    path.write_text("train/ILSVRC2014_train_0000/ILSVRC2014_train_00000663 1\nILSVRC2014_train_00000664 2\n")
    with pytest.raises(DataError, match=r"det\.txt:2: 'ILSVRC2014_train_00000664' mixes the two DET list formats"):
        read_det_list(path)
    with pytest.raises(DataError, match=r"nope\.txt: list file not found"):
        read_frame_list(tmp_path / "nope.txt")
    # a frame of an expanded snippet that is missing is reported at its snippet's line
    (vid_lists / "Data/VID/val/ILSVRC2015_val_00000001/000002.JPEG").unlink()
    with pytest.raises(DataError, match=r"VID_val_videos\.txt:2: names 'ILSVRC2015_val_00000001/000002', "
                                        r"but the image .* is missing"):
        VIDDataset(vid_lists, "val", image_set=vid_lists / SETS / "VID_val_videos.txt")


def test_list_paths_resolve_beside_the_data(vid_lists, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_list("ImageSets/VID_val_videos.txt", vid_lists) == vid_lists / SETS / "VID_val_videos.txt"
    assert resolve_list("elsewhere.txt", vid_lists).name == "elsewhere.txt"  # left for the reader to report


def test_train_eval_evaluate_round_trip_with_the_codebases_lists(vid_lists, tmp_path, capsys):
    """``train`` on VID_train_15frames.txt + DET_train_30classes.txt, ``eval`` on VID_val_videos.txt,
    ``evaluate`` the result file against VID_val_frames.txt and the devkit's val.txt: one answer."""
    run = tmp_path / "run"
    assert main(["train", "--method", "baseline", "--data", str(vid_lists), "--iters", "2", "--batch-size", "2",
                 "--train-list", "ImageSets/VID_train_15frames.txt",
                 "--det-list", "ImageSets/DET_train_30classes.txt", "--out", str(run)]) == 0
    out = capsys.readouterr().out
    # 2 snippets (19 + 8 frames kept) and 2 stills; an epoch is the 14 + 8 listed references and the stills
    assert "4 videos, 29 frames" in out and "(24 clips per epoch)" in out
    dets, scores = tmp_path / "dets.txt", tmp_path / "scores.json"
    assert main(["eval", "--method", "baseline", "--checkpoint", str(run / "model.pt"), "--data", str(vid_lists),
                 "--val-list", "ImageSets/VID_val_videos.txt", "--dets", str(dets), "--out", str(scores),
                 "--device", "cpu"]) == 0
    frames = set(read_vid_results(dets).frame_index.tolist())
    assert frames and frames <= set(range(1, 8))  # the devkit's val.txt indices
    mAPs = []
    for val_list in ("ImageSets/VID_val_frames.txt", None):
        out_json = tmp_path / f"evaluate_{len(mAPs)}.json"
        args = ["evaluate", "--data", str(vid_lists), "--dets", str(dets), "--out", str(out_json)]
        assert main(args + (["--val-list", val_list] if val_list else [])) == 0
        mAPs.append(json.loads(out_json.read_text())["mAP"])
    assert mAPs[0] == mAPs[1] == pytest.approx(json.loads(scores.read_text())["mAP"])
    assert np.isfinite(mAPs[0])
