"""Tests of DSFNet (minivod.methods.dsfnet) and the shared relation block (minivod.methods.relation)."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from minivod.methods.dsfnet import FrameSemanticFusion, build_dsfnet
from minivod.methods.relation import (
    RelationAggregator,
    RelationBlock,
    RelationConfig,
    masked_softmax,
    position_geometry,
    scale_geometry,
    sinusoidal_embedding,
)
from minivod.models import IdentityRoIAggregator, RoIContext, VODetector, count_parameters, preset

from method_helpers import clips_with_boxes, roi_case


def permuted_supports(s, ctx, perm):
    ctx = RoIContext(ctx.ref_boxes, ctx.ref_clip_index, ctx.support_boxes[perm], ctx.support_clip_index[perm],
                     ctx.support_frame_index[perm], ctx.support_objectness[perm])
    return s[perm], ctx


# --------------------------------------------------------------------------- frame-level fusion, Eq. (1)-(3)
def test_frame_fusion_shapes_and_only_the_reference_changes():
    torch.manual_seed(0)
    maps = torch.randn(2, 3, 8, 5, 6)  # (B, T, C, h, w)
    out = FrameSemanticFusion(8)(maps)
    assert out.shape == maps.shape
    assert torch.equal(out[:, 1:], maps[:, 1:])  # supports pass through
    assert not torch.allclose(out[:, 0], maps[:, 0])
    everything = FrameSemanticFusion(8, fuse_supports=True)(maps)
    assert everything.shape == maps.shape and not torch.allclose(everything[:, 1:], maps[:, 1:])


def test_frame_fusion_reference_depends_on_its_own_supports_only():
    torch.manual_seed(0)
    fusion = FrameSemanticFusion(8)
    maps = torch.randn(2, 3, 8, 5, 6)
    other = maps.clone()
    other[0, 2] = torch.randn(8, 5, 6)  # a different support frame for clip 0
    a, b = fusion(maps), fusion(other)
    assert not torch.allclose(a[0, 0], b[0, 0])  # clip 0's reference sees it
    torch.testing.assert_close(a[1], b[1])  # clip 1 does not


def test_frame_fusion_matches_eq_1_to_3_by_hand():
    """Identity transforms: F^e_i = F_i + sum_j softmax_j(<F_i, F_j> / sqrt(hw)) F_j over all n * d maps."""
    fusion = FrameSemanticFusion(2)
    with torch.no_grad():
        for conv in (fusion.varphi, fusion.phi, fusion.theta):
            conv.weight.copy_(torch.eye(2)[:, :, None, None])
            conv.bias.zero_()
    maps = torch.randn(1, 2, 2, 2, 2, generator=torch.Generator().manual_seed(0))  # n = 2 frames, d = 2
    channel_maps = [maps[0, t, c].flatten() for t in range(2) for c in range(2)]  # the n * d set F^c
    for i in range(2):  # the reference frame's channels
        a = torch.stack([channel_maps[i] @ f for f in channel_maps]) / math.sqrt(4)  # Eq. (3)
        S = torch.exp(a) / torch.exp(a).sum()  # Eq. (2)
        expected = channel_maps[i] + sum(S[j] * channel_maps[j] for j in range(4))  # Eq. (1)
        torch.testing.assert_close(fusion(maps)[0, 0, i].flatten(), expected)


# --------------------------------------------------------------------------- relation block, Eq. (4)-(7)
def test_scale_geometry_by_hand():
    k = torch.tensor([[0.0, 0.0, 20.0, 10.0]])  # w 20, h 10, aspect 2
    l = torch.tensor([[5.0, 5.0, 15.0, 15.0], [0.0, 0.0, 40.0, 20.0]])  # aspect 1; aspect 2 (same shape x2)
    g = scale_geometry(k[:, None], l[None, :])  # (1, 2, 3)
    torch.testing.assert_close(g[0, 0], torch.tensor([math.log(2), 0.0, math.log(1.0)]))
    torch.testing.assert_close(g[0, 1], torch.tensor([math.log(0.5), math.log(0.5), math.log(1e-3)]))
    assert position_geometry(k[:, None], l[None, :]).shape == (1, 2, 4)
    e = sinusoidal_embedding(torch.zeros(3, 3), num_freqs=8)
    assert e.shape == (3, 48) and torch.equal(e, torch.cat([torch.zeros(3, 3, 8), torch.ones(3, 3, 8)], -1).flatten(1))


def test_masked_softmax_rows_without_neighbours_are_zero():
    mask = torch.tensor([[True, False, True], [False, False, False]])
    w = masked_softmax(torch.randn(2, 2, 3), mask)
    assert torch.isfinite(w).all() and (w[:, 1] == 0).all()
    torch.testing.assert_close(w[:, 0].sum(-1), torch.ones(2))


@pytest.mark.parametrize("mode", ["add", "log_relu"])
def test_geometry_separates_identical_appearance(mode):
    """Neighbours with one and the same feature get equal weights unless their boxes differ."""
    torch.manual_seed(0)
    x, y = torch.randn(1, 16), torch.randn(1, 16).expand(3, 16)
    x_box = torch.tensor([[10.0, 10.0, 30.0, 30.0]])
    y_boxes = torch.tensor([[10.0, 10.0, 30.0, 30.0], [0.0, 0.0, 60.0, 20.0], [5.0, 5.0, 12.0, 40.0]])
    mask = torch.ones(1, 3, dtype=torch.bool)
    block = RelationBlock(RelationConfig(16, num_heads=2, geometry="scale", geometry_mode=mode))
    with torch.no_grad():
        block.psi.bias.fill_(1.0)  # keeps log_relu's max(0, r) positive for this check
    w = block.weights(x, y, x_box, y_boxes, mask)  # (H, 1, 3)
    assert not torch.allclose(w[:, :, 0], w[:, :, 1])
    same_boxes = block.weights(x, y, x_box, y_boxes[:1].expand(3, 4), mask)
    torch.testing.assert_close(same_boxes, torch.full_like(same_boxes, 1 / 3))
    appearance_only = RelationBlock(RelationConfig(16, num_heads=2, geometry=None))
    w0 = appearance_only.weights(x, y, x_box, y_boxes, mask)
    torch.testing.assert_close(w0, torch.full_like(w0, 1 / 3))


def test_relation_aggregator_shapes_masking_and_set_invariance():
    x, s, ctx = roi_case(B=2, D=32)
    torch.manual_seed(0)
    agg = RelationAggregator(RelationConfig(32, num_heads=4))
    out = agg(x, s, ctx)
    assert out.shape == x.shape
    w = agg.block.weights(x, torch.cat([x, s]), ctx.ref_boxes, torch.cat([ctx.ref_boxes, ctx.support_boxes]),
                          ctx.ref_clip_index[:, None] == torch.cat([ctx.ref_clip_index, ctx.support_clip_index])[None])
    torch.testing.assert_close(w.sum(-1), torch.ones(w.shape[:2]))
    # a permutation of the support rows (features, boxes, indices together) changes nothing
    perm = torch.randperm(s.shape[0], generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(agg(x, *permuted_supports(s, ctx, perm)), out)
    # changing clip 1's supports leaves clip 0 alone
    s2 = s.clone()
    s2[ctx.support_clip_index == 1] += 2.0
    after, clip0 = agg(x, s2, ctx), ctx.ref_clip_index == 0
    torch.testing.assert_close(after[clip0], out[clip0])
    assert not torch.allclose(after[~clip0], out[~clip0])


def test_relation_aggregator_with_empty_supports():
    x, _, ctx = roi_case(B=2, T=1, D=32)
    agg = RelationAggregator(RelationConfig(32, num_heads=4))
    assert torch.isfinite(agg(x, x.new_zeros(0, 32), ctx)).all()  # the reference RoIs are the neighbours
    supports_only = RelationAggregator(RelationConfig(32, num_heads=4), include_reference=False)
    torch.testing.assert_close(supports_only(x, x.new_zeros(0, 32), ctx), x)  # nothing to look at


# --------------------------------------------------------------------------- in the detector
def test_build_dsfnet_and_its_ablations():
    cfg = preset("tiny", 8)
    full = build_dsfnet(cfg)
    assert isinstance(full.frame_aggregator, FrameSemanticFusion)
    assert all(isinstance(a, RelationAggregator) for a in full.roi_aggregators)
    assert full.roi_aggregators[0].block.cfg.num_heads == 256 // 64
    frame = build_dsfnet(cfg, instance_level=False)
    assert frame.aggregates_frames and not frame.aggregates_rois
    instance = build_dsfnet(cfg, frame_level=False)
    assert isinstance(instance.frame_aggregator, nn.Identity) and instance.aggregates_rois
    neither = build_dsfnet(cfg, frame_level=False, instance_level=False)
    assert all(isinstance(a, IdentityRoIAggregator) for a in neither.roi_aggregators)
    assert count_parameters(neither) == count_parameters(VODetector(cfg))


@pytest.mark.parametrize("options", [{}, {"fuse_supports": True, "geometry_mode": "log_relu"}])
def test_detector_training_step_and_eval_with_supports(options):
    torch.manual_seed(0)
    model = build_dsfnet(preset("tiny", 3), **options).train()
    images, targets = clips_with_boxes(B=2, T=3)
    losses = model(images, targets)
    sum(losses.values()).backward()
    assert all(torch.isfinite(v) for v in losses.values())
    assert model.frame_aggregator.phi.weight.grad.abs().sum() > 0  # Eq. (3) trains
    for agg in model.roi_aggregators:
        assert agg.block.psi.weight.grad.abs().sum() > 0  # the geometric term, Eq. (7), trains
    model.eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        detections = model(images)
    assert len(detections) == 2 and detections[0]["boxes"].shape[0] > 0
    assert detections[0]["boxes"].dtype == torch.float32


