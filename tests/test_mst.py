"""Tests of MST (minivod.methods.mst, mst_frame, mst_instance) and DAlign (minivod.methods.dalign)."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from minivod.methods import build_model, get_method
from minivod.methods.dalign import DAlign, FlowAlign
from minivod.models.deform_conv import deform_conv2d
from minivod.methods.mst import build_mst
from minivod.methods.mst_frame import FrameAttention
from minivod.methods.mst_instance import InstanceAggregator, StackedAggregators, assign_instances
from minivod.models.roi_heads import RoITargets
from minivod.methods.relation import RelationAggregator, RelationConfig
from minivod.models import IdentityRoIAggregator, RoIContext, preset

from method_helpers import clips_with_boxes


def with_instances(targets, T):
    """Give clips_with_boxes' targets track ids and T - 1 support frames showing the same objects."""
    for t in targets:
        t["track_ids"] = torch.arange(len(t["boxes"])) + 5
        t["support"] = [{"boxes": t["boxes"].clone(), "labels": t["labels"], "track_ids": t["track_ids"]}
                        for _ in range(T - 1)]
    return targets


# --------------------------------------------------------------------------- DAlign, Eq. (1)-(3)
@pytest.mark.parametrize("groups", [1, 4])
def test_deform_conv2d_matches_torchvision(groups):
    """Our CPU path (grid_sample) and torchvision's kernel: same values and gradients."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 8, 5, 7, generator=g, requires_grad=True)
    offset = (3 * torch.randn(2, 2 * 2 * 9, 5, 7, generator=g)).requires_grad_()  # 2 offset groups, far out too
    weight = torch.randn(8, 8 // groups, 3, 3, generator=g, requires_grad=True)
    bias = torch.randn(8, generator=g)
    ours = deform_conv2d(x, offset, weight, bias, 1)
    theirs = torchvision.ops.deform_conv2d(x, offset, weight, bias, padding=1)
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-4)
    g_ours = torch.autograd.grad(ours.square().sum(), [x, offset, weight])
    g_theirs = torch.autograd.grad(theirs.square().sum(), [x, offset, weight])
    for a, b in zip(g_ours, g_theirs):
        torch.testing.assert_close(a, b, atol=2e-3, rtol=1e-3)


def test_dalign_with_zero_offsets_is_a_plain_convolution():
    torch.manual_seed(0)
    align = DAlign(8, hidden=4, offset_groups=2)
    for layer in align.align_layers:
        nn.init.normal_(layer.weight, std=0.2)
        nn.init.normal_(layer.bias)
    support = torch.randn(3, 8, 6, 5)
    theta = torch.zeros(3, 2, 2, 9, 2, 6, 5)  # (N, L, G, k*k, 2, h, w)
    l1, l2 = align.align_layers
    hidden = F.relu(F.conv2d(support, l1.weight, l1.bias, padding=1, groups=2))
    plain = F.conv2d(hidden, l2.weight, l2.bias, padding=1, groups=2)  # grouped like the offset groups
    torch.testing.assert_close(align.align(support, theta), plain, atol=1e-5, rtol=1e-5)


def test_dalign_starts_as_identity_with_zero_offsets_and_trains():
    torch.manual_seed(0)
    align = DAlign(8, hidden=4, offset_groups=2)
    maps = torch.rand(2, 3, 8, 6, 5, requires_grad=True)  # (B, T, C, h, w), non-negative like post-ReLU maps
    out = align(maps)
    assert out.shape == maps.shape
    torch.testing.assert_close(out, maps)  # Dirac kernels, Theta = 0
    ref = maps[:, :1].expand_as(maps).flatten(0, 1)
    assert align.offsets(ref, maps.flatten(0, 1)).abs().max() == 0
    (out * torch.randn_like(out)).sum().backward()
    assert align.offset_layers[-1].deform.weight.grad.abs().sum() > 0  # Eq. (1) receives a gradient
    assert all(layer.weight.grad.abs().sum() > 0 for layer in align.align_layers)  # Eq. (2) too
    assert maps.grad.abs().sum() > 0


def test_dalign_offsets_move_the_support_onto_the_reference():
    """A support shifted by 2 cells is read back at the reference's place with offsets dx = +2 (Eq. 2)."""
    align = DAlign(4, hidden=4, offset_groups=1)
    ref = torch.rand(1, 4, 6, 10)
    support = torch.zeros_like(ref)
    support[..., 2:] = ref[..., :-2]  # the object moved 2 cells to the right
    theta = torch.zeros(1, 2, 1, 9, 2, 6, 10)
    theta[:, 0, :, :, 1] = 2.0  # the first aligning layer reads 2 cells to the right (dx), the second stays
    aligned = align.align(support, theta)
    torch.testing.assert_close(aligned[..., :-2], ref[..., :-2])
    assert not torch.allclose(support[..., :-2], ref[..., :-2])


def test_flow_align_warps_by_the_flow_and_starts_at_identity():
    flow_align = FlowAlign(4, hidden=8)
    maps = torch.rand(1, 2, 4, 6, 10)
    torch.testing.assert_close(flow_align(maps), maps)  # zero flow
    ref = maps[0, :1]
    support = torch.zeros_like(ref)
    support[..., 3:] = ref[..., :-3]
    flow = torch.zeros(1, 2, 6, 10)
    flow[:, 0] = 3.0  # dx
    torch.testing.assert_close(FlowAlign.warp(support, flow)[..., :-3], ref[..., :-3])


# --------------------------------------------------------------------------- frame level, Eq. (4)-(6)
def test_frame_attention_is_eq_4_to_6():
    torch.manual_seed(0)
    attn = FrameAttention(8, num_heads=2, key_dim=4)
    maps = torch.randn(2, 3, 8, 4, 5)  # (B, T, C, h, w)
    out = attn(maps)
    assert out.shape == maps.shape
    A = attn.attention(maps)  # (B, H, T*hw, T*hw)
    assert A.shape == (2, 2, 60, 60)
    torch.testing.assert_close(A.sum(-1), torch.ones(2, 2, 60))
    v = attn.M_v(maps.flatten(0, 1)).view(2, 3, 2, 4, 20).permute(0, 2, 1, 4, 3).flatten(2, 3)  # (B, H, T*hw, C/H)
    by_hand = (A @ v).view(2, 2, 3, 20, 4).permute(0, 2, 1, 4, 3).reshape(2, 3, 8, 4, 5) + maps  # Eq. (6)
    torch.testing.assert_close(out, by_hand, atol=1e-5, rtol=1e-5)


def test_query_all_and_query_ref_differ_only_in_which_frames_are_updated():
    torch.manual_seed(0)
    every = FrameAttention(8, num_heads=2, query="all")
    ref_only = FrameAttention(8, num_heads=2, query="ref")
    ref_only.load_state_dict(every.state_dict())
    maps = torch.randn(2, 3, 8, 4, 5)
    a, r = every(maps), ref_only(maps)
    torch.testing.assert_close(a[:, 0], r[:, 0], atol=1e-5, rtol=1e-5)  # the reference: the same update
    assert torch.equal(r[:, 1:], maps[:, 1:])  # query-ref: supports unchanged
    assert not torch.allclose(a[:, 1:], maps[:, 1:])  # query-all: supports updated


def test_frame_attention_keeps_clips_apart():
    torch.manual_seed(0)
    attn = FrameAttention(8, num_heads=2)
    maps = torch.randn(2, 3, 8, 4, 5)
    other = maps.clone()
    other[0, 2] += 1.0
    torch.testing.assert_close(attn(maps)[1], attn(other)[1])
    assert not torch.allclose(attn(maps)[0, 0], attn(other)[0, 0])


# --------------------------------------------------------------------------- instance level, Eq. (12)
def test_assign_instances_by_iou_on_a_hand_made_case():
    gt = [torch.tensor([[0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 40.0, 40.0]]), torch.tensor([[0.0, 0.0, 10.0, 10.0]])]
    ids = [torch.tensor([7, 3]), torch.tensor([9])]
    boxes = torch.tensor([
        [0.0, 0.0, 10.0, 8.0],  # frame 0: IoU 0.8 with track 7
        [20.0, 20.0, 40.0, 30.0],  # frame 0: IoU 0.5 with track 3 (the threshold counts)
        [0.0, 0.0, 10.0, 4.0],  # frame 0: IoU 0.4: background
        [100.0, 100.0, 110.0, 110.0],  # frame 0: nothing
        [0.0, 0.0, 10.0, 10.0],  # frame 1: track 9 (the same box as track 7 in frame 0)
    ])
    frame = torch.tensor([0, 0, 0, 0, 1])
    assert assign_instances(boxes, frame, gt, ids).tolist() == [7, 3, -1, -1, 9]
    assert assign_instances(boxes, frame, [gt[0], gt[1][:0]], [ids[0], ids[1][:0]]).tolist() == [7, 3, -1, -1, -1]


def instance_case():
    """One clip with 3 reference RoIs (track 1, track 2, background) and 2 support frames of 2 RoIs each."""
    ref_boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [30.0, 30.0, 50.0, 50.0], [80.0, 0.0, 90.0, 5.0]])
    support_boxes = torch.tensor([[1.0, 0.0, 11.0, 10.0], [31.0, 30.0, 51.0, 50.0],  # frame 1: tracks 1, 2
                                  [0.0, 1.0, 10.0, 11.0], [60.0, 60.0, 70.0, 70.0]])  # frame 2: track 1, nothing
    ctx = RoIContext(ref_boxes, torch.zeros(3, dtype=torch.long), support_boxes, torch.zeros(4, dtype=torch.long),
                     torch.tensor([1, 1, 2, 2]), torch.rand(4))
    gt = torch.tensor([[0.0, 0.0, 10.0, 10.0], [30.0, 30.0, 50.0, 50.0]])
    targets = RoITargets([gt], [torch.tensor([1, 2])], [gt + torch.tensor([1.0, 0, 1, 0]), gt[:1] + 0.5],
                              [torch.tensor([1, 2]), torch.tensor([1])])
    return ctx, targets


def test_instance_training_mask_and_background_passes_unchanged():
    torch.manual_seed(0)
    ctx, targets = instance_case()
    agg = InstanceAggregator(RelationConfig(16, num_heads=2), train_selection="ground_truth").train()
    expected = torch.tensor([[1, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 0]], dtype=torch.bool)
    assert torch.equal(agg.training_mask(ctx, targets), expected)
    x, s = torch.randn(3, 16), torch.randn(4, 16)
    ctx.targets = targets
    out = agg(x, s, ctx)
    assert torch.equal(out[2], x[2])  # background: copied from R'
    assert not torch.allclose(out[:2], x[:2])
    s2 = s.clone()
    s2[3] += 5.0  # a support RoI of no instance
    torch.testing.assert_close(agg(x, s2, ctx), out)  # is read by nobody


def test_instance_test_mask_top_k_rows_and_r_percent_columns():
    torch.manual_seed(0)
    n_ref, n_sup = 6, 10
    boxes = torch.rand(n_ref + n_sup, 2) * 50
    boxes = torch.cat([boxes, boxes + 10], 1)
    ctx = RoIContext(boxes[:n_ref], torch.tensor([0, 0, 0, 1, 1, 1]), boxes[n_ref:],
                     torch.tensor([0] * 5 + [1] * 5), torch.tensor([1, 1, 2, 2, 2] * 2), torch.rand(n_sup))
    agg = InstanceAggregator(RelationConfig(16, num_heads=2), top_k=2, ratio=0.4).eval()
    x, s = torch.randn(n_ref, 16), torch.randn(n_sup, 16)
    mask = agg.test_mask(x, s, ctx)
    assert mask.any(1).tolist() == [True, True, False, True, True, False]  # the first K = 2 of each clip
    assert mask.sum(1).tolist() == [2, 2, 0, 2, 2, 0]  # 40% of the clip's 5 support RoIs
    assert not (mask & (ctx.ref_clip_index[:, None] != ctx.support_clip_index[None])).any()
    similarity = agg.block.logits(x, s, ctx.ref_boxes, ctx.support_boxes, torch.ones(n_ref, n_sup, dtype=torch.bool))
    similarity = similarity.mean(0)[0, :5]  # row 0 against its clip's supports
    assert set(mask[0, :5].nonzero().flatten().tolist()) == set(similarity.topk(2).indices.tolist())
    out = agg(x, s, ctx)
    assert torch.equal(out[[2, 5]], x[[2, 5]])


# --------------------------------------------------------------------------- the detector
def test_build_mst_and_its_ablations():
    cfg = preset("tiny", 8)
    full = build_mst(cfg)
    dalign, frame = full.frame_aggregator
    assert isinstance(dalign, DAlign) and isinstance(frame, FrameAttention) and frame.query == "all"
    assert isinstance(full.roi_aggregators[0], RelationAggregator) and not full.roi_aggregators[0].include_reference
    last = full.roi_aggregators[1]
    assert isinstance(last, StackedAggregators) and last.stages[1] is full.instance
    assert full.roi_aggregators[0].block.cfg.geometry == "scale"
    frame_only = build_model("mst_frame", "tiny", 8)
    assert isinstance(frame_only.frame_aggregator[0], FrameAttention) and not frame_only.aggregates_rois
    proposal = build_model("mst_proposal", "tiny", 8)
    assert not proposal.aggregates_frames and proposal.instance is None and proposal.aggregates_rois
    assert isinstance(build_model("mst_flow", "tiny", 8).frame_aggregator[0], FlowAlign)
    assert build_model("mst_query_ref", "tiny", 8).frame_aggregator[1].query == "ref"
    assert all(isinstance(a, IdentityRoIAggregator) for a in build_model("mst_dalign_frame", "tiny", 8).roi_aggregators)
    spec = get_method("mst")
    assert spec.support_targets and spec.test_window and spec.train_support == 2


def test_detector_training_step_reaches_every_module_and_evaluates():
    torch.manual_seed(0)
    # from random weights: on these random clips the seeded random RPN is what puts proposals on the boxes
    model = build_mst(preset("tiny", 3, pretrained_backbone=False)).train()
    images, targets = clips_with_boxes(B=2, T=3)
    losses = model(images, with_instances(targets, 3))
    sum(losses.values()).backward()
    assert all(torch.isfinite(v) for v in losses.values())
    dalign, frame = model.frame_aggregator
    assert dalign.offset_layers[-1].deform.weight.grad.abs().sum() > 0  # Eq. (1)
    assert frame.M_q.weight.grad.abs().sum() > 0  # Eq. (4)-(5)
    assert model.roi_aggregators[0].block.psi.weight.grad.abs().sum() > 0  # Eq. (9)
    assert model.instance.block.gamma.weight.grad.abs().sum() > 0  # Eq. (12): the top-K candidates read supports
    model.eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        detections = model(images)
    assert len(detections) == 2 and detections[0]["boxes"].shape[0] > 0
    assert detections[0]["boxes"].dtype == torch.float32


@pytest.mark.parametrize("selection", ["test", "ground_truth"])
def test_only_the_papers_rule_gives_the_instance_level_the_ground_truth(selection):
    """The label leak fix: with minivod's default the instance level never sees a label in training."""
    torch.manual_seed(0)
    model = build_mst(preset("tiny", 3, pretrained_backbone=False), instance_train_selection=selection).train()
    seen, read_labels = [], []
    model.instance.register_forward_pre_hook(lambda module, args: seen.append(args[2].targets is not None))
    training_mask = model.instance.training_mask
    model.instance.training_mask = lambda ctx, t: read_labels.append(True) or training_mask(ctx, t)
    images, targets = clips_with_boxes(B=2, T=3)
    model(images, with_instances(targets, 3))
    assert seen == [True]  # the ground truth reaches the RoI aggregators in RoIContext.targets
    assert read_labels == ([True] if selection == "ground_truth" else [])  # only the paper's rule reads it
    assert get_method("mst_gt_selection").build(preset("tiny", 3)).instance.train_selection == "ground_truth"
    assert get_method("mst").build(preset("tiny", 3)).instance.train_selection == "test"


def test_training_step_without_instance_targets():
    """Plain targets (no track ids, no support boxes): the instance level selects as at test time."""
    torch.manual_seed(0)
    model = build_mst(preset("tiny", 3)).train()
    images, targets = clips_with_boxes(B=1, T=2, height=64, width=80)
    losses = model(images, targets)
    assert all(torch.isfinite(v) for v in losses.values())


def test_paper_preset_builds_with_its_parts():
    """The paper preset's MST (its training step: tests/test_method_contract.py)."""
    model = build_model("mst", "paper", 30, min_size=128, max_size=160)
    dalign, frame = model.frame_aggregator
    assert isinstance(dalign, DAlign) and isinstance(frame, FrameAttention)
    assert model.roi_aggregators[0].block.cfg.dim == 1024 and model.instance is not None


def test_window_inference_runs_each_backbone_once(tmp_path):
    from minivod.data.generate import generate
    from minivod.data.vid import VIDDataset
    from minivod.engine.inference import detect_video, detect_video_online

    root = tmp_path / "data"
    generate(root, seed=2, train_videos=1, val_videos=1, frames=8, det_images=1, progress=False)
    video = VIDDataset(root, "val").videos[0]
    model = build_model("mst", "tiny", 8).eval()
    spec = get_method("mst")
    passes = []
    model.backbone.register_forward_hook(lambda m, inp, out: passes.append(inp[0].shape[0]))
    dets, cache, _ = detect_video(model, video, "cpu", num_support=spec.test_support, window=spec.test_window)
    assert len(dets) == 8 and sum(passes) == cache.computed == 8
    from minivod.data.vid import load_image
    frames = (load_image(f.image_path) for f in video.frames)
    online, cache, _ = detect_video_online(model, frames, "cpu", radius=spec.test_window)
    assert len(online) == 8 and cache.computed == 8 and math.isfinite(float(online[-1]["scores"].sum()))


def test_instance_test_selection_in_training_ignores_the_ground_truth():
    """``train_selection="test"`` (minivod's default): in training the mask is the test-time one, whatever
    the ground truth says; ``"ground_truth"`` (the paper's rule) follows the ground truth."""
    torch.manual_seed(0)
    ctx, targets = instance_case()
    paper = InstanceAggregator(RelationConfig(16, num_heads=2), top_k=1, ratio=0.5,
                               train_selection="ground_truth").train()
    experiment = InstanceAggregator(RelationConfig(16, num_heads=2), top_k=1, ratio=0.5).train()
    experiment.load_state_dict(paper.state_dict())
    x, s = torch.randn(3, 16), torch.randn(4, 16)
    ctx.targets = targets
    assert torch.equal(paper.mask(x, s, ctx), paper.training_mask(ctx, targets))
    assert torch.equal(experiment.mask(x, s, ctx), experiment.test_mask(x, s, ctx))
    assert not torch.equal(experiment.mask(x, s, ctx), paper.mask(x, s, ctx))
    with pytest.raises(ValueError):
        InstanceAggregator(RelationConfig(16, num_heads=2), train_selection="nearest")


def test_read_shift_is_the_hand_set_offset_of_a_moved_object():
    """Offsets set by hand to an object's displacement: ``read_shift`` gives it back, and the aligned
    support equals the reference (the toy case of notebook 04); layers add up, groups and taps average."""
    from minivod.methods.dalign import read_shift

    align = DAlign(4, hidden=4, offset_groups=2)
    ref = torch.zeros(1, 4, 8, 10)
    ref[..., 2:5, 3:6] = 1.0  # a square
    support = torch.roll(ref, shifts=(1, 2), dims=(2, 3))  # the square moved (dy, dx) = (1, 2)
    theta = torch.zeros(1, 2, 2, 9, 2, 8, 10)  # (N, L, G, k*k, 2, h, w)
    theta[:, 0, :, :, 0], theta[:, 0, :, :, 1] = 1.0, 2.0
    torch.testing.assert_close(read_shift(theta), torch.tensor([1.0, 2.0]).view(1, 2, 1, 1).expand(1, 2, 8, 10))
    torch.testing.assert_close(align.align(support, theta), ref)
    assert not torch.allclose(align.align(support, torch.zeros_like(theta)), ref)
    split = torch.zeros_like(theta)
    split[:, 0, :, :, 1], split[:, 1, :, :, 1] = 0.5, 1.5  # dx of 2 split over the two layers
    split[:, 0, 0, :, 0], split[:, 0, 1, :, 0] = 0.0, 2.0  # dy: 0 in one group, 2 in the other
    torch.testing.assert_close(read_shift(split), read_shift(theta))
