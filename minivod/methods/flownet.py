"""A small PWC-Net-style optical-flow network for SSVD's motion stream (SSVD Sec. III-B).

PWC-Net (Sun et al., CVPR 2018) estimates flow coarse to fine over a feature
pyramid. At each level it warps the second frame's features by the upsampled
flow of the level above, builds a *cost volume* by correlating them with the
first frame's features over a small window of displacements, and lets a few
convolutions read (cost volume, features, upsampled flow) to refine the flow.
SSVD keeps the flows of the last four levels, one per FPN level P3-P6 (the
refinement network is removed), and halves the input frames so that these
flows have the strides 8..64 of P3..P6.

Conventions here:

- a flow ``m`` from the reference frame to a support frame is a backward flow:
  the reference's content at pixel ``p`` is found at ``p + m(p)`` in the
  support frame, so ``warp(support, m)`` predicts the reference (as
  ``minivod.data.synthetic.gt_flow`` / ``warp_backward`` for frames t, t + 1);
- flows are in input-frame pixels at every level; ``warp`` of a map of stride
  ``s`` takes the flow divided by ``s`` (cells of that map);
- the cost volume correlates L2-normalised features (cosine similarities in
  [-1, 1]) where PWC-Net correlates raw ones: trained from scratch for a few
  minutes on data_small, raw correlations stay ~1e-2, the estimators learn to
  ignore them, and the flow never leaves zero (moving-pixel EPE equal to the zero
  flow's after 1500 iterations); with cosine costs it starts to learn within a
  few hundred iterations.

Its pre-training on data_small's ground-truth flow (the stand-in for SSVD's
Flying Chairs pre-training) and its end-point error are in ``flow_pretrain.py``;
the ground-truth pairs are ``minivod.data.flow_pairs``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

FLOW_STRIDES = (8, 16, 32, 64)  # P3..P6


# --------------------------------------------------------------------------- the two operators
def warp(features: Tensor, flow: Tensor) -> Tensor:
    """Bilinear backward warping W(f, m) of SSVD Eq. (1): ``out(p) = f(p + m(p))``, zeros outside.

    Args:
        features (Tensor[N, C, h, w]): maps to warp (a support frame's)
        flow (Tensor[N, 2, h, w]): (dx, dy) in cells of this map
    Returns:
        Tensor[N, C, h, w]
    """
    N, _, h, w = features.shape
    ys = torch.arange(h, device=flow.device, dtype=flow.dtype) + 0.5  # cell centres, as in warp_backward
    xs = torch.arange(w, device=flow.device, dtype=flow.dtype) + 0.5
    x = xs.view(1, 1, w) + flow[:, 0]  # (N, h, w)
    y = ys.view(1, h, 1) + flow[:, 1]  # (N, h, w)
    grid = torch.stack([x / w * 2 - 1, y / h * 2 - 1], dim=-1)  # (N, h, w, 2), align_corners=False
    return F.grid_sample(features, grid.to(features.dtype), mode="bilinear", padding_mode="zeros",
                         align_corners=False)


def correlation(f1: Tensor, f2: Tensor, max_displacement: int) -> Tensor:
    """PWC-Net's cost volume: ``cv(p, d) = <f1(p), f2(p + d)> / C`` for ``d`` in ``[-r, r]^2``.

    Args:
        f1, f2 (Tensor[N, C, h, w]): reference features and (warped) support features
        max_displacement (int): r
    Returns:
        Tensor[N, (2r+1)^2, h, w], displacement ``(dy, dx)`` at channel ``(dy + r) * (2r + 1) + dx + r``
    """
    r = max_displacement
    N, C, h, w = f1.shape
    padded = F.pad(f2, (r, r, r, r))  # (N, C, h + 2r, w + 2r), zeros outside
    costs = [(f1 * padded[:, :, dy:dy + h, dx:dx + w]).mean(dim=1)  # (N, h, w)
             for dy in range(2 * r + 1) for dx in range(2 * r + 1)]
    return torch.stack(costs, dim=1)  # (N, (2r+1)^2, h, w)


# --------------------------------------------------------------------------- the network
@dataclass
class FlowConfig:
    """pyramid_channels: channels of the 5 extractor groups (strides 4..64 of the input frame)
    estimator_channels: hidden channels of each level's flow estimator
    max_displacement: r of the cost volume (PWC-Net: 4)
    """

    pyramid_channels: tuple[int, ...] = (16, 32, 64, 96, 128)
    estimator_channels: int = 64
    max_displacement: int = 4

    @staticmethod
    def tiny() -> "FlowConfig":
        return FlowConfig(pyramid_channels=(8, 16, 24, 32, 48), estimator_channels=32, max_displacement=2)


def _conv(c_in: int, c_out: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, padding=dilation, dilation=dilation),
                         nn.LeakyReLU(0.1))


class PWCFlow(nn.Module):
    """Feature pyramid (per frame, cacheable) and coarse-to-fine flow estimation (per pair).

    ``pyramid(batch)`` takes normalised frames (N, 3, H, W), halves them (SSVD Sec. III-B) and
    returns the features at strides 8, 16, 32, 64; ``forward(ref_pyramid, support_pyramid)``
    returns the flows m^(t, t+tau) on P3..P6, in input pixels.
    """

    def __init__(self, cfg: FlowConfig):
        super().__init__()
        self.cfg = cfg
        chans = (3,) + tuple(cfg.pyramid_channels)
        self.extractor = nn.ModuleList(  # each group: a stride-2 conv and a conv
            nn.Sequential(_conv(chans[i], chans[i + 1], stride=2), _conv(chans[i + 1], chans[i + 1]))
            for i in range(len(cfg.pyramid_channels)))
        cost = (2 * cfg.max_displacement + 1) ** 2
        hidden = cfg.estimator_channels
        self.estimators = nn.ModuleList(  # one per level P3..P6; a dilated conv widens the context
            nn.Sequential(_conv(cost + c + 2, hidden), _conv(hidden, hidden, dilation=2),
                          _conv(hidden, hidden // 2), nn.Conv2d(hidden // 2, 2, 3, padding=1))
            for c in cfg.pyramid_channels[1:])
        for est in self.estimators:  # start at "no residual motion"
            nn.init.zeros_(est[-1].weight)
            nn.init.zeros_(est[-1].bias)

    def pyramid(self, batch: Tensor) -> list[Tensor]:
        """batch (N, 3, H, W) -> features at strides 8, 16, 32, 64: (N, C_l, ~H/s, ~W/s)."""
        x = F.interpolate(batch, scale_factor=0.5, mode="bilinear", align_corners=False)  # (N, 3, H/2, W/2)
        levels = []
        for group in self.extractor:
            x = group(x)
            levels.append(x)
        return levels[1:]  # the stride-4 group only feeds the next

    def forward(self, ref: list[Tensor], support: list[Tensor]) -> list[Tensor]:
        """
        Args:
            ref, support (list[Tensor[N, C_l, h_l, w_l]]): pyramids of N (reference, support) pairs
        Returns:
            list[Tensor[N, 2, h_l, w_l]]: flows on P3..P6 (dx, dy), in input-frame pixels
        """
        flows = [None] * len(ref)
        flow = None
        for level in reversed(range(len(ref))):  # coarse (P6) to fine (P3)
            f1, f2, stride = ref[level], support[level], FLOW_STRIDES[level]
            if flow is None:
                up = f1.new_zeros(f1.shape[0], 2, *f1.shape[-2:])  # (N, 2, h, w)
            else:  # pixels stay pixels when the grid is upsampled
                up = F.interpolate(flow, size=f1.shape[-2:], mode="bilinear", align_corners=False)
            warped = warp(f2, up / stride)  # support features moved by the flow so far
            C = f1.shape[1]  # a cosine cost volume (see the module docstring): values in [-1, 1]
            cost = correlation(F.normalize(f1, dim=1), F.normalize(warped, dim=1), self.cfg.max_displacement) * C
            residual = self.estimators[level](torch.cat([cost, f1, up / stride], dim=1))  # (N, 2, h, w) cells
            flow = up + residual * stride
            flows[level] = flow
        return flows


# --------------------------------------------------------------------------- reading the flow
def full_resolution(flow_p3: Tensor, size) -> Tensor:
    """The P3 flow (N, 2, h, w) upsampled to (N, 2, H, W), pixels unchanged (the flow the notebook shows)."""
    return F.interpolate(flow_p3, size=size, mode="bilinear", align_corners=False)
