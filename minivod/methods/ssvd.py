"""SSVD: Single Shot Video Object Detector (Deng et al., IEEE TMM).

A one-stage detector (``minivod.models.one_stage``: FPN P3-P6, class and box
subnets, focal loss) whose reference-frame maps are aggregated from nearby
frames by two streams before the subnets:

1. Motion stream (Sec. III-B). A PWC-Net-style network (``flownet.py``) gives
   the flow m^(t,t+tau) on every level; each support frame's map is warped to
   the reference and the frames are averaged:
       f^(t+tau->t) = W(f^(t+tau), m^(t,t+tau))                 SSVD Eq. (1)
       f_hat = sum_tau f^(t+tau->t) / (2K + 1)                   SSVD Eq. (2)
2. Sampling stream (Sec. III-C). A U-Net offset predictor N_off reads the
   concatenated (reference, support) maps and gives the offsets of a 3x3
   deformable convolution (4 deformable groups) over the support map, which
   "hallucinates" the reference; the frames are averaged:
       g^(t+tau->t) = DConv(g^(t+tau), N_off(g^t, g^(t+tau)))
       g_hat = sum_tau g^(t+tau->t) / (2K + 1)                   SSVD Eq. (3)
3. Fusion (Sec. III-D, Fig. 6): each stream has its own subnets and the boxes
   of both meet in one per-class NMS at 0.45 (late fusion, the default); or the
   two aggregated maps are concatenated before one pair of subnets (early); or
   the flow guides the sampling stream's offsets (motion-guided sampling).

Training (Algorithm 1) takes two random support frames within +-K; the model's
``set_iteration`` runs phase 1 (the still-image detector: subnets on the FPN
maps of the reference frame alone) before phase 2 (the whole SSVD). The flow
network is first pre-trained on data_small's ground-truth flow (the engine's
``prepare`` hook, ``flow_pretrain.py``; SSVD pre-trains on Flying Chairs).
Inference (Algorithm 2) keeps a buffer of the frames within +-K and aggregates
6 of them, uniformly spread, into each reference frame: ``SSVD.test_schedule``
declares the buffer (``BufferedSchedule``) and the engine runs it
(``detect_video_buffered``).

Choices the paper leaves open:

- Eq. (2)-(3) average over tau = -K..K, the reference included (Fig. 3's note);
  Algorithm 1 writes the training average over the two supports only. We
  include the reference in both, so training and testing aggregate alike; the
  reference passes the motion stream unwarped and the sampling stream through
  the deformable convolution like any support.
- One offset predictor and one deformable convolution serve all levels (like the
  subnets). Both start from PyTorch's default (random) initialisation, as the
  paper's offset predictor does (Sec. IV-B). An earlier minivod version started
  them at zero offsets and an identity convolution (plain averaging); the other
  eight taps then got almost no gradient (the trained convolution stayed an
  identity, centre weight 0.994, offsets about 0.1 cells while objects move 1.5
  cells). ``init="identity"`` (``ssvd_identity_init``) keeps it as a control.
- The flow network is fine-tuned in detector training at 1/20 of the detector's
  learning rate (``flow_lr_factor``: 0.001 against tiny's 0.02, the paper's flow
  learning rate), with no flow loss; ``ssvd_flow_full_lr`` trains it at the
  detector's rate, the earlier choice under which its end-point error on moving
  pixels worsened from 2.30 to 2.48 px.
- Each U-Net group is one 3x3 conv + ReLU; the groups are upsampled
  (bilinear) to the first group's size before the 72-filter offset layer
  (2 x 9 taps x 4 groups).
- Motion-guided sampling adds the flow (in cells) to every tap's offset, and the
  offset predictor then reads the reference and the *warped* support, so it
  predicts a residual around the flow.
- Early fusion: a 1x1 conv (2C -> C, starting as the mean) after the concatenation.
- The tiny preset shares one FPN between the streams (``separate_fpns=False``:
  half the backbone work on a CPU); the paper preset has one FPN per stream.
  With both streams late-fused, the shared FPN is trained by the motion head's loss
  only (``fpn_grad="motion"``; the sampling stream reads its maps detached), as each of the paper's FPNs is
  trained by one head. Summing both heads' losses into it (``ssvd_fpn_both``, the
  earlier default) cost 0.038 [0.013, 0.060] and 0.070 [0.037, 0.095] mAP at
  seeds 0 and 1 (95% paired bootstrap over val videos).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import DeformConv2d

from minivod.data.flow_pairs import FlowPairs
from minivod.data.sampling import BufferedSchedule
from minivod.models.base import FrameFeatures
from minivod.models.config import DetectorConfig
from minivod.models.deform_conv import deform_conv2d
from minivod.models.one_stage import LEVELS, STRIDES, OneStageDetector, build_fpn, build_one_stage

from .flow_pretrain import flow_epe, pretrain_flow
from .flownet import FlowConfig, PWCFlow, warp
from .spec import MethodSpec

SAMPLING_LEVELS = ("g3", "g4", "g5", "g6")  # the sampling stream's FPN, when it has its own
FLOW_LEVELS = ("m3", "m4", "m5", "m6")  # the flow network's per-frame pyramid
FUSIONS = ("late", "early", "motion_guided")
TINY_WINDOW = 8  # K on data_small's 48-frame videos (the paper: 12 on ImageNet VID)


@dataclass
class SSVDConfig:
    """Options of SSVD (defaults: the paper's full model, Table II (d)).

    motion, sampling: which streams aggregate (Table II (b)-(d))
    fusion: ``late`` (NMS 0.45), ``early`` (concatenation) or ``motion_guided`` (Fig. 6)
    window: K, supports come from frames t-K..t+K (training: 2 at random; testing: ``test_support``)
    test_support: support frames aggregated per reference at test time (Table V; 6)
    separate_fpns: one FPN per stream (the paper) or one shared
    offset_channels: filters of the offset predictor's convs (256)
    deformable_groups: of the deformable convolution (4)
    still_fraction: share of the iterations spent in phase 1 (the paper: 120k of 210k)
    flow: the flow network; flow_pretrain_iters: its pre-training on ground-truth flow
    flow_epe_pairs: val pairs on which the pre-training reports the flow's end-point error
    flow_lr_factor: the flow network's learning rate in detector training, as a factor of the
        detector's (0.05: 0.001 against tiny's 0.02, the paper's flow learning rate)
    init: "random" (the paper, Sec. IV-B: the offset predictor and the deformable convolution
        start from PyTorch's default initialisation) or "identity" (the offsets start at zero and
        the deformable convolution as the identity, only its centre tap: an earlier minivod
        choice, ``ssvd_identity_init``; the other eight taps then get almost no gradient)
    phase2_stills: DET stills (one-frame clips, supports = the reference) in phase 2's batches too, as
        in phase 1 (minivod, True) or phase 2 on VID clips only (the paper's Algorithm 1, False:
        ``ssvd_vid_phase2``); a still teaches zero motion. On data_small 160 of the 760 clips of an epoch
        are stills.
    fpn_grad: which heads' losses reach a shared FPN: "both" (the sum of the two heads' losses;
        ``ssvd_fpn_both``, the control) or "motion" (the sampling stream reads the FPN maps detached,
        so the FPN is trained by one head, as each of the paper's separate FPNs is: the tiny preset's
        default wherever two late-fused streams share the FPN). Only meaningful with a shared FPN.
    """

    motion: bool = True
    sampling: bool = True
    fusion: str = "late"
    window: int = 12
    test_support: int = 6
    separate_fpns: bool = True
    offset_channels: int = 256
    deformable_groups: int = 4
    still_fraction: float = 4 / 7
    flow: FlowConfig = field(default_factory=FlowConfig)
    flow_pretrain_iters: int = 4000
    flow_epe_pairs: int = 200
    flow_lr_factor: float = 0.05
    init: str = "random"
    phase2_stills: bool = True
    fpn_grad: str = "both"

    def __post_init__(self):
        if self.fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got {self.fusion!r}")
        if not (self.motion or self.sampling):
            raise ValueError("SSVD needs at least one stream; the single-frame detector is build_one_stage")
        if self.fusion != "late" and not (self.motion and self.sampling):
            raise ValueError(f"{self.fusion} fusion needs both streams")
        if self.init not in ("random", "identity"):
            raise ValueError(f"init must be 'random' or 'identity', got {self.init!r}")
        if self.fpn_grad not in ("both", "motion"):
            raise ValueError(f"fpn_grad must be 'both' or 'motion', got {self.fpn_grad!r}")
        if self.fpn_grad == "motion" and not self.heads_share_fpn:
            raise ValueError("fpn_grad='motion' detaches the sampling stream of late fusion from a shared FPN: "
                             "it needs both streams, late fusion and separate_fpns=False")

    @property
    def heads_share_fpn(self) -> bool:
        """Two late-fused heads reading one FPN: the case where ``fpn_grad`` chooses what trains it."""
        return self.motion and self.sampling and self.fusion == "late" and not self.separate_fpns

    @staticmethod
    def for_detector(cfg: DetectorConfig, **options) -> "SSVDConfig":
        """The paper setting for ResNet-101; for the tiny preset a smaller one that trains on a CPU."""
        if cfg.backbone == "tiny":
            base = SSVDConfig(window=TINY_WINDOW, separate_fpns=False, offset_channels=64, still_fraction=1 / 3,
                              flow=FlowConfig.tiny(), flow_pretrain_iters=1500)
            opts = replace(base, **options)
            # one FPN for both heads, trained by the motion head alone (the paper's two FPNs each
            # have one head): the summed gradient of both heads cost 0.038 and 0.070 mAP at seeds
            # 0 and 1 (``ssvd_fpn_both``, docs/findings.md). A row with one head, or with one FPN per
            # stream, keeps "both"; the rows compared with ``ssvd`` (identity start, flow at full lr,
            # phase 2 on VID only) follow it.
            if "fpn_grad" not in options and opts.heads_share_fpn:
                opts = replace(opts, fpn_grad="motion")
            return opts
        return SSVDConfig(**options)


class OffsetPredictor(nn.Module):
    """N_off of SSVD Sec. III-C: a U-Net over the concatenated (reference, support) maps.

    Three conv groups, the first at the input scale and the next two each halving it; their
    outputs are upsampled to the input scale, concatenated, and a last conv gives
    2 * groups * 9 offsets (72 for 4 groups), (dy, dx) per tap as ``deform_conv2d`` reads them.
    """

    def __init__(self, in_channels: int, channels: int, deformable_groups: int = 4, kernel_size: int = 3,
                 zero_start: bool = False):
        super().__init__()
        self.group1 = nn.Sequential(nn.Conv2d(in_channels, channels, 3, padding=1), nn.ReLU(inplace=True))
        self.group2 = nn.Sequential(nn.Conv2d(channels, channels, 3, stride=2, padding=1), nn.ReLU(inplace=True))
        self.group3 = nn.Sequential(nn.Conv2d(channels, channels, 3, stride=2, padding=1), nn.ReLU(inplace=True))
        self.offsets = nn.Conv2d(3 * channels, 2 * deformable_groups * kernel_size ** 2, 3, padding=1)
        if zero_start:  # start at the regular grid (not the paper's random initialisation)
            nn.init.zeros_(self.offsets.weight)
            nn.init.zeros_(self.offsets.bias)

    def forward(self, pair: Tensor) -> Tensor:
        """pair (N, 2C, h, w) -> offsets (N, 2 * groups * 9, h, w) in cells."""
        x1 = self.group1(pair)  # (N, c, h, w)
        x2 = self.group2(x1)  # (N, c, h/2, w/2)
        x3 = self.group3(x2)  # (N, c, h/4, w/4)
        size = x1.shape[-2:]
        up = [F.interpolate(x, size=size, mode="bilinear", align_corners=False) for x in (x2, x3)]
        return self.offsets(torch.cat([x1, *up], dim=1))  # (N, 2*G*9, h, w)


class DeformConv3x3(DeformConv2d):
    """torchvision's ``DeformConv2d`` (3x3, stride 1, padding 1), with the faster CPU path of
    ``minivod.models.deform_conv`` (on a CPU torchvision's backward takes half of an SSVD step).
    ``tests/test_ssvd.py`` checks both paths agree (values and gradients)."""

    def __init__(self, channels: int):
        super().__init__(channels, channels, 3, padding=1)

    def forward(self, x: Tensor, offset: Tensor) -> Tensor:
        """x (N, C, h, w), offset (N, 2 * G * 9, h, w) as (dy, dx) per group and tap -> (N, C, h, w)."""
        return deform_conv2d(x, offset, self.weight, self.bias, padding=1)


def identity_deform_conv(channels: int) -> DeformConv3x3:
    """A 3x3 deformable convolution that starts as the identity (only the centre tap, weight I)."""
    conv = DeformConv3x3(channels)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[:, :, 1, 1] = torch.eye(channels)
        conv.bias.zero_()
    return conv


def sampling_locations(offsets: Tensor, y: int, x: int, deformable_groups: int = 4) -> Tensor:
    """Where the deformable convolution reads the support map for output cell (y, x) (Fig. 5).

    offsets (Tensor[2 * G * 9, h, w]) of one frame -> Tensor[G, 9, 2] of (x, y) cell coordinates
    (cell centres at integers): the 3x3 grid around (y, x) plus each tap's offset.
    """
    o = offsets[:, y, x].view(deformable_groups, 9, 2)  # (G, 9, (dy, dx))
    ky, kx = torch.meshgrid(torch.arange(-1, 2), torch.arange(-1, 2), indexing="ij")  # row-major taps
    grid = torch.stack([kx.flatten() + x, ky.flatten() + y], dim=-1).to(o)  # (9, (x, y))
    return grid + o.flip(-1)  # (G, 9, (x, y))


class SSVD(OneStageDetector):
    """SSVD: a one-stage detector with a motion stream and a sampling stream (see the module docstring).

    Args:
        cfg (DetectorConfig): the detector's preset
        opts (SSVDConfig, optional): default ``SSVDConfig.for_detector(cfg)``
    """

    def __init__(self, cfg: DetectorConfig, opts: Optional[SSVDConfig] = None):
        opts = opts or SSVDConfig.for_detector(cfg)
        if opts.fusion == "late":
            names = tuple(n for n, on in (("motion", opts.motion), ("sampling", opts.sampling)) if on)
        else:
            names = (opts.fusion,)
        super().__init__(cfg, num_streams=len(names))
        self.ssvd = opts
        self.stream_names = names
        C = self.opts.fpn_channels
        uses_flow = opts.motion  # the motion stream, or the flow of motion-guided sampling
        self.flownet = PWCFlow(opts.flow) if uses_flow else None
        self.fpn_sampling = build_fpn(cfg, self.opts) if opts.sampling and opts.separate_fpns else None
        if opts.sampling:
            identity = opts.init == "identity"
            self.offset_predictor = OffsetPredictor(2 * C, opts.offset_channels, opts.deformable_groups,
                                                    zero_start=identity)
            self.dconv = identity_deform_conv(C) if identity else DeformConv3x3(C)
        if opts.fusion == "early":
            self.early_reduce = nn.Conv2d(2 * C, C, 1)
            with torch.no_grad():  # starts as the mean of the two streams
                self.early_reduce.weight.copy_(torch.cat([torch.eye(C), torch.eye(C)], 1)[:, :, None, None] / 2)
                self.early_reduce.bias.zero_()
        self.still_image = False  # Algorithm 1's phase 1 (set by ``set_iteration`` while training)

    # --- Algorithm 2: the buffer the engine runs at test time ------------------------------
    def test_schedule(self) -> BufferedSchedule:
        """Frame t waits for t + K and aggregates ``test_support`` frames of the buffer t-K..t+K."""
        return BufferedSchedule(self.ssvd.window, self.ssvd.test_support)

    def lr_factors(self) -> dict[str, float]:
        """The flow network fine-tunes at the paper's flow learning rate, not the detector's."""
        return {"flownet.": self.ssvd.flow_lr_factor} if self.flownet is not None else {}

    # --- Algorithm 1: two phases ---------------------------------------------------------
    def set_iteration(self, iteration: int, total: int) -> None:
        """Phase 1 (still-image detector) for the first ``still_fraction`` of the run, then phase 2."""
        self.still_image = iteration < int(self.ssvd.still_fraction * total)

    def trains_on_stills(self, iteration: int, total: int) -> bool:
        """DET stills in the batch: always in phase 1; in phase 2 only with ``phase2_stills``."""
        return self.ssvd.phase2_stills or iteration < int(self.ssvd.still_fraction * total)

    @property
    def in_still_phase(self) -> bool:
        return self.training and self.still_image

    # --- per frame ------------------------------------------------------------------------
    def frame_maps(self, batch: Tensor) -> dict[str, Tensor]:
        """P3..P6 (both streams' FPNs) and the flow network's pyramid m3..m6 of frames (N, 3, H, W)."""
        maps = super().frame_maps(batch)
        if self.fpn_sampling is not None:
            maps.update(zip(SAMPLING_LEVELS, self.fpn_sampling(batch).values()))
        if self.flownet is not None and not self.in_still_phase:
            maps.update(zip(FLOW_LEVELS, self.flownet.pyramid(batch)))
        return maps

    def sampling_keys(self) -> tuple[str, ...]:
        return SAMPLING_LEVELS if self.fpn_sampling is not None else LEVELS

    def compute_losses(self, images: Tensor, targets: list[dict[str, Tensor]]) -> dict[str, Tensor]:
        if self.in_still_phase:  # phase 1: the reference frames alone
            images = images[:, :1]  # (B, 1, 3, H, W)
        return super().compute_losses(images, targets)

    # --- the two streams --------------------------------------------------------------------
    def flows(self, ref: FrameFeatures, supports: FrameFeatures) -> list[Tensor]:
        """m^(t,t+tau) on P3..P6 for every support: (B*n, 2, h_l, w_l) in input pixels."""
        n = len(supports) // len(ref)
        ref_pyramid = [ref.maps[k].repeat_interleave(n, dim=0) for k in FLOW_LEVELS]  # (B*n, C_l, h, w)
        flows = self.flownet(ref_pyramid, [supports.maps[k] for k in FLOW_LEVELS])
        sizes = [ref.maps[k].shape[-2:] for k in LEVELS]
        return [f if f.shape[-2:] == s else F.interpolate(f, size=s, mode="bilinear", align_corners=False)
                for f, s in zip(flows, sizes)]

    def motion_stream(self, ref: FrameFeatures, supports: Optional[FrameFeatures], flows) -> list[Tensor]:
        """f_hat on P3..P6, (B, C, h, w) each: supports warped to the reference, averaged with it."""
        out = []
        for level, (key, stride) in enumerate(zip(LEVELS, STRIDES)):
            f_ref = ref.maps[key]  # (B, C, h, w)
            if supports is None:
                out.append(f_ref)
                continue
            warped = warp(supports.maps[key], flows[level] / stride)  # SSVD Eq. (1): (B*n, C, h, w)
            clip = torch.cat([f_ref[:, None], warped.unflatten(0, (len(ref), -1))], dim=1)  # (B, 1+n, C, h, w)
            out.append(clip.mean(dim=1))  # SSVD Eq. (2)
        return out

    def sampling_offsets(self, ref: FrameFeatures, supports: Optional[FrameFeatures], flows=None):
        """Per level: the frames' maps (B*T, C, h, w), T = 1 + n with the reference first, and the
        offsets N_off(g^t, g^(t+tau)) (B*T, 72, h, w) in cells (plus the flow when motion-guided)."""
        B = len(ref)
        per_level = []
        for level, (key, stride) in enumerate(zip(self.sampling_keys(), STRIDES)):
            g_ref = ref.maps[key]  # (B, C, h, w)
            frames = g_ref[:, None]  # (B, 1, C, h, w)
            if supports is not None:
                frames = torch.cat([frames, supports.maps[key].unflatten(0, (B, -1))], dim=1)  # (B, T, C, h, w)
            T = frames.shape[1]
            frames = frames.flatten(0, 1)  # (B*T, C, h, w), clip-major
            seen, guide = frames, None
            if flows is not None:  # motion-guided sampling: the offsets are residuals around the flow
                cells = flows[level] / stride  # (B*n, 2, h, w)
                zero = cells.new_zeros(B, 1, *cells.shape[1:])  # the reference's own flow
                cells = torch.cat([zero, cells.unflatten(0, (B, -1))], dim=1).flatten(0, 1)  # (B*T, 2, h, w)
                seen = warp(frames, cells)
                taps = self.offset_predictor.offsets.out_channels // 2
                guide = cells.flip(1).repeat(1, taps, 1, 1)  # (dx, dy) -> (dy, dx) on every tap: (B*T, 72, h, w)
            pair = torch.cat([g_ref.repeat_interleave(T, dim=0), seen], dim=1)  # (B*T, 2C, h, w)
            offsets = self.offset_predictor(pair)  # (B*T, 72, h, w)
            per_level.append((frames, offsets if guide is None else offsets + guide))
        return per_level

    def sampling_stream(self, ref: FrameFeatures, supports: Optional[FrameFeatures], flows=None) -> list[Tensor]:
        """g_hat on P3..P6, (B, C, h, w) each: each frame resampled by the deformable conv, averaged."""
        out = []
        for frames, offsets in self.sampling_offsets(ref, supports, flows):
            sampled = self.dconv(frames, offsets)  # (B*T, C, h, w)
            out.append(sampled.unflatten(0, (len(ref), -1)).mean(dim=1))  # SSVD Eq. (3): (B, C, h, w)
        return out

    def streams(self, ref: FrameFeatures, supports: Optional[FrameFeatures]) -> list[list[Tensor]]:
        """The maps each head reads: [f_hat, g_hat] (late), [reduce(cat)] (early), [g_hat guided]."""
        opts = self.ssvd
        # the frames the sampling stream reads: detached from a shared FPN under fpn_grad="motion"
        s_ref, s_supports = (ref, supports) if opts.fpn_grad == "both" else (_detached(ref), _detached(supports))
        if self.in_still_phase:  # phase 1: the subnets on the FPN maps (the still-image detector)
            raw = {"motion": (ref, LEVELS), "sampling": (s_ref, self.sampling_keys()), "early": (ref, LEVELS),
                   "motion_guided": (ref, self.sampling_keys())}
            return [[raw[name][0].maps[k] for k in raw[name][1]] for name in self.stream_names]
        flows = self.flows(ref, supports) if self.flownet is not None and supports is not None else None
        if opts.fusion == "motion_guided":
            return [self.sampling_stream(ref, supports, flows)]
        f_hat = self.motion_stream(ref, supports, flows) if opts.motion else None
        g_hat = self.sampling_stream(s_ref, s_supports) if opts.sampling else None
        if opts.fusion == "early":
            return [[self.early_reduce(torch.cat([f, g], dim=1)) for f, g in zip(f_hat, g_hat)]]  # (B, C, h, w)
        return [s for s in (f_hat, g_hat) if s is not None]


def _detached(frames: Optional[FrameFeatures]) -> Optional[FrameFeatures]:
    """The same frames with their maps cut from the graph (no gradient flows back into the FPN)."""
    return None if frames is None else replace(frames, maps={k: v.detach() for k, v in frames.maps.items()})


def build_ssvd(cfg: DetectorConfig, **options) -> SSVD:
    """SSVD with the options of ``SSVDConfig`` (e.g. ``sampling=False`` for Table II (b))."""
    return SSVD(cfg, SSVDConfig.for_detector(cfg, **options))


def prepare_flow(model, data_root, device, out, progress) -> dict:
    """The ``prepare`` hook: pre-train the flow network on data_small's ground-truth flow.

    The pre-trained weights are written to ``out/flow_pretrained.pt``; when that file is already
    there (an ablation started from the same pre-training), they are loaded instead of trained.
    """
    if getattr(model, "flownet", None) is None:
        return {}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    mean, std = model.transform.mean, model.transform.std

    def normalise(images):
        return (images - mean) / std  # (N, 3, H, W), as FrameTransform (data_small frames are not resized)

    path = out / "flow_pretrained.pt"
    if path.is_file():
        model.flownet.load_state_dict(torch.load(path, map_location=device, weights_only=True))
        epe = flow_epe(model.flownet, normalise, FlowPairs(data_root, "val"), model.ssvd.window,
                       num_pairs=model.ssvd.flow_epe_pairs, device=device)
        model.flownet.train()
        return {"flow_loaded_from": str(path), **{f"val_{k}": v for k, v in epe.items()}}
    result = pretrain_flow(model.flownet, normalise, data_root, device, iters=model.ssvd.flow_pretrain_iters,
                           window=model.ssvd.window, progress=progress, log_path=out / "flow_pretrain.log",
                           epe_pairs=model.ssvd.flow_epe_pairs)
    torch.save(model.flownet.state_dict(), path)
    return result


# --------------------------------------------------------------------------- registry rows
# Algorithm 1: 2 random supports within +-K; Algorithm 2: 6 of the buffer's +-K frames, frames
# arriving one by one (K = TINY_WINDOW on data_small)
SSVD_SPEC = MethodSpec("ssvd", build_ssvd, train_support=2, train_window=TINY_WINDOW,
                       prepare=prepare_flow)
SINGLE_SPEC = MethodSpec("ssvd_single", build_one_stage)  # Table II (a): the single-frame one-stage detector
SPECS = [
    SSVD_SPEC,
    SINGLE_SPEC,
    # a control, not in the paper: two late-fused heads on the single frame (SSVD with no support frame)
    SINGLE_SPEC.variant("ssvd_single_2heads", {"heads": 2}),
    SSVD_SPEC.variant("ssvd_motion", {"sampling": False}),  # Table II (b)
    SSVD_SPEC.variant("ssvd_sampling", {"motion": False}, prepare=None),  # Table II (c): no flow to pre-train
    SSVD_SPEC.variant("ssvd_early", {"fusion": "early"}),  # Fig. 6 fusion schemes
    SSVD_SPEC.variant("ssvd_guided", {"fusion": "motion_guided"}),
    # earlier minivod choices, kept as controls against the paper's: identity start of the sampling
    # stream; the flow network fine-tuned at the detector's learning rate
    SSVD_SPEC.variant("ssvd_identity_init", {"init": "identity"}),
    SSVD_SPEC.variant("ssvd_flow_full_lr", {"flow_lr_factor": 1.0}),
    # the paper's phase 2 (Algorithm 1): VID clips only, no DET stills
    SSVD_SPEC.variant("ssvd_vid_phase2", {"phase2_stills": False}),
    # controls for the shared FPN (the paper gives each stream its own): the FPN trained by both
    # heads' summed losses (the tiny preset's default until the seed runs measured it; with the paper
    # preset's two FPNs it is SSVD itself); the single-frame detector with its loss doubled (what two
    # heads' summed losses do to a shared FPN's step, if the heads agree)
    SSVD_SPEC.variant("ssvd_fpn_both", {"fpn_grad": "both"}),
    SINGLE_SPEC.variant("ssvd_single_loss2", {"loss_scale": 2.0}),
]
