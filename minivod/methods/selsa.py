"""SELSA: Sequence Level Semantics Aggregation (Wu et al., ICCV 2019).

Each reference proposal gathers the features of semantically similar proposals
from frames sampled across the whole video. For proposals ``x_i^k`` (frame k)
and ``x_j^l`` (frame l):

    w_ij^kl = phi(x_i^k)^T psi(x_j^l)                              SELSA Eq. (1)
    x_bar_i^k = sum_{l in Omega} sum_j softmax(w)_ij^kl x_j^l      SELSA Eq. (2)

phi and psi are one FC layer each (Sec. 4.2). The softmax runs over all
proposals of all sampled frames Omega, the reference frame's own proposals
included, so the weights of one reference proposal sum to 1 (Sec. 3.2).

Where it sits: one SELSA module after each FC of the box head,
FC -> SELSA -> FC -> SELSA (Sec. 4.2), i.e. the two ``roi_aggregators`` of
``VODetector``. Proposals of different clips in a batch never mix.

Two choices the paper leaves open, set by ``SELSAConfig``:

- ``residual=True`` (default) returns ``x + W_out x_bar``, what the authors'
  released MXNet code does (mmtracking's ``SelsaAggregator`` also transforms the
  values by one more FC); ``residual=False`` returns ``x_bar``, Eq. (2) as written.
- ``scaled=True`` divides Eq. (1) by sqrt(d), as the released code does, so the
  softmax does not saturate for 1024-d features.

``num_heads > 1`` is the multi-head variant: phi and psi are split into H slices
giving H sets of weights, and head h averages the h-th D/H slice of the features.

``within_frame_only=True`` is the Table 1 (b) ablation: only the reference
frame's own proposals are neighbours; support proposals are ignored.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor, nn

from minivod.models import VODetector
from minivod.models.config import DetectorConfig
from minivod.models.roi_heads import RoIContext, per_clip

from .relation import gather_neighbours, masked_softmax, same_clip
from .spec import MethodSpec


@dataclass
class SELSAConfig:
    """Options of SELSA (defaults: the paper's model).

    num_heads: 1 as in the paper; > 1 for the multi-head variant
    within_frame_only: Table 1 (b), aggregate over the reference frame's own proposals only
    residual: return ``x + W_out x_bar`` (released code) instead of ``x_bar`` (Eq. 2 as written)
    scaled: divide Eq. (1) by sqrt(D / num_heads)
    """

    num_heads: int = 1
    within_frame_only: bool = False
    residual: bool = True
    scaled: bool = True


class SELSA(nn.Module):
    """One SELSA module, an RoI aggregator: ``(x (N_ref, D), s (N_sup, D), ctx) -> (N_ref, D)``.

    Args:
        dim (int): D, the width of the FC layer it follows
        cfg (SELSAConfig, optional): options (the paper's defaults when None)
    """

    def __init__(self, dim: int, cfg: Optional[SELSAConfig] = None):
        super().__init__()
        cfg = cfg or SELSAConfig()
        if dim % cfg.num_heads:
            raise ValueError(f"dim ({dim}) must divide into {cfg.num_heads} heads")
        self.cfg = cfg
        self.phi = nn.Linear(dim, dim)  # SELSA Eq. (1), one FC layer (Sec. 4.2)
        self.psi = nn.Linear(dim, dim)  # SELSA Eq. (1)
        self.out = nn.Linear(dim, dim) if cfg.residual else None

    def weights(self, ref_feats: Tensor, support_feats: Tensor, ctx: RoIContext) -> Tensor:
        """The normalised weights of Eq. (2), Tensor[H, N_ref, M] over M = N_ref + N_sup neighbours.

        Column order: the reference RoIs of all clips, then the support RoIs (``gather_neighbours``).
        Each row sums to 1 over the proposals of its own clip (its reference frame only when
        ``within_frame_only``) and is 0 elsewhere.
        """
        nb = gather_neighbours(ref_feats, support_feats, ctx, include_reference=True)  # M rows
        mask = same_clip(ctx.ref_clip_index, nb.clip_index)  # (N_ref, M)
        if self.cfg.within_frame_only:
            mask = mask & (nb.frame_index == 0)[None, :]  # Table 1 (b): the reference frame only
        H = self.cfg.num_heads
        q = self.phi(ref_feats).unflatten(1, (H, -1)).transpose(0, 1)  # (N_ref, D) -> (H, N_ref, D/H)
        k = self.psi(nb.feats).unflatten(1, (H, -1)).transpose(0, 1)  # (M, D) -> (H, M, D/H)
        w = torch.einsum("hnd,hmd->hnm", q, k)  # SELSA Eq. (1): w_ij^kl = phi(x_i^k)^T psi(x_j^l), (H, N_ref, M)
        if self.cfg.scaled:
            w = w / math.sqrt(q.shape[-1])
        return masked_softmax(w, mask)  # SELSA Eq. (2): softmax over all proposals of all frames

    def forward(self, ref_feats: Tensor, support_feats: Tensor, ctx: RoIContext) -> Tensor:
        """
        Args:
            ref_feats (Tensor[N_ref, D]): reference RoI features after an FC layer (before its ReLU)
            support_feats (Tensor[N_sup, D]): support RoI features after the same FC layer
            ctx (RoIContext): boxes and clip / frame indices of both
        Returns:
            Tensor[N_ref, D]: ``x + W_out x_bar`` (``residual``) or ``x_bar`` (Eq. 2)
        """
        return per_clip(self.one_clip, ref_feats, support_feats, ctx)  # (N_ref, D)

    def one_clip(self, ref_feats: Tensor, support_feats: Tensor, ctx: RoIContext) -> Tensor:
        """Eq. (1)-(2) within one clip (proposals of different clips never meet, see ``per_clip``)."""
        w = self.weights(ref_feats, support_feats, ctx)  # (H, N_ref, M)
        x = gather_neighbours(ref_feats, support_feats, ctx, include_reference=True).feats  # all x_j^l: (M, D)
        x = x.unflatten(1, (self.cfg.num_heads, -1))  # (M, H, D/H)
        x_bar = torch.einsum("hnm,mhd->nhd", w.to(x.dtype), x)  # SELSA Eq. (2): (N_ref, H, D/H)
        x_bar = x_bar.flatten(1)  # (N_ref, D)
        if self.out is None:
            return x_bar
        return ref_feats + self.out(x_bar)  # the released code's residual form


def build_selsa(cfg: DetectorConfig, **options) -> VODetector:
    """Faster R-CNN with a SELSA module after each FC of the box head (FC -> SELSA -> FC -> SELSA).

    ``options`` are the fields of ``SELSAConfig``, e.g. ``build_selsa(cfg, within_frame_only=True)``.
    """
    selsa_cfg = SELSAConfig(**options)
    return VODetector(cfg, roi_aggregators=nn.ModuleList(SELSA(d, selsa_cfg) for d in cfg.box_fc_dims))


# --------------------------------------------------------------------------- registry rows
# trains on the reference + 2 random frames of the same video (Sec. 4.1), tests with 8 shuffled
# frames of data_small's 48-frame videos (the paper: 21 on ImageNet VID; pass num_support=20 there)
SELSA_SPEC = MethodSpec("selsa", build_selsa, train_support=2, test_support=8, test_mode="shuffled")
SPECS = [
    SELSA_SPEC,
    # Table 1 (b): aggregation within the frame only, no support frames
    SELSA_SPEC.variant("selsa_frame_only", {"within_frame_only": True}, train_support=0, test_support=0,
                       test_mode="sequential"),
]
