"""Detections of a whole split, and the ILSVRC VID result file.

The result file has one detection per line::

    frame_index class_index score x1 y1 x2 y2

``frame_index`` is the 1-based number of the frame in ``ImageSets/VID/<split>.txt``,
``class_index`` the 1-based class of the class map (``map_vid.txt``), and the box
is in the VID convention (inclusive pixel corners).

In memory the same thing is either :class:`VIDDetections` (one row per box, the
file's layout, what the evaluator uses) or a dict ``{frame_index: (boxes, scores,
labels)}`` of tensors, what a detector produces frame by frame.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

RESULT_FIELDS = "frame_index class_index score x1 y1 x2 y2"


@dataclass
class VIDDetections:
    """All detections of a split, one row per box (D rows).

    Args:
        frame_index (ndarray[D]): int64, 1-based frame index in the split
        labels (ndarray[D]): int64 class indices, 1..C
        scores (ndarray[D]): float64 confidences
        boxes (ndarray[D, 4]): float64 (x1, y1, x2, y2), inclusive pixel corners
    """

    frame_index: np.ndarray
    labels: np.ndarray
    scores: np.ndarray
    boxes: np.ndarray

    def __post_init__(self):
        self.frame_index = np.asarray(self.frame_index, dtype=np.int64).reshape(-1)  # (D,)
        self.labels = np.asarray(self.labels, dtype=np.int64).reshape(-1)  # (D,)
        self.scores = np.asarray(self.scores, dtype=np.float64).reshape(-1)  # (D,)
        self.boxes = np.asarray(self.boxes, dtype=np.float64).reshape(-1, 4)  # (D, 4)
        n = len(self.frame_index)
        if not (len(self.labels) == len(self.scores) == len(self.boxes) == n):
            raise ValueError("VIDDetections: frame_index, labels, scores and boxes differ in length")

    def __len__(self) -> int:
        return len(self.frame_index)

    @classmethod
    def from_frames(cls, detections) -> "VIDDetections":
        """From ``{frame_index: (boxes Tensor[N, 4], scores Tensor[N], labels Tensor[N])}``."""
        items = sorted(detections.items())
        if not items:
            return cls(np.zeros(0), np.zeros(0), np.zeros(0), np.zeros((0, 4)))
        boxes = [_to_numpy(b).reshape(-1, 4) for _, (b, _, _) in items]  # F x (N_f, 4)
        scores = [_to_numpy(s).reshape(-1) for _, (_, s, _) in items]  # F x (N_f,)
        labels = [_to_numpy(lab).reshape(-1) for _, (_, _, lab) in items]  # F x (N_f,)
        counts = [len(s) for s in scores]
        return cls(frame_index=np.repeat([i for i, _ in items], counts), labels=np.concatenate(labels),
                   scores=np.concatenate(scores), boxes=np.concatenate(boxes))

    def to_frames(self) -> dict:
        """As ``{frame_index: (boxes Tensor[N, 4], scores Tensor[N], labels Tensor[N])}``."""
        order = np.argsort(self.frame_index, kind="stable")
        frames, starts = np.unique(self.frame_index[order], return_index=True)
        bounds = np.append(starts, len(order))
        out = {}
        for f, lo, hi in zip(frames, bounds[:-1], bounds[1:]):
            rows = order[lo:hi]
            out[int(f)] = (torch.from_numpy(self.boxes[rows]), torch.from_numpy(self.scores[rows]),
                           torch.from_numpy(self.labels[rows]))
        return out


def _to_numpy(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def as_vid_detections(detections) -> VIDDetections:
    """Accept :class:`VIDDetections` or the per-frame dict of tensors."""
    if isinstance(detections, VIDDetections):
        return detections
    if isinstance(detections, dict):
        return VIDDetections.from_frames(detections)
    raise TypeError(f"expected VIDDetections or a dict frame_index -> (boxes, scores, labels), "
                    f"got {type(detections).__name__}")


# --------------------------------------------------------------------------- reading
def _line_numbers(path: Path) -> np.ndarray:
    """1-based line number of each non-blank line (rows of the parsed table)."""
    with open(path) as fh:
        return np.array([n for n, line in enumerate(fh, start=1) if line.strip()], dtype=np.int64)


def _first_bad_line(path: Path) -> str:
    """Find the first line that does not parse, and say what is wrong with it."""
    with open(path) as fh:
        for lineno, line in enumerate(fh, start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 7:
                return f"{path}:{lineno}: expected 7 fields '{RESULT_FIELDS}', got {len(fields)}: {line.strip()!r}"
            for name, value in zip(RESULT_FIELDS.split(), fields):
                try:
                    float(value)
                except ValueError:
                    return f"{path}:{lineno}: {name} is not a number: {value!r}"
    return f"{path}: could not be parsed"


def read_vid_results(path, num_classes: int | None = None, frame_indices=None) -> VIDDetections:
    """Read an ILSVRC VID result file (``frame_index class_index score x1 y1 x2 y2`` per line).

    Blank lines are skipped. Raises ValueError naming the file and the line for a
    line with the wrong number of fields, a field that is not a (finite) number, a
    non-integer index, ``x2 < x1`` or ``y2 < y1``, a class index outside 1..C (when
    ``num_classes`` is given), or a frame index not in the split (when
    ``frame_indices``, the split's frame indices, is given).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: result file not found")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "input contained no data" for an empty file
            table = np.loadtxt(path, dtype=np.float64, comments=None, ndmin=2)  # (D, 7)
    except ValueError:
        raise ValueError(_first_bad_line(path)) from None
    if table.size == 0:
        table = np.zeros((0, 7))
    if table.shape[1] != 7:
        raise ValueError(_first_bad_line(path))

    frame, label, score, boxes = table[:, 0], table[:, 1], table[:, 2], table[:, 3:7]
    checks = [
        (~np.isfinite(table).all(1), "a field is not a finite number"),
        ((frame != np.round(frame)) | (label != np.round(label)), "frame_index and class_index must be integers"),
        (frame < 1, "frame_index must be >= 1"),
        (label < 1, "class_index must be >= 1"),
        ((boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1]), "inverted box: x2 < x1 or y2 < y1"),
    ]
    if num_classes is not None:
        checks.append((label > num_classes, f"class_index is not a class (1..{num_classes})"))
    if frame_indices is not None:
        known = np.isin(frame, np.asarray(list(frame_indices), dtype=np.float64))
        checks.append((~known, "frame_index is not a frame of the split"))
    for bad, what in checks:
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            lineno = int(_line_numbers(path)[row])
            values = " ".join(f"{v:g}" for v in table[row])
            raise ValueError(f"{path}:{lineno}: {what}: {values!r}")
    return VIDDetections(frame_index=frame.astype(np.int64), labels=label.astype(np.int64),
                         scores=score, boxes=boxes)


def write_vid_results(path, detections) -> None:
    """Write detections (:class:`VIDDetections` or the per-frame dict) as an ILSVRC VID result file.

    Scores and coordinates are written with 9 significant digits, which round-trips
    float32 values exactly.
    """
    dets = as_vid_detections(detections)
    table = np.column_stack([dets.frame_index, dets.labels, dets.scores, dets.boxes])  # (D, 7)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savetxt(path, table, fmt=["%d", "%d"] + ["%.9g"] * 5)
