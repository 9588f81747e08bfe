"""The ground truth of one split, as the ImageNet VID evaluator sees it.

Per frame index (1-based, the number in ``ImageSets/VID/<split>.txt``) a frame
holds its boxes in the VID convention (inclusive pixel corners), their class
indices 1..C, the motion IoU of each box (for the slow / medium / fast
breakdown) and the degradation tags of each box (for the per-tag breakdown).
Frames without boxes belong to the split too: detections on them are false
positives.

The evaluator works on one flat copy of all boxes (:class:`FlatGroundTruth`),
so that matching is a handful of array operations instead of a loop over
176,000 frames.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from minivod.boxes import vid_iou_threshold


@dataclass
class FrameGroundTruth:
    """The boxes of one frame.

    Args:
        boxes (ndarray[N, 4]): (x1, y1, x2, y2), inclusive pixel corners
        labels (ndarray[N]): class indices in 1..C
        motion_iou (ndarray[N] or None): motion IoU of each box; None or NaN means
            unknown, and such a box is in no speed group
        tags (sequence of N tuples of str, or None): degradation tags of each box;
            ``()`` (or None for all) means clean
    """

    boxes: np.ndarray
    labels: np.ndarray
    motion_iou: np.ndarray | None = None
    tags: tuple | None = None

    def __post_init__(self):
        self.boxes = np.asarray(self.boxes, dtype=np.float64).reshape(-1, 4)  # (N, 4)
        self.labels = np.asarray(self.labels, dtype=np.int64).reshape(-1)  # (N,)
        n = len(self.boxes)
        if self.motion_iou is None:
            self.motion_iou = np.full(n, np.nan)
        self.motion_iou = np.asarray(self.motion_iou, dtype=np.float64).reshape(-1)  # (N,)
        self.tags = ((),) * n if self.tags is None else tuple(tuple(t) for t in self.tags)
        for name in ("labels", "motion_iou", "tags"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"FrameGroundTruth: {n} boxes but {len(getattr(self, name))} {name}")
        if np.any(self.boxes[:, 2] < self.boxes[:, 0]) or np.any(self.boxes[:, 3] < self.boxes[:, 1]):
            raise ValueError("FrameGroundTruth: a box has x2 < x1 or y2 < y1")

    def __len__(self) -> int:
        return len(self.boxes)


@dataclass
class FlatGroundTruth:
    """All boxes of a split in one set of arrays, frame after frame (G boxes, F frames).

    ``frame_start[p]:frame_start[p + 1]`` are the rows of the frame at position ``p``
    of ``frame_indices`` (sorted ascending).
    """

    frame_indices: np.ndarray  # (F,) int64, sorted
    frame_start: np.ndarray    # (F + 1,) int64
    frame_pos: np.ndarray      # (G,) int64, position of each box's frame
    boxes: np.ndarray          # (G, 4) float64
    labels: np.ndarray         # (G,) int64, 1..C
    motion_iou: np.ndarray     # (G,) float64
    tags: list = field(default_factory=list)  # G tuples of str
    iou_threshold: np.ndarray = None  # (G,) min(0.5, wh / ((w + 10)(h + 10)))


@dataclass
class GroundTruth:
    """Ground truth of a split: ``frames[frame_index]`` for every frame of the split.

    Args:
        frames (dict[int, FrameGroundTruth]): one entry per frame of the split,
            including frames without boxes
        class_names (list[str]): C names; class index k (1..C) is ``class_names[k - 1]``

    Treat it as read-only once evaluated: the flat copy is built once and cached.
    """

    frames: dict
    class_names: list

    def __post_init__(self):
        self.frames = {int(k): (v if isinstance(v, FrameGroundTruth) else FrameGroundTruth(**v))
                       for k, v in self.frames.items()}
        self.class_names = list(self.class_names)
        for index, frame in self.frames.items():
            if len(frame) and (frame.labels.min() < 1 or frame.labels.max() > self.num_classes):
                raise ValueError(f"GroundTruth: frame {index} has a class index outside 1..{self.num_classes}")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @cached_property
    def flat(self) -> FlatGroundTruth:
        """All boxes in one set of arrays (built on first use)."""
        indices = np.array(sorted(self.frames), dtype=np.int64)  # (F,)
        frames = [self.frames[int(i)] for i in indices]
        counts = np.array([len(f) for f in frames], dtype=np.int64)  # (F,)
        boxes = np.concatenate([f.boxes for f in frames]) if frames else np.zeros((0, 4))  # (G, 4)
        return FlatGroundTruth(
            frame_indices=indices,
            frame_start=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
            frame_pos=np.repeat(np.arange(len(frames), dtype=np.int64), counts),
            boxes=boxes,
            labels=np.concatenate([f.labels for f in frames]) if frames else np.zeros(0, np.int64),
            motion_iou=np.concatenate([f.motion_iou for f in frames]) if frames else np.zeros(0),
            tags=[t for f in frames for t in f.tags],
            iou_threshold=vid_iou_threshold(boxes),
        )


def ground_truth_from_dataset(dataset) -> GroundTruth:
    """Build the evaluator's ground truth from a :class:`minivod.data.vid.VIDDataset`.

    Every frame of every video becomes one entry, keyed by its global 1-based
    index; DET stills (one-frame "videos" mixed into training) are left out.
    """
    frames: dict[int, FrameGroundTruth] = {}
    for video in dataset.videos:
        if getattr(video, "is_still", False):
            continue
        for f in video.frames:
            if f.index in frames:
                raise ValueError(f"ground_truth_from_dataset: frame index {f.index} ({f.frame_id}) is used twice")
            frames[int(f.index)] = FrameGroundTruth(boxes=f.boxes, labels=f.labels,
                                                    motion_iou=f.motion_iou, tags=f.tags)
    return GroundTruth(frames=frames, class_names=list(dataset.class_map.names))
