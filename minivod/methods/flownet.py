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

The bottom of the file pre-trains the network on data_small's ground-truth flow
(``minivod.data.flow_pairs``, the stand-in for SSVD's Flying Chairs
pre-training) and measures its end-point error (EPE).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm import tqdm

from minivod.data.flow_pairs import FlowPairs

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


# --------------------------------------------------------------------------- pre-training
def level_targets(flow: Tensor, valid: Tensor, stride: int, size) -> tuple[Tensor, Tensor]:
    """Ground truth on a level of ``stride``: the mean valid flow of each s x s cell, and the cells
    at least half valid. flow (N, 2, H, W), valid (N, H, W) -> (N, 2, h, w), (N, h, w)."""
    h, w = size
    pad = (0, w * stride - flow.shape[-1], 0, h * stride - flow.shape[-2])
    v = F.pad(valid.float()[:, None], pad)  # (N, 1, h*s, w*s)
    m = F.avg_pool2d(v, stride)  # (N, 1, h, w) fraction of valid pixels
    f = F.avg_pool2d(F.pad(flow, pad) * v, stride) / m.clamp(min=1e-6)  # (N, 2, h, w)
    return f, m[:, 0] >= 0.5


def multiscale_epe_loss(flows: list[Tensor], flow: Tensor, valid: Tensor, weights=(1.0, 0.5, 0.25, 0.125),
                        static_weight: float = 0.3, moving: float = 0.5) -> Tensor:
    """PWC-Net's multi-scale loss (weighted EPE in pixels on P3..P6), with moving and static cells
    averaged apart: on data_small ~97% of the cells are static background, and a plain mean EPE
    is minimised by predicting no motion anywhere (the network then never learns to see motion).
    Each level adds mean EPE over cells moving more than ``moving`` px + ``static_weight`` x that
    over static cells."""
    loss = flow.new_zeros(())
    for pred, stride, weight in zip(flows, FLOW_STRIDES, weights):
        target, mask = level_targets(flow, valid, stride, pred.shape[-2:])
        epe = (pred - target).norm(dim=1)  # (N, h, w)
        is_moving = mask & (target.norm(dim=1) > moving)
        is_static = mask & ~is_moving
        loss = loss + weight * ((epe * is_moving).sum() / is_moving.sum().clamp(min=1)
                                + static_weight * (epe * is_static).sum() / is_static.sum().clamp(min=1))
    return loss


def full_resolution(flow_p3: Tensor, size) -> Tensor:
    """The P3 flow (N, 2, h, w) upsampled to (N, 2, H, W), pixels unchanged (the flow the notebook shows)."""
    return F.interpolate(flow_p3, size=size, mode="bilinear", align_corners=False)


@torch.no_grad()
def flow_epe(flownet: PWCFlow, normalise, pairs: FlowPairs, window: int, num_pairs: int = 200, seed: int = 0,
             device="cpu", batch: int = 16) -> dict:
    """End-point error of the P3 flow upsampled to full resolution on ``num_pairs`` fixed pairs.

    Returns the EPE over valid pixels (``epe``), over moving pixels (|flow| > 0.5, ``epe_moving``),
    both for the zero flow (what the motion stream would do without a flow network), and on moving
    pixels for the ground truth itself pooled to P3 and upsampled (``oracle_epe_moving``: the best a
    flow at stride 8 can do).
    """
    rng = np.random.default_rng(seed)
    flownet.eval()
    sums = dict(epe=0.0, epe_moving=0.0, zero_epe=0.0, zero_epe_moving=0.0, oracle_epe_moving=0.0, pixels=0,
                moving_pixels=0)
    for k in range(0, num_pairs, batch):
        images, flow, valid = pairs.sample(rng, min(batch, num_pairs - k), window)
        images, flow, valid = images.to(device), flow.to(device), valid.to(device)
        pyr = flownet.pyramid(normalise(images.flatten(0, 1)))  # from (n*2, 3, H, W)
        ref = [p[0::2] for p in pyr]
        sup = [p[1::2] for p in pyr]
        pred_p3 = flownet(ref, sup)[0]  # (n, 2, h, w)
        pred = full_resolution(pred_p3, flow.shape[-2:])  # (n, 2, H, W)
        err, zero = (pred - flow).norm(dim=1), flow.norm(dim=1)  # (n, H, W)
        moving = valid & (zero > 0.5)
        oracle = full_resolution(level_targets(flow, valid, FLOW_STRIDES[0], pred_p3.shape[-2:])[0], flow.shape[-2:])
        sums["oracle_epe_moving"] += float((oracle - flow).norm(dim=1)[moving].sum())
        sums["epe"] += float(err[valid].sum())
        sums["zero_epe"] += float(zero[valid].sum())
        sums["epe_moving"] += float(err[moving].sum())
        sums["zero_epe_moving"] += float(zero[moving].sum())
        sums["pixels"] += int(valid.sum())
        sums["moving_pixels"] += int(moving.sum())
    out = {k: sums[k] / max(1, sums["moving_pixels" if "moving" in k else "pixels"])
           for k in ("epe", "epe_moving", "zero_epe", "zero_epe_moving", "oracle_epe_moving")}
    out.update(pairs=num_pairs, window=window)
    return out


def pretrain_flow(flownet: PWCFlow, normalise, data_root, device="cpu", iters: int = 1500, batch: int = 8,
                  lr: float = 1e-3, window: int = 8, seed: int = 0, progress: bool = True,
                  log_path=None, max_videos: Optional[int] = None, epe_pairs: int = 200) -> dict:
    """Train ``flownet`` alone on data_small's ground-truth flow (pairs within +-window frames).

    ``normalise`` maps frames (N, 3, H, W) in [0, 1] to the detector's input (its ``FrameTransform``).
    Adam, the multi-scale EPE loss, lr dropped 10x for the last fifth. Returns the iterations,
    seconds, final training loss and the EPE on ``epe_pairs`` fixed pairs of the val split.
    """
    pairs = FlowPairs(data_root, "train", max_videos)
    rng = np.random.default_rng(seed)
    opt = torch.optim.Adam(flownet.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, [int(0.8 * iters)], 0.1)
    flownet.train()
    start, losses = time.time(), []
    log = open(log_path, "w") if log_path else None
    for it in tqdm(range(iters), desc="pre-train flow", disable=not progress):
        images, flow, valid = pairs.sample(rng, batch, window)
        images, flow, valid = images.to(device), flow.to(device), valid.to(device)
        pyr = flownet.pyramid(normalise(images.flatten(0, 1)))  # from (n*2, 3, H, W)
        flows = flownet([p[0::2] for p in pyr], [p[1::2] for p in pyr])
        loss = multiscale_epe_loss(flows, flow, valid)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(flownet.parameters(), 5.0)
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        if log and it % 50 == 0:
            log.write(f"{it} {np.mean(losses[-50:]):.4f}\n")
    if log:
        log.close()
    val = FlowPairs(data_root, "val", max_videos)
    result = {"flow_iters": iters, "flow_seconds": time.time() - start,
              "flow_train_loss": float(np.mean(losses[-50:])),
              **{f"val_{k}": v for k, v in flow_epe(flownet, normalise, val, window, epe_pairs, device=device).items()}}
    flownet.train()
    return result
