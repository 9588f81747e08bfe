"""Tests of SSVD (minivod.methods.ssvd), its flow network (flownet) and the one-stage detector (one_stage)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision.models.detection import RetinaNet
from torchvision.ops import box_iou, deform_conv2d, sigmoid_focal_loss

from minivod.data.flow_pairs import gt_pair_flow
from minivod.methods import METHODS, build_model
from minivod.methods.flow_pretrain import level_targets
from minivod.methods.flownet import FlowConfig, PWCFlow, correlation, warp
from minivod.methods.ssvd import (
    SSVD,
    SSVDConfig,
    DeformConv3x3,
    OffsetPredictor,
    build_ssvd,
    sampling_locations,
)
from minivod.data.sampling import BufferedSchedule, window_supports
from minivod.engine.inference import detect_video_buffered
from minivod.models import preset
from minivod.models.one_stage import LEVELS, OneStageDetector, build_one_stage

from method_helpers import clips_with_boxes


# --------------------------------------------------------------------------- warping and correlation
def test_warp_by_zero_flow_is_the_identity():
    torch.manual_seed(0)
    f = torch.randn(2, 5, 7, 9)
    torch.testing.assert_close(warp(f, torch.zeros(2, 2, 7, 9)), f, rtol=0, atol=1e-5)


def test_warp_by_an_integer_shift_moves_features_exactly():
    torch.manual_seed(0)
    f = torch.randn(1, 3, 8, 10)
    flow = torch.zeros(1, 2, 8, 10)
    flow[:, 0], flow[:, 1] = 2.0, -1.0  # out(y, x) = f(y - 1, x + 2)
    out = warp(f, flow)
    torch.testing.assert_close(out[:, :, 1:, :-2], f[:, :, :-1, 2:], rtol=0, atol=1e-5)
    assert (out[:, :, 0] == 0).all() and (out[:, :, :, -2:] == 0).all()  # from outside the map: zeros
    half = warp(f, torch.full((1, 2, 8, 10), 0.5))  # half a cell: the mean of the four neighbours
    torch.testing.assert_close(half[:, :, 2, 3], f[:, :, 2:4, 3:5].mean(dim=(-1, -2)), rtol=0, atol=1e-5)


def test_correlation_matches_a_plain_loop():
    torch.manual_seed(0)
    f1, f2, r = torch.randn(2, 4, 5, 6), torch.randn(2, 4, 5, 6), 2
    cv = correlation(f1, f2, r)
    assert cv.shape == (2, (2 * r + 1) ** 2, 5, 6)
    expected = torch.zeros_like(cv)
    for n in range(2):
        for y in range(5):
            for x in range(6):
                for dy in range(-r, r + 1):
                    for dx in range(-r, r + 1):
                        if 0 <= y + dy < 5 and 0 <= x + dx < 6:
                            k = (dy + r) * (2 * r + 1) + dx + r
                            expected[n, k, y, x] = (f1[n, :, y, x] * f2[n, :, y + dy, x + dx]).mean()
    torch.testing.assert_close(cv, expected)


def test_flow_network_shapes_and_ground_truth_pairs():
    net = PWCFlow(FlowConfig.tiny())
    pyr = net.pyramid(torch.randn(2, 3, 120, 160))
    assert [tuple(p.shape[-2:]) for p in pyr] == [(15, 20), (8, 10), (4, 5), (2, 3)]  # the sizes of P3..P6
    flows = net([p[:1] for p in pyr], [p[1:] for p in pyr])
    assert [f.shape for f in flows] == [(1, 2, *p.shape[-2:]) for p in pyr]
    assert all((f == 0).all() for f in flows)  # the estimators start at "no motion"
    from minivod.data.generate import sample_scene
    from minivod.data.synthetic import gt_flow
    scene = sample_scene(np.random.default_rng(7), 8, 160, 120)
    for a, b in zip(gt_pair_flow(scene, 3, 4), gt_flow(scene, 3)):  # (t, t + 1) is the generator's flow
        np.testing.assert_array_equal(a, b)
    flow, valid = gt_pair_flow(scene, 3, 3)
    assert np.abs(flow).max() < 1e-4 and valid.any()
    target, mask = level_targets(torch.ones(1, 2, 120, 160), torch.ones(1, 120, 160, dtype=torch.bool), 16, (8, 10))
    assert mask[0, :7].all() and mask[0, 7].all() and torch.allclose(target[mask.unsqueeze(1).expand_as(target)],
                                                                     torch.ones(()))


# --------------------------------------------------------------------------- sampling stream
def test_offset_predictor_gives_what_deform_conv2d_needs():
    torch.manual_seed(0)
    for h, w in ((15, 20), (2, 3)):  # P3 and P6 of a 160x120 frame
        offsets = OffsetPredictor(2 * 8, 16, deformable_groups=4)(torch.randn(3, 16, h, w))
        assert offsets.shape == (3, 2 * 4 * 3 * 3, h, w)
        out = deform_conv2d(torch.randn(3, 8, h, w), offsets, torch.randn(8, 8, 3, 3), padding=(1, 1))
        assert out.shape == (3, 8, h, w)


def test_deform_conv_cpu_path_matches_torchvision():
    torch.manual_seed(0)
    conv = DeformConv3x3(8)
    x = torch.randn(2, 8, 6, 7, requires_grad=True)
    offset = (3 * torch.randn(2, 72, 6, 7)).requires_grad_()  # 4 groups, some taps far outside
    ours = conv(x, offset)
    ref = deform_conv2d(x, offset, conv.weight, conv.bias, padding=(1, 1))
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-4)
    g_ours = torch.autograd.grad(ours.square().sum(), (x, offset, conv.weight))
    g_ref = torch.autograd.grad(ref.square().sum(), (x, offset, conv.weight))
    for a, b in zip(g_ours, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-3)


def test_sampling_locations_follow_the_offsets():
    offsets = torch.zeros(72, 4, 5)
    offsets[0::2] = 1.0  # dy = +1 on every tap of every group
    loc = sampling_locations(offsets, y=2, x=3)
    assert loc.shape == (4, 9, 2)
    torch.testing.assert_close(loc[0, 4], torch.tensor([3.0, 3.0]))  # the centre tap, one row down
    torch.testing.assert_close(loc[2, 0], torch.tensor([2.0, 2.0]))  # the top-left tap, moved down


# --------------------------------------------------------------------------- the one-stage detector
def test_one_stage_matches_torchvision_retinanet():
    """T = 1: our losses and detections equal torchvision's RetinaNet built from the same parts."""
    torch.manual_seed(0)
    model = build_one_stage(preset("tiny", 8)).eval()
    head = model.heads[0]
    images, targets = clips_with_boxes(B=2, T=1, height=120, width=160)

    class FPN(torch.nn.Module):  # torchvision wants a module with out_channels
        def __init__(self):
            super().__init__()
            self.net, self.out_channels = model.fpn, model.opts.fpn_channels

        def forward(self, x):
            return self.net(x)

    tv = RetinaNet(FPN(), 8, min_size=120, max_size=160, anchor_generator=model.anchor_generator, head=head.head,
                   score_thresh=model.cfg.box_score_thresh, nms_thresh=0.45, detections_per_img=100,
                   topk_candidates=model.opts.topk_candidates, size_divisible=8).eval()
    with torch.no_grad():
        ours = model(images)
        theirs = tv(list(images[:, 0]))
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a["boxes"], b["boxes"])
        torch.testing.assert_close(a["scores"], b["scores"])
        assert torch.equal(a["labels"], b["labels"] + 1)  # torchvision's label k is our class k + 1
    model.train()
    tv.train()
    ours = model(images, targets)
    theirs = tv(list(images[:, 0]), [{**t, "labels": t["labels"] - 1} for t in targets])
    for key in ("classification", "bbox_regression"):
        torch.testing.assert_close(ours[key], theirs[key])


def test_focal_loss_matches_torchvision_and_the_formula():
    torch.manual_seed(0)
    model = build_one_stage(preset("tiny", 8)).train()
    images, targets = clips_with_boxes(B=1, T=1, height=120, width=160)
    frames = model.frame_features(images[:, 0])
    levels = [frames.maps[k] for k in LEVELS]
    anchors = model.anchors(levels, frames.image_sizes)[0]
    head = model.heads[0]
    logits = head(levels)["cls_logits"][0]  # (num_anchors, K)
    matched = head.proposal_matcher(box_iou(targets[0]["boxes"], anchors))
    fg = matched >= 0
    goal = torch.zeros_like(logits)
    goal[fg, targets[0]["labels"][matched[fg]] - 1] = 1.0
    keep = matched != -2  # anchors between the IoU thresholds are ignored
    p = logits.sigmoid()
    p_t = torch.where(goal == 1, p, 1 - p)
    alpha_t = torch.where(goal == 1, 0.25, 0.75)
    by_hand = (-alpha_t * (1 - p_t) ** 2 * torch.log(p_t))[keep].sum() / fg.sum()  # focal loss, gamma 2
    library = sigmoid_focal_loss(logits[keep], goal[keep], reduction="sum") / fg.sum()
    loss = model(images, targets)["classification"]
    torch.testing.assert_close(loss, library)
    torch.testing.assert_close(loss, by_hand, rtol=1e-4, atol=1e-5)


# --------------------------------------------------------------------------- SSVD
def test_motion_stream_with_the_true_flow_recovers_the_reference():
    """Supports that are the reference shifted by whole cells, and the flow that says so:
    Eq. (1)-(2) give back the reference map away from the borders."""
    torch.manual_seed(0)
    model = build_ssvd(preset("tiny", 8), sampling=False).eval()
    ref = model.frame_features(torch.rand(1, 3, 120, 160))
    supports = ref.select([0, 0])
    flows = []
    for key, stride in zip(LEVELS, (8, 16, 32, 64)):
        m = ref.maps[key]
        shifted = torch.stack([torch.roll(m[0], 1, dims=-1), torch.roll(m[0], -1, dims=-2)])  # +1 in x; -1 in y
        supports.maps[key] = shifted
        flow = torch.zeros(2, 2, *m.shape[-2:])
        flow[0, 0], flow[1, 1] = stride, -stride  # in input pixels: one cell
        flows.append(flow)
    out = model.motion_stream(ref, supports, flows)
    inside = (..., slice(1, None), slice(None, -1))  # not the rolled-in edges
    torch.testing.assert_close(out[0][inside], ref.maps["p3"][inside], rtol=0, atol=1e-5)


def test_motion_guided_sampling_starts_as_warping():
    """With the deformable conv at its identity start and zero predicted offsets, motion-guided
    sampling reads each support at p + flow(p): the warped map of Eq. (1)."""
    torch.manual_seed(0)
    model = build_ssvd(preset("tiny", 8), fusion="motion_guided", init="identity").eval()
    frames = model.frame_features(torch.rand(3, 3, 120, 160))
    ref, supports = frames.select([0]), frames.select([1, 2])
    flows = [torch.randn(2, 2, *ref.maps[k].shape[-2:]) * s for k, s in zip(LEVELS, (8, 16, 32, 64))]
    guided = model.sampling_stream(ref, supports, flows)
    warped = [(ref.maps[k] + warp(supports.maps[k], f / s).sum(0, keepdim=True)) / 3
              for k, f, s in zip(LEVELS, flows, (8, 16, 32, 64))]
    for a, b in zip(guided, warped):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_sampling_stream_starts_as_the_paper_does_and_the_flow_trains_slower():
    """The paper initialises the offset predictor randomly (Sec. IV-B): every tap's offset moves and
    gets a gradient from the first step; the identity start (``ssvd_identity_init``) gives zero offsets
    and a centre-tap convolution. The flow network's parameters get the paper's flow learning rate."""
    from minivod.engine.train import TrainConfig, make_optimizer

    torch.manual_seed(0)
    paper, identity = build_ssvd(preset("tiny", 8)), build_ssvd(preset("tiny", 8), init="identity")
    pair = torch.randn(1, 2 * paper.opts.fpn_channels, 15, 20)
    assert paper.offset_predictor(pair).abs().mean() > 0 and identity.offset_predictor(pair).abs().max() == 0
    side_taps = identity.dconv.weight.clone()
    side_taps[:, :, 1, 1] = 0
    assert side_taps.abs().max() == 0 and paper.dconv.weight[:, :, 0, 0].abs().sum() > 0
    cfg = TrainConfig.for_preset("tiny")
    opt, _ = make_optimizer(paper, cfg)
    flow_params = {id(p) for p in paper.flownet.parameters()}
    lrs = {id(p): g["initial_lr"] for g in opt.param_groups for p in g["params"]}  # before the warm-up
    assert {lrs[i] for i in flow_params} == {cfg.lr * paper.ssvd.flow_lr_factor}
    assert {lr for i, lr in lrs.items() if i not in flow_params} == {cfg.lr}
    baseline_opt, _ = make_optimizer(build_model("baseline", "tiny", 8), cfg)
    assert len(baseline_opt.param_groups) == 1  # one learning rate for the others


def test_ssvd_variants_build_and_aggregate_their_own_supports():
    torch.manual_seed(0)
    cfg = preset("tiny", 8)
    images = torch.rand(2, 3, 3, 64, 80)  # 2 clips: reference + 2 supports
    for name in ("ssvd", "ssvd_motion", "ssvd_sampling", "ssvd_early", "ssvd_guided", "ssvd_single"):
        model = METHODS[name].build(cfg).eval()
        with torch.no_grad():
            frames = model.frame_features(images.flatten(0, 1))
            ref, supports = frames.split_clips(2, 3)
            streams = model.streams(ref, supports)
            assert len(streams) == len(model.heads)
            assert all(s[i].shape == ref.maps[k].shape for s in streams for i, k in enumerate(LEVELS))
            if name != "ssvd_single":  # clip 0's aggregate does not see clip 1's supports
                other = supports.select([0, 1, 0, 0])
                changed = model.streams(ref, other)
                torch.testing.assert_close(changed[0][0][0], streams[0][0][0])
                assert not torch.allclose(changed[0][0][1], streams[0][0][1])
            assert len(model.detect(ref, supports)) == 2
    late = build_ssvd(cfg)
    assert late.stream_names == ("motion", "sampling") and isinstance(late, OneStageDetector)


def test_training_phases_of_algorithm_1():
    torch.manual_seed(0)
    model = build_ssvd(preset("tiny", 8)).train()
    images, targets = clips_with_boxes(B=2, T=3, height=64, width=80)
    model.set_iteration(0, 30)  # phase 1: the still-image detector
    sum(model(images, targets).values()).backward()
    assert all(p.grad is None for p in model.flownet.parameters())
    assert all(p.grad is None for p in model.offset_predictor.parameters())
    model.zero_grad(set_to_none=True)
    model.set_iteration(10, 30)  # phase 2: the whole SSVD
    losses = model(images, targets)
    assert set(losses) == {"classification_motion", "bbox_regression_motion", "classification_sampling",
                           "bbox_regression_sampling"}
    sum(losses.values()).backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.flownet.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.offset_predictor.parameters())


def test_window_supports_of_algorithm_2():
    assert window_supports(48, 20, 8, 6) == [12, 15, 18, 22, 25, 28]  # uniform over the buffer t-8..t+8
    assert window_supports(48, 0, 8, 6) == [1, 2, 4, 5, 7, 8]
    assert window_supports(48, 20, 8, 16) == [s for s in range(12, 29) if s != 20]
    assert window_supports(48, 20, 8, 0) == [] and window_supports(1, 0, 8, 6) == [0] * 6


def test_buffered_inference_runs_each_frame_once(tmp_path):
    from minivod.data.generate import generate
    from minivod.data.vid import VIDDataset
    from minivod.engine.inference import detect_video

    root = tmp_path / "data"
    generate(root, seed=2, train_videos=1, val_videos=1, frames=10, det_images=1, progress=False)
    video = VIDDataset(root, "val").videos[0]
    model = build_ssvd(preset("tiny", 8)).eval()
    passes = []
    model.fpn.register_forward_hook(lambda m, inp, out: passes.append(inp[0].shape[0]))
    dets, cache, _ = detect_video_buffered(model, video, "cpu", BufferedSchedule(window=3, num_support=4))
    assert len(dets) == 10 and sum(passes) == cache.computed == 10
    assert len(cache.frames) <= 2 * 3 + 1  # the buffer
    offline, _, _ = detect_video(model, video, "cpu", support_fn=lambda n, t: window_supports(n, t, 3, 4),
                                 refs_per_batch=1)
    for a, b in zip(dets, offline):  # the online buffer gives what offline inference gives
        torch.testing.assert_close(a["scores"], b["scores"])
    assert model.test_schedule() == BufferedSchedule(model.ssvd.window, model.ssvd.test_support)


def test_paper_preset_builds_with_its_parts():
    """The paper preset's SSVD (its training step: tests/test_method_contract.py)."""
    model = build_model("ssvd", "paper", 30, min_size=64, max_size=96)
    assert isinstance(model, SSVD) and model.fpn_sampling is not None  # one FPN per stream
    assert model.opts.fpn_channels == 256 and model.offset_predictor.offsets.out_channels == 72


def test_flow_pretraining_hook_trains_saves_and_reuses(tmp_path):
    from minivod.data.generate import generate
    from minivod.methods.ssvd import prepare_flow

    root = tmp_path / "data"
    generate(root, seed=1, train_videos=1, val_videos=1, frames=8, det_images=1, progress=False)
    torch.manual_seed(0)
    model = build_ssvd(preset("tiny", 8), flow_pretrain_iters=3, window=2, flow_epe_pairs=8)
    before = [p.clone() for p in model.flownet.parameters()]
    first = prepare_flow(model, root, "cpu", tmp_path / "run", progress=False)
    assert first["flow_iters"] == 3 and (tmp_path / "run" / "flow_pretrained.pt").is_file()
    assert any(not torch.equal(a, b) for a, b in zip(before, model.flownet.parameters()))
    other = build_ssvd(preset("tiny", 8), flow_pretrain_iters=3, window=2, flow_epe_pairs=8)
    again = prepare_flow(other, root, "cpu", tmp_path / "run", progress=False)
    assert "flow_loaded_from" in again and again["val_epe"] == pytest.approx(first["val_epe"])
    assert all(torch.equal(a, b) for a, b in zip(model.flownet.parameters(), other.flownet.parameters()))
    assert prepare_flow(build_ssvd(preset("tiny", 8), motion=False), root, "cpu", tmp_path / "x", False) == {}


def test_two_head_single_frame_control():
    """``ssvd_single_2heads``: two heads on the same single-frame maps, each with its own loss; one head kept
    alone gives what that head sees, and the two meet in one NMS like SSVD's streams."""
    torch.manual_seed(0)
    model = METHODS["ssvd_single_2heads"].build(preset("tiny", 8))
    assert len(model.heads) == 2 and model.stream_names == ("head0", "head1")
    images, targets = clips_with_boxes(B=2, T=1, height=120, width=160)
    losses = model(images, targets)
    assert set(losses) == {"classification_head0", "bbox_regression_head0",
                           "classification_head1", "bbox_regression_head1"}
    model.eval()
    with torch.no_grad():
        ref = model.frame_features(images[:, 0])
        streams = model.streams(ref, None)
        assert all(a is b for a, b in zip(streams[0], streams[1]))  # the same maps for both heads
        one = model.detect(ref, only=("head0",))
        both = model.detect(ref)
        single = build_one_stage(preset("tiny", 8))
        single.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("heads.1.")})
        torch.testing.assert_close(single.eval().detect(ref)[0]["scores"], one[0]["scores"])
    assert all(len(b["boxes"]) >= 1 for b in both)


def _fpn_grads(model, losses, keys):
    """The FPN's parameter gradients of the sum of ``losses[k]`` for k in keys."""
    model.zero_grad()
    sum(losses[k] for k in keys).backward(retain_graph=True)
    return [p.grad.clone() if p.grad is not None else torch.zeros_like(p) for p in model.fpn.parameters()]


@pytest.mark.parametrize("still", [True, False])
def test_ssvd_trains_the_shared_fpn_by_the_motion_head_only(still):
    """The tiny SSVD: the sampling head's loss still trains the sampling stream, never the shared FPN;
    the motion head's gradient into the FPN is what it is in ``ssvd_fpn_both``, where both heads train it."""
    torch.manual_seed(0)
    cfg = preset("tiny", 8)
    one = build_ssvd(cfg, window=2, flow=FlowConfig.tiny())
    both = METHODS["ssvd_fpn_both"].build(cfg, window=2, flow=FlowConfig.tiny())
    both.load_state_dict(one.state_dict())
    assert one.ssvd.fpn_grad == "motion" and both.ssvd.fpn_grad == "both"
    images, targets = clips_with_boxes(B=1, T=3, height=120, width=160)
    for model in (both, one):
        model.train()
        model.still_image = still
    lb, lo = both(images, targets), one(images, targets)
    for k in lb:
        torch.testing.assert_close(lb[k], lo[k])  # the same forward
    motion = [k for k in lo if k.endswith("_motion")]
    sampling = [k for k in lo if k.endswith("_sampling")]
    assert all(g.abs().sum() == 0 for g in _fpn_grads(one, lo, sampling))  # cut from the FPN
    assert any(g.abs().sum() > 0 for g in _fpn_grads(both, lb, sampling))  # where it reaches it
    for a, b in zip(_fpn_grads(one, lo, motion + sampling), _fpn_grads(both, lb, motion)):
        torch.testing.assert_close(a, b)
    one.zero_grad()
    sum(lo[k] for k in sampling).backward()
    assert one.heads[1].head.classification_head.cls_logits.weight.grad.abs().sum() > 0  # the head still learns
    if not still:
        assert one.offset_predictor.parameters().__next__().grad is not None  # and the sampling stream
    with pytest.raises(ValueError, match="both streams"):
        build_ssvd(cfg, motion=False, fpn_grad="motion")
    with pytest.raises(ValueError, match="separate_fpns"):
        build_ssvd(cfg, separate_fpns=True, fpn_grad="motion")


def test_fpn_grad_default_only_where_two_heads_share_the_fpn():
    """The tiny preset detaches the sampling stream only where two late-fused heads share one FPN;
    the one-head rows (Table II (b)/(c), early and motion-guided fusion) and the paper preset's two
    FPNs keep ``fpn_grad="both"``, and an explicit choice is kept."""
    tiny, paper = preset("tiny", 8), preset("paper", 31)
    assert SSVDConfig.for_detector(tiny).fpn_grad == "motion"
    for options in ({"sampling": False}, {"motion": False}, {"fusion": "early"}, {"fusion": "motion_guided"},
                    {"separate_fpns": True}, {"fpn_grad": "both"}):
        assert SSVDConfig.for_detector(tiny, **options).fpn_grad == "both", options
    assert SSVDConfig.for_detector(paper).fpn_grad == "both"
    assert METHODS["ssvd_fpn_both"].options == {"fpn_grad": "both"}


def test_single_frame_loss_doubled_control():
    """``ssvd_single_loss2``: the same detector, every loss x2."""
    torch.manual_seed(0)
    cfg = preset("tiny", 8)
    single = build_one_stage(cfg)
    doubled = METHODS["ssvd_single_loss2"].build(cfg)
    doubled.load_state_dict(single.state_dict())
    images, targets = clips_with_boxes(B=2, T=1, height=120, width=160)
    a, b = single.train()(images, targets), doubled.train()(images, targets)
    assert set(a) == set(b)
    for k in a:
        torch.testing.assert_close(b[k], 2 * a[k])


# --------------------------------------------------------------------------- what notebook 06 reads
def test_detect_subsets_equal_detect_with_only():
    """``detect_subsets`` runs the streams and heads once and gives, per subset, what ``detect(only=...)`` gives."""
    torch.manual_seed(0)
    model = build_ssvd(preset("tiny", 8)).eval()
    images = torch.rand(3, 3, 120, 160)
    subsets = {"both": None, "motion": ("motion",), "sampling": ("sampling",)}
    with torch.no_grad():
        frames = model.frame_features(images)
        ref, sup = frames.select([0]), frames.select([1, 2])
        for supports in (sup, None):
            (got,) = model.detect_subsets(ref, supports, subsets)
            assert set(got) == set(subsets)
            for name, only in subsets.items():
                (expected,) = model.detect(ref, supports, only=only)
                assert len(expected["scores"]) > 0
                for key in ("boxes", "scores", "labels"):
                    torch.testing.assert_close(got[name][key], expected[key], rtol=0, atol=0)
        both, motion = got["both"]["scores"], got["motion"]["scores"]
        assert not torch.equal(both, motion)  # the two heads differ: the subsets are not one result


def test_buffered_inference_with_subsets_equals_separate_passes(tmp_path):
    from minivod.data.generate import generate
    from minivod.data.vid import VIDDataset

    root = tmp_path / "data"
    generate(root, seed=2, train_videos=1, val_videos=1, frames=10, det_images=1, progress=False)
    video = VIDDataset(root, "val").videos[0]
    torch.manual_seed(0)
    model = build_ssvd(preset("tiny", 8)).eval()
    schedule = BufferedSchedule(window=2, num_support=2)
    subsets = {"both": None, "sampling": ("sampling",)}
    together, _, _ = detect_video_buffered(model, video, "cpu", schedule, subsets=subsets)
    assert len(together) == len(video)
    for name, only in subsets.items():
        alone, _, _ = detect_video_buffered(model, video, "cpu", schedule, only=only)
        for a, b in zip(together, alone):
            torch.testing.assert_close(a[name]["scores"], b["scores"], rtol=0, atol=0)


def test_pair_speeds_reads_the_true_flow(data_small):
    from minivod.data.flow_pairs import pair_speeds
    from minivod.data.generate import load_scene
    from minivod.data.vid import VIDDataset

    videos = VIDDataset(data_small, "val").videos[:2]
    rows = pair_speeds(data_small, "val", videos, tau=4, step=10)
    assert rows.shape == (2 * len(range(0, len(videos[0]) - 4, 10)), 3)
    speed, vi, t = rows[-1]
    flow, valid = gt_pair_flow(load_scene(data_small, "val", videos[int(vi)].name), int(t), int(t) + 4)
    assert vi == 1 and speed == pytest.approx(np.percentile(np.hypot(*flow)[valid], 99.5))
    assert (rows[:, 0] >= 0).all() and rows[:, 0].max() > 1.0  # data_small's objects move
