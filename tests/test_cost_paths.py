"""The cheap paths give the plain paths' numbers (the aggregation-cost work must not change results).

- The engine (each frame's features once, support RoIs kept per frame in ``FrameFeatures.memo``,
  four reference frames per call) against a plain loop that computes every reference frame and
  its supports from scratch, one clip at a time: the shipped checkpoints on a few val frames.
- RoI attention computed clip by clip (``per_clip``) against one masked table over the batch.
- The relation block on every pair of one clip (``mask=None``) against its masked-pairs path.
"""
from __future__ import annotations

import copy

import pytest
import torch

from minivod.data.vid import VIDDataset, load_image
from minivod.engine.evaluate import default_data_root, load_model, shipped_checkpoint
from minivod.engine.inference import detect_video, sliding_window, test_support
from minivod.methods import get_method
from minivod.methods.relation import RelationBlock, RelationConfig, gather_neighbours, same_clip
from minivod.methods.selsa import SELSA
from minivod.models.roi_heads import RoIContext

from method_helpers import roi_case

TWO_STAGE = ("baseline", "selsa", "dsfnet", "mst", "selsa_frame_only", "dsfnet_frame", "dsfnet_instance")


def plain_supports(method: str, n: int, t: int) -> list[int]:
    """The supports ``detect_video`` gives frame t (the same sampler, called directly)."""
    spec = get_method(method)
    if spec.test_support == 0:
        return []
    if spec.test_window is not None:
        return sliding_window(n, t, spec.test_window) or [t]
    return test_support(n, t, spec.test_support, mode=spec.test_mode, stride=spec.test_stride, seed=0)


@pytest.mark.parametrize("method", TWO_STAGE)
def test_engine_equals_plain_per_frame_detection(method):
    model = load_model(method, shipped_checkpoint(method), "cpu")[0]
    video = copy.copy(VIDDataset(default_data_root(), "val").videos[0])
    video.frames = video.frames[:6]
    engine, _, _ = detect_video(model, video, "cpu", num_support=get_method(method).test_support,
                                mode=get_method(method).test_mode, window=get_method(method).test_window)
    images = [load_image(f.image_path) for f in video.frames]
    with torch.no_grad():
        for t, got in enumerate(engine):
            supports = plain_supports(method, len(video), t)
            ref = model.frame_features(images[t][None])
            sup = model.frame_features(torch.stack([images[s] for s in supports])) if supports else None
            want = model.detect(ref, sup)[0]
            assert torch.equal(got["labels"], want["labels"]), (method, t)
            # pixels up to 160: batched and per-clip sums differ in float32 round-off (about 1e-6 relative)
            torch.testing.assert_close(got["boxes"], want["boxes"], atol=1e-4, rtol=1e-5)
            torch.testing.assert_close(got["scores"], want["scores"], atol=1e-4, rtol=0)


def masked_table_selsa(module: SELSA, x, s, ctx):
    """SELSA Eq. (1)-(2) as one (N_ref, M) table over the whole batch, other clips masked out."""
    w = module.weights(x, s, ctx)  # (H, N_ref, M), masked by clip
    nb = gather_neighbours(x, s, ctx, include_reference=True).feats.unflatten(1, (module.cfg.num_heads, -1))
    x_bar = torch.einsum("hnm,mhd->nhd", w, nb).flatten(1)
    return x + module.out(x_bar)


def test_selsa_clip_by_clip_equals_one_masked_table():
    torch.manual_seed(0)
    x, s, ctx = roi_case(B=3, D=16)
    module = SELSA(16)
    torch.testing.assert_close(module(x, s, ctx), masked_table_selsa(module, x, s, ctx), atol=1e-5, rtol=0)


@pytest.mark.parametrize("include_reference", [True, False])
def test_relation_clip_by_clip_equals_one_masked_table(include_reference):
    from minivod.methods.relation import RelationAggregator

    torch.manual_seed(0)
    x, s, ctx = roi_case(B=3, D=16)
    agg = RelationAggregator(RelationConfig(16, num_heads=4), include_reference)
    nb = gather_neighbours(x, s, ctx, include_reference)
    table = agg.block(x, nb.feats, ctx.ref_boxes, nb.boxes, same_clip(ctx.ref_clip_index, nb.clip_index))
    torch.testing.assert_close(agg(x, s, ctx), table, atol=1e-5, rtol=0)
    fresh = RoIContext(ctx.ref_boxes, ctx.ref_clip_index, ctx.support_boxes, ctx.support_clip_index,
                       ctx.support_frame_index, ctx.support_objectness)  # no counts: rows found by index
    torch.testing.assert_close(agg(x, s, fresh), table, atol=1e-5, rtol=0)


@pytest.mark.parametrize("mode", ["add", "log_relu"])
def test_relation_all_pairs_equals_masked_pairs(mode):
    torch.manual_seed(0)
    block = RelationBlock(RelationConfig(16, num_heads=4, geometry_mode=mode))
    x, y = torch.randn(5, 16), torch.randn(7, 16)
    xy = torch.rand(12, 2) * 100
    boxes = torch.cat([xy, xy + torch.rand(12, 2) * 40 + 5], dim=1)
    everything = torch.ones(5, 7, dtype=torch.bool)
    torch.testing.assert_close(block(x, y, boxes[:5], boxes[5:], None), block(x, y, boxes[:5], boxes[5:], everything),
                               atol=1e-5, rtol=0)


def test_support_rois_are_computed_once_per_frame():
    """With the memo, a frame's support RoIs go through RoIAlign once however many references it supports."""
    model = load_model("selsa", shipped_checkpoint("selsa"), "cpu")[0]
    video = copy.copy(VIDDataset(default_data_root(), "val").videos[0])
    video.frames = video.frames[:10]
    pooled = []
    handle = model.roi_heads.box_roi_pool.register_forward_hook(lambda m, i, o: pooled.append(o.shape[0]))
    detect_video(model, video, "cpu", num_support=8, mode="shuffled")
    handle.remove()
    top = model.cfg.num_support_rois
    # each reference frame's own proposals (<= 100), plus each frame's supports once (<= top each)
    assert sum(pooled) <= len(video) * (model.cfg.rpn_post_nms_top_n_test + top)


@pytest.mark.parametrize("seed", [0, 1])
def test_factored_scale_logits_equal_the_embedded_table(seed):
    """DSFNet Eq. (7) through per-box sines and cosines equals psi of the embedded (N, M, 3) geometry."""
    from minivod.methods.relation import scale_geometry, scale_logits_all_pairs, sinusoidal_embedding

    torch.manual_seed(seed)
    psi = torch.nn.Linear(48, 4)
    xy = torch.rand(40, 2) * 140
    boxes = torch.cat([xy, xy + torch.rand(40, 2) * 60 + 0.5], dim=1)  # some under one pixel (clamped)
    boxes[5] = boxes[20]  # equal aspect ratios: the eps of the third term
    want = psi(sinusoidal_embedding(scale_geometry(boxes[:15, None], boxes[None, 15:])))  # (15, 25, 4)
    memo = {}
    torch.testing.assert_close(scale_logits_all_pairs(psi, boxes[:15], boxes[15:], memo=memo), want,
                               atol=5e-5, rtol=0)
    torch.testing.assert_close(scale_logits_all_pairs(psi, boxes[:15], boxes[15:], memo=memo), want,
                               atol=5e-5, rtol=0)  # from the memo
