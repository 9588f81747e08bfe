"""SELSA and the relation block at scale: thousands of proposals without overflow (the paper preset: test_method_contract.py)."""
import pytest
import torch

from minivod.methods.relation import RelationAggregator, RelationConfig
from minivod.methods.selsa import SELSA
from minivod.models.roi_heads import RoIContext


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


