"""The class oracle: what perfect aggregation of class evidence over a video could add.

Every method in minivod aggregates evidence across frames so that a degraded
frame borrows the answer of sharp frames of the same object. The most such
aggregation can do for a single-frame detector's boxes is to give each of them
the class of the object it sits on, as the whole video shows it. The oracle does
exactly that, with the ground truth:

1. each ground-truth track gets its majority class over the video;
2. each detection takes the class of the track of the ground-truth box it
   overlaps best (IoU >= 0.5, VID +1 pixels), and keeps its own class otherwise;
3. detections that now share a class on the same object are merged by per-class
   NMS (the detector's own post-processing), so a corrected box is not counted
   twice.

Boxes and scores are left as they are, so missed objects and poor boxes stay
what they were: the oracle's gain over the detector is the headroom that class
aggregation has on the data, not a bound on any method's accuracy.
"""
from __future__ import annotations

from collections import Counter

import numpy as np
import torch
from torchvision.ops import batched_nms

from minivod.boxes import box_iou_vid
from minivod.eval.results_io import VIDDetections


def track_classes(video) -> dict[int, int]:
    """Majority class of each track id over the annotated frames of a video."""
    votes: dict[int, Counter] = {}
    for f in video.frames:
        for tid, label in zip(f.track_ids, f.labels):
            votes.setdefault(int(tid), Counter())[int(label)] += 1
    return {tid: c.most_common(1)[0][0] for tid, c in votes.items()}


def class_oracle(detections: dict, dataset, iou: float = 0.5, nms_thresh: float = 0.5) -> dict:
    """Detections with each box relabelled to the majority class of the track it overlaps best.

    Args:
        detections: ``{frame_index: (boxes (Tensor[K, 4]) VID pixels, scores (Tensor[K]), labels (Tensor[K]))}``
            as ``minivod.engine.evaluate.score_dataset`` returns them, or a
            :class:`~minivod.eval.results_io.VIDDetections` (e.g. read from a result file)
        dataset: the :class:`~minivod.data.vid.VIDDataset` they were made on
    Returns:
        ``{frame_index: (boxes, scores, labels)}``, relabelled and merged (frames without detections left out)
    """
    if isinstance(detections, VIDDetections):
        detections = detections.to_frames()
    out = {}
    for video in dataset.videos:
        majority = track_classes(video)
        for f in video.frames:
            if f.index not in detections:
                continue
            boxes, scores, labels = detections[f.index]
            labels = labels.clone()
            if len(boxes) and len(f):
                overlap = box_iou_vid(f.boxes, boxes.numpy())  # (M, K)
                best = overlap.argmax(axis=0)  # (K,) the ground-truth box each detection overlaps most
                hit = overlap.max(axis=0) >= iou  # (K,)
                fixed = np.array([majority[int(f.track_ids[m])] for m in best])  # (K,)
                labels[torch.from_numpy(hit)] = torch.from_numpy(fixed[hit]).to(labels.dtype)
                keep = batched_nms(boxes.float(), scores.float(), labels, nms_thresh)  # sorted by score
                boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
            out[f.index] = (boxes, scores, labels)
    return out
