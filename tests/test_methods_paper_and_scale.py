"""SELSA and DSFNet: the paper preset, thousands of proposals, and cached inference."""
import pytest
import torch

from minivod.data.generate import generate
from minivod.data.vid import VIDDataset
from minivod.engine.inference import detect_video
from minivod.methods import build_model
from minivod.methods.relation import RelationAggregator, RelationConfig
from minivod.methods.selsa import SELSA
from minivod.models.roi_heads import RoIContext


@pytest.mark.parametrize("method", ["selsa", "dsfnet"])
def test_paper_preset_builds_and_takes_a_step(method):
    torch.manual_seed(0)
    model = build_model(method, "paper", 30, min_size=128, max_size=160).train()
    assert [fc.out_features for fc in model.roi_heads.box_head.fcs] == [1024, 1024]
    images = torch.rand(1, 3, 3, 128, 160)  # one clip: the reference and two supports
    targets = [{"boxes": torch.tensor([[20.0, 30.0, 90.0, 100.0]]), "labels": torch.tensor([5])}]
    losses = model(images, targets)
    sum(losses.values()).backward()
    assert all(torch.isfinite(v) for v in losses.values())
    trained = [p for p in model.roi_aggregators.parameters() if p.grad is not None]
    assert trained, "the aggregation modules receive gradients"


def _context(n_ref, n_sup, frames=20):
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(n_ref + n_sup, 2, generator=g) * 500
    wh = torch.rand(n_ref + n_sup, 2, generator=g) * 100 + 1
    boxes = torch.cat([xy, xy + wh], 1)  # (N, 4)
    return RoIContext(boxes[:n_ref], torch.zeros(n_ref, dtype=torch.long), boxes[n_ref:],
                      torch.zeros(n_sup, dtype=torch.long), torch.arange(n_sup) % frames + 1, torch.rand(n_sup))


@pytest.mark.parametrize("which", ["selsa", "relation"])
def test_softmax_stays_finite_with_thousands_of_proposals(which):
    """300 reference RoIs against 6,000 support RoIs with large activations: no overflow."""
    torch.manual_seed(0)
    dim, n_ref, n_sup = 256, 300, 6000
    module = SELSA(dim) if which == "selsa" else RelationAggregator(RelationConfig(dim, 4, geometry="scale"))
    ref = torch.randn(n_ref, dim) * 50  # large activations, as early in training
    sup = torch.randn(n_sup, dim) * 50
    with torch.no_grad():
        out = module(ref, sup, _context(n_ref, n_sup))
    assert out.shape == (n_ref, dim) and torch.isfinite(out).all()


def test_selsa_inference_runs_each_backbone_once(tmp_path):
    root = tmp_path / "data"
    generate(root, seed=2, train_videos=1, val_videos=1, frames=10, det_images=1, progress=False)
    video = VIDDataset(root, "val").videos[0]
    model = build_model("selsa", "tiny", 8).eval()
    passes = []
    model.backbone.register_forward_hook(lambda m, inp, out: passes.append(inp[0].shape[0]))
    dets, cache, _ = detect_video(model, video, "cpu", num_support=8, mode="shuffled")
    assert len(dets) == 10 and sum(passes) == cache.computed == 10  # 10 frames x (1 + 8) uses, 10 passes
