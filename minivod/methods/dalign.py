"""DAlign: deformable feature alignment of support frames to the reference (MST, Sec. III-B).

Objects move between frames, so the support feature map F_tau is not aligned
with the reference map F_t. DAlign learns, at every position p_0 of the
reference grid, where to read F_tau (Fig. 3)::

    Theta   = f_theta(F_t, F_tau)                                     MST Eq. (1)
    F'_tau(p_0) = sum_{p_n in R} w(p_n) F_tau(p_0 + p_n + dp_n)        MST Eq. (2)
    F'      = N_ali(F)                                                MST Eq. (3)

with R the 3 x 3 grid {(-1, -1), ..., (1, 1)} and Theta = {dp_n} fractional
offsets, read by bilinear interpolation: a deformable convolution
(``torchvision.ops.deform_conv2d``). As the paper does "in practice", two
deformable layers on the concatenated [F_t, F_tau] predict Theta and two
deformable layers read F_tau with it.

Choices the paper leaves open:

- A deformable layer needs offsets to run. Each of the two offset-predicting
  layers takes its own from a plain 3x3 convolution of its input, the usual DCN
  form (``DeformBlock``); those convolutions start at zero, so the layers start
  as plain convolutions.
- For speed on a CPU, the concatenated [F_t, F_tau] is first reduced to ``hidden``
  channels by a 1x1 convolution, and each aligning layer is a grouped convolution
  with one group per offset group (the channels that move together are mixed
  together); the paper's DAlign is also much smaller than a full C -> C layer
  (1.96 M parameters on 1024-channel conv4, Table IV).
- Theta holds one set of offsets per aligning layer (with ``offset_groups``
  groups of channels each moving on their own); the layer that outputs Theta
  starts at zero, so DAlign starts with zero offsets.
- The aligning layers start as the identity (a Dirac kernel), so before training
  F'_tau = F_tau and MST starts from its aggregation modules alone.
- The reference is "aligned" to itself too (F'_t = N_ali(F_t, F_t)): every frame
  the later modules compare then went through the same layers.

``FlowAlign`` is the flow-based alternative of Table IV, a small FlowNetS-like
network on [F_t, F_tau] that predicts one displacement per position and warps
F_tau bilinearly (``grid_sample``), as FGFA/DFF do with FlowNet.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import DeformConv2d

from minivod.models.deform_conv import deform_conv2d


def read_shift(theta: Tensor) -> Tensor:
    """Where DAlign reads the support, relative to p_0: Tensor[N, 2, h, w] as (dy, dx) in map cells.

    ``theta (Tensor[N, L, G, k*k, 2, h, w])`` as ``DAlign.offsets`` returns it. The offsets dp_n of
    Eq. (2), averaged over the G groups and the k*k taps, summed over the L stacked aligning layers
    (each reads the previous one's output, so their shifts add up). Exact when every tap of a layer
    shares one offset and the kernels are the identity (a Dirac kernel, DAlign's start); for trained
    kernels a summary of where the aligned map looks.
    """
    return theta.mean(dim=(2, 3)).sum(dim=1)  # (N, L, G, k*k, 2, h, w) -> (N, 2, h, w)


class DeformBlock(nn.Module):
    """A deformable convolution whose offsets come from a plain convolution of its own input.

    Args:
        in_channels, out_channels (int); kernel_size (int): k of the k x k kernel
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3):
        super().__init__()
        pad = kernel_size // 2
        self.offset = nn.Conv2d(in_channels, 2 * kernel_size * kernel_size, kernel_size, padding=pad)
        nn.init.zeros_(self.offset.weight)  # starts as a plain convolution
        nn.init.zeros_(self.offset.bias)
        self.deform = DeformConv2d(in_channels, out_channels, kernel_size, padding=pad)

    def forward(self, x: Tensor) -> Tensor:
        """x (Tensor[N, C_in, h, w]) -> Tensor[N, C_out, h, w]."""
        conv = self.deform
        return deform_conv2d(x, self.offset(x), conv.weight, conv.bias, conv.padding[0])  # offsets (N, 2*k*k, h, w)


class DAlign(nn.Module):
    """Aligns every frame of a clip to its reference: ``(B, T, C, h, w) -> (B, T, C, h, w)``.

    Args:
        channels (int): C of the frame maps
        hidden (int): channels of the offset branch (None: C // 4)
        offset_groups (int): G, channel groups with their own offsets
        num_layers (int): deformable layers in each branch (2 in the paper)
        kernel_size (int): 3 (the grid R of Eq. 1)
    """

    def __init__(self, channels: int, hidden: int | None = None, offset_groups: int = 4, num_layers: int = 2,
                 kernel_size: int = 3):
        super().__init__()
        if channels % offset_groups:
            raise ValueError(f"channels ({channels}) must divide into {offset_groups} offset groups")
        hidden = hidden or channels // 4
        k, pad = kernel_size, kernel_size // 2
        self.num_layers, self.offset_groups, self.kernel_size = num_layers, offset_groups, k
        theta_channels = num_layers * offset_groups * 2 * k * k  # one offset set per aligning layer
        # f_theta of Eq. (1): a 1x1 reduction of the concatenated [F_t, F_tau], then deformable layers
        self.reduce = nn.Conv2d(2 * channels, hidden, 1)
        dims = [hidden] * num_layers + [theta_channels]
        self.offset_layers = nn.ModuleList(DeformBlock(a, b, k) for a, b in zip(dims[:-1], dims[1:]))
        nn.init.zeros_(self.offset_layers[-1].deform.weight)  # Theta starts at zero
        nn.init.zeros_(self.offset_layers[-1].deform.bias)
        # Eq. (2): deformable layers on F_tau, read at the offsets Theta
        self.align_layers = nn.ModuleList(DeformConv2d(channels, channels, k, padding=pad, groups=offset_groups)
                                          for _ in range(num_layers))
        for layer in self.align_layers:
            nn.init.dirac_(layer.weight, groups=offset_groups)  # starts as the identity
            nn.init.zeros_(layer.bias)

    def offsets(self, ref: Tensor, support: Tensor) -> Tensor:
        """Theta of Eq. (1) for pairs ``ref, support (Tensor[N, C, h, w])``: Tensor[N, L, G, k*k, 2, h, w].

        L aligning layers, G offset groups, k*k kernel taps p_n, and (dy, dx) in map cells
        (torchvision's order) at every reference position p_0.
        """
        x = F.relu(self.reduce(torch.cat([ref, support], dim=1)))  # (N, 2C, h, w) -> (N, hidden, h, w)
        for i, layer in enumerate(self.offset_layers):
            x = layer(x)
            if i < len(self.offset_layers) - 1:
                x = F.relu(x)
        N, _, h, w = x.shape
        k2 = self.kernel_size ** 2
        return x.view(N, self.num_layers, self.offset_groups, k2, 2, h, w)  # (N, L*G*k*k*2, h, w) -> split

    def align(self, support: Tensor, theta: Tensor) -> Tensor:
        """Eq. (2): F'_tau from ``support (Tensor[N, C, h, w])`` and ``theta`` as ``offsets`` returns."""
        x = support
        for i, layer in enumerate(self.align_layers):
            offsets = theta[:, i].flatten(1, 3)  # (N, G, k*k, 2, h, w) -> (N, G*k*k*2, h, w)
            x = deform_conv2d(x, offsets, layer.weight, layer.bias, layer.padding[0])  # Eq. (2)
            if i < len(self.align_layers) - 1:
                x = F.relu(x)
        return x

    def forward(self, maps: Tensor) -> Tensor:
        """
        Args:
            maps (Tensor[B, T, C, h, w]): frame maps of B clips, frame 0 the reference
        Returns:
            Tensor[B, T, C, h, w]: every frame aligned to its clip's reference, Eq. (3)
        """
        B, T = maps.shape[:2]
        ref = maps[:, :1].expand_as(maps).flatten(0, 1)  # the reference beside each frame: (B*T, C, h, w)
        frames = maps.flatten(0, 1)  # (B*T, C, h, w)
        aligned = self.align(frames, self.offsets(ref, frames))  # (B*T, C, h, w)
        return aligned.unflatten(0, (B, T))  # (B, T, C, h, w)


class FlowAlign(nn.Module):
    """Table IV's flow-based alignment: a small FlowNetS-like net predicts a flow field and F_tau is warped.

    ``(B, T, C, h, w) -> (B, T, C, h, w)``; the flow starts at zero (identity warp).

    Args:
        channels (int): C of the frame maps
        hidden (int): width of the flow network (None: C // 2)
    """

    def __init__(self, channels: int, hidden: int | None = None):
        super().__init__()
        hidden = hidden or channels // 2
        self.flow_net = nn.Sequential(
            nn.Conv2d(2 * channels, hidden, 3, padding=1), nn.ReLU(),
            nn.Conv2d(hidden, hidden, 3, padding=2, dilation=2), nn.ReLU(),  # a wider view for larger motions
            nn.Conv2d(hidden, 2, 3, padding=1),
        )
        nn.init.zeros_(self.flow_net[-1].weight)
        nn.init.zeros_(self.flow_net[-1].bias)

    def flow(self, ref: Tensor, support: Tensor) -> Tensor:
        """Displacement (dx, dy) in map cells at every reference position: Tensor[N, 2, h, w]."""
        return self.flow_net(torch.cat([ref, support], dim=1))  # (N, 2C, h, w) -> (N, 2, h, w)

    @staticmethod
    def warp(support: Tensor, flow: Tensor) -> Tensor:
        """Bilinear read of ``support (Tensor[N, C, h, w])`` at p_0 + flow(p_0)."""
        N, _, h, w = support.shape
        ys, xs = torch.meshgrid(torch.arange(h, device=flow.device, dtype=flow.dtype),
                                torch.arange(w, device=flow.device, dtype=flow.dtype), indexing="ij")  # (h, w) each
        x = xs + flow[:, 0]  # (N, h, w)
        y = ys + flow[:, 1]  # (N, h, w)
        grid = torch.stack([2 * x / max(w - 1, 1) - 1, 2 * y / max(h - 1, 1) - 1], dim=-1)  # (N, h, w, 2) in [-1, 1]
        return F.grid_sample(support, grid.to(support.dtype), align_corners=True)  # (N, C, h, w)

    def forward(self, maps: Tensor) -> Tensor:
        """maps (Tensor[B, T, C, h, w]) -> every frame warped to its clip's reference (B, T, C, h, w)."""
        B, T = maps.shape[:2]
        ref = maps[:, :1].expand_as(maps).flatten(0, 1)  # (B*T, C, h, w)
        frames = maps.flatten(0, 1)  # (B*T, C, h, w)
        return self.warp(frames, self.flow(ref, frames)).unflatten(0, (B, T))  # (B, T, C, h, w)
