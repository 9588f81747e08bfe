"""Tests of the baseline detector (minivod.models): parity, training, presets, plug-in points."""
from __future__ import annotations

import urllib.error
from dataclasses import replace

import pytest
import torch
import torchvision
from torch import nn
from torchvision.ops import FrozenBatchNorm2d

from minivod.models import (
    DetectorConfig,
    FrameFeatures,
    IdentityRoIAggregator,
    RoIContext,
    VideoDetectorBase,
    VODetector,
    count_parameters,
    preset,
)
from minivod.models.twin import torchvision_twin


# --------------------------------------------------------------------------- helpers
@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any attempt to download weights fails the test instead of touching the network."""

    def forbidden(*args, **kwargs):
        raise AssertionError("a test tried to download weights")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", forbidden)
    monkeypatch.setattr(torch.hub, "download_url_to_file", forbidden)
    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", forbidden)


def tiny_model(seed=0, **plugins) -> VODetector:
    """The tiny preset from random weights with randomised BatchNorm statistics (so that eval-mode BN is not
    the identity). From scratch, not from the pre-trained backbone: on top of pre-trained features the
    untrained heads give many detections the same score, and their order then depends on float noise."""
    torch.manual_seed(seed)
    model = VODetector(preset("tiny", 8, pretrained_backbone=False), **plugins)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return model.eval()


def assert_same_detections(ours, theirs, atol=1e-5):
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert a["boxes"].shape == b["boxes"].shape
        assert a["boxes"].shape[0] > 0
        torch.testing.assert_close(a["boxes"], b["boxes"], atol=atol, rtol=0)
        torch.testing.assert_close(a["scores"], b["scores"], atol=atol, rtol=0)
        assert torch.equal(a["labels"], b["labels"])


def rectangles(n=4, height=120, width=160, seed=0):
    """Noisy frames with 1-3 filled rectangles whose colour gives the class (1..3)."""
    g = torch.Generator().manual_seed(seed)
    colours = torch.tensor([[0.9, 0.2, 0.2], [0.2, 0.9, 0.2], [0.2, 0.2, 0.9]])
    images = 0.1 * torch.rand(n, 3, height, width, generator=g) + 0.3
    targets = []
    for i in range(n):
        boxes, labels = [], []
        for _ in range(int(torch.randint(1, 4, (1,), generator=g))):
            w, h = torch.randint(14, 45, (2,), generator=g).tolist()
            x1 = int(torch.randint(0, width - w, (1,), generator=g))
            y1 = int(torch.randint(0, height - h, (1,), generator=g))
            c = int(torch.randint(0, 3, (1,), generator=g))
            images[i, :, y1 : y1 + h, x1 : x1 + w] = colours[c, :, None, None]
            boxes.append([x1, y1, x1 + w, y1 + h])
            labels.append(c + 1)
        targets.append({"boxes": torch.tensor(boxes, dtype=torch.float32), "labels": torch.tensor(labels)})
    return images, targets


class BlendFrames(nn.Module):
    """A dummy frame aggregator: adds half the clip mean to every frame; records the input shape."""

    def forward(self, maps):  # (B, T, C, h, w)
        self.seen = maps.shape
        return maps + 0.5 * maps.mean(dim=1, keepdim=True)  # (B, T, C, h, w)


class MeanOfSupports(nn.Module):
    """A dummy RoI aggregator: adds the mean support feature of the same clip; records what it got."""

    def forward(self, ref_feats, support_feats, ctx: RoIContext):  # (N_ref, D), (N_sup, D)
        self.seen = (ref_feats.shape, support_feats.shape, ctx)
        same_clip = (ctx.ref_clip_index[:, None] == ctx.support_clip_index[None, :]).float()  # (N_ref, N_sup)
        weights = same_clip / same_clip.sum(dim=1, keepdim=True).clamp(min=1)
        return ref_feats + weights @ support_feats  # (N_ref, D)


# --------------------------------------------------------------------------- parity
@pytest.mark.parametrize("size", [(120, 160), (96, 128), (100, 150)])
def test_parity_with_torchvision_faster_rcnn(size):
    """T = 1 and identity plug-ins: the same detections as torchvision's FasterRCNN with the same weights."""
    model = tiny_model()
    twin = torchvision_twin(model)
    images = torch.rand(3, 1, 3, *size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours = model(images)
        theirs = twin(list(images[:, 0]))
    assert_same_detections(ours, theirs)


def test_parity_fails_when_weights_differ():
    """The parity check can fail: a 1e-3 nudge of one class logit moves the scores past the tolerance."""
    model = tiny_model()
    twin = torchvision_twin(model)
    with torch.no_grad():
        twin.roi_heads.box_predictor.cls_score.bias[1] += 1e-3
        images = torch.rand(2, 1, 3, 120, 160, generator=torch.Generator().manual_seed(1))
        with pytest.raises(AssertionError):
            assert_same_detections(model(images), twin(list(images[:, 0])))


# --------------------------------------------------------------------------- training
def test_loss_falls_on_tiny_overfit_set():
    torch.manual_seed(0)
    model = VODetector(preset("tiny", 3)).train()
    images, targets = rectangles(n=4)
    clips = images[:, None]  # (4, 1, 3, 120, 160)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    totals = []
    for step in range(60):
        idx = [(2 * step) % 4, (2 * step + 1) % 4]
        losses = model(clips[idx], [targets[i] for i in idx])
        loss = sum(losses.values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        totals.append(loss.item())
    assert set(losses) == {"loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg"}
    first, last = sum(totals[:10]) / 10, sum(totals[-10:]) / 10
    assert last < 0.5 * first, (first, last)


def test_paper_preset_one_training_step():
    torch.manual_seed(0)
    cfg = preset("paper", 30, min_size=128, max_size=160)  # the paper model at a small input size
    model = VODetector(cfg).train()
    assert model.backbone.stride == 16 and model.backbone.rpn_channels == 1024 and model.backbone.roi_channels == 256
    assert model.roi_heads.box_head.fcs[0].in_features == 256 * 7 * 7
    assert [fc.out_features for fc in model.roi_heads.box_head.fcs] == [1024, 1024]
    images = torch.rand(1, 1, 3, 128, 160)
    targets = [{"boxes": torch.tensor([[20.0, 30.0, 90.0, 100.0]]), "labels": torch.tensor([5])}]
    losses = model(images, targets)
    sum(losses.values()).backward()
    assert all(torch.isfinite(v) for v in losses.values())
    body = model.backbone.body
    assert body.conv1.weight.grad is None and not body.layer1[0].conv1.weight.requires_grad  # frozen, as in FGFA
    assert body.layer4[0].conv2.weight.grad is not None  # dilated conv5 trains
    assert body.layer4[0].conv2.stride == (1, 1) and body.layer4[1].conv2.dilation == (2, 2)  # dilated conv5
    assert model.backbone.conv_new_1[0].weight.grad is not None
    assert model.rpn.head.conv[0][0].weight.grad is not None


def test_paper_preset_with_supports_and_plugins():
    """The paper backbone's frame map is cat(conv4, conv_new_1): plug-ins see all of it."""
    torch.manual_seed(0)
    frames, rois = BlendFrames(), nn.ModuleList([MeanOfSupports(), MeanOfSupports()])
    model = VODetector(preset("paper", 30, min_size=96, max_size=128), frames, rois).eval()
    # Without ImageNet weights, frozen BatchNorm is the identity and activations grow ~10x per
    # stage, leaving no valid proposals; halving every frozen BN scale keeps them O(1).
    for m in model.backbone.modules():
        if isinstance(m, FrozenBatchNorm2d):
            m.weight.fill_(0.5)
    with torch.no_grad():
        detections = model(torch.rand(1, 2, 3, 96, 128))
    assert frames.seen == (1, 2, 1024 + 256, 6, 8)
    ref_shape, support_shape, _ = rois[1].seen
    assert ref_shape[1] == support_shape[1] == 1024 and support_shape[0] > 0
    assert detections[0]["boxes"].shape[1] == 4


# --------------------------------------------------------------------------- presets, weights
def test_presets_and_config_checks():
    tiny = preset("tiny", 8)
    assert tiny.num_classes_with_background == 9 and tiny.stride == 8
    paper = preset("paper", 30)
    assert (paper.min_size, paper.max_size) == (600, 1000)
    assert (paper.rpn_post_nms_top_n_test, paper.rpn_nms_thresh, paper.box_fc_dims) == (300, 0.7, (1024, 1024))
    assert paper.anchor_sizes == (64, 128, 256, 512) and paper.anchor_ratios == (0.5, 1.0, 2.0)
    with pytest.raises(ValueError, match="unknown preset"):
        preset("huge", 8)
    with pytest.raises(ValueError, match="size_divisible"):
        replace(tiny, size_divisible=12)
    with pytest.raises(ValueError, match="backbone"):
        DetectorConfig(backbone="vgg16")


def test_default_paper_build_does_not_download():
    model = VODetector(preset("paper", 30))  # the autouse fixture fails any download attempt
    assert count_parameters(model, trainable_only=True) < count_parameters(model)


def test_pretrained_backbone_offline_gives_clear_error(monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torchvision.models.ResNet101_Weights, "get_state_dict", offline)
    with pytest.raises(RuntimeError) as info:
        VODetector(preset("paper", 30, pretrained_backbone=True))
    message = str(info.value)
    assert "Could not download the ImageNet weights of ResNet-101" in message
    assert torchvision.models.ResNet101_Weights.IMAGENET1K_V1.url in message
    assert "checkpoints" in message and "pretrained_backbone=False" in message
    assert isinstance(info.value.__cause__, urllib.error.URLError)


def test_count_parameters():
    model = VODetector(preset("tiny", 8))
    assert count_parameters(model) == sum(p.numel() for p in model.parameters())
    assert count_parameters(model, trainable_only=True) == count_parameters(model)
    assert count_parameters(nn.Linear(3, 2)) == 8


# --------------------------------------------------------------------------- plug-in points
def test_plugins_receive_documented_shapes_and_change_detections():
    B, T = 2, 3
    baseline = tiny_model()
    frames, rois = BlendFrames(), nn.ModuleList([MeanOfSupports(), MeanOfSupports()])
    plugged = tiny_model(frame_aggregator=frames, roi_aggregators=rois)
    images = torch.rand(B, T, 3, 120, 160, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = baseline(images)
        got = plugged(images)

    assert frames.seen == (B, T, 128, 15, 20)
    for stage, dim in zip(rois, (256, 256)):
        ref_shape, support_shape, ctx = stage.seen
        n_ref, n_sup = ref_shape[0], support_shape[0]
        assert ref_shape[1] == support_shape[1] == dim
        assert ctx.ref_boxes.shape == (n_ref, 4) and ctx.ref_clip_index.shape == (n_ref,)
        assert ctx.support_boxes.shape == (n_sup, 4)
        assert 0 < n_sup <= B * (T - 1) * plugged.cfg.num_support_rois
        assert set(ctx.ref_clip_index.tolist()) == set(range(B))
        assert set(ctx.support_clip_index.tolist()) == set(range(B))
        assert set(ctx.support_frame_index.tolist()) == set(range(1, T))
        assert ctx.support_objectness.shape == (n_sup,)
        assert ((ctx.support_objectness >= 0) & (ctx.support_objectness <= 1)).all()
        # support RoIs are the top-N proposals by objectness of each frame: sorted within a frame
        frame_id = ctx.support_clip_index * T + ctx.support_frame_index
        same_frame = frame_id[1:] == frame_id[:-1]
        assert (ctx.support_objectness[1:][same_frame] <= ctx.support_objectness[:-1][same_frame]).all()
    assert any(not torch.equal(a["scores"], b["scores"]) or a["boxes"].shape != b["boxes"].shape
               for a, b in zip(expected, got))


@pytest.mark.parametrize("which", ["frame", "roi"])
def test_each_plugin_alone_changes_detections(which):
    plugins = {"frame_aggregator": BlendFrames()} if which == "frame" else {
        "roi_aggregators": nn.ModuleList([MeanOfSupports(), MeanOfSupports()])}
    baseline, plugged = tiny_model(), tiny_model(**plugins)
    images = torch.rand(1, 3, 3, 120, 160, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        a, b = baseline(images)[0], plugged(images)[0]
    assert a["boxes"].shape != b["boxes"].shape or not torch.allclose(a["scores"], b["scores"])


def test_identity_plugins_ignore_supports():
    """With identity plug-ins the supports do not change the reference's detections."""
    model = tiny_model()
    images = torch.rand(2, 3, 3, 120, 160, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        assert_same_detections(model(images), model(images[:, :1].contiguous()))


def test_plugins_in_training():
    B, T = 2, 3
    frames, rois = BlendFrames(), nn.ModuleList([MeanOfSupports(), MeanOfSupports()])
    torch.manual_seed(0)
    model = VODetector(preset("tiny", 3), frames, rois).train()
    images, targets = rectangles(n=B * T)
    losses = model(images.view(B, T, 3, 120, 160), targets[::T])
    sum(losses.values()).backward()
    assert frames.seen == (B, T, 128, 15, 20)
    ref_shape, support_shape, ctx = rois[0].seen
    assert ref_shape == (B * model.cfg.box_batch_size_per_image, 256)  # sampled RoIs of both clips
    assert support_shape[0] == ctx.support_boxes.shape[0] > 0
    assert model.roi_heads.box_head.fcs[0].weight.grad is not None


def test_roi_aggregators_without_supports_get_empty_support():
    rois = nn.ModuleList([MeanOfSupports(), MeanOfSupports()])
    model = tiny_model(roi_aggregators=rois)
    with torch.no_grad():
        model(torch.rand(1, 1, 3, 120, 160))
    ref_shape, support_shape, ctx = rois[0].seen
    assert support_shape == (0, 256) and ctx.support_boxes.shape == (0, 4) and ref_shape[0] > 0


def test_wrong_number_of_roi_aggregators_is_an_error():
    model = tiny_model(roi_aggregators=nn.ModuleList([IdentityRoIAggregator()]))
    with pytest.raises(ValueError, match="one RoI aggregator per FC layer"):
        with torch.no_grad():
            model(torch.rand(1, 1, 3, 120, 160))


# --------------------------------------------------------------------------- caching
@pytest.mark.parametrize("plugins", [False, True])
def test_cached_frame_features_then_detect_equals_forward(plugins):
    """An engine computes each frame once (frame_features) and detects from the cache: same as forward."""
    B, T = 2, 3
    kwargs = dict(frame_aggregator=BlendFrames(), roi_aggregators=nn.ModuleList([MeanOfSupports(), MeanOfSupports()]))
    model = tiny_model(**(kwargs if plugins else {}))
    images = torch.rand(B, T, 3, 120, 160, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        expected = model(images)
        cache = [model.frame_features(images[b, t][None]) for b in range(B) for t in range(T)]  # one frame at a time
        ref = FrameFeatures.cat([cache[b * T] for b in range(B)])
        supports = FrameFeatures.cat([cache[b * T + t] for b in range(B) for t in range(1, T)])
        got = model.detect(ref, supports)
    assert len(ref) == B and len(supports) == B * (T - 1)
    assert_same_detections(got, expected, atol=1e-4)


@pytest.mark.parametrize("aggregate", [False, True])
def test_reference_is_reproposed_only_after_frame_aggregation(aggregate):
    """Cached proposals serve the supports; the reference's RPN runs again only on an aggregated map."""
    model = tiny_model(**({"frame_aggregator": BlendFrames()} if aggregate else {}))
    calls = []
    model.rpn.register_forward_hook(lambda module, args, out: calls.append(args[0].shape[0]))
    with torch.no_grad():
        model(torch.rand(2, 3, 3, 120, 160))
    assert calls == ([6, 2] if aggregate else [6])  # all B*T frames once, then the B references


def test_frame_features_fields():
    model = tiny_model()
    with torch.no_grad():
        feats = model.frame_features(torch.rand(3, 3, 100, 150))
    assert feats.maps.shape == (3, 128, 112 // 8, 160 // 8)  # resized to 106x160, padded to 112x160
    assert feats.image_sizes == [(106, 160)] * 3 and feats.original_sizes == [(100, 150)] * 3
    assert len(feats.proposals) == len(feats.objectness) == 3
    for boxes, scores in zip(feats.proposals, feats.objectness):
        assert boxes.shape == (scores.shape[0], 4) and 0 < scores.shape[0] <= model.cfg.rpn_post_nms_top_n_test
        assert (scores[1:] <= scores[:-1]).all()
    ref, supports = feats.split_clips(1, 3)
    assert len(ref) == 1 and len(supports) == 2 and torch.equal(supports.maps[1], feats.maps[2])


def test_video_detector_base_is_the_shared_interface():
    assert isinstance(VODetector(preset("tiny", 8)), VideoDetectorBase)

    class Incomplete(VideoDetectorBase):
        def frame_features(self, images):
            return FrameFeatures(images, [], [])

    with pytest.raises(TypeError):
        Incomplete()  # detect and compute_losses are abstract


# --------------------------------------------------------------------------- CUDA
@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_training_step_and_inference_on_cuda():
    device = torch.device("cuda")
    frames, rois = BlendFrames(), nn.ModuleList([MeanOfSupports(), MeanOfSupports()])
    torch.manual_seed(0)
    model = VODetector(preset("tiny", 3), frames, rois).to(device).train()
    images, targets = rectangles(n=4)
    images = images.view(2, 2, 3, 120, 160).to(device)
    targets = [{k: v.to(device) for k, v in t.items()} for t in targets[::2]]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    for amp in (False, True):
        with torch.autocast("cuda", dtype=torch.float16, enabled=amp):
            losses = model(images, targets)
        loss = sum(losses.values())
        assert torch.isfinite(loss) and loss.device.type == "cuda"
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    for amp in (False, True):
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.float16, enabled=amp):
            detections = model(images)
        assert detections[0]["boxes"].device.type == "cuda" and detections[0]["boxes"].dtype == torch.float32
