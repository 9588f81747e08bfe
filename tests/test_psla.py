"""Tests of PSLA (minivod.methods.psla), RFU / DenseFT / the key-frame detector (minivod.methods.psla_detector)
and the R-FCN head (minivod.models.rfcn)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torchvision.ops import ps_roi_align

from minivod.data.generate import generate
from minivod.data.vid import VIDDataset, load_image
from minivod.methods import build_model
from minivod.methods.psla import (
    LocalAttention,
    dense_offsets,
    local_weights,
    neighbours,
    nonlocal_attention,
    psla,
    sparse_offsets,
)
from minivod.methods.psla_detector import (
    FusionWeights,
    PSLADetector,
    RecursiveFeatureUpdate,
    build_psla,
)
from minivod.data.sampling import KeyFrameSchedule, key_frames, train_key_frames
from minivod.engine.inference import detect_video_key_frames
from minivod.models import preset
from minivod.models.rfcn import PSRoIPredictor

from method_helpers import clips_with_boxes


def maps(B=2, c=4, C=3, h=5, w=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, c, h, w, generator=g), torch.randn(B, c, h, w, generator=g), torch.randn(B, C, h, w, generator=g)


def reference_loop(query, key, value, positions_of, normalise="softmax"):
    """Eq. (1), (4), (5) one position at a time: the specification the batched operator must match."""
    B, c, h, w = query.shape
    out = torch.zeros_like(value)
    for b in range(B):
        for y in range(h):
            for x in range(w):
                phi = [(y + dy, x + dx) for dy, dx in positions_of(y, x)]
                phi = [(yy, xx) for yy, xx in phi if 0 <= yy < h and 0 <= xx < w]  # inside the map
                a = torch.stack([query[b, :, y, x] @ key[b, :, yy, xx] for yy, xx in phi]) / math.sqrt(c)  # Eq. (1)
                if normalise == "softmax":
                    weights = torch.exp(a - a.max()) / torch.exp(a - a.max()).sum()  # Eq. (4)
                else:
                    a = a.clamp(min=0)
                    weights = a / (a.sum() + 1e-6)
                out[b, :, y, x] = sum(wt * value[b, :, yy, xx] for wt, (yy, xx) in zip(weights, phi))  # Eq. (5)
    return out


def phi_sparse(d):
    """Phi of Eq. (2)-(3) written out: the centre, then the 3x3 grid at every stride s = 1..d."""
    return lambda y, x: [(0, 0)] + [(a * s, b * s) for s in range(1, d + 1) for a in (-1, 0, 1) for b in (-1, 0, 1)
                                    if (a, b) != (0, 0)]


# --------------------------------------------------------------------------- the operator, Eq. (1)-(5)
def test_sparse_grid_has_1_plus_8d_positions_on_rings_of_stride_s():
    for d in range(5):
        offsets = sparse_offsets(d)
        assert offsets.shape == (1 + 8 * d, 2) and len({tuple(o) for o in offsets.tolist()}) == 1 + 8 * d
        assert offsets[0].tolist() == [0, 0]
        for s in range(1, d + 1):
            ring = offsets[1 + 8 * (s - 1): 1 + 8 * s]
            assert ring.abs().amax(1).eq(s).all() and set(ring.flatten().tolist()) <= {-s, 0, s}
    assert dense_offsets(2).shape == (25, 2)


@pytest.mark.parametrize("d", [1, 2, 3])
def test_batched_psla_equals_the_reference_loop(d):
    q, k, v = maps()
    torch.testing.assert_close(psla(q, k, v, d), reference_loop(q, k, v, phi_sparse(d)))


def test_dense_and_matchtrans_equal_the_reference_loop():
    q, k, v = maps(h=4, w=5)
    window = lambda y, x: dense_offsets(2).tolist()  # noqa: E731
    dense = local_weights(q, k, dense_offsets(2))
    torch.testing.assert_close((dense.unsqueeze(1) * neighbours(v, dense_offsets(2))[0]).sum(2),
                               reference_loop(q, k, v, window))
    match = local_weights(q.relu(), k.relu(), dense_offsets(2), "sum")
    torch.testing.assert_close((match.unsqueeze(1) * neighbours(v, dense_offsets(2))[0]).sum(2),
                               reference_loop(q.relu(), k.relu(), v, window, "sum"))


def test_nonlocal_is_a_softmax_over_all_positions():
    q, k, v = maps(B=1, h=3, w=4)
    whole_map = lambda y, x: [(yy - y, xx - x) for yy in range(3) for xx in range(4)]  # noqa: E731
    torch.testing.assert_close(nonlocal_attention(q, k, v), reference_loop(q, k, v, whole_map))


def test_d_zero_copies_F_t():
    q, k, v = maps()
    assert torch.equal(psla(q, k, v, 0), v)
    module = LocalAttention(3, embed_dim=8, max_displacement=0)
    assert torch.equal(module(torch.randn(2, 3, 5, 6), v), v)


@pytest.mark.parametrize("mode", ["psla", "dense", "matchtrans"])
def test_weights_sum_to_one_and_ignore_positions_outside_the_map(mode):
    module = LocalAttention(3, embed_dim=8, max_displacement=2, mode=mode)
    q, _, v = maps(C=3)
    w = module.weights(torch.randn(2, 3, 5, 6), v)  # (B, K, h, w)
    assert w.shape == (2, len(module.offsets), 5, 6) and (w >= 0).all()
    if mode == "matchtrans":  # affinities over their sum (+ 1e-6): one, or zero where no affinity is positive
        total = w.sum(1)
        assert (((total - 1).abs() < 1e-3) | (total == 0)).all()
    else:  # Eq. (4)
        torch.testing.assert_close(w.sum(1), torch.ones(2, 5, 6))
    _, valid = neighbours(v, module.offsets)
    assert (w[:, ~valid] == 0).all()  # e.g. the top-left corner never looks up or left


def test_psla_follows_a_shifted_map():
    """g(F_{t+e}) = f(F_t) shifted by (2, -2) cells, a displacement of the stride-2 ring: every inner
    position puts its weight there, and Eq. (5) moves F_t along."""
    g = torch.Generator().manual_seed(0)
    F_t = torch.randn(1, 16, 12, 12, generator=g) * 8
    F_next = torch.roll(F_t, shifts=(2, -2), dims=(2, 3))  # content moved down 2, left 2
    offsets = sparse_offsets(2)
    w = local_weights(F_next, F_t, offsets)  # (1, K, h, w)
    expected = offsets.tolist().index([-2, 2])  # F_next[y, x] = F_t[y - 2, x + 2]
    assert (w[0, :, 3:-3, 3:-3].argmax(0) == expected).all()
    torch.testing.assert_close(psla(F_next, F_t, F_t, 2)[..., 3:-3, 3:-3], F_next[..., 3:-3, 3:-3], atol=1e-4, rtol=0)


# --------------------------------------------------------------------------- RFU (Eq. 6) and DenseFT
def test_update_net_weights_sum_to_one_per_position():
    net = FusionWeights(6, reduce_dim=8)
    a, b = torch.randn(2, 6, 5, 7), torch.randn(2, 6, 5, 7)
    w = net.weights(a, b)  # (B, 2, h, w)
    assert w.shape == (2, 2, 5, 7) and (w > 0).all()
    torch.testing.assert_close(w.sum(1), torch.ones(2, 5, 7))
    torch.testing.assert_close(net(a, b), w[:, :1] * a + w[:, 1:] * b)  # Eq. (6)


def test_rfu_starts_from_the_first_key_frame_and_then_mixes():
    from minivod.methods.psla_detector import PSLAConfig

    rfu = RecursiveFeatureUpdate(6, PSLAConfig(max_displacement=1), embed_dim=8, reduce_dim=8)
    F_h1, F_h2 = torch.randn(1, 6, 4, 5), torch.randn(1, 6, 4, 5)
    assert torch.equal(rfu(F_h1, None), F_h1)
    F_t = rfu(F_h2, F_h1)
    F_hat = rfu.align(F_h2, F_h1)
    w = rfu.update_net.weights(F_hat, F_h2)
    torch.testing.assert_close(F_t, w[:, :1] * F_hat + w[:, 1:] * F_h2)
    lo, hi = torch.minimum(F_hat, F_h2), torch.maximum(F_hat, F_h2)
    assert ((F_t >= lo - 1e-6) & (F_t <= hi + 1e-6)).all()  # a convex combination per position


# --------------------------------------------------------------------------- R-FCN head
def test_ps_roi_predictor_votes_over_position_sensitive_bins():
    torch.manual_seed(0)
    head = PSRoIPredictor(8, num_classes=3, k=3, spatial_scale=1.0, sampling_ratio=1)
    feats = torch.randn(1, 8, 9, 9)
    rois = [torch.tensor([[0.0, 0.0, 9.0, 9.0]])]
    logits, deltas = head(feats, rois)
    cls_maps, box_maps = head.score_maps(feats)
    # bin (i, j) of class c reads channel c * 9 + i * 3 + j at the centre of its 3x3 cell block
    by_hand = torch.stack([
        torch.stack([cls_maps[0, c * 9 + i * 3 + j, 3 * i + 1, 3 * j + 1] for i in range(3) for j in range(3)]).mean()
        for c in range(3)])
    torch.testing.assert_close(logits[0], by_hand, atol=1e-5, rtol=1e-5)
    assert deltas.shape == (1, 12) and torch.equal(deltas[:, :4], deltas[:, 8:])  # class-agnostic, repeated
    torch.testing.assert_close(deltas[:, :4], ps_roi_align(box_maps, rois, 3, 1.0, 1).mean((2, 3)))


# --------------------------------------------------------------------------- schedules
def test_key_frame_schedules():
    is_key, key_of = key_frames(23, 10)  # segments 0-9, 10-19, 20-22: middle frames 4, 14, 21
    assert [t for t in range(23) if is_key[t]] == [4, 14, 21]
    assert key_of[:10] == [4] * 10 and key_of[10:20] == [14] * 10 and key_of[20:] == [21] * 3
    is_key, key_of = key_frames(7, 3, "first")
    assert is_key == [True, False, False, True, False, False, True] and key_of == [0, 0, 0, 3, 3, 3, 6]
    assert key_frames(5, 1)[0] == [True] * 5


def test_training_clips_sample_key_frames_as_in_sec_4_1():
    rng = np.random.default_rng(0)
    for _ in range(200):
        k1, k2 = train_key_frames(100, 50, rng, interval=10)
        assert 40 <= k1 <= 45 and 45 <= k2 <= 55
    assert all(0 <= k < 12 for k in train_key_frames(12, 2, rng))  # clipped to the video
    assert train_key_frames(1, 0, rng) == [0, 0]  # a DET still: three copies
    assert build_psla(preset("tiny", 3)).test_schedule() == KeyFrameSchedule(10, "middle")


def test_unscaled_eq1_and_the_paper_variants():
    """``scaled=False`` is Eq. (1) as written (no 1/sqrt(c)); the d = 1, 2 variants use it."""
    torch.manual_seed(0)
    q, k = torch.randn(1, 16, 5, 6), torch.randn(1, 16, 5, 6)
    offsets = sparse_offsets(1)
    unscaled = local_weights(q, k, offsets, scaled=False)
    assert torch.allclose(unscaled, local_weights(q * 4, k, offsets))  # sqrt(16) = 4
    assert not torch.allclose(unscaled, local_weights(q, k, offsets))
    for name, d in (("psla_d1_paper", 1), ("psla_d2_paper", 2)):
        model = build_model(name, "tiny", 3)
        assert model.opts.max_displacement == d and not model.opts.scaled and not model.opts.key_frame_loss
        assert not model.dense_ft.align.scaled and len(model.dense_ft.align.offsets) == len(sparse_offsets(d))


def test_training_clips_follow_the_models_key_frame_interval():
    """The training sampler reads l from the model's options (it was fixed at 10 whatever the option said)."""
    for interval in (10, 4):
        model = build_psla(preset("tiny", 3), key_frame_interval=interval)
        draw = model.train_support_fn()
        rng = np.random.default_rng(0)
        drawn = [draw(100, 50, rng) for _ in range(200)]
        assert min(k1 for k1, _ in drawn) == 50 - interval and max(k2 for _, k2 in drawn) == 50 + interval // 2


def test_key_frame_schedule_runs_the_heavy_layers_on_key_frames_only(tmp_path):
    generate(tmp_path / "data", seed=2, train_videos=1, val_videos=1, frames=12, det_images=1, progress=False)
    video = VIDDataset(tmp_path / "data", "val").videos[0]
    torch.manual_seed(0)
    model = build_model("psla", "tiny", 8).eval()
    heavy, light = [], []
    model.backbone.body[model.low_layers].register_forward_hook(lambda m, i, o: heavy.append(i[0].shape[0]))
    model.dense_ft.register_forward_hook(lambda m, i, o: light.append(i[0].shape[0]))
    dets, record, seconds = detect_video_key_frames(model, video, "cpu", KeyFrameSchedule(interval=5))
    assert len(dets) == 12 and all(set(d) == {"boxes", "scores", "labels"} for d in dets)
    # segments 0-4, 5-9, 10-11: key frames 2, 7, 10; N_h runs three times, one frame each
    assert heavy == [1, 1, 1] and record.computed == 3 and record.light == sum(light) == 9
    assert seconds > 0
    # a key frame's detections equal those of the cached interface (RFU over the earlier key frames)
    frames = torch.stack([load_image(video.frames[t].image_path) for t in (2, 7)])  # (2, 3, H, W)
    with torch.no_grad():
        cached = model.frame_features(frames)
        second = model.detect(cached.select([1]), cached.select([0]))[0]
    torch.testing.assert_close(second["boxes"], dets[7]["boxes"])


# --------------------------------------------------------------------------- the detector
@pytest.mark.parametrize("options", [{}, {"rfu": False, "quality_net": False}, {"propagation": "dense"},
                                     {"propagation": "matchtrans"}, {"propagation": "nonlocal"}])
def test_training_step_reaches_every_module(options):
    torch.manual_seed(0)
    model = build_psla(preset("tiny", 3), **options).train()
    images, targets = clips_with_boxes(B=2, T=3, height=64, width=80)
    losses = model(images, targets)
    sum(losses.values()).backward()
    names = {"loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg"}
    assert set(losses) == names  # no boxes for the key frames: the non-key frame's loss only
    with_key_boxes = [{**t, "support": [t, t]} for t in targets]  # as MethodSpec.support_targets gives them
    losses = model(images, with_key_boxes)
    assert set(losses) == names | {f"{n}_key" for n in names}
    assert all(torch.isfinite(v) for v in losses.values())
    grads = {n: p.grad for n, p in model.named_parameters()}
    assert grads["backbone.body.8.0.weight"].abs().sum() > 0  # N_h, through the key frames
    assert grads["dense_ft.transform_net.net.0.0.weight"].abs().sum() > 0
    assert grads["dense_ft.align.f.weight"].abs().sum() > 0  # PSLA's embeddings train
    if model.rfu is not None:
        assert grads["rfu.update_net.net.4.weight"].abs().sum() > 0
    if model.dense_ft.quality_net is not None:
        assert grads["dense_ft.quality_net.net.4.weight"].abs().sum() > 0
    model.eval()
    with torch.no_grad():
        detections = model(images)
    assert len(detections) == 2 and detections[0]["boxes"].shape[1] == 4


def test_without_rfu_only_the_latest_key_frame_matters():
    torch.manual_seed(0)
    model = build_psla(preset("tiny", 3), rfu=False, quality_net=False).eval()
    images, _ = clips_with_boxes(B=1, T=3, height=64, width=80)
    other = images.clone()
    other[:, 1] = torch.rand_like(other[:, 1])  # a different older key frame
    batch = lambda x: model.transform(x.flatten(0, 1))[0].unflatten(0, (1, 3))  # noqa: E731
    with torch.no_grad():
        torch.testing.assert_close(model.clip_maps(batch(images))[0], model.clip_maps(batch(other))[0])
    full = build_psla(preset("tiny", 3)).eval()
    with torch.no_grad():
        assert not torch.allclose(full.clip_maps(batch(images))[0], full.clip_maps(batch(other))[0])


def test_paper_preset_builds_with_its_parts():
    """The paper preset's PSLA (its training step: tests/test_method_contract.py)."""
    model = build_model("psla", "paper", 30, min_size=128, max_size=160)
    assert isinstance(model, PSLADetector) and model.roi_heads.box_predictor.k == 7
    assert model.rfu.align.f.out_channels == 256 and len(model.rfu.align.offsets) == 33  # d = 4


def test_quality_prior_sets_the_starting_weights():
    """``quality_prior = p``: before training the Quality Net gives the propagated map weight p everywhere."""
    torch.manual_seed(0)
    net = FusionWeights(8, reduce_dim=4, prior=0.9)
    a, b = torch.randn(2, 8, 5, 6), torch.randn(2, 8, 5, 6)
    w = net.weights(a, b)  # (2, 2, 5, 6)
    torch.testing.assert_close(w[:, 0], torch.full_like(w[:, 0], 0.9))
    torch.testing.assert_close(net(a, b), 0.9 * a + 0.1 * b)
    assert not torch.allclose(FusionWeights(8, reduce_dim=4).weights(a, b)[:, 0], w[:, 0])


# --------------------------------------------------------------------------- reading helpers (notebook 05)
def test_parts_are_what_forward_computes():
    """DenseFT's and RFU's ``parts`` return the intermediates their ``forward`` combines (Eq. 4-6)."""
    torch.manual_seed(0)
    model = build_psla(preset("tiny", 3)).eval()
    F_l, F_h, F_t = torch.randn(2, 64, 5, 6), torch.rand(2, 128, 5, 6), torch.rand(2, 128, 5, 6)
    with torch.no_grad():
        p = model.dense_ft.parts(F_l, F_t)
        torch.testing.assert_close(p["out"], model.dense_ft(F_l, F_t))
        torch.testing.assert_close(p["F_hat"], psla(model.dense_ft.align.g(p["E"]), model.dense_ft.align.f(F_t), F_t, 4),
                                   atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(p["weights"].sum(1), torch.ones(2, 5, 6))
        torch.testing.assert_close(p["quality"].sum(1), torch.ones(2, 5, 6))
        r = model.rfu.parts(F_h, F_t)
        torch.testing.assert_close(r["out"], model.rfu(F_h, F_t))
        torch.testing.assert_close(r["update"].sum(1), torch.ones(2, 5, 6))
    no_gate = build_psla(preset("tiny", 3), quality_net=False).eval()
    with torch.no_grad():
        p = no_gate.dense_ft.parts(F_l, F_t)
    assert p["quality"] is None and torch.equal(p["out"], p["F_hat"])


def test_key_frame_states_and_non_key_inputs_follow_the_schedule(tmp_path):
    from minivod.methods.psla_detector import key_frame_states, non_key_inputs

    generate(tmp_path / "data", seed=2, train_videos=1, val_videos=1, frames=12, det_images=1, progress=False)
    video = VIDDataset(tmp_path / "data", "val").videos[0]
    torch.manual_seed(0)
    model = build_model("psla", "tiny", 8).eval()
    states = key_frame_states(model, video, interval=5)  # segments 0-4, 5-9, 10-11: key frames 2, 7, 10
    assert list(states) == [2, 7, 10]
    assert states[2][1] is None and torch.equal(states[2][2], states[2][0])  # the first key frame starts F_t
    assert torch.equal(states[7][1], states[2][2]) and torch.equal(states[10][1], states[7][2])
    inputs = list(non_key_inputs(model, video, interval=5))
    assert [t for t, _, _ in inputs] == [0, 1, 3, 4, 5, 6, 8, 9, 11]
    assert all(torch.equal(F_t, states[2 if t < 5 else 7 if t < 10 else 10][2]) for t, _, F_t in inputs)
    # the maps the engine detects non-key frame 4 from: DenseFT of N_l(I_4) and F_t after key frame 2
    t, F_l, F_t = inputs[3]
    with torch.no_grad():
        image = load_image(video.frames[4].image_path)[None]
        torch.testing.assert_close(model.dense_ft(F_l, F_t), model.non_key_frames(model.transform(image)[0], F_t))
