"""Deformable convolution (stride 1, no dilation, no mask) with a faster CPU path.

Both DAlign (MST Eq. 2) and SSVD's feature alignment read a map at fractional
positions p_0 + p_n + dp_n for each tap p_n of a k x k kernel, which is
``torchvision.ops.deform_conv2d``. On a GPU this module calls torchvision. On a CPU
torchvision's backward pass takes about half of an MST or SSVD training step, so
there the same operation is written with ``grid_sample``: read every tap
bilinearly (zero outside the map, as torchvision does), then apply the kernel
as one matrix product per weight group. ``tests/test_mst.py`` and
``tests/test_ssvd.py`` check that both paths agree in values and gradients.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
import torchvision
from torch import Tensor


def deform_conv2d(x: Tensor, offset: Tensor, weight: Tensor, bias: Tensor | None, padding: int) -> Tensor:
    """``torchvision.ops.deform_conv2d`` (stride 1, no dilation, no mask): torchvision's kernel on the GPU.

    On the CPU the same operation written with ``grid_sample`` (the bilinear read at
    p_0 + p_n + dp_n for every tap p_n, MST Eq. 2, then the k x k weights as one matrix product)
    trains about twice as fast as torchvision's CPU backward.

    Args:
        x (Tensor[N, C, h, w]); offset (Tensor[N, G*k*k*2, h, w]) as (dy, dx) per group and tap;
        weight (Tensor[C_out, C / groups, k, k]); bias (Tensor[C_out] or None); padding (int): k // 2
    Returns:
        Tensor[N, C_out, h, w]
    """
    if x.is_cuda:
        return torchvision.ops.deform_conv2d(x, offset, weight, bias, padding=padding)
    N, C, h, w = x.shape
    C_out, C_per_group, kh, kw = weight.shape
    groups, K = C // C_per_group, kh * kw
    G = offset.shape[1] // (2 * K)  # offset groups
    off = offset.view(N, G, K, 2, h, w)  # (N, G*K*2, h, w) -> (N, G, K, 2, h, w)
    ty, tx = torch.meshgrid(torch.arange(kh, device=x.device, dtype=x.dtype) - padding,
                            torch.arange(kw, device=x.device, dtype=x.dtype) - padding, indexing="ij")  # p_n
    py = torch.arange(h, device=x.device, dtype=x.dtype).view(h, 1) + ty.reshape(K, 1, 1) + off[:, :, :, 0]
    px = torch.arange(w, device=x.device, dtype=x.dtype).view(1, w) + tx.reshape(K, 1, 1) + off[:, :, :, 1]
    # p_0 + p_n + dp_n (MST Eq. 2): (N, G, K, h, w) each, to grid_sample's [-1, 1]
    grid = torch.stack([2 * px / max(w - 1, 1) - 1, 2 * py / max(h - 1, 1) - 1], dim=-1)  # (N, G, K, h, w, 2)
    sampled = F.grid_sample(x.reshape(N * G, C // G, h, w), grid.reshape(N * G, K * h, w, 2),
                            align_corners=True)  # bilinear, zero outside: (N*G, C/G, K*h, w)
    cols = sampled.view(N, groups, C_per_group * K, h * w).transpose(0, 1)  # (groups, N, C/groups*K, hw)
    cols = cols.transpose(1, 2).reshape(groups, C_per_group * K, N * h * w)  # (groups, C/groups*K, N*hw)
    # the sum over p_n (MST Eq. 2), with w(p_n) as one matrix per group: (groups, C_out/groups, N*hw)
    out = weight.view(groups, C_out // groups, C_per_group * K) @ cols
    out = out.view(C_out, N, h, w).transpose(0, 1)  # (N, C_out, h, w)
    return out if bias is None else out + bias.view(1, C_out, 1, 1)
