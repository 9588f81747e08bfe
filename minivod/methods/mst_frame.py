"""MST's frame-level aggregation (Sec. III-C, Eq. 4-6): attention over the positions of all frames.

Every position of every (aligned) frame map F'_tau is a token; each token looks
at the positions of all frames of its clip::

    Q, K, V = M_q(F'), M_k(F'), M_v(F')                 1x1 convolutions   MST Eq. (4)
    A       = softmax(Q K^T / sqrt(d_k))                over T*h*w keys    MST Eq. (5)
    F''     = A V + F'                                  a residual         MST Eq. (6)

with H heads: Q and K are split into H slices of d_k channels, V into H slices
of C / H channels, and the heads' outputs are concatenated back to C channels.

``query="all"`` (the paper's choice, Table IX) updates every frame: the
supports are enhanced too, which the proposal-level step then reads.
``query="ref"`` updates the reference frame only (the supports pass unchanged);
the keys and values are the same in both modes.

Unlike DSFNet's channel-wise fusion, the tokens here are positions: the
attention map of one reference position is a (T, h, w) picture of where in the
clip it reads from (``attention`` returns it; ``forward`` computes the same
thing with ``scaled_dot_product_attention``, which never stores the T*hw x T*hw
matrix).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class FrameAttention(nn.Module):
    """Multi-head attention over all positions of all frames, a ``frame_aggregator``: (B, T, C, h, w) -> same.

    Args:
        channels (int): C of the frame maps
        num_heads (int): H
        key_dim (int): channels of Q and K over all heads (None: min(C, 256))
        query (str): "all" (every frame is updated) or "ref" (only frame 0)
    """

    def __init__(self, channels: int, num_heads: int = 8, key_dim: int | None = None, query: str = "all"):
        super().__init__()
        key_dim = key_dim or min(channels, 256)
        if channels % num_heads or key_dim % num_heads:
            raise ValueError(f"channels ({channels}) and key_dim ({key_dim}) must divide into {num_heads} heads")
        if query not in ("all", "ref"):
            raise ValueError(f"query must be 'all' or 'ref', got {query!r}")
        self.num_heads, self.query = num_heads, query
        self.M_q = nn.Conv2d(channels, key_dim, 1)  # MST Eq. (4)
        self.M_k = nn.Conv2d(channels, key_dim, 1)
        self.M_v = nn.Conv2d(channels, channels, 1)

    def _tokens(self, conv: nn.Conv2d, maps: Tensor) -> Tensor:
        """conv on every frame, then one token per position and head: Tensor[B, H, T*h*w, D/H]."""
        B, T, _, h, w = maps.shape
        x = conv(maps.flatten(0, 1))  # (B*T, D, h, w)
        x = x.view(B, T, self.num_heads, -1, h * w)  # (B, T, H, D/H, hw)
        return x.permute(0, 2, 1, 4, 3).flatten(2, 3)  # (B, H, T, hw, D/H) -> (B, H, T*hw, D/H)

    def _qkv(self, maps: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        queries = maps if self.query == "all" else maps[:, :1]  # (B, T_q, C, h, w)
        return self._tokens(self.M_q, queries), self._tokens(self.M_k, maps), self._tokens(self.M_v, maps)

    def attention(self, maps: Tensor) -> Tensor:
        """A of Eq. (5): Tensor[B, H, T_q*h*w, T*h*w], rows (frame, y, x) of the queries, columns of all frames."""
        q, k, _ = self._qkv(maps)  # (B, H, T_q*hw, dk), (B, H, T*hw, dk)
        return (q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])).softmax(dim=-1)  # MST Eq. (5)

    def forward(self, maps: Tensor) -> Tensor:
        """
        Args:
            maps (Tensor[B, T, C, h, w]): (aligned) frame maps of B clips, frame 0 the reference
        Returns:
            Tensor[B, T, C, h, w]: F'' of Eq. (6) (frames 1.. unchanged when ``query="ref"``)
        """
        B, T, C, h, w = maps.shape
        q, k, v = self._qkv(maps)  # (B, H, T_q*hw, dk), (B, H, T*hw, dk), (B, H, T*hw, C/H)
        out = F.scaled_dot_product_attention(q, k, v.to(q.dtype))  # A V, Eq. (5)-(6): (B, H, T_q*hw, C/H)
        T_q = out.shape[2] // (h * w)
        out = out.unflatten(2, (T_q, h * w))  # (B, H, T_q, hw, C/H)
        out = out.permute(0, 2, 1, 4, 3).reshape(B, T_q, C, h, w)  # (B, T_q, H, C/H, hw) -> (B, T_q, C, h, w)
        fused = maps[:, :T_q] + out.to(maps.dtype)  # MST Eq. (6): F'' = AV + F'
        if T_q == T:
            return fused
        return torch.cat([fused, maps[:, T_q:]], dim=1)  # query-ref: supports unchanged, (B, T, C, h, w)
