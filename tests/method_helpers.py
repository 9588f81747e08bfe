"""Shared fixtures of the SELSA and DSFNet tests: RoI cases, clips with boxes, an overfit loop."""
from __future__ import annotations

import torch

from minivod.models import RoIContext


def roi_case(B=2, T=3, n_ref=5, n_per_frame=4, D=16, seed=0):
    """Random RoI features of B clips: n_ref reference RoIs and n_per_frame RoIs per support frame each."""
    g = torch.Generator().manual_seed(seed)
    n_sup = n_per_frame * (T - 1)
    x = torch.randn(B * n_ref, D, generator=g)
    s = torch.randn(B * n_sup, D, generator=g)
    xy = torch.rand(B * (n_ref + n_sup), 2, generator=g) * 100
    wh = torch.rand(B * (n_ref + n_sup), 2, generator=g) * 40 + 5
    boxes = torch.cat([xy, xy + wh], dim=1)
    ctx = RoIContext(
        ref_boxes=boxes[: B * n_ref],
        ref_clip_index=torch.arange(B).repeat_interleave(n_ref),
        support_boxes=boxes[B * n_ref :],
        support_clip_index=torch.arange(B).repeat_interleave(n_sup),
        support_frame_index=torch.arange(1, T).repeat_interleave(n_per_frame).repeat(B),
        support_objectness=torch.rand(B * n_sup, generator=g),
    )
    return x, s, ctx


def clips_with_boxes(B=2, T=3, height=120, width=160, seed=0):
    """B clips of T noisy frames with the same 1-2 coloured rectangles (class = colour) in every frame."""
    g = torch.Generator().manual_seed(seed)
    colours = torch.tensor([[0.9, 0.2, 0.2], [0.2, 0.9, 0.2], [0.2, 0.2, 0.9]])
    images = 0.1 * torch.rand(B, T, 3, height, width, generator=g) + 0.3
    targets = []
    for b in range(B):
        boxes, labels = [], []
        for _ in range(int(torch.randint(1, 3, (1,), generator=g))):
            w, h = (torch.randint(width // 8, width // 3, (1,), generator=g).item() for _ in range(2))
            x1 = int(torch.randint(0, width - w, (1,), generator=g))
            y1 = int(torch.randint(0, height - h, (1,), generator=g))
            c = int(torch.randint(0, 3, (1,), generator=g))
            images[b, :, :, y1 : y1 + h, x1 : x1 + w] = colours[c, None, :, None, None]
            boxes.append([x1, y1, x1 + w, y1 + h])
            labels.append(c + 1)
        targets.append({"boxes": torch.tensor(boxes, dtype=torch.float32), "labels": torch.tensor(labels)})
    return images, targets


# --------------------------------------------------------------------------- the module


def overfit_loss_ratio(model, steps=30):
    """Train ``model`` on one tiny fixed batch (B=2 clips of T=2 at 64x80); mean loss of the last
    5 steps over the first 5."""
    images, targets = clips_with_boxes(B=2, T=2, height=64, width=80)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    totals = []
    for _ in range(steps):
        loss = sum(model(images, targets).values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        totals.append(loss.item())
    return (sum(totals[-5:]) / 5) / (sum(totals[:5]) / 5)
