"""Ground-truth optical flow between any two frames of a data_small video, and a sampler of such pairs.

data_small's generator stores each video's scene (the objects' poses at every
frame) beside its frames, so the true flow between two frames is known. SSVD
pre-trains its flow network on Flying Chairs; here these pairs stand in for it
(``minivod.methods.flow_pretrain``), and notebook 06 shows them.

A flow from the reference frame ``t`` to a support frame ``s`` is a backward
flow, as ``minivod.data.synthetic.gt_flow``: the reference's content at pixel
``p`` is found at ``p + m(p)`` in frame ``s``. It is in pixels, with a validity
mask (False where the point leaves the image or is hidden by a static occluder).
"""
from __future__ import annotations

import copy
from typing import Optional

import numpy as np
import torch

from minivod.data.generate import load_scene
from minivod.data.synthetic import gt_flow
from minivod.data.vid import VIDDataset, load_image


def gt_pair_flow(scene: dict, t: int, s: int) -> tuple[np.ndarray, np.ndarray]:
    """Ground-truth flow from frame ``t`` to any frame ``s`` of a data_small scene (and its validity).

    ``minivod.data.synthetic.gt_flow`` gives the flow from ``t`` to ``t + 1`` from the objects'
    poses at the two times; a copy of the scene with only the poses at ``t`` and ``s`` gives it
    for the pair (t, s).
    """
    pair = copy.copy(scene)
    pair["objects"] = [{**obj, "poses": [obj["poses"][t], obj["poses"][s]]} for obj in scene["objects"]]
    return gt_flow(pair, 0)


class FlowPairs:
    """Frames and scenes of one data_small split in memory, drawn as (reference, support) pairs.

    ``sample(rng, n, window)`` returns images ``(n, 2, 3, H, W)`` float in [0, 1], ground-truth
    flows ``(n, 2, H, W)`` and validity ``(n, H, W)``; the support is within +-window frames.
    """

    def __init__(self, root, split: str, max_videos: Optional[int] = None):
        videos = VIDDataset(root, split, skip_empty=False).videos[:max_videos]  # every frame: positions = t
        self.scenes = [load_scene(root, split, v.name) for v in videos]
        self.frames = [torch.stack([(load_image(f.image_path) * 255).round().to(torch.uint8) for f in v.frames])
                       for v in videos]  # per video (T, 3, H, W) uint8

    def pair(self, v: int, t: int, s: int):
        flow, valid = gt_pair_flow(self.scenes[v], t, s)
        images = self.frames[v][[t, s]].float() / 255  # (2, 3, H, W)
        return images, torch.from_numpy(flow), torch.from_numpy(valid)

    def sample(self, rng: np.random.Generator, n: int, window: int):
        items = []
        for _ in range(n):
            v = int(rng.integers(len(self.frames)))
            T = len(self.frames[v])
            t = int(rng.integers(T))
            s = int(np.clip(t + rng.choice([d for d in range(-window, window + 1) if d]), 0, T - 1))
            items.append(self.pair(v, t, s))
        return tuple(torch.stack(x) for x in zip(*items))


def pair_speeds(root, split: str, videos, tau: int, step: int = 6, percentile: float = 99.5) -> np.ndarray:
    """How fast the fastest objects move in the pairs (t, t + tau) of a split's videos (a frame search).

    For every video and every ``step``-th frame t, the ``percentile`` of the ground-truth flow's length
    over valid pixels between t and t + tau (near the largest motion in the pair, robust to a few pixels).

    Args:
        root, split: the data_small root and split (its stored scenes)
        videos (list[Video]): the split's videos (``VIDDataset(root, split).videos``)
        tau (int): frames between reference and support
    Returns:
        ndarray[P, 3] float: rows (speed in pixels, video index, t), in video then frame order
    """
    rows = []
    for vi, video in enumerate(videos):
        scene = load_scene(root, split, video.name)
        for t in range(0, len(video) - tau, step):
            flow, valid = gt_pair_flow(scene, t, t + tau)
            rows.append((float(np.percentile(np.hypot(*flow)[valid], percentile)), vi, t))
    return np.array(rows, dtype=np.float64).reshape(-1, 3)
