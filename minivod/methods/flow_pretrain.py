"""Pre-training of SSVD's flow network on data_small's ground-truth flow, and its end-point error.

SSVD pre-trains its PWC-Net on Flying Chairs before the detector is trained;
here the stand-in is data_small's ground-truth flow between frames of one video
(``minivod.data.flow_pairs``). The network (``flownet.py``) is trained alone
with PWC-Net's multi-scale end-point-error (EPE) loss, and measured by the EPE
of its P3 flow upsampled to full resolution. SSVD's ``prepare`` hook
(``ssvd.prepare_flow``) runs it before the detector's training.
"""
from __future__ import annotations

import time
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm import tqdm

from minivod.data.flow_pairs import FlowPairs

from .flownet import FLOW_STRIDES, PWCFlow, full_resolution


# --------------------------------------------------------------------------- the multi-scale loss
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


# --------------------------------------------------------------------------- the metric and the training
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
