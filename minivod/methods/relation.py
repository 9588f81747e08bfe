"""The relation block: attention between RoIs with an appearance and a geometric term.

Relation Networks (Hu et al., CVPR 2018) let each object attend to the others
with weights built from two similarities: an appearance one (a dot product of
two linear embeddings of the RoI features) and a geometric one (a small linear
layer on a sinusoidal embedding of the boxes' relative geometry). DSFNet's
instance-level fusion (Eq. 4-7) and MST's proposal-level aggregation (Eq. 7-10)
are this block; SELSA (``selsa.py``) is its appearance-only cousin and shares
the helpers at the top of this file.

For one head, with ``x_k`` a reference RoI and ``y_l`` one of its neighbours::

    z_kl = <xi(x_k), zeta(y_l)> / sqrt(d_head)        appearance    (DSFNet Eq. 6, MST Eq. 8)
    r_kl = psi(embed(geometry(b_k, b_l)))             geometry      (DSFNet Eq. 7, MST Eq. 9)
    S_kl = softmax_l(z_kl + r_kl)                     weights       (DSFNet Eq. 5, MST Eq. 7)
    x_k' = x_k + sum_l S_kl gamma(y_l)                 update        (DSFNet Eq. 4, MST Eq. 10)

With H heads, ``xi``, ``zeta`` and ``gamma`` are single linear layers whose
outputs are split into H slices, one per head, and ``psi`` gives one ``r`` per
head. Concatenating the heads' updates is Relation Networks' grouped output
projection (each head owns D / H rows of ``gamma``), so no extra layer is needed.

Two choices of ``geometry`` (add another to ``GEOMETRY`` if a method needs one):

- ``"scale"``: ``log(w_k / w_l), log(h_k / h_l), log|w_k / h_k - w_l / h_l|``,
  the box shapes only (DSFNet Eq. 7; MST Eq. 9 uses the same three terms);
- ``"position"``: Relation Networks' centre offsets and scales,
  ``log(|cx_k - cx_l| / w_k), log(|cy_k - cy_l| / h_k), log(w_l / w_k), log(h_l / h_k)``.

and two ways of joining it to the appearance term (``geometry_mode``):

- ``"add"``: ``exp(z + r)``, as written in DSFNet Eq. (5) and MST Eq. (7);
- ``"log_relu"``: Relation Networks' ``max(0, r) * exp(z)``, i.e. ``exp(z + log max(0, r))``.

How MST reuses it: Eq. (7)-(10) are ``RelationBlock`` with ``geometry="scale"``
and the support proposals only as neighbours (``include_reference=False`` in
``RelationAggregator``); its instance-level step (Eq. 12) calls
``RelationBlock.forward`` with its own ``mask`` (same clip and same instance ID).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, NamedTuple, Optional

import torch
from torch import Tensor, nn

from minivod.models.roi_heads import RoIContext, per_clip


# --------------------------------------------------------------------------- shared helpers
class Neighbours(NamedTuple):
    """The RoIs a reference RoI may look at, flat over the batch of clips (M rows).

    feats (Tensor[M, D]), boxes (Tensor[M, 4]) (x1, y1, x2, y2) in resized-frame pixels,
    clip_index (Tensor[M]) int64 clip b, frame_index (Tensor[M]) int64 frame t (0 = reference)
    """

    feats: Tensor
    boxes: Tensor
    clip_index: Tensor
    frame_index: Tensor


def gather_neighbours(ref_feats: Tensor, support_feats: Tensor, ctx: RoIContext, include_reference: bool) -> Neighbours:
    """The reference frames' own RoIs (if ``include_reference``) followed by the support RoIs.

    Args:
        ref_feats (Tensor[N_ref, D]), support_feats (Tensor[N_sup, D]): as passed to an RoI aggregator
        ctx (RoIContext): boxes and clip / frame indices of both
    Returns:
        Neighbours with M = N_ref + N_sup rows (or N_sup without the reference RoIs)
    """
    if not include_reference:
        return Neighbours(support_feats, ctx.support_boxes, ctx.support_clip_index, ctx.support_frame_index)
    return Neighbours(
        torch.cat([ref_feats, support_feats.to(ref_feats.dtype)]),  # (N_ref + N_sup, D)
        torch.cat([ctx.ref_boxes, ctx.support_boxes]),  # (N_ref + N_sup, 4)
        torch.cat([ctx.ref_clip_index, ctx.support_clip_index]),  # (N_ref + N_sup,)
        torch.cat([torch.zeros_like(ctx.ref_clip_index), ctx.support_frame_index]),  # (N_ref + N_sup,)
    )


def same_clip(ref_clip_index: Tensor, neighbour_clip_index: Tensor) -> Tensor:
    """(N, M) bool: True where reference RoI n and neighbour m come from the same clip."""
    return ref_clip_index[:, None] == neighbour_clip_index[None, :]  # (N, M)


def masked_softmax(logits: Tensor, mask: Tensor) -> Tensor:
    """Softmax over the last axis of ``logits (Tensor[..., N, M])`` where ``mask (Tensor[N, M])`` allows.

    Masked entries get weight 0; a row with nothing allowed gets all zeros (no NaN), so the
    update it receives is zero and a residual module leaves that RoI unchanged.
    """
    logits = logits.masked_fill(~mask, torch.finfo(logits.dtype).min)  # (..., N, M)
    return logits.softmax(dim=-1) * mask  # (..., N, M); all-masked rows: uniform * 0 = 0


# --------------------------------------------------------------------------- geometry
# Both functions broadcast: boxes (..., 4) against boxes (..., 4) give (..., F), so
# ``f(a[:, None], b[None, :])`` is the (N, M, F) table and ``f(a[i], b[j])`` a list of pairs.
def _shape(boxes: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Centre x, centre y, width and height of ``boxes (Tensor[..., 4])``; sizes at least one pixel."""
    x1, y1, x2, y2 = boxes.float().unbind(-1)  # each (...,)
    return (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1).clamp(min=1.0), (y2 - y1).clamp(min=1.0)


def scale_geometry(boxes_k: Tensor, boxes_l: Tensor, eps: float = 1e-3) -> Tensor:
    """DSFNet Eq. (7) / MST Eq. (9): the relative shape of box k and box l, Tensor[..., 3].

    ``log(w_k / w_l)``, ``log(h_k / h_l)``, ``log(max(|w_k / h_k - w_l / h_l|, eps))``; the paper's
    third term is -inf for equal aspect ratios, ``eps`` bounds it as Relation Networks bound offsets.
    """
    _, _, wk, hk = _shape(boxes_k)
    _, _, wl, hl = _shape(boxes_l)
    aspect_gap = (wk / hk - wl / hl).abs().clamp(min=eps)
    return torch.stack([torch.log(wk / wl), torch.log(hk / hl), torch.log(aspect_gap)], dim=-1)  # (..., 3)


def position_geometry(boxes_k: Tensor, boxes_l: Tensor, eps: float = 1e-3) -> Tensor:
    """Relation Networks' relative position of box l seen from box k, Tensor[..., 4]."""
    cxk, cyk, wk, hk = _shape(boxes_k)
    cxl, cyl, wl, hl = _shape(boxes_l)
    dx = torch.log((cxk - cxl).abs().clamp(min=eps) / wk)
    dy = torch.log((cyk - cyl).abs().clamp(min=eps) / hk)
    return torch.stack([dx, dy, torch.log(wl / wk), torch.log(hl / hk)], dim=-1)  # (..., 4)


GEOMETRY: dict[str, tuple[Callable[[Tensor, Tensor], Tensor], int]] = {
    "scale": (scale_geometry, 3),  # DSFNet Eq. (7), MST Eq. (9)
    "position": (position_geometry, 4),  # Relation Networks
}


def sinusoidal_embedding(geometry: Tensor, num_freqs: int = 8, wave_length: float = 1000.0, scale: float = 100.0):
    """Relation Networks' embedding (DSFNet's rho in Eq. 7): sin and cos of each term at ``num_freqs`` frequencies.

    Args:
        geometry (Tensor[..., F]): low-dimensional relative geometry
    Returns:
        Tensor[..., 2 * F * num_freqs]: for term g and frequency i, ``sin(scale * g / wave_length ** (i / num_freqs))``
        and the cosine of the same
    """
    angles = _angles(geometry, num_freqs, wave_length, scale)  # (..., F, nf)
    return torch.cat([angles.sin(), angles.cos()], dim=-1).flatten(-2)  # (..., F, 2*nf) -> (..., 2*F*nf)


def _angles(values: Tensor, num_freqs: int = 8, wave_length: float = 1000.0, scale: float = 100.0) -> Tensor:
    """``scale * v / wave_length ** (i / num_freqs)`` for each value and frequency i: Tensor[..., nf]."""
    freqs = wave_length ** (-torch.arange(num_freqs, device=values.device, dtype=torch.float32) / num_freqs)  # (nf,)
    return (scale * values)[..., None] * freqs  # (..., nf)


def scale_logits_all_pairs(psi: nn.Linear, boxes_k: Tensor, boxes_l: Tensor, num_freqs: int = 8,
                           memo: Optional[dict] = None) -> Tensor:
    """``psi(sinusoidal_embedding(scale_geometry(b_k, b_l)))`` for every pair: Tensor[N, M, H].

    The same numbers as embedding the (N, M, 3) table and applying ``psi``, with a third of the
    work per pair. The first two terms of Eq. (7) are differences, ``log w_k - log w_l`` and
    ``log h_k - log h_l``, and the sine and cosine of a difference expand into per-box factors:

        sin(c (u_k - u_l)) = sin(c u_k) cos(c u_l) - cos(c u_k) sin(c u_l)
        cos(c (u_k - u_l)) = cos(c u_k) cos(c u_l) + sin(c u_k) sin(c u_l)

    so their share of the linear ``psi`` is a product of (N, H, nf) by (nf, M) factors. Only the
    aspect-ratio gap, ``log max(|w_k / h_k - w_l / h_l|, eps)``, is embedded pair by pair. The sines
    and cosines depend on the boxes alone; ``memo`` keeps them for the next layer's block.
    """
    key = ("scale_factors", num_freqs)
    if memo is None or key not in memo:
        _, _, wk, hk = _shape(boxes_k)
        _, _, wl, hl = _shape(boxes_l)
        per_box = []
        for uk, ul in ((wk.log(), wl.log()), (hk.log(), hl.log())):  # the two difference terms
            ak, al = _angles(uk, num_freqs), _angles(ul, num_freqs)  # (N, nf), (M, nf)
            per_box.append((ak.sin(), ak.cos(), al.sin(), al.cos()))
        gap = (wk / hk)[:, None] - (wl / hl)[None, :]  # (N, M)
        angles = _angles(gap.abs().clamp(min=1e-3).log(), num_freqs)  # the third term: (N, M, nf)
        factors = per_box, angles.sin(), angles.cos()
        if memo is not None:
            memo[key] = factors
    per_box, sin3, cos3 = memo[key] if memo is not None else factors
    H = psi.out_features
    W = psi.weight.view(H, 3, 2, num_freqs)  # (H, term, sin / cos, nf): the layout of sinusoidal_embedding
    r = psi.bias.view(1, 1, H).expand(sin3.shape[0], sin3.shape[1], H)  # (N, M, H)
    for term, (Sk, Ck, Sl, Cl) in enumerate(per_box):
        Ws, Wc = W[:, term, 0], W[:, term, 1]  # (H, nf) each
        on_cos = Sk[:, None] * Ws + Ck[:, None] * Wc  # (N, H, nf): multiplies cos(c u_l)
        on_sin = Sk[:, None] * Wc - Ck[:, None] * Ws  # (N, H, nf): multiplies sin(c u_l)
        r = r + torch.einsum("nhi,mi->nmh", on_cos, Cl) + torch.einsum("nhi,mi->nmh", on_sin, Sl)  # (N, M, H)
    return r + sin3 @ W[:, 2, 0].t() + cos3 @ W[:, 2, 1].t()  # (N, M, H)


# --------------------------------------------------------------------------- the block
@dataclass
class RelationConfig:
    """Sizes and choices of a ``RelationBlock``.

    dim: D of the RoI features (the box head's FC width)
    num_heads: H (Relation Networks: 16)
    key_dim: output size of xi and zeta, split over the heads (None: ``dim``)
    geometry: a key of ``GEOMETRY`` ("scale", "position"), or None for appearance only
    geometry_mode: "add" (DSFNet Eq. 5) or "log_relu" (Relation Networks)
    num_freqs: frequencies per geometric term in ``sinusoidal_embedding``
    """

    dim: int
    num_heads: int = 16
    key_dim: Optional[int] = None
    geometry: Optional[str] = "scale"
    geometry_mode: str = "add"
    num_freqs: int = 8

    def __post_init__(self):
        self.key_dim = self.key_dim or self.dim
        if self.dim % self.num_heads or self.key_dim % self.num_heads:
            raise ValueError(f"dim ({self.dim}) and key_dim ({self.key_dim}) must divide into {self.num_heads} heads")
        if self.geometry is not None and self.geometry not in GEOMETRY:
            raise ValueError(f"geometry must be one of {sorted(GEOMETRY)} or None, got {self.geometry!r}")
        if self.geometry_mode not in ("add", "log_relu"):
            raise ValueError(f"geometry_mode must be 'add' or 'log_relu', got {self.geometry_mode!r}")


class RelationBlock(nn.Module):
    """``x_k + sum_l S_kl gamma(y_l)`` with S from appearance and geometry (DSFNet Eq. 4-7).

    Called as ``block(x, y, x_boxes, y_boxes, mask)`` with x (Tensor[N, D]) the RoIs to update,
    y (Tensor[M, D]) their neighbours, boxes (x1, y1, x2, y2) and mask (Tensor[N, M]) bool.
    """

    def __init__(self, cfg: RelationConfig):
        super().__init__()
        self.cfg = cfg
        self.xi = nn.Linear(cfg.dim, cfg.key_dim)  # query embedding, DSFNet Eq. (6)
        self.zeta = nn.Linear(cfg.dim, cfg.key_dim)  # key embedding, DSFNet Eq. (6)
        self.gamma = nn.Linear(cfg.dim, cfg.dim)  # value transform, DSFNet Eq. (4) (MST's W_p)
        self.psi = None
        if cfg.geometry is not None:
            embed_dim = 2 * GEOMETRY[cfg.geometry][1] * cfg.num_freqs
            self.psi = nn.Linear(embed_dim, cfg.num_heads)  # one geometric logit per head, DSFNet Eq. (7)

    def geometric_logits(self, x_boxes: Tensor, y_boxes: Tensor, mask: Tensor, memo: Optional[dict] = None) -> Tensor:
        """r_kl of DSFNet Eq. (7) per head: Tensor[H, N, M] (joined as ``geometry_mode`` says).

        Only the allowed pairs are embedded (the rest are masked out anyway): with B clips in a
        batch that is B times less work than the full (N, M) table. The embedding depends on the
        boxes alone, so blocks that see the same boxes and mask (one after each FC layer) share
        it through ``memo`` (``RoIContext.memo``): it is computed once per forward pass.
        """
        if mask is None and self.cfg.geometry == "scale":  # every pair of one clip: the factored form
            pairs, r_pairs = None, scale_logits_all_pairs(self.psi, x_boxes, y_boxes, self.cfg.num_freqs, memo)
        else:
            pairs, embedding = self.pair_embedding(x_boxes, y_boxes, mask, memo)  # (P, E), or (N, M, E) for all
            r_pairs = self.psi(embedding)  # (P, H) or (N, M, H)
        if self.cfg.geometry_mode == "log_relu":  # Relation Networks: weight w_G = max(0, r), log w_G joins z
            r_pairs = torch.log(r_pairs.float().clamp(min=1e-6)).to(r_pairs.dtype)
        if pairs is None:  # every pair: the table itself
            return r_pairs.permute(2, 0, 1)  # (H, N, M)
        k, l = pairs
        r = r_pairs.new_zeros(self.cfg.num_heads, *mask.shape)  # (H, N, M)
        r[:, k, l] = r_pairs.t()  # scatter the pairs back: (H, P)
        return r

    def pair_embedding(self, x_boxes: Tensor, y_boxes: Tensor, mask: Optional[Tensor], memo: Optional[dict] = None):
        """The geometry of Eq. (7) embedded: ``(k, l), (P, E)`` for the P pairs ``mask`` allows, or
        ``None, (N, M, E)`` for every pair when ``mask`` is None (one clip: no pair is masked)."""
        key = ("pair_embedding", self.cfg.geometry, self.cfg.num_freqs, mask is None)
        if memo is not None and key in memo:
            return memo[key]
        features, _ = GEOMETRY[self.cfg.geometry]
        if mask is None:
            pairs, geometry = None, features(x_boxes[:, None], y_boxes[None, :])  # (N, M, F)
        else:
            pairs = mask.nonzero(as_tuple=True)  # the P allowed pairs: (P,), (P,)
            geometry = features(x_boxes[pairs[0]], y_boxes[pairs[1]])  # (P, F)
        embedding = sinusoidal_embedding(geometry, self.cfg.num_freqs)  # (P, E) or (N, M, E)
        if memo is not None:
            memo[key] = pairs, embedding
        return pairs, embedding

    def weights(self, x: Tensor, y: Tensor, x_boxes: Tensor, y_boxes: Tensor, mask: Tensor,
                memo: Optional[dict] = None) -> Tensor:
        """S_kl of DSFNet Eq. (5) per head: Tensor[H, N, M], each allowed row sums to 1 (``mask`` None: all)."""
        logits = self.logits(x, y, x_boxes, y_boxes, mask, memo)  # (H, N, M)
        if mask is None:
            return logits.softmax(dim=-1)  # DSFNet Eq. (5)
        return masked_softmax(logits, mask)  # DSFNet Eq. (5): (H, N, M)

    def logits(self, x: Tensor, y: Tensor, x_boxes: Tensor, y_boxes: Tensor, mask: Tensor,
               memo: Optional[dict] = None) -> Tensor:
        """z_kl + r_kl per head before the softmax: Tensor[H, N, M] (r only on the pairs ``mask`` allows)."""
        H = self.cfg.num_heads
        q = self.xi(x).unflatten(1, (H, -1)).transpose(0, 1)  # (N, key_dim) -> (H, N, dk)
        k = self.zeta(y).unflatten(1, (H, -1)).transpose(0, 1)  # (M, key_dim) -> (H, M, dk)
        logits = torch.einsum("hnd,hmd->hnm", q, k) / math.sqrt(q.shape[-1])  # z_kl, DSFNet Eq. (6): (H, N, M)
        if self.psi is not None:
            logits = logits + self.geometric_logits(x_boxes, y_boxes, mask, memo).to(logits.dtype)  # z + r, Eq. (5)
        return logits  # (H, N, M)

    def forward(self, x: Tensor, y: Tensor, x_boxes: Tensor, y_boxes: Tensor, mask: Tensor,
                memo: Optional[dict] = None) -> Tensor:
        """
        Args:
            x (Tensor[N, D]): features to update; y (Tensor[M, D]): the features they look at
            x_boxes (Tensor[N, 4]), y_boxes (Tensor[M, 4]): (x1, y1, x2, y2) in pixels
            mask (Tensor[N, M] or None): bool, which neighbours each row may use (None: all)
            memo (dict, optional): shared by blocks that see the same boxes and mask (see
                ``geometric_logits``); pass None when the mask is the block's own
        Returns:
            Tensor[N, D]: ``x + sum_l S_kl gamma(y_l)``
        """
        S = self.weights(x, y, x_boxes, y_boxes, mask, memo)  # (H, N, M)
        v = self.gamma(y).unflatten(1, (self.cfg.num_heads, -1))  # (M, D) -> (M, H, D/H)
        update = torch.einsum("hnm,mhd->nhd", S.to(v.dtype), v).flatten(1)  # (N, H, D/H) -> (N, D)
        return x + update.to(x.dtype)  # DSFNet Eq. (4)


class RelationAggregator(nn.Module):
    """A ``RelationBlock`` as an RoI aggregator of ``VODetector``: ``(x, s, ctx) -> (N_ref, D)``.

    Each reference RoI looks at the RoIs of its own clip: the support frames' RoIs and, if
    ``include_reference`` (DSFNet Eq. 4 sums over all instances of all frames), the reference
    frame's own RoIs too.
    """

    def __init__(self, cfg: RelationConfig, include_reference: bool = True):
        super().__init__()
        self.block = RelationBlock(cfg)
        self.include_reference = include_reference

    def forward(self, ref_feats: Tensor, support_feats: Tensor, ctx: RoIContext) -> Tensor:
        """ref_feats (Tensor[N_ref, D]), support_feats (Tensor[N_sup, D]) -> Tensor[N_ref, D]."""
        return per_clip(self.one_clip, ref_feats, support_feats, ctx)  # (N_ref, D)

    def one_clip(self, ref_feats: Tensor, support_feats: Tensor, ctx: RoIContext) -> Tensor:
        """The update within one clip, where every reference RoI may look at every neighbour."""
        nb = gather_neighbours(ref_feats, support_feats, ctx, self.include_reference)  # M rows
        memo = ctx.memo.setdefault(("relation", self.include_reference), {})  # the same boxes at every layer
        return self.block(ref_feats, nb.feats, ctx.ref_boxes, nb.boxes, None, memo)  # (N_ref, D)
