"""PSLA's video detector: key frames, RFU, DenseFT and an R-FCN head (Guo et al., ICCV 2019, Sec. 3.1-3.5).

Frames are key frames (every ``key_frame_interval``-th, the middle one of each
segment, Sec. 3.5) or non-key frames. The feature network N_f = N_h o N_l runs
whole on key frames only; non-key frames run just its lower layers N_l:

    key frame k:      F_h^k = N_h(N_l(I_k))
                      F^_t  = PSLA(F_h^k, F_t)                          RFU, Sec. 3.3
                      F_t   = W^ * F^_t + W * F_h^k                     PSLA Eq. (6), Update Net
    non-key frame i:  E_i   = TransformNet(N_l(I_i))                    DenseFT, Sec. 3.4
                      F^_i  = PSLA(E_i, F_t)                            from the latest updated F_t
                      F_i   = Q^ * F^_i + Q * E_i                       Quality Net (same form as Eq. 6)
    every frame:      detections = N_t(F)   (RPN + R-FCN, ``minivod.models.rfcn``)

For the tiny preset, N_l is the stem and the first three stages of the
``TinyBackbone`` (stride 8, 64 channels) and N_h its last stage (two 3x3 convs
64 -> 128 -> 128, most of the backbone's multiply-adds); the Transform Net is a
64 -> 32 -> 32 -> 128 bottleneck, about a fifth of N_h. For ResNet-101 (paper
preset), N_l ends at res4b3 as in the paper and N_h is the rest of conv4, conv5
and ``conv_new_1``.

Training (Sec. 4.1): a clip is a non-key frame I_i (the frame with the loss in the
paper) and two key frames k1 in [i - l, i - l/2], k2 in [i - l/2, i + l/2]; F_t
starts as F_h^k1, is updated at k2 by RFU, then propagated to I_i by DenseFT (we
also take the loss on k2, see below). DET stills are three copies of one image. Evaluation-mode ``forward`` on such clips does the
same; ``detect`` (cached per-frame features) treats its reference as a key frame
after RFU over its supports; at test time the engine runs the key-frame schedule
(``test_schedule``, ``detect_key_frame``, ``detect_non_key_frames``).

Choices the paper leaves open, and the ablation switches (Tables 2, 3, 5):

- f and g of the two PSLA modules (RFU and DenseFT) are separate 1x1 convolutions.
- Update Net and Quality Net end in a softmax over their two output channels,
  which makes the weights sum to one per position (Eq. 6 asks for that).
- ``rfu=False``: no temporal feature, the latest key frame's F_h is propagated
  ("our method (a)" / "S" variants); ``quality_net=False``: DenseFT returns F^_i.
- ``propagation``: ``psla`` or ``dense`` / ``matchtrans`` / ``nonlocal`` (see ``psla.py``).
- ``key_frame_loss`` (default on; the paper labels non-key frames only): the detection loss is
  also taken on the last key frame of each clip, detected from its updated F_t. Trained from
  scratch with the non-key loss alone, the tiny model learnt to ignore propagation: the Quality
  Net put ~0.2 % of the weight on the propagated map (the Transform Net on N_l, three convs, is
  as deep as the tiny N_h, two convs, and sees the frame itself), PSLA's weights stayed uniform,
  and N_h, never used, gave no detections on key frames (mAP 0.0 at l = 1). The paper's N_f
  starts from ImageNet weights, so its F_h is informative from the start.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor, nn
from torchvision.ops import Conv2dNormActivation

from minivod.data.sampling import KeyFrameSchedule, key_frames, train_key_frames
from minivod.data.vid import load_image
from minivod.models.backbone import TinyBackbone, build_backbone
from minivod.models.base import FrameFeatures, VideoDetectorBase
from minivod.models.config import DetectorConfig
from minivod.models.rfcn import build_rfcn_heads
from minivod.models.rpn import build_rpn
from minivod.models.transform import FrameTransform

from .psla import LocalAttention
from .spec import MethodSpec


@dataclass
class PSLAConfig:
    """Options of the PSLA detector (defaults: the full model, Table 2 (c)).

    max_displacement: d of PSLA (4 in the paper)
    scaled: divide Eq. (1) by sqrt(c) (not in the paper; see ``psla.py``)
    propagation: ``psla``, ``dense``, ``matchtrans`` or ``nonlocal``
    rfu: Recursive Feature Updating (Sec. 3.3)
    quality_net: DenseFT's Quality Net (Sec. 3.4); the Transform Net is always used
    key_frame_interval: l (10 in the paper), for training-clip sampling and the test schedule
    key_position: ``middle`` (key frame at the middle of each segment, Sec. 3.5) or ``first``
    embed_dim: channels of f and g (None: 256, or 64 for the tiny backbone)
    reduce_dim: first 1x1 conv of Update / Quality Net (None: 256, or 64 for tiny)
    transform_dim: bottleneck width of the Transform Net (None: 256, or 32 for tiny)
    low_stages: tiny backbone: stages (after the stem) that form N_l
    rfcn_k: the k x k position-sensitive grid (None: 3 for the tiny backbone, whose objects span about
        three cells of its stride-8 maps, so a 7 x 7 grid splits each cell into several bins that read
        different score maps at nearly the same place (0.510 mAP against 0.613 with k = 3 on data_small
        val); ``cfg.roi_output_size``, 7 as in R-FCN and PSLA, otherwise)
    rfcn_hidden: a 1x1 conv + ReLU before R-FCN's score maps (None: 256 for tiny, whose 128-channel
        maps would otherwise feed the score maps directly; none for ResNet-101, whose RoI maps are
        already the 1x1 reduction ``conv_new_1``)
    key_frame_loss: also train on the last key frame of each clip (see the module docstring)
    quality_prior: the Quality Net's weight on the propagated map at initialisation (None: 0.9 for the
        tiny backbone; otherwise PyTorch's default initialisation, about 0.5 everywhere). Trained from
        scratch, the default start let the gate close on the propagated map early (weight 0.018 after
        training, 0.613 mAP at l = 10 on data_small val); started at 0.9 it stays open and the model
        scores 0.685. The paper starts from pre-trained weights, where the propagated map is good from
        the first iteration.
    """

    max_displacement: int = 4
    scaled: bool = True
    propagation: str = "psla"
    rfu: bool = True
    quality_net: bool = True
    key_frame_interval: int = 10
    key_position: str = "middle"
    embed_dim: Optional[int] = None
    reduce_dim: Optional[int] = None
    transform_dim: Optional[int] = None
    low_stages: int = 3
    rfcn_k: Optional[int] = None
    rfcn_hidden: Optional[int] = None
    key_frame_loss: bool = True
    quality_prior: Optional[float] = None


class FusionWeights(nn.Module):
    """Update Net / Quality Net (Fig. 4): per-position weights of two maps, summing to one.

    1x1 conv to ``reduce_dim``, 3x3 conv to 16, 3x3 conv to 2 (ReLU between), softmax over the 2.
    """

    def __init__(self, channels: int, reduce_dim: int = 256, hidden: int = 16, prior: Optional[float] = None):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(2 * channels, reduce_dim, 1), nn.ReLU(inplace=True),
            nn.Conv2d(reduce_dim, hidden, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(hidden, 2, 3, padding=1),
        )
        if prior is not None:  # start at W_a = prior everywhere (the last conv's weights at zero)
            nn.init.zeros_(self.net[-1].weight)
            with torch.no_grad():
                self.net[-1].bias.copy_(torch.tensor([math.log(prior / (1 - prior)), 0.0]))

    def weights(self, a: Tensor, b: Tensor) -> Tensor:
        """(W_a, W_b) as Tensor[B, 2, h, w] for maps a, b (Tensor[B, C, h, w]); W_a + W_b = 1."""
        return self.net(torch.cat([a, b], dim=1)).softmax(dim=1)  # (B, 2C, h, w) -> (B, 2, h, w)

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        w = self.weights(a, b)  # (B, 2, h, w)
        return w[:, :1] * a + w[:, 1:] * b  # PSLA Eq. (6): Hadamard products, weights broadcast over C


class RecursiveFeatureUpdate(nn.Module):
    """RFU (Sec. 3.3): align the temporal feature F_t with a new key frame, then fuse (Eq. 6)."""

    def __init__(self, channels: int, opts: PSLAConfig, embed_dim: int, reduce_dim: int):
        super().__init__()
        self.align = LocalAttention(channels, embed_dim, opts.max_displacement, opts.propagation,
                                    scaled=opts.scaled)
        self.update_net = FusionWeights(channels, reduce_dim)

    def parts(self, F_h: Tensor, F_t: Tensor) -> dict[str, Tensor]:
        """Every intermediate of ``forward`` with a temporal feature (for reading), a dict of:

        ``weights`` (Tensor[B, K, h, w]): PSLA's c^ (local propagations only); ``F_hat``
        (Tensor[B, C, h, w]): F_t aligned with the key frame; ``update`` (Tensor[B, 2, h, w]): the Update
        Net's (W^, W) on (F_hat, F_h); ``out`` (Tensor[B, C, h, w]): the new F_t, what ``forward`` returns.
        """
        weights = self.align.weights(F_h, F_t) if self.align.mode != "nonlocal" else None  # (B, K, h, w)
        F_hat = self.align(F_h, F_t)  # (B, C, h, w)
        update = self.update_net.weights(F_hat, F_h)  # (B, 2, h, w)
        return {"weights": weights, "F_hat": F_hat, "update": update,
                "out": update[:, :1] * F_hat + update[:, 1:] * F_h}  # PSLA Eq. (6)

    def forward(self, F_h: Tensor, F_t: Optional[Tensor]) -> Tensor:
        """F_h (Tensor[B, C, h, w]) of the new key frames, F_t (same shape, or None at the first) -> new F_t."""
        if F_t is None:
            return F_h  # the first key frame starts the temporal feature
        F_t_hat = self.align(F_h, F_t)  # F^_t^k = PSLA(F_h^k, F_t): (B, C, h, w)
        return self.update_net(F_t_hat, F_h)  # PSLA Eq. (6)


class TransformNet(nn.Module):
    """DenseFT's Transform Net (Fig. 5): a bottleneck from N_l's features towards N_h's (1x1, 3x3, 3x3)."""

    def __init__(self, in_channels: int, mid_channels: int, out_channels: int, norm_layer=None):
        super().__init__()
        self.net = nn.Sequential(
            Conv2dNormActivation(in_channels, mid_channels, 1, norm_layer=norm_layer),
            Conv2dNormActivation(mid_channels, mid_channels, 3, norm_layer=norm_layer),
            Conv2dNormActivation(mid_channels, out_channels, 3, norm_layer=norm_layer),
        )

    def forward(self, F_l: Tensor) -> Tensor:
        return self.net(F_l)  # (B, C_l, h, w) -> (B, C, h, w)


class DenseFeatureTransform(nn.Module):
    """DenseFT (Sec. 3.4): Transform Net, PSLA from the temporal feature, Quality Net."""

    def __init__(self, low_channels: int, channels: int, opts: PSLAConfig, embed_dim: int, reduce_dim: int,
                 transform_dim: int, norm_layer=None, quality_prior: Optional[float] = None):
        super().__init__()
        self.transform_net = TransformNet(low_channels, transform_dim, channels, norm_layer)
        self.align = LocalAttention(channels, embed_dim, opts.max_displacement, opts.propagation,
                                    scaled=opts.scaled)
        self.quality_net = FusionWeights(channels, reduce_dim, prior=quality_prior) if opts.quality_net else None

    def parts(self, F_l: Tensor, F_t: Tensor) -> dict[str, Tensor]:
        """Every intermediate of ``forward`` (for reading; same inputs), a dict of:

        ``E`` (Tensor[B, C, h, w]): the Transform Net's map; ``weights`` (Tensor[B, K, h, w]): PSLA's c^
        over ``self.align.offsets`` (local propagations only); ``F_hat`` (Tensor[B, C, h, w]): F_t propagated;
        ``quality`` (Tensor[B, 2, h, w]): the Quality Net's weights on (F_hat, E), or None without it;
        ``out`` (Tensor[B, C, h, w]): what ``forward`` returns.
        """
        E = self.transform_net(F_l)  # (B, C, h, w)
        weights = self.align.weights(E, F_t) if self.align.mode != "nonlocal" else None  # (B, K, h, w)
        F_hat = self.align(E, F_t)  # (B, C, h, w)
        quality = self.quality_net.weights(F_hat, E) if self.quality_net is not None else None  # (B, 2, h, w)
        out = F_hat if quality is None else quality[:, :1] * F_hat + quality[:, 1:] * E
        return {"E": E, "weights": weights, "F_hat": F_hat, "quality": quality, "out": out}

    def forward(self, F_l: Tensor, F_t: Tensor) -> Tensor:
        """F_l (Tensor[B, C_l, h, w]) of non-key frames, F_t (Tensor[B, C, h, w]) -> their maps (B, C, h, w)."""
        E = self.transform_net(F_l)  # (B, C, h, w)
        F_hat = self.align(E, F_t)  # PSLA(E_i, F_t): F_t propagated to the non-key frames
        if self.quality_net is None:
            return F_hat
        return self.quality_net(F_hat, E)  # fused with the (transformed) low-level features


class PSLADetector(VideoDetectorBase):
    """Key frames through N_h and RFU, non-key frames through N_l and DenseFT, then RPN + R-FCN.

    Args:
        cfg (DetectorConfig): the detector preset (backbone, RPN, box settings)
        opts (PSLAConfig): PSLA's own options
    """

    def __init__(self, cfg: DetectorConfig, opts: Optional[PSLAConfig] = None):
        super().__init__()
        self.cfg, self.opts = cfg, opts or PSLAConfig()
        tiny = cfg.backbone == "tiny"
        self.transform = FrameTransform(cfg.min_size, cfg.max_size, cfg.image_mean, cfg.image_std, cfg.size_divisible)
        self.backbone = build_backbone(cfg)
        self.rpn = build_rpn(cfg, self.backbone.rpn_channels)
        self.roi_heads = build_rfcn_heads(cfg, self.backbone.roi_channels, self.opts.rfcn_k or (3 if tiny else None),
                                          self.opts.rfcn_hidden or (256 if tiny else None))
        C = self.backbone.out_channels
        embed = self.opts.embed_dim or (64 if tiny else 256)
        reduce = self.opts.reduce_dim or (64 if tiny else 256)
        mid = self.opts.transform_dim or (32 if tiny else 256)
        if isinstance(self.backbone, TinyBackbone):
            self.low_layers = 1 + 2 * self.opts.low_stages  # stem + two convs per stage
            low_channels = cfg.tiny_channels[self.opts.low_stages - 1]
        else:
            low_channels = 1024  # res4b3
        self.rfu = RecursiveFeatureUpdate(C, self.opts, embed, reduce) if self.opts.rfu else None
        prior = self.opts.quality_prior if self.opts.quality_prior is not None else (0.9 if tiny else None)
        self.dense_ft = DenseFeatureTransform(low_channels, C, self.opts, embed, reduce, mid,
                                              nn.BatchNorm2d if tiny else None, prior)

    # --- the feature network, split: N_l and N_h ---------------------------------------
    def train_support_fn(self):
        """Training clips draw their two key frames for this model's interval l (Sec. 4.1)."""
        return functools.partial(train_key_frames, interval=self.opts.key_frame_interval)

    def low_features(self, batch: Tensor) -> Tensor:
        """N_l: normalised frames (N, 3, H, W) -> low-level maps F_l (N, C_l, h, w)."""
        if isinstance(self.backbone, TinyBackbone):
            return self.backbone.body[: self.low_layers](batch)
        body = self.backbone.body  # ResNet-101: conv1 .. res4b3
        x = body.maxpool(body.relu(body.bn1(body.conv1(batch))))
        return body.layer3[:4](body.layer2(body.layer1(x)))  # (N, 1024, H/16, W/16)

    def high_features(self, F_l: Tensor) -> Tensor:
        """N_h: F_l (N, C_l, h, w) -> the frame map F_h (N, C, h, w) of the full backbone."""
        if isinstance(self.backbone, TinyBackbone):
            return self.backbone.body[self.low_layers:](F_l)
        body = self.backbone.body
        conv4 = body.layer3[4:](F_l)  # (N, 1024, h, w)
        rcnn = self.backbone.conv_new_1(body.layer4(conv4))  # (N, 256, h, w)
        return torch.cat([conv4, rcnn], dim=1)  # (N, 1024 + 256, h, w), as ResNetBackbone

    # --- key frames, non-key frames, the task network -----------------------------------
    def update(self, F_h: Tensor, F_t: Optional[Tensor]) -> Tensor:
        """The temporal feature after key frames F_h (B, C, h, w): RFU, or F_h itself without RFU."""
        return F_h if self.rfu is None else self.rfu(F_h, F_t)

    def key_frame(self, batch: Tensor, F_t: Optional[Tensor] = None) -> Tensor:
        """Normalised key frames (B, 3, H, W) and the temporal feature -> updated F_t (B, C, h, w)."""
        return self.update(self.high_features(self.low_features(batch)), F_t)

    def non_key_frames(self, batch: Tensor, F_t: Tensor) -> Tensor:
        """Normalised non-key frames (N, 3, H, W) sharing one F_t (1 or N, C, h, w) -> maps (N, C, h, w)."""
        F_l = self.low_features(batch)  # (N, C_l, h, w)
        return self.dense_ft(F_l, F_t.expand(F_l.shape[0], -1, -1, -1))

    def task_network(self, maps: Tensor, image_sizes, targets=None):
        """N_t: RPN and R-FCN on maps (B, C, h, w); returns (detections in resized pixels, losses)."""
        rpn_maps, roi_maps = self.backbone.split(maps)  # (B, C_rpn, h, w), (B, C_roi, h, w)
        proposals, _, rpn_losses = self.rpn(rpn_maps, image_sizes, targets)
        detections, roi_losses = self.roi_heads(roi_maps, proposals, image_sizes, targets)
        return detections, {**rpn_losses, **roi_losses}

    def detect_maps(self, maps: Tensor, image_sizes, original_sizes) -> list[dict[str, Tensor]]:
        """Detections (boxes in input pixels) of frames with final maps (B, C, h, w). Evaluation mode."""
        detections, _ = self.task_network(maps, image_sizes)
        return self.transform.postprocess(detections, image_sizes, original_sizes)

    # --- the key-frame schedule the engine runs at test time (minivod.engine.inference) -----------
    def test_schedule(self) -> KeyFrameSchedule:
        """Key frames every l frames (the middle one of each segment, Sec. 3.5)."""
        return KeyFrameSchedule(self.opts.key_frame_interval, self.opts.key_position)

    def detect_key_frame(self, images: Tensor, F_t: Optional[Tensor] = None):
        """Key frames ``images (Tensor[B, 3, H, W])`` in [0, 1] and the temporal feature -> (detections,
        updated F_t (B, C, h, w)): N_f, then RFU (Eq. 6-8)."""
        batch, sizes, original = self.transform(images)
        F_t = self.key_frame(batch, F_t)  # (B, C, h, w)
        return self.detect_maps(F_t, sizes, original), F_t

    def detect_non_key_frames(self, images: Tensor, F_t: Tensor) -> list[dict[str, Tensor]]:
        """Non-key frames ``images (Tensor[N, 3, H, W])`` in [0, 1] sharing one F_t: N_l, then DenseFT."""
        batch, sizes, original = self.transform(images)
        return self.detect_maps(self.non_key_frames(batch, F_t), sizes, original)

    # --- clips: frame 0 a non-key frame, frames 1.. its key frames, oldest first -----------
    def clip_maps(self, batch: Tensor) -> tuple[Tensor, Optional[Tensor]]:
        """Normalised clips (B, T, 3, H, W) -> the final maps of their non-key frames 0 (B, C, h, w), and
        the temporal feature F_t after their last key frame (B, C, h, w; None when T = 1)."""
        B, T = batch.shape[:2]
        if T == 1:  # no key frames: the frame is its own key frame
            return self.key_frame(batch[:, 0]), None
        keys = batch[:, 1:] if self.rfu is not None else batch[:, -1:]  # without RFU: only the latest
        F_h = self.high_features(self.low_features(keys.flatten(0, 1))).unflatten(0, (B, -1))  # (B, T_k, C, h, w)
        F_t = None
        for j in range(F_h.shape[1]):  # RFU over the key frames in time order
            F_t = self.update(F_h[:, j], F_t)
        return self.non_key_frames(batch[:, 0], F_t), F_t  # DenseFT

    def compute_losses(self, images: Tensor, targets: list[dict[str, Tensor]]) -> dict[str, Tensor]:
        """RPN and R-FCN losses on the non-key frame 0 of clips ``images (Tensor[B, T, 3, H, W])``; with
        ``key_frame_loss`` and the key frames' boxes in ``target["support"]``, also on the last key frame
        (its updated F_t, what a key frame is detected from), as ``loss_*_key``."""
        B, T = images.shape[:2]
        batch, image_sizes, original_sizes = self.transform(images.flatten(0, 1))  # (B*T, 3, H_pad, W_pad)
        ref_targets = self.transform.resize_targets(targets, original_sizes[:B], image_sizes[:B])
        maps, F_t = self.clip_maps(batch.unflatten(0, (B, T)))  # (B, C, h, w) each
        _, losses = self.task_network(maps, image_sizes[:B], ref_targets)
        if self.opts.key_frame_loss and F_t is not None and "support" in targets[0]:
            key_targets = [{"boxes": t["support"][-1]["boxes"], "labels": t["support"][-1]["labels"]} for t in targets]
            key_targets = self.transform.resize_targets(key_targets, original_sizes[:B], image_sizes[:B])
            _, key_losses = self.task_network(F_t, image_sizes[:B], key_targets)
            losses.update({f"{name}_key": value for name, value in key_losses.items()})
        return losses

    def forward(self, images: Tensor, targets: Optional[list[dict[str, Tensor]]] = None):
        """As ``VideoDetectorBase.forward``; in evaluation too, frame 0 is the non-key frame and
        frames 1..T-1 its key frames (oldest first), the layout of the training clips."""
        if self.training or images.dim() != 5:
            return super().forward(images, targets)
        B, T = images.shape[:2]
        batch, image_sizes, original_sizes = self.transform(images.flatten(0, 1))  # (B*T, 3, H_pad, W_pad)
        maps, _ = self.clip_maps(batch.unflatten(0, (B, T)))  # (B, C, h, w)
        return self.detect_maps(maps, image_sizes[:B], original_sizes[:B])

    # --- the cacheable interface of VideoDetectorBase -------------------------------------
    def frame_features(self, images: Tensor) -> FrameFeatures:
        """Key-frame features F_h of ``images (Tensor[N, 3, H, W])`` in [0, 1]; no proposals (the RPN
        runs on the updated temporal feature, in ``detect``)."""
        batch, image_sizes, original_sizes = self.transform(images)  # (N, 3, H_pad, W_pad)
        return FrameFeatures(self.high_features(self.low_features(batch)), image_sizes, original_sizes)

    def detect(self, ref: FrameFeatures, supports: Optional[FrameFeatures] = None) -> list[dict[str, Tensor]]:
        """Detections of the B key frames of ``ref`` after RFU over their own earlier key frames
        ``supports`` (B * (T-1), clip-major, oldest first). Evaluation mode."""
        F_t = None
        if supports is not None:
            B = len(ref)
            F_h = supports.maps.unflatten(0, (B, -1))  # (B, T-1, C, h, w)
            for j in range(F_h.shape[1]):
                F_t = self.update(F_h[:, j], F_t)
        F_t = self.update(ref.maps, F_t)  # (B, C, h, w)
        return self.detect_maps(F_t, ref.image_sizes, ref.original_sizes)


@torch.no_grad()
def key_frame_states(model: PSLADetector, video, device="cpu", interval: Optional[int] = None) -> dict:
    """The key frames of a video under the key-frame schedule (Sec. 3.5), through N_f and RFU in time order.

    Args:
        model: a PSLADetector (evaluation mode)
        video: a :class:`~minivod.data.vid.Video`
        interval: l (None: the model's ``key_frame_interval``)
    Returns:
        ``{k: (F_h, F_before, F_t)}`` for every key frame k, oldest first: its map F_h^k = N_h(N_l(I_k)),
        the temporal feature before it (None at the first key frame) and after RFU at k, each
        Tensor[1, C, h, w]
    """
    is_key, key_of = key_frames(len(video), interval or model.opts.key_frame_interval, model.opts.key_position)
    states, F_t = {}, None
    for key in sorted(set(key_of)):
        F_h = model.high_features(model.low_features(frame_batch(model, video, key, device)))  # (1, C, h, w)
        states[key] = (F_h, F_t, model.update(F_h, F_t))
        F_t = states[key][2]
    return states


@torch.no_grad()
def non_key_inputs(model: PSLADetector, video, device="cpu", interval: Optional[int] = None):
    """What DenseFT reads at every non-key frame of a video under the key-frame schedule.

    Yields ``(t, F_l, F_t)`` for each non-key frame t in time order: its low-level map N_l(I_t)
    (Tensor[1, C_l, h, w]) and the temporal feature after its key frame (Tensor[1, C, h, w]).
    Arguments as :func:`key_frame_states`.
    """
    l = interval or model.opts.key_frame_interval
    is_key, key_of = key_frames(len(video), l, model.opts.key_position)
    states = key_frame_states(model, video, device, l)
    for t in range(len(video)):
        if not is_key[t]:
            yield t, model.low_features(frame_batch(model, video, t, device)), states[key_of[t]][2]


def frame_batch(model: PSLADetector, video, t: int, device="cpu") -> Tensor:
    """Frame t of a video, read and normalised by the model's transform: Tensor[1, 3, H, W]."""
    return model.transform(load_image(video.frames[t].image_path)[None].to(device))[0]


def build_psla(cfg: DetectorConfig, **options) -> PSLADetector:
    """The PSLA detector; ``options`` are the fields of ``PSLAConfig``, e.g. ``rfu=False``."""
    return PSLADetector(cfg, PSLAConfig(**options))


# --------------------------------------------------------------------------- registry rows
# a non-key reference frame (the loss) and two key frames before / around it (Sec. 4.1, drawn by
# PSLADetector.train_support_fn); at test time the key-frame schedule (PSLADetector.test_schedule)
PSLA_SPEC = MethodSpec("psla", build_psla, train_support=2, support_targets=True)
SPECS = [
    PSLA_SPEC,
    PSLA_SPEC.variant("psla_a", {"rfu": False, "quality_net": False}),  # Table 2 (a)
    PSLA_SPEC.variant("psla_b", {"quality_net": False}),  # Table 2 (b)
    PSLA_SPEC.variant("psla_dense", {"propagation": "dense"}),  # Tables 3, 5: other propagations
    PSLA_SPEC.variant("psla_matchtrans", {"propagation": "matchtrans"}),
    PSLA_SPEC.variant("psla_nonlocal", {"propagation": "nonlocal"}),
    # issue 16's test of the tiny deviations: on the stride-8 map the motion between key and non-key
    # frames is under one cell, so a small d, Eq. (1) unscaled and the loss on non-key frames only
    # (the paper's) may not need the documented deviations
    PSLA_SPEC.variant("psla_d1_paper", {"max_displacement": 1, "scaled": False, "key_frame_loss": False}),
    PSLA_SPEC.variant("psla_d2_paper", {"max_displacement": 2, "scaled": False, "key_frame_loss": False}),
]
