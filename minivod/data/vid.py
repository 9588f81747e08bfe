"""Reader for the ImageNet VID layout (and DET stills mixed into training).

The layout, relative to a dataset root such as ``data_small/``::

    Data/VID/{train,val}/<snippet>/<frame>.JPEG
    Annotations/VID/{train,val}/<snippet>/<frame>.xml
    ImageSets/VID/{train,val}.txt          "<snippet>/<frame> <index>" per line,
                                           index 1-based and global over the split
                                           (or any list of minivod.data.lists: the
                                           FGFA / SELSA / MEGA lists people download)
    map_vid.txt                            "<wnid> <index> <name>" per line
                                           (also found as devkit/data/map_vid.txt)
    Data/DET/train/<image>.JPEG            DET still images of the VID classes
    Annotations/DET/train/<image>.xml
    ImageSets/DET/train_30classes.txt      "<image> <index>" per line (or the codebases'
                                           DET_train_30classes.txt)

A ``<snippet>`` may contain slashes (real VID train snippets live in
``ILSVRC2015_VID_train_0000/ILSVRC2015_train_00000000``): the frame name is what
follows the last slash. Annotations are VOC-style XML with, per object,
``trackid``, ``name`` (the WordNet id), ``bndbox`` and ``occluded``. data_small
adds a ``degradations`` field (space-separated tags) that real VID lacks.

Bad input raises :class:`DataError` naming the file, and the line or field.
Nothing is dropped silently: training frames without objects are skipped as
VID codebases do, and the count is reported in :attr:`VIDDataset.report`.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from minivod.data.lists import DataError, FrameList, read_det_list, read_frame_list
from minivod.data.motion import motion_iou_for_video

VID_IMAGE_EXT = ".JPEG"
DEGRADATION_TAGS = ("motion_blur", "defocus", "occlusion", "truncation", "rare_pose", "illumination")


# --------------------------------------------------------------------------- class map
@dataclass
class ClassMap:
    """The devkit's class map: class index ``k`` (1..C) is ``wnids[k-1]`` / ``names[k-1]``."""

    wnids: list[str]
    names: list[str]

    def __len__(self) -> int:
        return len(self.wnids)

    def index_of(self, wnid: str) -> int | None:
        """1-based class index of a WordNet id, or None if it is not one of the classes."""
        try:
            return self.wnids.index(wnid) + 1
        except ValueError:
            return None


def load_class_map(path) -> ClassMap:
    """Read a ``map_vid.txt`` file (``<wnid> <index> <name>`` per line, index 1..C)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: class map not found")
    rows = []
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 3 or not parts[1].isdigit():
            raise DataError(f"{path}:{lineno}: expected '<wnid> <index> <name>', got {line!r}")
        rows.append((int(parts[1]), parts[0], parts[2], lineno))
    rows.sort()
    for expected, (index, wnid, _, lineno) in enumerate(rows, start=1):
        if index != expected:
            raise DataError(f"{path}:{lineno}: class indices must run 1..C without gaps; "
                            f"found {index} where {expected} was expected")
    return ClassMap(wnids=[r[1] for r in rows], names=[r[2] for r in rows])


def find_class_map(root) -> Path:
    root = Path(root)
    for candidate in (root / "map_vid.txt", root / "devkit" / "data" / "map_vid.txt"):
        if candidate.is_file():
            return candidate
    raise DataError(f"{root}: no class map (looked for map_vid.txt and devkit/data/map_vid.txt)")


# --------------------------------------------------------------------------- annotations
@dataclass
class FrameAnnotation:
    """One frame (or DET still) and its boxes.

    ``boxes`` are ``(x1, y1, x2, y2)`` inclusive pixel corners as in the XML.
    """

    frame_id: str                     # "<snippet>/<frame>"
    index: int                        # 1-based global index from the image set (0 if unlisted)
    image_path: Path
    width: int
    height: int
    boxes: np.ndarray                 # (N, 4) float32
    labels: np.ndarray                # (N,) int64, 1..C
    track_ids: np.ndarray             # (N,) int64
    occluded: np.ndarray              # (N,) bool
    tags: list = field(default_factory=list)  # N tuples of degradation tags
    motion_iou: np.ndarray | None = None        # (N,) float32, set by the video
    clipped: int = 0                            # boxes clipped from x2 == width to width - 1

    def __len__(self) -> int:
        return len(self.boxes)


def _text(elem, tag, path, what):
    child = elem.find(tag)
    if child is None or child.text is None or not child.text.strip():
        raise DataError(f"{path}: missing field <{tag}> in {what}")
    return child.text.strip()


def _number(elem, tag, path, what, kind=float):
    raw = _text(elem, tag, path, what)
    try:
        return kind(float(raw)) if kind is int else kind(raw)
    except ValueError:
        raise DataError(f"{path}: field <{tag}> in {what} is not a number: {raw!r}") from None


def parse_annotation(xml_path, class_map: ClassMap, *, image_path=None, frame_id="", index=0,
                     unknown="error") -> tuple[FrameAnnotation, int]:
    """Parse one VOC-style VID/DET annotation file.

    Args:
        unknown: what to do with an object whose ``name`` is not in the class map:
            ``"error"`` (VID) or ``"skip"`` (DET, which has 200 classes; the number
            skipped is returned).
    Returns:
        ``(annotation, n_skipped_objects)``; ``annotation.clipped`` counts boxes that ended one
        pixel past the image (``x2 == width``) and were clipped to it
    """
    xml_path = Path(xml_path)
    try:
        root = ET.parse(xml_path).getroot()
    except FileNotFoundError:
        raise DataError(f"{xml_path}: annotation file not found") from None
    except ET.ParseError as e:
        raise DataError(f"{xml_path}: malformed XML ({e})") from None
    size = root.find("size")
    if size is None:
        raise DataError(f"{xml_path}: missing field <size>")
    width = _number(size, "width", xml_path, "<size>", int)
    height = _number(size, "height", xml_path, "<size>", int)
    boxes, labels, tracks, occluded, tags = [], [], [], [], []
    skipped = clipped = 0
    for k, obj in enumerate(root.findall("object")):
        what = f"object {k}"
        wnid = _text(obj, "name", xml_path, what)
        label = class_map.index_of(wnid)
        if label is None:
            if unknown == "skip":
                skipped += 1
                continue
            raise DataError(f"{xml_path}: {what} has unknown class {wnid!r} (not in the class map)")
        bb = obj.find("bndbox")
        if bb is None:
            raise DataError(f"{xml_path}: missing field <bndbox> in {what}")
        x1, y1, x2, y2 = (_number(bb, t, xml_path, f"{what} <bndbox>") for t in ("xmin", "ymin", "xmax", "ymax"))
        if x2 < x1 or y2 < y1:
            raise DataError(f"{xml_path}: {what} has an inverted box ({x1}, {y1}, {x2}, {y2}): x2 < x1 or y2 < y1")
        if x1 < 0 or y1 < 0 or x2 > width or y2 > height:
            raise DataError(f"{xml_path}: {what} box ({x1}, {y1}, {x2}, {y2}) lies outside the "
                            f"{width}x{height} image")
        if x2 > width - 1 or y2 > height - 1:
            # real VID XML has some boxes ending at x2 == width: clip them to the last pixel, as
            # the FGFA / SELSA readers do, and count them
            x2, y2 = min(x2, width - 1), min(y2, height - 1)
            clipped += 1
        if obj.find("trackid") is not None:
            tracks.append(_number(obj, "trackid", xml_path, what, int))
        elif unknown == "skip":  # DET stills carry no track ids
            tracks.append(-1)
        else:
            raise DataError(f"{xml_path}: missing field <trackid> in {what}")
        occluded.append(bool(_number(obj, "occluded", xml_path, what, int)) if obj.find("occluded") is not None
                        else False)
        deg = obj.find("degradations")
        obj_tags = tuple(deg.text.split()) if deg is not None and deg.text else ()
        for t in obj_tags:
            if t not in DEGRADATION_TAGS:
                raise DataError(f"{xml_path}: {what} has unknown degradation tag {t!r}")
        boxes.append((x1, y1, x2, y2))
        labels.append(label)
        tags.append(obj_tags)
    anno = FrameAnnotation(
        frame_id=frame_id, index=index, image_path=Path(image_path) if image_path else xml_path,
        width=width, height=height,
        boxes=np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
        labels=np.asarray(labels, dtype=np.int64),
        track_ids=np.asarray(tracks, dtype=np.int64),
        occluded=np.asarray(occluded, dtype=bool),
        tags=tags,
        clipped=clipped,
    )
    return anno, skipped


# --------------------------------------------------------------------------- videos
@dataclass
class Video:
    """A snippet: its frames in temporal order. A DET still is a one-frame video."""

    name: str
    frames: list[FrameAnnotation]
    is_still: bool = False
    ref_positions: list[int] | None = None  # training reference frames named by the list (None: any)

    def __len__(self) -> int:
        return len(self.frames)

    def track_ids(self) -> list[int]:
        return sorted({int(t) for f in self.frames for t in f.track_ids})


@dataclass
class DatasetReport:
    videos: int = 0
    frames: int = 0
    boxes: int = 0
    skipped_empty_frames: int = 0     # training frames without objects (VID practice: skip)
    skipped_empty_videos: int = 0     # training snippets left with no frame
    skipped_det_objects: int = 0      # DET objects of classes outside the 30 VID classes
    clipped_boxes: int = 0            # boxes ending at x2 == width (or y2 == height), clipped by 1 px

    def __str__(self) -> str:
        s = f"{self.videos} videos, {self.frames} frames, {self.boxes} boxes"
        skipped = [(self.skipped_empty_frames, "frames without objects"),
                   (self.skipped_empty_videos, "videos without annotated frames"),
                   (self.skipped_det_objects, "DET objects of other classes")]
        extra = ", ".join(f"{n} {what}" for n, what in skipped if n)
        s += f" (skipped: {extra})" if extra else ""
        return s + (f" ({self.clipped_boxes} boxes clipped to the image by 1 px)" if self.clipped_boxes else "")


class VIDDataset:
    """The frames of one split of an ImageNet VID-layout dataset, grouped into videos.

    Args:
        root: the dataset root (``data_small`` or a real ILSVRC2015 copy).
        split: ``"train"`` or ``"val"``.
        class_map: a :class:`ClassMap`; found under ``root`` when omitted.
        image_set: the list file, in any format of :mod:`minivod.data.lists` (e.g. the
            codebases' ``VID_train_15frames.txt`` or ``VID_val_videos.txt``);
            ``ImageSets/VID/<split>.txt`` when omitted.
        skip_empty: drop frames without objects (the VID training practice); the
            count is in :attr:`report`. Defaults to True for ``train``.
        with_det: also read the DET stills as one-frame videos, as VID codebases mix
            them into training.
        det_list: the DET list (``ImageSets/DET/train_30classes.txt`` when omitted), in
            data_small's format or as the codebases' ``DET_train_30classes.txt``.
        check_images: raise if a listed frame's image file is missing.
    """

    def __init__(self, root, split="train", class_map: ClassMap | None = None, image_set=None,
                 skip_empty: bool | None = None, with_det: bool = False, check_images: bool = True, det_list=None):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(f"{self.root}: dataset root not found")
        self.split = split
        self.class_map = class_map or load_class_map(find_class_map(self.root))
        self.report = DatasetReport()
        skip_empty = (split == "train") if skip_empty is None else skip_empty
        if image_set is None and not (self.root / "ImageSets" / "VID" / f"{split}.txt").is_file():
            option = "--train-list" if split == "train" else "--val-list"
            raise DataError(f"{self.root / 'ImageSets' / 'VID' / f'{split}.txt'}: list file not found; name the "
                            f"{split} frames with {option} (e.g. the codebases' ImageSets/VID_train_15frames.txt or "
                            f"ImageSets/VID_val_videos.txt; docs/imagenet_vid.md)")
        image_set = Path(image_set) if image_set else self.root / "ImageSets" / "VID" / f"{split}.txt"
        self.frame_list: FrameList = read_frame_list(image_set, split)
        self.videos: list[Video] = self._read_vid(self.frame_list, skip_empty, check_images)
        if with_det:
            det_list = Path(det_list) if det_list else self.root / "ImageSets" / "DET" / "train_30classes.txt"
            self.videos += self._read_det(det_list, check_images)
        self.report.videos = len(self.videos)
        self.report.frames = sum(len(v) for v in self.videos)
        self.report.boxes = sum(len(f) for v in self.videos for f in v.frames)

    def subset(self, indices) -> "VIDDataset":
        """The same split with only the videos at ``indices`` (e.g. a quick evaluation in a notebook)."""
        import copy

        part = copy.copy(self)
        part.videos = [self.videos[i] for i in indices]
        part.report = copy.copy(self.report)
        part.report.videos = len(part.videos)
        part.report.frames = sum(len(v) for v in part.videos)
        part.report.boxes = sum(len(f) for v in part.videos for f in v.frames)
        return part

    def _read_vid(self, frame_list: FrameList, skip_empty, check_images) -> list[Video]:
        image_set = frame_list.path
        by_snippet: dict[str, list[FrameAnnotation]] = {}
        references: dict[str, int] = {}  # frame id -> times listed as a reference frame
        for listed in frame_list.frames:
            frame_id, folder, where = listed.frame_id, listed.folder, f"{image_set}:{listed.lineno}"
            snippet = frame_id.rsplit("/", 1)[0]
            image = self.root / "Data" / "VID" / folder / (frame_id + VID_IMAGE_EXT)
            xml = self.root / "Annotations" / "VID" / folder / (frame_id + ".xml")
            if check_images and not image.is_file():
                check_video_dir(self.root, folder, snippet, where=where)
                raise DataError(f"{where}: names {frame_id!r}, but the image {image} is missing")
            if not xml.is_file():
                raise DataError(f"{where}: names {frame_id!r}, but the annotation {xml} is missing")
            anno, _ = parse_annotation(xml, self.class_map, image_path=image, frame_id=frame_id, index=listed.index)
            self.report.clipped_boxes += anno.clipped
            by_snippet.setdefault(snippet, []).append(anno)
            references[frame_id] = listed.references
        videos = []
        for snippet, frames in by_snippet.items():
            frames.sort(key=lambda f: f.frame_id)
            video = Video(snippet, frames)
            motion_iou_for_video(video)  # fills f.motion_iou on the full, unskipped track
            if skip_empty:
                kept = [f for f in frames if len(f)]
                self.report.skipped_empty_frames += len(frames) - len(kept)
                if not kept:
                    self.report.skipped_empty_videos += 1
                    continue
                video.frames = kept
            if frame_list.chooses_references:  # FGFA's practice: references without objects are not trained on
                video.ref_positions = [p for p, f in enumerate(video.frames) for _ in range(references[f.frame_id])]
                if not video.ref_positions:
                    self.report.skipped_empty_videos += 1
                    continue
            videos.append(video)
        return videos

    def _read_det(self, det_list, check_images) -> list[Video]:
        stills = []
        for image_id, index, lineno in read_det_list(det_list):
            image = self.root / "Data" / "DET" / "train" / (image_id + VID_IMAGE_EXT)
            xml = self.root / "Annotations" / "DET" / "train" / (image_id + ".xml")
            if check_images and not image.is_file():
                raise DataError(f"{det_list}:{lineno}: names {image_id!r}, but the image {image} is missing")
            if not xml.is_file():
                raise DataError(f"{det_list}:{lineno}: names {image_id!r}, but the annotation {xml} is missing")
            anno, skipped = parse_annotation(xml, self.class_map, image_path=image, frame_id=image_id,
                                             index=index, unknown="skip")
            self.report.skipped_det_objects += skipped
            anno.motion_iou = np.ones(len(anno), dtype=np.float32)  # a still does not move
            if len(anno) == 0:
                self.report.skipped_empty_frames += 1
                continue
            stills.append(Video(image_id, [anno], is_still=True))
        return stills

    # convenient views -------------------------------------------------------
    def frames(self):
        """All frames of the split, video by video."""
        return [f for v in self.videos for f in v.frames]

    def __len__(self) -> int:
        return len(self.videos)

    def __repr__(self) -> str:
        return f"VIDDataset({str(self.root)!r}, split={self.split!r}: {self.report})"


def check_video_dir(root, split, snippet, where="") -> None:
    """Raise if a snippet folder exists but holds no frame (an empty video)."""
    folder = Path(root) / "Data" / "VID" / split / snippet
    if folder.is_dir() and not any(folder.glob("*" + VID_IMAGE_EXT)):
        prefix = f"{where}: " if where else ""
        raise DataError(f"{prefix}{folder}: empty video (the folder holds no {VID_IMAGE_EXT} frames)")


def load_image(path):
    """Load an RGB image as a float tensor (3, H, W) in [0, 1]; a clear error if it can't."""
    import torch
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as im:
            arr = np.array(im.convert("RGB"), dtype=np.uint8)  # (H, W, 3), a writable copy
    except FileNotFoundError:
        raise DataError(f"{path}: image file not found") from None
    except (UnidentifiedImageError, OSError) as e:
        raise DataError(f"{path}: unreadable image ({e})") from None
    return torch.from_numpy(arr).permute(2, 0, 1).float().div_(255)  # (3, H, W)
