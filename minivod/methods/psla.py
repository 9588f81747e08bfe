"""PSLA: Progressive Sparse Local Attention (Guo et al., ICCV 2019), Sec. 3.2.

PSLA aligns a feature map ``F_t`` with the frame ``t + e``: every position
``p1 = (x1, y1)`` of ``g(F_{t+e})`` looks at the positions ``Phi(x1, y1)`` of
``f(F_t)`` around it, on a grid that grows sparser away from the centre:

    Phi_0(x, y) = {(x, y)}                                        PSLA Eq. (3)
    Phi_s(x, y) = {(x + a, y + b) : a, b in {-s, 0, s}} minus (x, y),  s = 1..d
    Phi(x, y)   = Phi_0 u Phi_1 u ... u Phi_d                        PSLA Eq. (2)

so 1 + 8 d positions (33 for the paper's d = 4), against (2 d + 1)^2 = 81 in the
dense window. With the affinities

    c(p1, p2)   = <g(F_{t+e})_{p1}, f(F_t)_{p2}>                    PSLA Eq. (1)
    c^(p1, p2)  = softmax over p2 in Phi(p1) of c(p1, p2)            PSLA Eq. (4)
    F^_{t+e}_p1 = sum over p2 in Phi(p1) of c^(p1, p2) F_t_p2        PSLA Eq. (5)

The operator is batched over positions: each displacement of the grid is one
slice of a zero-padded copy of the map (``shifted_views``), so the loops run over
the 1 + 8 d displacements, never over positions. Accumulating over displacements
keeps no (B, C, K, h, w) stack in memory and is several times faster on a CPU
than one gather with a flat index, or than ``F.unfold``. Displacements that leave the map
are masked out of the softmax (the centre never does).

For the comparisons of the paper's Tables 3 and 5, ``LocalAttention`` also runs:

- ``dense``:      Dense PSLA, the same softmax over all (2 d + 1)^2 positions of the window;
- ``matchtrans``: STMN's MatchTrans, the dense window with the affinities divided by their sum
                  instead of a softmax (STMN compares post-ReLU features, so the affinities
                  are >= 0; here the embeddings go through a ReLU for the same reason);
- ``nonlocal``:   Non-local attention, a softmax over all h * w positions of the map.

Choices the paper leaves open:

- Eq. (1) is divided by sqrt(c), as in scaled dot-product attention, so that the
  softmax of 256-channel embeddings does not saturate at initialisation
  (``scaled=False``: Eq. (1) as written).
- f and g are 1x1 convolutions to ``embed_dim`` channels (256 in the paper, Sec. 3.5).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

MODES = ("psla", "dense", "matchtrans", "nonlocal")


def sparse_offsets(max_displacement: int) -> Tensor:
    """The displacements (dy, dx) of Phi, PSLA Eq. (2)-(3): Tensor[1 + 8 d, 2] int64.

    Row 0 is the centre Phi_0; rows 1 + 8 (s - 1) .. 8 s are the 8 neighbours at stride s.
    """
    rows = [(0, 0)]
    for s in range(1, max_displacement + 1):  # PSLA Eq. (3): Phi_s, the 3x3 grid at stride s without its centre
        rows += [(a, b) for a in (-s, 0, s) for b in (-s, 0, s) if (a, b) != (0, 0)]
    return torch.tensor(rows, dtype=torch.int64)


def dense_offsets(max_displacement: int) -> Tensor:
    """All displacements of the (2 d + 1)^2 window, centre first: Tensor[(2 d + 1)^2, 2] int64."""
    d = max_displacement
    rows = [(0, 0)] + [(a, b) for a in range(-d, d + 1) for b in range(-d, d + 1) if (a, b) != (0, 0)]
    return torch.tensor(rows, dtype=torch.int64)


def valid_mask(offsets: Tensor, h: int, w: int) -> Tensor:
    """Whether each displaced position lies inside an h x w map: Tensor[K, h, w] bool."""
    ys = torch.arange(h, device=offsets.device).view(1, h, 1) + offsets[:, 0].view(-1, 1, 1)  # (K, h, 1)
    xs = torch.arange(w, device=offsets.device).view(1, 1, w) + offsets[:, 1].view(-1, 1, 1)  # (K, 1, w)
    return (ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)  # (K, h, w)


def shifted_views(x: Tensor, offsets: Tensor) -> list[Tensor]:
    """x displaced by each offset, as views of one zero-padded copy: K x Tensor[B, C, h, w].

    View k holds ``x[..., y + dy_k, x + dx_k]`` at (y, x), 0 where that leaves the map.
    """
    h, w = x.shape[-2:]
    d = int(offsets.abs().max()) if offsets.numel() else 0
    padded = F.pad(x, (d, d, d, d))  # (B, C, h + 2d, w + 2d)
    return [padded[..., d + dy: d + dy + h, d + dx: d + dx + w] for dy, dx in offsets.tolist()]


def neighbours(x: Tensor, offsets: Tensor) -> tuple[Tensor, Tensor]:
    """All displaced copies stacked, ``(Tensor[B, C, K, h, w], valid Tensor[K, h, w])`` (for reading and tests)."""
    return torch.stack(shifted_views(x, offsets), dim=2), valid_mask(offsets, *x.shape[-2:])


def local_weights(query: Tensor, key: Tensor, offsets: Tensor, normalise: str = "softmax",
                  scaled: bool = True) -> Tensor:
    """Correspondence weights of every query position over its displaced key positions.

    Args:
        query (Tensor[B, c, h, w]): g(F_{t+e})
        key (Tensor[B, c, h, w]): f(F_t)
        offsets (Tensor[K, 2]): the neighbourhood, e.g. ``sparse_offsets(d)``
        normalise: ``softmax`` (PSLA Eq. 4) or ``sum`` (MatchTrans: affinities over their sum)
        scaled: divide Eq. (1) by sqrt(c) (see the module docstring)
    Returns:
        Tensor[B, K, h, w]: weights summing to one over K at every position (0 where a
        displacement leaves the map)
    """
    scale = math.sqrt(query.shape[1]) if scaled else 1.0
    c = torch.stack([(query * k).sum(1) for k in shifted_views(key, offsets)], dim=1) / scale  # PSLA Eq. (1): (B, K, h, w)
    valid = valid_mask(offsets, *query.shape[-2:])  # (K, h, w)
    if normalise == "softmax":
        return c.masked_fill(~valid, float("-inf")).softmax(dim=1)  # PSLA Eq. (4): over Phi(x1, y1)
    if normalise == "sum":  # MatchTrans: c >= 0 (ReLU embeddings), divided by the sum over the window
        c = c.clamp(min=0).masked_fill(~valid, 0.0)
        return c / (c.sum(dim=1, keepdim=True) + 1e-6)
    raise ValueError(f"unknown normalisation {normalise!r}")


def aggregate(weights: Tensor, value: Tensor, offsets: Tensor) -> Tensor:
    """PSLA Eq. (5): sum over the neighbourhood of the weights times the displaced F_t.

    weights (Tensor[B, K, h, w]), value (Tensor[B, C, h, w]) -> Tensor[B, C, h, w]
    """
    weights = weights.to(value.dtype)
    out = torch.zeros_like(value)
    for k, v in enumerate(shifted_views(value, offsets)):  # a loop over displacements, not positions
        out = out + weights[:, k: k + 1] * v  # (B, 1, h, w) * (B, C, h, w)
    return out


def psla(query: Tensor, key: Tensor, value: Tensor, max_displacement: int) -> Tensor:
    """The parameter-free PSLA operator, Eq. (1)-(5), on embedded maps (f, g already applied).

    query (Tensor[B, c, h, w]) = g(F_{t+e}), key (Tensor[B, c, h, w]) = f(F_t),
    value (Tensor[B, C, h, w]) = F_t  ->  F^_{t+e} (Tensor[B, C, h, w])
    """
    offsets = sparse_offsets(max_displacement)
    return aggregate(local_weights(query, key, offsets), value, offsets)


def nonlocal_attention(query: Tensor, key: Tensor, value: Tensor) -> Tensor:
    """Non-local propagation: a softmax over all h * w positions of f(F_t) (Table 3, 'Nonlocal')."""
    B, c, h, w = query.shape
    q = query.flatten(2).transpose(1, 2)  # (B, h*w, c)
    a = torch.bmm(q, key.flatten(2)) / math.sqrt(c)  # (B, h*w, h*w): Eq. (1) for every pair
    out = torch.bmm(a.softmax(-1).to(value.dtype), value.flatten(2).transpose(1, 2))  # (B, h*w, C)
    return out.transpose(1, 2).reshape(value.shape)  # (B, C, h, w)


class LocalAttention(nn.Module):
    """PSLA with its embeddings f and g (1x1 convolutions), or one of the propagations it is compared with.

    ``module(F_query, F_t)`` aligns ``F_t`` with the frame of ``F_query``: F^ = PSLA(F_query, F_t).

    Args:
        channels (int): C of F_t and of F_query
        embed_dim (int): c of f(F_t) and g(F_query) (256 in the paper)
        max_displacement (int): d (4 in the paper)
        mode (str): ``psla``, ``dense``, ``matchtrans`` or ``nonlocal``
        query_channels (int, optional): C of F_query when it differs from that of F_t
        scaled (bool): divide Eq. (1) by sqrt(c) (local modes)
    """

    def __init__(self, channels: int, embed_dim: int = 256, max_displacement: int = 4, mode: str = "psla",
                 query_channels: int | None = None, scaled: bool = True):
        super().__init__()
        self.scaled = scaled
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.mode, self.max_displacement = mode, max_displacement
        self.f = nn.Conv2d(channels, embed_dim, 1)  # embeds F_t (the map that is propagated)
        self.g = nn.Conv2d(query_channels or channels, embed_dim, 1)  # embeds F_{t+e} (the target frame)
        if mode == "psla":
            self.register_buffer("offsets", sparse_offsets(max_displacement), persistent=False)
        elif mode in ("dense", "matchtrans"):
            self.register_buffer("offsets", dense_offsets(max_displacement), persistent=False)

    def embed(self, query_map: Tensor, F_t: Tensor) -> tuple[Tensor, Tensor]:
        q, k = self.g(query_map), self.f(F_t)  # (B, c, h, w) each
        if self.mode == "matchtrans":  # non-negative features, as STMN's post-ReLU maps
            q, k = F.relu(q), F.relu(k)
        return q, k

    def weights(self, query_map: Tensor, F_t: Tensor) -> Tensor:
        """Correspondence weights c^ (Tensor[B, K, h, w]) over ``self.offsets`` (local modes only)."""
        if self.mode == "nonlocal":
            raise ValueError("nonlocal weights cover the whole map; use nonlocal_attention")
        q, k = self.embed(query_map, F_t)
        return local_weights(q, k, self.offsets, "sum" if self.mode == "matchtrans" else "softmax", self.scaled)

    def forward(self, query_map: Tensor, F_t: Tensor) -> Tensor:
        """
        Args:
            query_map (Tensor[B, C_q, h, w]): F_{t+e}, the frame F_t is aligned with
            F_t (Tensor[B, C, h, w]): the map to propagate
        Returns:
            Tensor[B, C, h, w]: F^_{t+e}, Eq. (5)
        """
        if self.mode == "nonlocal":
            return nonlocal_attention(*self.embed(query_map, F_t), F_t)
        return aggregate(self.weights(query_map, F_t), F_t, self.offsets)
