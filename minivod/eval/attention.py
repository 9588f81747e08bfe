"""Where an RoI aggregator's weights go: RoIs labelled by the track they lie on, and each row's mass by group.

SELSA (Sec. 3.3) and DSFNet (Eq. 5) read their softmax weights as "proposals of the same object
find each other". To check that on data_small, label every RoI with the ground-truth track it lies
on (IoU >= 0.5, VID's rule for a detection to count) and split each weight row of a reference RoI
into four parts that sum to 1:

- **same object**: neighbours on the reference RoI's track, itself left out (other proposals of the
  object in the reference frame, and the object in the support frames);
- **itself**: the reference RoI's own column;
- **other objects**: neighbours on another track;
- **background**: neighbours on no track.

``uniform`` is what equal weights would put on the same object: the share of the row's neighbours
that lie on its track (itself left out). Used by notebooks 02 and 03; ``benchmarks/selsa_attention.py``
measures the same four parts over the whole val split.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor
from torchvision.ops import box_iou


def track_of(boxes: Tensor, gt_boxes: Tensor, gt_track_ids: Tensor, min_iou: float = 0.5) -> Tensor:
    """The track each box lies on: Tensor[N] int64, -1 where no ground-truth box overlaps it enough.

    Args:
        boxes (Tensor[N, 4]): RoIs, (x1, y1, x2, y2) in the frame's pixels (continuous corners)
        gt_boxes (Tensor[G, 4]): the frame's ground-truth boxes in the same convention
        gt_track_ids (Tensor[G]): their track ids
        min_iou: the overlap a box needs with a ground-truth box (the best one counts)
    """
    out = torch.full((len(boxes),), -1, dtype=torch.long, device=boxes.device)
    if len(boxes) == 0 or len(gt_boxes) == 0:
        return out
    iou, best = box_iou(boxes.float(), gt_boxes.float().to(boxes.device)).max(dim=1)  # (N,), (N,)
    ids = gt_track_ids.to(device=boxes.device, dtype=torch.long)[best]  # (N,)
    return torch.where(iou >= min_iou, ids, out)


def mass_by_track(weights: Tensor, ref_tracks: Tensor, neighbour_tracks: Tensor,
                  self_columns: Optional[Tensor] = None) -> dict[str, Tensor]:
    """Each weight row split into same object / itself / other objects / background, and ``uniform``.

    Args:
        weights (Tensor[N, M]): one row per reference RoI over its M neighbours (rows sum to 1)
        ref_tracks (Tensor[N]): track of each reference RoI (-1: none; its row is NaN in the output)
        neighbour_tracks (Tensor[M]): track of each neighbour (-1: background)
        self_columns (Tensor[N], optional): the column of each reference RoI among the neighbours
            (``gather_neighbours`` puts the reference RoIs first: ``arange(N)``); None: none is itself
    Returns:
        ``{"same_object", "itself", "other_objects", "background", "uniform"}``, each Tensor[N]
    """
    N, M = weights.shape
    w = weights.float()
    itself = torch.zeros(N, M, dtype=torch.bool, device=w.device)  # (N, M)
    if self_columns is not None:
        itself[torch.arange(N, device=w.device), self_columns.to(w.device)] = True
    same = (ref_tracks[:, None] == neighbour_tracks[None, :]) & ~itself  # (N, M)
    on_object = (neighbour_tracks >= 0)[None, :].expand(N, M)  # (N, M)
    out = {
        "same_object": (w * same).sum(1),
        "itself": (w * itself).sum(1),
        "other_objects": (w * (on_object & ~same & ~itself)).sum(1),
        "background": (w * (~on_object & ~itself)).sum(1),
        "uniform": same.float().mean(1),
    }
    off = ref_tracks < 0  # rows not on an object have no "same object"
    return {k: v.masked_fill(off, float("nan")) for k, v in out.items()}


def group_columns(weights: Tensor, neighbour_tracks: Tensor, neighbour_frames: Tensor) -> tuple[Tensor, list]:
    """Weights summed over the neighbours of each (track, frame): Tensor[N, G] and the G groups.

    Groups are ordered by track, then frame; background (track -1) comes last, one group per frame.
    A picture of ``weights`` with 600 columns becomes one with a column per object and frame.

    Args:
        weights (Tensor[N, M]), neighbour_tracks (Tensor[M]), neighbour_frames (Tensor[M]) int64
    Returns:
        ``(Tensor[N, G], [(track, frame), ...])``
    """
    pairs = sorted({(int(k), int(f)) for k, f in zip(neighbour_tracks.tolist(), neighbour_frames.tolist())},
                   key=lambda p: (p[0] < 0, p[0], p[1]))
    index = {p: g for g, p in enumerate(pairs)}
    column_group = torch.tensor([index[(int(k), int(f))] for k, f in zip(neighbour_tracks.tolist(),
                                                                          neighbour_frames.tolist())],
                                dtype=torch.long, device=weights.device)  # (M,)
    grouped = weights.new_zeros(weights.shape[0], len(pairs))  # (N, G)
    grouped.index_add_(1, column_group, weights)
    return grouped, pairs


class InputCapture:
    """Records the positional inputs of modules during a forward pass (a context manager).

    ``with InputCapture(model.roi_aggregators) as cap: model.detect(...)``, then ``cap.calls`` holds
    ``(k, args)`` per call, k the module's position in the list: an RoI aggregator's
    ``(ref_feats (Tensor[N_ref, D]), support_feats (Tensor[N_sup, D]), ctx)``.
    """

    def __init__(self, modules):
        self.modules = list(modules)
        self.calls: list[tuple[int, tuple]] = []
        self.handles = []

    def __enter__(self) -> "InputCapture":
        self.calls.clear()
        self.handles = [m.register_forward_hook(lambda mod, args, out, k=k: self.calls.append((k, args)))
                        for k, m in enumerate(self.modules)]
        return self

    def __exit__(self, *exc) -> None:
        for h in self.handles:
            h.remove()
        self.handles = []
