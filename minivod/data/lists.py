"""The frame lists of ImageNet VID as people have them, each recognised from its content.

No release of ILSVRC2015 ships a training list, so the code bases that train on it (FGFA,
SELSA, MEGA, mmtracking) distribute their own, and everyone downloads those. With the devkit's
own ``val.txt`` and data_small's lists, a list file is one of these formats (one line each):

=========  ==========================================  =========================================
format     a line                                      files
=========  ==========================================  =========================================
devkit     ``<snippet>/<frame> <index>``               ``ImageSets/VID/val.txt`` of the devkit,
                                                       data_small's ``ImageSets/VID/{train,val}.txt``
frames     ``<split>/<snippet>/<frame> <index>``       ``VID_val_frames.txt`` (same indices as
                                                       the devkit's ``val.txt``)
snippets   ``<split>/<snippet> <flag> <frame> <n>``    ``VID_train_15frames.txt``,
                                                       ``VID_train_every10frames.txt``
videos     ``<split>/<snippet> <first> 0 <n>``         ``VID_val_videos.txt``
=========  ==========================================  =========================================

``<index>`` is the 1-based index of the frame over the whole split (what result files name);
``<frame>`` is the frame's number in its snippet (the file ``%06d.JPEG``) and ``<n>`` the
snippet's frame count. A four-column list read for training is a *snippets* list: each line
names one reference frame; FGFA and its successors train on those frames only (15 per snippet,
or every 10th) and draw the support frames from the rest of the snippet, so the reader loads all
``<n>`` frames and marks the listed ones. Read for evaluation, it is a *videos* list: one line
per snippet at frame 0, ``<first>`` the index of the snippet's first frame; it lists every frame
of those snippets, numbered as the devkit numbers them (a list trimmed to some snippets keeps
their indices). Paths of the devkit format are relative to ``Data/VID/<split>/``, the others to
``Data/VID/``, and their ``<split>/`` must be the split being read.

DET lists: ``<image> <index>`` (data_small, relative to ``Data/DET/train/``) or
``train/<image> <n>`` (``DET_train_30classes.txt``, relative to ``Data/DET/``, where images sit in
``ILSVRC2014_train_XXXX/`` and ``ILSVRC2013_train/<wnid>/``); the second number of the latter is
not an index and is not used.

Bad lines raise :class:`DataError` naming the file and the line.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

SPLIT_FOLDERS = ("train", "val", "test")
FORMATS = ("devkit", "frames", "snippets", "videos")


class DataError(ValueError):
    """Bad input in a dataset file; the message names the file and the line or field."""


@dataclass
class ListedFrame:
    frame_id: str       # "<snippet>/<frame>", relative to the split folder
    folder: str         # the split folder under Data/VID (or Data/DET) holding it
    index: int          # 1-based index over the split (the devkit's numbering)
    lineno: int         # the line naming the frame (its snippet's line when a snippet is expanded)
    references: int = 1  # times listed as a training reference frame (0: only a support frame)


@dataclass
class FrameList:
    """A list file read into frames; ``chooses_references`` when it names the training reference frames."""

    path: Path
    format: str
    frames: list[ListedFrame] = field(default_factory=list)

    @property
    def chooses_references(self) -> bool:
        return self.format == "snippets"


def _lines(path):
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: list file not found")
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        if line.strip():
            yield lineno, line.split()


def _split_folder(token: str, split: str) -> tuple[str, str, bool]:
    """``(folder, rest, prefixed)``: a leading ``train/``, ``val/`` or ``test/`` names the folder."""
    head, _, rest = token.partition("/")
    if head in SPLIT_FOLDERS and rest:
        return head, rest, True
    return split, token, False


def _int(path, lineno, raw, what, minimum=0):
    try:
        value = int(raw)
    except ValueError:
        raise DataError(f"{path}:{lineno}: {what} is not an integer: {raw!r}") from None
    if value < minimum:
        raise DataError(f"{path}:{lineno}: {what} must be >= {minimum}, got {value}")
    return value


def read_frame_list(path, split: str = "train") -> FrameList:
    """Read a VID list in any of the four formats (see the module docstring)."""
    path = Path(path)
    rows = list(_lines(path))
    if not rows:
        raise DataError(f"{path}: the list names no frames")
    width = len(rows[0][1])
    if width not in (2, 4):
        raise DataError(f"{path}:{rows[0][0]}: expected '<snippet>/<frame> <index>' (2 columns) or "
                        f"'<split>/<snippet> <flag> <frame> <count>' (4 columns), got {' '.join(rows[0][1])!r}")
    for lineno, parts in rows:
        if len(parts) != width:
            raise DataError(f"{path}:{lineno}: {len(parts)} columns where line {rows[0][0]} has {width}")
    return _read_frames(path, rows, split) if width == 2 else _read_snippets(path, rows, split)


def _read_frames(path, rows, split) -> FrameList:
    prefixed_first = _split_folder(rows[0][1][0], split)[2]
    out = FrameList(path, "frames" if prefixed_first else "devkit")
    seen = {}
    for lineno, (token, raw_index) in rows:
        folder, frame_id, prefixed = _split_folder(token, split)
        if prefixed != prefixed_first:
            example = "<split>/<snippet>/<frame>" if prefixed_first else "<snippet>/<frame>"
            raise DataError(f"{path}:{lineno}: expected {example!r} as on line {rows[0][0]}, got {token!r}")
        if "/" not in frame_id or not raw_index.lstrip("-").isdigit():
            raise DataError(f"{path}:{lineno}: expected '<snippet>/<frame> <index>', got {token} {raw_index}")
        _check_split(path, lineno, folder, split)
        index = _int(path, lineno, raw_index, "the frame index", minimum=1)
        if index in seen:
            raise DataError(f"{path}:{lineno}: frame index {index} already used on line {seen[index]}")
        seen[index] = lineno
        out.frames.append(ListedFrame(frame_id, folder, index, lineno))
    return out


def _check_split(path, lineno, folder, split):
    if folder != split:
        raise DataError(f"{path}:{lineno}: names a frame of {folder}/, but the list is read for the {split} split")


def _read_snippets(path, rows, split) -> FrameList:
    """A training list of reference frames (``split == "train"``), else a videos list (see the module docstring)."""
    videos = split != "train"
    snippets = {}  # (folder, snippet) -> {"count", "lineno", "first", "refs": [frame, ...]}
    for lineno, (token, raw_first, raw_frame, raw_count) in rows:
        folder, snippet, _ = _split_folder(token, split)
        _check_split(path, lineno, folder, split)
        first = _int(path, lineno, raw_first, "the second column")
        frame = _int(path, lineno, raw_frame, "the frame number")
        count = _int(path, lineno, raw_count, "the frame count", minimum=1)
        if frame >= count:
            raise DataError(f"{path}:{lineno}: frame {frame} lies outside its snippet of {count} frames")
        entry = snippets.get((folder, snippet))
        if videos and (frame != 0 or entry is not None):
            again = f"{snippet} is listed again (line {entry['lineno']})" if entry else f"frame {frame}, not 0"
            raise DataError(f"{path}:{lineno}: {again}; a {split} list of snippets names each snippet once, at "
                            f"frame 0, as VID_val_videos.txt does (to score some frames, list them as "
                            f"VID_val_frames.txt does)")
        if videos and first < 1:
            raise DataError(f"{path}:{lineno}: the index of the snippet's first frame must be >= 1, got {first}")
        entry = entry or snippets.setdefault((folder, snippet), {"count": count, "lineno": lineno, "first": first,
                                                                 "refs": []})
        if entry["count"] != count:
            raise DataError(f"{path}:{lineno}: {snippet} has {count} frames here but {entry['count']} on "
                            f"line {entry['lineno']}")
        entry["refs"].append(frame)
    out = FrameList(path, "videos" if videos else "snippets")
    next_index, owner = 1, {}  # owner: index -> line, to refuse overlapping snippets in a videos list
    for (folder, snippet), entry in snippets.items():
        times = {}
        for f in entry["refs"]:
            times[f] = times.get(f, 0) + 1
        start = entry["first"] if videos else next_index  # a videos list keeps the devkit's numbering
        for f in range(entry["count"]):
            index = start + f
            if videos and index in owner:
                raise DataError(f"{path}:{entry['lineno']}: frame index {index} is already used by the snippet "
                                f"on line {owner[index]}")
            owner[index] = entry["lineno"]
            refs = 1 if videos else times.get(f, 0)
            out.frames.append(ListedFrame(f"{snippet}/{f:06d}", folder, index, entry["lineno"], refs))
        next_index += entry["count"]
    return out


def read_det_list(path) -> list[tuple[str, int, int]]:
    """A DET list as ``(image_id, index, lineno)``, ``image_id`` relative to ``Data/DET/train/``.

    ``index`` is the list's own (unique) index in data_small's format and 0 in the
    ``DET_train_30classes.txt`` format, whose second column is not an index.
    """
    path = Path(path)
    out, seen, prefixed_first = [], {}, None
    for lineno, parts in _lines(path):
        if len(parts) != 2:
            raise DataError(f"{path}:{lineno}: expected '<image> <index>' or 'train/<image> <n>', "
                            f"got {' '.join(parts)!r}")
        folder, image_id, prefixed = _split_folder(parts[0], "train")
        prefixed_first = prefixed if prefixed_first is None else prefixed_first
        if prefixed != prefixed_first:
            raise DataError(f"{path}:{lineno}: {parts[0]!r} mixes the two DET list formats")
        if folder != "train":
            raise DataError(f"{path}:{lineno}: DET stills are read from Data/DET/train, not {folder}/")
        number = _int(path, lineno, parts[1], "the second column", minimum=0 if prefixed else 1)
        if not prefixed:
            if number in seen:
                raise DataError(f"{path}:{lineno}: image index {number} already used on line {seen[number]}")
            seen[number] = lineno
        out.append((image_id, 0 if prefixed else number, lineno))
    return out  # may be empty: training without DET stills


def resolve_list(path, root) -> Path:
    """A list path as given, or relative to the dataset root (``--val-list ImageSets/VID_val_videos.txt``)."""
    path = Path(path)
    if path.is_file() or path.is_absolute():
        return path
    beside = Path(root) / path
    return beside if beside.is_file() else path
