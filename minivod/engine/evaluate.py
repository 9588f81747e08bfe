"""Run a method over a split and score it: the step shared by ``eval``, ``demo`` and the benchmarks."""
from __future__ import annotations

from pathlib import Path

import torch
from tqdm import tqdm

from minivod.boxes import continuous_to_vid
from minivod.methods import get_method

PACKAGE_DIR = Path(__file__).resolve().parents[1]
CHECKPOINT_DIR = PACKAGE_DIR / "checkpoints"


def default_data_root() -> Path:
    """data_small beside the package (a source checkout), else ./data_small, else the copy that
    :func:`minivod.data.locate.find_data_small` finds or generates (an install from a wheel)."""
    for root in (PACKAGE_DIR.parent / "data_small", Path("data_small")):
        if root.is_dir():
            return root
    from minivod.data.locate import find_data_small

    return find_data_small()


def shipped_checkpoint(method: str, preset: str = "tiny") -> Path:
    """The committed checkpoint of a method (see ``minivod/checkpoints/README.md``)."""
    path = CHECKPOINT_DIR / f"{method}_{preset}.pt"
    if not path.is_file():
        raise FileNotFoundError(f"no shipped checkpoint for {method!r} ({path} is missing); train one with "
                                f"`python -m minivod train --method {method} --preset {preset}` and pass --checkpoint")
    return path


def load_model(method: str, checkpoint, device: str, num_classes: int | None = None):
    """Build ``method`` from a checkpoint's stored configuration and load its weights."""
    from minivod.engine.checkpoint import check_compatible, load_checkpoint
    from minivod.models.config import DetectorConfig

    ckpt = load_checkpoint(checkpoint)
    meta = ckpt["meta"]
    check_compatible(ckpt, method, meta.get("preset"), num_classes, checkpoint)
    cfg = DetectorConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in meta["config"].items()})
    model = get_method(method).build(cfg)
    model.load_state_dict(ckpt["model"])
    return model.to(device).eval(), meta


@torch.no_grad()
def predict_dataset(model, method: str, dataset, device: str, progress: bool = True, num_support: int | None = None,
                    mode: str | None = None, stride: int | None = None):
    """Detections for every video of ``dataset``: a list (per video) of per-frame dicts, and timing."""
    from minivod.engine.inference import predict_video

    spec = get_method(method)
    k = spec.test_support if num_support is None else num_support
    per_video, seconds, frames, computed = [], 0.0, 0, 0
    for video in tqdm(dataset.videos, desc=f"detect {method}", disable=not progress):
        dets, cache, spent = predict_video(model, video, device, num_support=k, mode=mode or spec.test_mode,
                                           stride=stride or spec.test_stride, window=spec.test_window)
        per_video.append(dets)
        seconds, frames, computed = seconds + spent, frames + len(video), computed + cache.computed
    timing = {"seconds": seconds, "frames": frames, "backbone_passes": computed,
              "ms_per_frame": 1000 * seconds / max(frames, 1)}
    return per_video, timing


def score_dataset(per_video, dataset, use_seq_nms: bool = False, **seq_nms_options):
    """Score per-video detections with the VID protocol (optionally after Seq-NMS, with ``seq_nms_options``).

    The detectors predict continuous boxes; they are turned into the VID XML's
    inclusive pixel corners (``x2 - 1``) before scoring.
    Returns the evaluator's dict and the detections as ``{frame_index: (boxes, scores, labels)}``.
    """
    from minivod.eval import evaluate_vid, ground_truth_from_dataset, seq_nms

    detections = {}
    for video, dets in zip(dataset.videos, per_video):
        frames = [(d["boxes"], d["scores"], d["labels"]) for d in dets]
        if use_seq_nms:
            frames = seq_nms(frames, **seq_nms_options)
        for frame, (boxes, scores, labels) in zip(video.frames, frames):
            detections[frame.index] = (continuous_to_vid(boxes), scores, labels)
    return evaluate_vid(detections, ground_truth_from_dataset(dataset)), detections


def evaluate_model(model, method: str, dataset, device: str, use_seq_nms: bool = False, progress: bool = True,
                   **sampling):
    """Predict and score; the result dict gains ``ms_per_frame``. Returns (result, detections, timing)."""
    per_video, timing = predict_dataset(model, method, dataset, device, progress, **sampling)
    result, detections = score_dataset(per_video, dataset, use_seq_nms)
    result["ms_per_frame"] = timing["ms_per_frame"]
    return result, detections, timing
