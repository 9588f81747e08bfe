"""What every registered method promises, checked once for all of them.

- it builds from the tiny preset, takes a training step with the frames its spec asks for
  (finite losses, gradients in its own modules), and detects under bf16 autocast with
  float32 boxes;
- the engine runs it over a video with each frame's backbone once (PSLA: key frames only);
- the headline methods fit a tiny fixed batch (the loss falls) and take a step with the
  paper preset (ResNet-101 at a small input size).

Method-specific behaviour (the papers' equations) is tested in each method's own file.
"""
from __future__ import annotations

import pytest
import torch

from minivod.data.generate import generate
from minivod.data.vid import VIDDataset
from minivod.engine.inference import predict_video
from minivod.methods import METHOD_NAMES, METHODS, build_model, get_method

from method_helpers import clips_with_boxes, overfit_loss_ratio

HEADLINE = (*METHOD_NAMES, "ssvd_single")
# the method's own modules, which a training step must reach (prefixes of parameter names)
OWN = {"selsa": "roi_aggregators", "dsfnet": "frame_aggregator", "mst": "frame_aggregator",
       "psla": "dense_ft", "ssvd": "offset_predictor"}


def training_clips(method: str, B: int = 1, height: int = 64, width: int = 80):
    """Clips of 1 + train_support frames with targets as the spec asks (support boxes and track ids)."""
    spec = get_method(method)
    T = 1 + spec.train_support
    images, targets = clips_with_boxes(B=B, T=T, height=height, width=width)
    if spec.support_targets:
        for t in targets:
            t["track_ids"] = torch.arange(len(t["boxes"]))
            t["support"] = [{"boxes": t["boxes"].clone(), "labels": t["labels"], "track_ids": t["track_ids"]}
                            for _ in range(T - 1)]
    return images, targets


def last_phase(model, iters: int = 10):
    model.set_iteration(iters, iters)  # SSVD: phase 2 (the whole model); a no-op for the others
    return model


@pytest.mark.parametrize("method", sorted(METHODS))
def test_trains_a_step_and_detects_in_bf16(method):
    torch.manual_seed(0)
    model = last_phase(build_model(method, "tiny", 3, min_size=64, max_size=80).train())
    images, targets = training_clips(method)
    losses = model(images, targets)
    assert losses and all(torch.isfinite(v) for v in losses.values()), losses
    sum(losses.values()).backward()
    prefix = next((p for m, p in OWN.items() if method.startswith(m) and not method.startswith("ssvd_single")), None)
    named = dict(model.named_parameters())
    if prefix is not None and any(n.startswith(prefix) for n in named):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for n, p in named.items() if n.startswith(prefix))
    model.eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        detections = model(images)
    assert len(detections) == images.shape[0]
    assert detections[0]["boxes"].dtype == torch.float32 and detections[0]["scores"].dtype == torch.float32


@pytest.fixture(scope="module")
def ten_frames(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    generate(root, seed=2, train_videos=1, val_videos=1, frames=10, det_images=1, progress=False)
    return VIDDataset(root, "val").videos[0]


@pytest.mark.parametrize("method", HEADLINE)
def test_the_engine_runs_each_backbone_once_per_frame(method, ten_frames):
    torch.manual_seed(0)
    model = build_model(method, "tiny", 8).eval()
    spec = get_method(method)
    frames_in, frame_features = [], model.frame_features
    model.frame_features = lambda images: frames_in.append(images.shape[0]) or frame_features(images)
    dets, record, seconds = predict_video(model, ten_frames, "cpu", num_support=spec.test_support,
                                          mode=spec.test_mode, stride=spec.test_stride, window=spec.test_window)
    assert len(dets) == 10 and all(set(d) == {"boxes", "scores", "labels"} for d in dets)
    assert seconds > 0
    if method == "psla":  # the heavy layers on key frames only, the light ones on the other frames
        assert record.computed == 1 and record.light == 9  # one segment of l = 10 frames
    else:
        assert sum(frames_in) == record.computed == 10


@pytest.mark.parametrize("method", HEADLINE)
def test_loss_falls_on_a_tiny_fixed_batch(method):
    torch.manual_seed(0)
    model = last_phase(build_model(method, "tiny", 3, min_size=64, max_size=80).train())
    ratio = overfit_loss_ratio(model)  # 30 Adam steps on 2 clips of 2 frames
    assert ratio < 0.7, ratio


@pytest.mark.parametrize("method", METHOD_NAMES)
def test_paper_preset_takes_a_step(method):
    torch.manual_seed(0)
    size = (64, 96) if method == "ssvd" else (128, 160)  # SSVD: two ResNet-101 FPNs, smaller frames
    model = last_phase(build_model(method, "paper", 30, min_size=size[0], max_size=size[1]).train())
    T = 1 + get_method(method).train_support
    images = torch.rand(1, T, 3, *size)
    box = torch.tensor([[20.0, 10.0, 70.0, 50.0]])
    targets = [{"boxes": box, "labels": torch.tensor([5]), "track_ids": torch.tensor([0]),
                "support": [{"boxes": box + 2, "labels": torch.tensor([5]), "track_ids": torch.tensor([0])}] * (T - 1)}]
    losses = model(images, targets)
    sum(losses.values()).backward()
    assert all(torch.isfinite(v) for v in losses.values()), losses
    if method in OWN:
        assert any(p.grad is not None for n, p in model.named_parameters() if n.startswith(OWN[method]))
