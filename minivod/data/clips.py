"""Training clips as a ``torch.utils.data.Dataset``: VID snippets mixed with DET stills.

As in the VID codebases, an epoch takes a fixed number of reference frames
from each training snippet (spread evenly over it, or those a list such as
``VID_train_15frames.txt`` names) plus the DET still images;
each item is a clip: the reference frame followed by ``k`` support frames drawn
by :func:`minivod.data.sampling.train_support`, augmented identically.
"""
from __future__ import annotations

import numpy as np
import torch

from minivod.boxes import vid_to_continuous
from minivod.data.sampling import train_support
from minivod.data.vid import FrameAnnotation, VIDDataset, load_image


def frame_target(frame: FrameAnnotation) -> dict:
    """A frame's boxes as detector targets, in torchvision's continuous convention (``x2 + 1``)."""
    return {"boxes": vid_to_continuous(torch.from_numpy(frame.boxes).float().reshape(-1, 4)),  # (N, 4)
            "labels": torch.from_numpy(frame.labels).long(),
            "track_ids": torch.from_numpy(frame.track_ids).long()}


class TrainClips(torch.utils.data.Dataset):
    """Reference frame + ``k`` support frames per item.

    Args:
        dataset: a training :class:`VIDDataset` (``with_det=True`` to mix DET stills in)
        k: support frames per clip (0 for a single-frame detector)
        frames_per_video: reference frames taken from each snippet per epoch (unless the
            training list names them: then those)
        window: draw supports within ``+-window`` frames (None: the whole video)
        transform: a :class:`~minivod.data.transforms.ClipTransform`
        seed: seeds the support draws and the augmentation of item ``i`` (so a run
            is reproducible whatever the worker split)
        support_fn: ``(num_frames, ref, rng) -> positions`` replacing the random draw of
            ``k`` supports (a method's own clip layout, e.g. PSLA's key frames)
    """

    def __init__(self, dataset: VIDDataset, k=2, frames_per_video=15, window=None, transform=None, seed=0,
                 support_fn=None):
        self.dataset, self.k, self.window, self.transform, self.seed = dataset, k, window, transform, seed
        self.support_fn = support_fn
        self.epoch = 0  # set by the training loop, so each epoch draws new supports
        self.items = []  # (video index, reference position)
        for vi, video in enumerate(dataset.videos):
            if video.ref_positions is not None:  # the list names the references (VID_train_15frames.txt)
                positions = video.ref_positions
            else:
                n = len(video)
                count = 1 if video.is_still else min(frames_per_video, n)
                positions = np.linspace(0, n - 1, count).round().astype(int)
            self.items += [(vi, int(p)) for p in positions]
        # positions in ``items`` of the clips from videos (not DET stills): the pool of a batch drawn without stills
        self.video_items = [i for i, (vi, _) in enumerate(self.items) if not dataset.videos[vi].is_still]

    def __len__(self):
        return len(self.items)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __getitem__(self, key):
        """Item ``i`` of the current epoch, or ``(epoch, i)`` (what the training loader asks for)."""
        epoch, i = key if isinstance(key, tuple) else (self.epoch, key)
        vi, ref = self.items[i]
        video = self.dataset.videos[vi]
        rng = np.random.default_rng((self.seed, epoch, i))
        if self.support_fn is not None:
            support = [int(t) for t in self.support_fn(len(video), ref, rng)]
        else:
            support = train_support(len(video), ref, self.k, rng, self.window) if self.k else []
        frames = [video.frames[t] for t in [ref] + support]
        images = torch.stack([load_image(f.image_path) for f in frames])  # (T, 3, H, W)
        targets = [frame_target(f) for f in frames]
        if self.transform is not None:
            images, targets = self.transform(images, targets, rng)
        return images, targets
