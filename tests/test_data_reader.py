"""The VID-layout reader on a hand-written fixture, including every kind of bad input."""
import re

import numpy as np
import pytest

from minivod.data.motion import motion_group, track_motion_iou
from minivod.data.vid import DataError, VIDDataset, load_class_map, load_image


def test_reads_val_layout(vid_mini):
    ds = VIDDataset(vid_mini, "val")
    assert ds.class_map.names == ["airplane", "antelope"]
    assert len(ds.videos) == 1
    video = ds.videos[0]
    assert video.name == "ILSVRC2015_val_00000000"
    assert [f.index for f in video.frames] == [1, 2, 3]
    f1 = video.frames[1]
    assert f1.frame_id == "ILSVRC2015_val_00000000/000001"
    np.testing.assert_array_equal(f1.boxes, [[12, 5, 31, 24], [40, 30, 60, 45]])
    np.testing.assert_array_equal(f1.labels, [1, 2])
    np.testing.assert_array_equal(f1.track_ids, [0, 1])
    assert f1.tags == [(), ()]
    assert load_image(f1.image_path).shape == (3, 48, 64)


def test_train_snippets_with_subfolders_and_skipped_empty_frames(vid_mini):
    ds = VIDDataset(vid_mini, "train")
    assert [v.name for v in ds.videos] == ["ILSVRC2015_VID_train_0000/ILSVRC2015_train_00000000"]
    assert len(ds.videos[0]) == 2                 # the frame without objects is skipped ...
    assert ds.report.skipped_empty_frames == 1    # ... and counted, not dropped silently
    assert "1 frames without objects" in str(ds.report)
    assert ds.videos[0].frames[1].occluded.tolist() == [True]
    kept = VIDDataset(vid_mini, "train", skip_empty=False)
    assert len(kept.videos[0]) == 3


def test_motion_iou_by_hand(vid_mini):
    ds = VIDDataset(vid_mini, "val")
    f0 = ds.videos[0].frames[0]
    # track 0 moves 2 px per frame; a 20x20 box shifted by 2 and 4 px (+1 convention)
    iou = lambda d: (20 - d) * 20 / (2 * 400 - (20 - d) * 20)  # noqa: E731
    assert f0.motion_iou[0] == pytest.approx((iou(2) + iou(4)) / 2, rel=1e-5)
    assert f0.motion_iou[1] == pytest.approx(1.0)  # track 1 does not move
    assert motion_group(f0.motion_iou).tolist() == ["medium", "slow"]


def test_motion_iou_window_and_lonely_track():
    boxes = np.array([[0, 0, 9, 9]] * 3, dtype=float)
    # frames 0 and 11 are 11 apart: outside each other's +-10 window
    assert track_motion_iou(np.array([0, 11, 30]), boxes).tolist() == [0.0, 0.0, 0.0]
    assert track_motion_iou(np.array([0, 10]), boxes[:2]).tolist() == [1.0, 1.0]
    assert motion_group([0.95, 0.9, 0.7, 0.69]).tolist() == ["slow", "medium", "medium", "fast"]


def _xml(vid_mini, split="val", frame="000001"):
    return vid_mini / "Annotations" / "VID" / split / "ILSVRC2015_val_00000000" / f"{frame}.xml"


def _expect(vid_mini, pattern, split="val"):
    with pytest.raises(DataError, match=pattern):
        VIDDataset(vid_mini, split)


def test_missing_image_names_list_line(vid_mini):
    (vid_mini / "Data/VID/val/ILSVRC2015_val_00000000/000002.JPEG").unlink()
    _expect(vid_mini, r"val\.txt:3: .*000002\.JPEG is missing")


def test_unreadable_image(vid_mini):
    path = vid_mini / "Data/VID/val/ILSVRC2015_val_00000000/000000.JPEG"
    path.write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match=re.escape(str(path)) + ": unreadable image"):
        load_image(path)


def test_malformed_xml(vid_mini):
    _xml(vid_mini).write_text("<annotation><size><width>64</width>")
    _expect(vid_mini, r"000001\.xml: malformed XML")


def test_missing_field(vid_mini):
    xml = _xml(vid_mini)
    xml.write_text(xml.read_text().replace("<xmin>12</xmin>", ""))
    _expect(vid_mini, r"000001\.xml: missing field <xmin> in object 0 <bndbox>")


def test_box_outside_image(vid_mini):
    xml = _xml(vid_mini)
    xml.write_text(xml.read_text().replace("<xmax>60</xmax>", "<xmax>66</xmax>"))
    _expect(vid_mini, r"000001\.xml: object 1 box .* outside the 64x48 image")


def test_box_ending_at_the_image_width_is_clipped_and_counted(vid_mini):
    """Real VID has boxes with xmax == width; FGFA's reader clips them to width - 1."""
    xml = _xml(vid_mini)
    xml.write_text(xml.read_text().replace("<xmax>60</xmax>", "<xmax>64</xmax>"))
    ds = VIDDataset(vid_mini, "val")
    assert ds.videos[0].frames[1].boxes[1, 2] == 63
    assert ds.report.clipped_boxes == 1 and "1 boxes clipped" in str(ds.report)


def test_missing_trackid_and_bad_occluded(vid_mini):
    xml = _xml(vid_mini)
    text = xml.read_text()
    xml.write_text(text.replace("<trackid>1</trackid>", ""))
    _expect(vid_mini, r"000001\.xml: missing field <trackid> in object 1")
    xml.write_text(text.replace("<occluded>0</occluded>", "<occluded>yes</occluded>", 1))
    _expect(vid_mini, r"000001\.xml: field <occluded> in object 0 is not a number")


def test_inverted_box(vid_mini):
    xml = _xml(vid_mini)
    xml.write_text(xml.read_text().replace("<xmin>12</xmin>", "<xmin>40</xmin>"))
    _expect(vid_mini, r"000001\.xml: object 0 has an inverted box .*x2 < x1")


def test_unknown_class(vid_mini):
    xml = _xml(vid_mini)
    xml.write_text(xml.read_text().replace("n02419796", "n99999999"))
    _expect(vid_mini, r"000001\.xml: object 1 has unknown class 'n99999999'")


def test_empty_video(vid_mini):
    for jpeg in (vid_mini / "Data/VID/val/ILSVRC2015_val_00000000").glob("*.JPEG"):
        jpeg.unlink()
    _expect(vid_mini, r"val\.txt:1: .*ILSVRC2015_val_00000000: empty video")


def test_list_names_missing_annotation(vid_mini):
    _xml(vid_mini, frame="000002").unlink()
    _expect(vid_mini, r"val\.txt:3: .*the annotation .*000002\.xml is missing")


def test_malformed_list_line(vid_mini):
    path = vid_mini / "ImageSets/VID/val.txt"
    path.write_text(path.read_text() + "ILSVRC2015_val_00000000/000003 four\n")
    _expect(vid_mini, r"val\.txt:4: expected '<snippet>/<frame> <index>'")


def test_duplicate_index(vid_mini):
    path = vid_mini / "ImageSets/VID/val.txt"
    path.write_text(path.read_text().replace("000002 3", "000002 2"))
    _expect(vid_mini, r"val\.txt:3: frame index 2 already used on line 2")


def test_bad_class_map(tmp_path):
    path = tmp_path / "map_vid.txt"
    path.write_text("n02691156 1 airplane\nn02419796 3 antelope\n")
    with pytest.raises(DataError, match=r"map_vid\.txt:2: class indices must run 1\.\.C"):
        load_class_map(path)
    path.write_text("n02691156 airplane\n")
    with pytest.raises(DataError, match=r"map_vid\.txt:1: expected"):
        load_class_map(path)
