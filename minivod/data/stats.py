"""Counts of a VID-layout dataset: frames, videos, boxes per class, speed group and degradation.

Also the per-box views the notebooks and benchmarks share: :func:`every_box` (one order for every
box of a split), :func:`box_groups` (which clean / tag / speed group each box is in) and
:func:`track_max` (a per-box value taken over the box's whole track), :func:`one_per_video` (examples
spread over the split).
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np

from minivod.data.motion import SPEED_GROUPS, motion_group
from minivod.data.vid import DEGRADATION_TAGS, VIDDataset


def split_stats(ds: VIDDataset) -> dict:
    per_class, per_speed, per_tag = Counter(), Counter(), Counter()
    clean = 0
    for video in ds.videos:
        for f in video.frames:
            for label, group, tags in zip(f.labels, motion_group(f.motion_iou), f.tags):
                per_class[ds.class_map.names[label - 1]] += 1
                per_speed[str(group)] += 1
                per_tag.update(tags)
                clean += not tags
    return {
        "videos": sum(not v.is_still for v in ds.videos),
        "frames": sum(len(v) for v in ds.videos if not v.is_still),
        "boxes": sum(per_class.values()),
        "tracks": sum(len(v.track_ids()) for v in ds.videos if not v.is_still),
        "per_class": {n: per_class[n] for n in ds.class_map.names},
        "speed_groups": {g: per_speed[g] for g in SPEED_GROUPS},
        "degradations": {**{t: per_tag[t] for t in DEGRADATION_TAGS}, "clean": clean},
    }


def dataset_stats(root) -> dict:
    stats = {split: split_stats(VIDDataset(root, split, skip_empty=False)) for split in ("train", "val")}
    det = VIDDataset(root, "train", with_det=True, skip_empty=False)
    stills = [v for v in det.videos if v.is_still]
    stats["det"] = {"images": len(stills), "boxes": sum(len(v.frames[0]) for v in stills)}
    return stats


def stats_markdown(stats: dict) -> str:
    """The counts as Markdown tables (train and val side by side)."""
    tr, va = stats["train"], stats["val"]
    rows = ["| | train | val |", "| --- | ---: | ---: |"]
    for key in ("videos", "frames", "tracks", "boxes"):
        rows.append(f"| {key} | {tr[key]} | {va[key]} |")
    for section, title in (("speed_groups", "speed"), ("degradations", "degradation"), ("per_class", "class")):
        for name in tr[section]:
            rows.append(f"| {title}: {name} | {tr[section][name]} | {va[section][name]} |")
    rows.append(f"| DET stills (train only) | {stats['det']['images']} images, {stats['det']['boxes']} boxes | |")
    return "\n".join(rows) + "\n"


def write_stats(root, stats: dict, settings: dict) -> None:
    root = Path(root)
    (root / "stats.json").write_text(json.dumps({"settings": settings, **stats}, indent=1) + "\n")
    args = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in settings.items() if k != "seed")
    (root / "README.md").write_text(
        "# data_small\n\n"
        "A synthetic video object detection dataset in the exact ImageNet VID layout, made by\n\n"
        f"    python -m minivod generate-data --out {root.name} --seed {settings['seed']} {args}\n\n"
        "Eight classes in four pairs: each pair shares a silhouette and a colour and differs only in a fine\n"
        "texture (stripes or a checkerboard) that motion blur, defocus and dim light destroy. Each box carries\n"
        "its degradation tags in a `<degradations>` XML field; speed groups use the VID motion IoU\n"
        "(slow > 0.9, medium 0.7-0.9, fast < 0.7). `Scenes/` holds each video's plan, from which\n"
        "`minivod.data.synthetic.gt_flow` gives the ground-truth optical flow.\n\n"
        "Counts (boxes, unless the row says otherwise):\n\n" + stats_markdown(stats))


# --------------------------------------------------------------------------- per-box views
def every_box(ds: VIDDataset) -> list[tuple]:
    """Every ground-truth box of the split as ``(frame, j)``: videos, frames and boxes in order.

    This is the order of every per-box array below and of ``minivod.eval.per_box.box_outcomes``,
    so that masks and values of the same split line up.

    Returns:
        list of G ``(FrameAnnotation, int)``: the frame and the box's row in ``frame.boxes``
    """
    return [(f, j) for video in ds.videos for f in video.frames for j in range(len(f))]


def box_groups(ds: VIDDataset) -> dict[str, np.ndarray]:
    """Which group each box of the split is in, as boolean masks in :func:`every_box` order.

    Groups: ``"all"``; ``"clean"`` (no degradation tag) and ``"degraded"`` (any); each tag of
    ``DEGRADATION_TAGS`` (a box with two tags is in both); ``"slow"``, ``"medium"``, ``"fast"``
    (motion IoU, :func:`minivod.data.motion.motion_group`).

    Returns:
        ``{group: ndarray[G] of bool}``
    """
    boxes = every_box(ds)
    tags = [f.tags[j] for f, j in boxes]
    speed = np.array([f.motion_iou[j] for f, j in boxes], dtype=np.float64)  # (G,)
    groups = {"all": np.ones(len(boxes), dtype=bool), "clean": np.array([not t for t in tags], dtype=bool)}
    groups["degraded"] = ~groups["clean"]
    for tag in DEGRADATION_TAGS:
        groups[tag] = np.array([tag in t for t in tags], dtype=bool)
    speed_group = motion_group(speed)  # (G,) "slow" / "medium" / "fast"
    for group in SPEED_GROUPS:
        groups[group] = speed_group == group
    return groups


def track_max(ds: VIDDataset, values) -> np.ndarray:
    """For each box, the largest of ``values`` over the boxes of its track in its video.

    E.g. ``track_max(ds, energy)``: the texture of each track's sharpest frame;
    ``track_max(ds, box_groups(ds)["clean"])``: whether the track has a clean box somewhere in the video.

    Args:
        values (ndarray[G]): one value per box, in :func:`every_box` order (bool or float; NaN ignored)
    Returns:
        ndarray[G] of float64 (NaN only where every box of the track is NaN)
    """
    values = np.asarray(values, dtype=np.float64)  # (G,)
    keys = [(video.name, int(f.track_ids[j])) for video in ds.videos for f in video.frames for j in range(len(f))]
    best: dict[tuple, float] = {}
    for key, v in zip(keys, values):
        if v == v:  # not NaN
            best[key] = max(best.get(key, -np.inf), v)
    return np.array([best.get(key, np.nan) for key in keys], dtype=np.float64)  # (G,)


def one_per_video(ds: VIDDataset, mask, count: int) -> list[int]:
    """The first ``count`` boxes where ``mask`` is True, at most one per video: examples spread over the split.

    Args:
        mask (ndarray[G] of bool): in :func:`every_box` order
    Returns:
        up to ``count`` positions in :func:`every_box` order (index ``every_box(ds)`` with them)
    """
    mask = np.asarray(mask, dtype=bool)  # (G,)
    picks, start = [], 0
    for video in ds.videos:
        size = sum(len(f) for f in video.frames)
        hits = np.flatnonzero(mask[start:start + size])
        if len(hits) and len(picks) < count:
            picks.append(start + int(hits[0]))
        start += size
    return picks
