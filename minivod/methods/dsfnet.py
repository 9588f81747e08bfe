"""DSFNet: Dual Semantic Fusion Network (Lin et al., ACM MM 2020).

Two fusions, one before and one after RoIAlign:

1. Frame level (Sec. 3.2, Eq. 1-3), ``FrameSemanticFusion``. The n frame maps
   of a clip, d channels each, are cut into a set of n * d channel-wise maps
   F^c_j (each an h x w map). Every channel i of the reference frame is
   updated from the whole set, non-local style but with channels as tokens:

       a_ij  = <varphi(F^c_i), phi(F^c_j)>            DSFNet Eq. (3)
       S^F_ij = softmax_j(a_ij)  over all n * d maps   DSFNet Eq. (2)
       F^e_i = F^c_i + sum_j S^F_ij theta(F^c_j)       DSFNet Eq. (1)

   It is ``VODetector``'s ``frame_aggregator``, so the RPN and RoIAlign of the
   reference frame read the fused map, as in the paper.

2. Instance level (Eq. 4-7): the reference RoIs attend to the RoIs of all frames
   of the clip with an appearance term (Eq. 6) plus a geometric term on box
   shapes (Eq. 7) embedded as in Relation Networks, inserted twice after RoI
   pooling, i.e. after each FC of the box head. That is the shared relation
   block of ``relation.py`` (``RelationAggregator`` with ``geometry="scale"``).

Choices the paper leaves open:

- varphi, phi and theta are FC layers applied to channel-wise maps. An FC over a
  map's h * w values would tie the model to one frame size, so we use an FC
  across channels at every position (a 1x1 convolution, shared by all frames),
  then cut its output into channel maps.
- Eq. (3) is divided by sqrt(h * w), as in scaled dot-product attention; without
  it, inner products of ~2400-value maps (600 px frames) saturate the softmax.
- The fusion covers all C channels of ``VODetector``'s frame map (for the paper
  preset conv4 and the reduced conv5, so both the RPN and RoIAlign see F^e).
- Eq. (1) enhances every frame; with ``fuse_supports=False`` (default) only the
  reference frame is updated (the supports' proposals are cached on their own
  maps anyway), which is T times cheaper. ``fuse_supports=True`` updates all.
- The number of heads of the instance-level block is not given; we take
  Relation Networks' heads of 64 dimensions (16 heads for FC-1024, 4 for tiny's FC-256).

``frame_level`` / ``instance_level`` switch each fusion off for the Table 1 ablation.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor, nn

from minivod.models import VODetector
from minivod.models.config import DetectorConfig

from .relation import RelationAggregator, RelationConfig
from .spec import MethodSpec


@dataclass
class DSFNetConfig:
    """Options of DSFNet (defaults: the full model of Table 1 (d)).

    frame_level: the frame-level semantic fusion, Eq. (1)-(3)
    instance_level: the instance-level fusion, Eq. (4)-(7), after both FC layers
    fuse_supports: apply Eq. (1) to the support frames too, not only to the reference
    num_heads: of the relation block; None: D // 64 (Relation Networks: 16 heads for D = 1024)
    geometry, geometry_mode: of the relation block (see ``RelationConfig``)
    """

    frame_level: bool = True
    instance_level: bool = True
    fuse_supports: bool = False
    num_heads: Optional[int] = None
    geometry: Optional[str] = "scale"
    geometry_mode: str = "add"


class FrameSemanticFusion(nn.Module):
    """DSFNet's frame-level fusion, a ``frame_aggregator``: ``(B, T, C, h, w) -> (B, T, C, h, w)``.

    Args:
        channels (int): C of the frame maps
        fuse_supports (bool): update every frame (Eq. 1 as written) instead of the reference only
    """

    def __init__(self, channels: int, fuse_supports: bool = False):
        super().__init__()
        self.fuse_supports = fuse_supports
        self.varphi = nn.Conv2d(channels, channels, 1)  # query transform of Eq. (3), an FC per position
        self.phi = nn.Conv2d(channels, channels, 1)  # key transform of Eq. (3)
        self.theta = nn.Conv2d(channels, channels, 1)  # value transform of Eq. (1)

    @property
    def updates_supports(self) -> bool:
        """Whether the support frames' maps change (``VODetector`` caches support RoIs when they do not)."""
        return self.fuse_supports

    def similarity(self, maps: Tensor) -> Tensor:
        """S^F of Eq. (2) for the channels being updated: Tensor[B, T_q * C, T * C].

        Rows: the channels of the reference frame (T_q = 1) or of every frame (T_q = T);
        columns: the n * d channel-wise maps of the clip, frame-major (column t * C + c).
        """
        B, T, C, h, w = maps.shape
        queries = maps if self.fuse_supports else maps[:, :1]  # (B, T_q, C, h, w)
        q = self.varphi(queries.flatten(0, 1)).reshape(B, -1, h * w)  # (B*T_q, C, h, w) -> (B, T_q*C, h*w)
        k = self.phi(maps.flatten(0, 1)).reshape(B, T * C, h * w)  # (B*T, C, h, w) -> (B, T*C, h*w)
        a = torch.einsum("bip,bjp->bij", q, k) / math.sqrt(h * w)  # DSFNet Eq. (3): (B, T_q*C, T*C)
        return a.softmax(dim=-1)  # DSFNet Eq. (2): over all n * d channel-wise maps

    def forward(self, maps: Tensor) -> Tensor:
        """
        Args:
            maps (Tensor[B, T, C, h, w]): frame maps of B clips, frame 0 the reference
        Returns:
            Tensor[B, T, C, h, w]: the reference frame (or every frame) fused, Eq. (1)
        """
        B, T, C, h, w = maps.shape
        S = self.similarity(maps)  # (B, T_q*C, T*C)
        v = self.theta(maps.flatten(0, 1)).reshape(B, T * C, h * w)  # (B*T, C, h, w) -> (B, T*C, h*w)
        message = torch.einsum("bij,bjp->bip", S.to(v.dtype), v)  # sum_j S^F_ij theta(F^c_j): (B, T_q*C, h*w)
        T_q = T if self.fuse_supports else 1
        fused = maps[:, :T_q] + message.reshape(B, T_q, C, h, w).to(maps.dtype)  # DSFNet Eq. (1): (B, T_q, C, h, w)
        if self.fuse_supports:
            return fused
        return torch.cat([fused, maps[:, 1:]], dim=1)  # supports unchanged: (B, T, C, h, w)


def build_dsfnet(cfg: DetectorConfig, **options) -> VODetector:
    """Faster R-CNN with DSFNet's frame-level fusion before the RPN and instance-level fusion after each FC.

    ``options`` are the fields of ``DSFNetConfig``, e.g. ``build_dsfnet(cfg, instance_level=False)``
    for Table 1 (b), ``build_dsfnet(cfg, frame_level=False)`` for Table 1 (c).
    """
    opts = DSFNetConfig(**options)
    model = VODetector(cfg)
    if opts.frame_level:
        model.frame_aggregator = FrameSemanticFusion(model.backbone.out_channels, opts.fuse_supports)
    if opts.instance_level:  # DSFNet Sec. 4.2: two instance-level fusions, one after each FC layer
        relation_cfgs = [
            RelationConfig(d, opts.num_heads or max(1, d // 64), geometry=opts.geometry,
                           geometry_mode=opts.geometry_mode)
            for d in cfg.box_fc_dims
        ]
        model.roi_aggregators = nn.ModuleList(RelationAggregator(c) for c in relation_cfgs)
    return model


# --------------------------------------------------------------------------- registry rows
DSFNET_SPEC = MethodSpec("dsfnet", build_dsfnet, train_support=2, test_support=8, test_mode="shuffled")
SPECS = [
    DSFNET_SPEC,
    DSFNET_SPEC.variant("dsfnet_frame", {"instance_level": False}),  # Table 1 (b): frame level only
    DSFNET_SPEC.variant("dsfnet_instance", {"frame_level": False}),  # Table 1 (c): instance level only
]
