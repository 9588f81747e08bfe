"""Tests of SELSA (minivod.methods.selsa): Eq. (1)-(2), per-clip masking, the ablation, the detector."""
from __future__ import annotations

import math

import pytest
import torch

from minivod.methods.selsa import SELSA, SELSAConfig, build_selsa
from minivod.models import RoIContext, VODetector, count_parameters, preset

from method_helpers import clips_with_boxes, roi_case


# --------------------------------------------------------------------------- helpers
@pytest.mark.parametrize("num_heads", [1, 4])
def test_shapes_for_batched_clips(num_heads):
    x, s, ctx = roi_case(B=3)
    selsa = SELSA(16, SELSAConfig(num_heads=num_heads))
    assert selsa(x, s, ctx).shape == x.shape
    assert selsa.weights(x, s, ctx).shape == (num_heads, x.shape[0], x.shape[0] + s.shape[0])


@pytest.mark.parametrize("num_heads", [1, 4])
def test_weights_sum_to_one_over_own_clip(num_heads):
    x, s, ctx = roi_case(B=2)
    w = SELSA(16, SELSAConfig(num_heads=num_heads)).weights(x, s, ctx)  # (H, N_ref, N_ref + N_sup)
    torch.testing.assert_close(w.sum(-1), torch.ones(w.shape[:2]))  # SELSA Eq. (2): normalised
    key_clip = torch.cat([ctx.ref_clip_index, ctx.support_clip_index])
    other_clip = ctx.ref_clip_index[:, None] != key_clip[None, :]
    assert (w[:, other_clip] == 0).all() and (w[:, ~other_clip] > 0).all()


def test_hand_computed_eq_1_and_2():
    """phi = psi = identity, no scaling, no residual: x_bar_i = sum_j softmax_j(x_i . x_j) x_j."""
    selsa = SELSA(2, SELSAConfig(residual=False, scaled=False))
    with torch.no_grad():
        for fc in (selsa.phi, selsa.psi):
            fc.weight.copy_(torch.eye(2))
            fc.bias.zero_()
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0]])  # two reference proposals
    s = torch.tensor([[1.0, 1.0]])  # one support proposal
    ctx = RoIContext(torch.zeros(2, 4), torch.zeros(2, dtype=torch.long), torch.zeros(1, 4),
                     torch.zeros(1, dtype=torch.long), torch.ones(1, dtype=torch.long), torch.ones(1))
    e = math.e
    # proposal 0: w = (1, 0, 1) -> softmax (e, 1, e) / (2e + 1); proposal 1: symmetric
    expected_w = torch.tensor([[e, 1, e], [1, e, e]]) / (2 * e + 1)
    torch.testing.assert_close(selsa.weights(x, s, ctx)[0], expected_w)
    expected = torch.tensor([[2 * e, 1 + e], [1 + e, 2 * e]]) / (2 * e + 1)
    torch.testing.assert_close(selsa(x, s, ctx), expected)


def test_reference_proposals_are_among_the_neighbours():
    """Without supports (T = 1) SELSA still aggregates over the reference frame's own proposals."""
    x, _, ctx = roi_case(B=2, T=1)
    s = x.new_zeros(0, 16)
    selsa = SELSA(16, SELSAConfig(residual=False))
    out = selsa(x, s, ctx)
    assert out.shape == x.shape and torch.isfinite(out).all()
    assert not torch.allclose(out, x)


def test_changing_one_clip_leaves_the_other_alone():
    x, s, ctx = roi_case(B=2)
    selsa = SELSA(16, SELSAConfig(num_heads=2))
    before = selsa(x, s, ctx)
    s2, x2 = s.clone(), x.clone()
    s2[ctx.support_clip_index == 1] += 3.0  # clip 1's supports
    x2[ctx.ref_clip_index == 1] -= 1.0  # and its reference RoIs
    after = selsa(x2, s2, ctx)
    clip0 = ctx.ref_clip_index == 0
    torch.testing.assert_close(after[clip0], before[clip0])
    assert not torch.allclose(after[~clip0], before[~clip0])


def test_within_frame_only_ignores_supports():
    x, s, ctx = roi_case(B=2)
    torch.manual_seed(0)
    frame_only = SELSA(16, SELSAConfig(within_frame_only=True))
    out = frame_only(x, s, ctx)
    torch.testing.assert_close(frame_only(x, s + torch.randn_like(s), ctx), out)
    w = frame_only.weights(x, s, ctx)
    assert (w[:, :, x.shape[0] :] == 0).all()  # no weight on any support proposal
    full = SELSA(16, SELSAConfig())
    full.load_state_dict(frame_only.state_dict())
    assert not torch.allclose(full(x, s, ctx), out)  # the same weights with supports differ


def test_permuting_support_rows_changes_nothing():
    x, s, ctx = roi_case(B=2)
    selsa = SELSA(16, SELSAConfig(num_heads=4))
    perm = torch.randperm(s.shape[0], generator=torch.Generator().manual_seed(1))
    shuffled = RoIContext(ctx.ref_boxes, ctx.ref_clip_index, ctx.support_boxes[perm], ctx.support_clip_index[perm],
                          ctx.support_frame_index[perm], ctx.support_objectness[perm])
    torch.testing.assert_close(selsa(x, s[perm], shuffled), selsa(x, s, ctx))


# --------------------------------------------------------------------------- in the detector
def test_build_selsa_plugs_two_modules():
    cfg = preset("tiny", 8)
    model = build_selsa(cfg, num_heads=4, within_frame_only=True)
    assert [type(m) for m in model.roi_aggregators] == [SELSA, SELSA]
    assert all(m.cfg.within_frame_only and m.cfg.num_heads == 4 for m in model.roi_aggregators)
    assert model.aggregates_rois and not model.aggregates_frames
    d = cfg.box_fc_dims
    extra = sum(3 * (k * k + k) for k in d)  # phi, psi and the residual FC of each module
    assert count_parameters(model) == count_parameters(VODetector(cfg)) + extra
    with pytest.raises(TypeError):
        build_selsa(cfg, heads=2)


def test_detector_training_step_and_eval_with_supports():
    torch.manual_seed(0)
    model = build_selsa(preset("tiny", 3)).train()
    images, targets = clips_with_boxes(B=2, T=3)
    losses = model(images, targets)
    sum(losses.values()).backward()
    assert set(losses) == {"loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg"}
    assert all(torch.isfinite(v) for v in losses.values())
    for module in model.roi_aggregators:  # the supports reach both SELSA modules
        assert module.phi.weight.grad is not None and module.phi.weight.grad.abs().sum() > 0
    model.eval()
    seen = []  # the box head's output, i.e. the features after the second SELSA module
    model.roi_heads.box_predictor.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0]))
    with torch.no_grad():
        detections = model(images)
        model(torch.cat([images[:, :1], images[:, 1:].flip(-1)], dim=1))  # the same references, other supports
    assert len(detections) == 2 and detections[0]["boxes"].shape[1] == 4
    assert detections[0]["boxes"].shape[0] > 0
    assert seen[0].shape == seen[1].shape and not torch.allclose(seen[0], seen[1])


def test_frame_only_detector_trains_on_single_frames():
    """Table 1 (b) needs no supports: with T = 1 it aggregates over the reference frame's proposals."""
    torch.manual_seed(0)
    model = build_selsa(preset("tiny", 3), within_frame_only=True).train()
    images, targets = clips_with_boxes(B=2, T=1)
    losses = model(images, targets)
    sum(losses.values()).backward()
    assert all(torch.isfinite(v) for v in losses.values())
    assert model.roi_aggregators[0].phi.weight.grad.abs().sum() > 0


