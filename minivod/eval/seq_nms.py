"""Seq-NMS (Han et al., 2016): rescoring detections along their best tubelet.

Per video and class:

1. link boxes of adjacent frames whose IoU is >= ``link_threshold`` (0.5);
2. find the highest-scoring linked path by dynamic programming, the path score
   being the sum of its box scores;
3. rescore the boxes of that path by the path's average score (or its maximum);
4. in every frame of the path, suppress the other boxes that overlap the path's
   box by IoU >= ``suppress_threshold`` (0.3), and take the path's boxes out;
5. repeat until every box is on a path or suppressed.

Then ordinary per-frame NMS (``torchvision.ops.batched_nms``, per class) runs on
the rescored boxes. Note that step 4 already leaves no two boxes of one class
and frame with IoU >= ``suppress_threshold``, so this last NMS only removes
boxes when ``nms_threshold < suppress_threshold``.

IoU is torchvision's (continuous convention, ``w = x2 - x1``), the detector's
convention: ``box_iou``'s operations batched over frames, in float64, as are the
path sums. Runs on the CPU (thousands of tiny steps); outputs go back to the
input's device.

The dynamic program (step 2) for frame t and box i::

    acc_t[i] = s_t[i] + max(0, max_{j linked to i} acc_{t-1}[j])

``acc_t[i]`` is the best sum of a path ending at box i of frame t; a path only
carries a prefix whose sum is positive. The best path ends at the first
``(t, i)`` with the largest ``acc`` and is read back frame by frame through the
linked ``j`` with the largest ``acc_{t-1}[j]`` (the first one on ties). After a
path is taken out, ``acc`` only changes from the path's first frame on, and stops
changing at the first frame after its last one where ``acc`` comes out the same;
only those frames are recomputed.

:func:`reference_seq_nms` at the end is the same algorithm as plain Python loops, the
reference the batched version is checked against.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torchvision.ops import batched_nms

NEG_INF = float("-inf")


def batched_box_iou(a, b):
    """``torchvision.ops.box_iou`` batched over frames, with the same operations.

    Args:
        a (Tensor[T, N, 4]), b (Tensor[T, M, 4]): (x1, y1, x2, y2), continuous convention
    Returns:
        Tensor[T, N, M]
    """
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])  # (T, N)
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # (T, M)
    lt = torch.max(a[:, :, None, :2], b[:, None, :, :2])  # (T, N, M, 2)
    rb = torch.min(a[:, :, None, 2:], b[:, None, :, 2:])  # (T, N, M, 2)
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]  # (T, N, M)
    return inter / (area_a[:, :, None] + area_b[:, None, :] - inter)


def seq_nms_class(boxes, scores, valid, link_threshold: float = 0.5,
                  suppress_threshold: float = 0.3, rescore: str = "avg"):
    """Seq-NMS steps 1-5 for the boxes of one class in one video (no final NMS).

    Args:
        boxes (Tensor[T, N, 4]): (x1, y1, x2, y2), padded to N boxes per frame
        scores (Tensor[T, N])
        valid (Tensor[T, N] bool): which slots hold a box
        rescore: ``"avg"`` (the path's mean score) or ``"max"``
    Returns:
        on_path (Tensor[T, N] bool): boxes that ended on a path (the others were suppressed)
        new_scores (Tensor[T, N] float64): their new scores
    """
    if rescore not in ("avg", "max"):
        raise ValueError(f"rescore must be 'avg' or 'max', got {rescore!r}")
    T, N = scores.shape
    b = boxes.to(torch.float64)
    s = scores.to(torch.float64)
    # step 1: link_bias[t, j, i] = 0 if box j of frame t links to box i of frame t + 1, else -inf
    linked = (batched_box_iou(b[:-1], b[1:]) >= link_threshold) & valid[:-1, :, None] & valid[1:, None, :]
    link_bias = torch.where(linked, 0.0, NEG_INF).to(torch.float64)  # (T - 1, N, N)
    overlap = batched_box_iou(b, b) >= suppress_threshold  # (T, N, N)

    live_scores = torch.where(valid, s, NEG_INF)  # (T, N) -inf once on a path or suppressed
    acc = torch.full((T, N), NEG_INF, dtype=torch.float64)  # (T, N) best path sum ending at each box
    on_path = torch.zeros((T, N), dtype=torch.bool)
    new_scores = torch.zeros((T, N), dtype=torch.float64)

    def dp_frame(t) -> bool:
        """acc_t[i] = s_t[i] + max(0, max_j acc_{t-1}[j] over links j -> i); True if acc[t] changed."""
        prev_best = (acc[t - 1][:, None] + link_bias[t - 1]).amax(dim=0) if t else torch.zeros(N, dtype=torch.float64)
        new = live_scores[t] + prev_best.clamp(min=0)  # (N,)
        changed = not torch.equal(new, acc[t])
        acc[t] = new
        return changed

    for t in range(T):
        dp_frame(t)
    while T and N:
        end = int(acc.argmax())  # first (t, i) in frame order with the largest sum
        t_end, i = divmod(end, N)
        best = acc[t_end, i]
        if best == NEG_INF:
            break
        ts, idx = [t_end], [i]  # step 2: read the path back, first j on ties
        for t in range(t_end, 0, -1):
            cand = acc[t - 1] + link_bias[t - 1][:, i]  # (N,)
            j = int(cand.argmax())
            if not cand[j] > 0:
                break
            ts.append(t - 1)
            idx.append(j)
            i = j
        ts, idx = torch.tensor(ts[::-1]), torch.tensor(idx[::-1])  # (L,) frames t0..t_end
        # step 3: rescore; step 4: suppress what overlaps the path's box in its frames, and the path
        new_scores[ts, idx] = best / len(ts) if rescore == "avg" else s[ts, idx].max()
        on_path[ts, idx] = True
        live_scores[ts] = torch.where(overlap[ts, idx], NEG_INF, live_scores[ts])  # (L, N)
        live_scores[ts, idx] = NEG_INF
        # acc is unchanged before t0; recompute from there until past t_end it stops changing
        t = int(ts[0])
        while t < T and (dp_frame(t) or t <= t_end):
            t += 1
    return on_path, new_scores


def pad_class(frames, label: int):
    """The boxes of one class in one video, padded to N per frame: the input of :func:`seq_nms_class`.

    Args:
        frames (list of T tuples): per frame ``(boxes Tensor[N_t, 4], scores Tensor[N_t], labels Tensor[N_t])``
        label: the class
    Returns:
        boxes (Tensor[T, N, 4] float64), scores (Tensor[T, N] float64), valid (Tensor[T, N] bool): slot k of
        frame t holds the frame's k-th box of the class (input order), N the most boxes of it in one frame
    """
    mine = [f[2].reshape(-1).cpu() == label for f in frames]  # T masks (N_t,)
    T, N = len(frames), max([int(m.sum()) for m in mine], default=0)
    boxes = torch.zeros((T, N, 4), dtype=torch.float64)
    scores = torch.zeros((T, N), dtype=torch.float64)
    valid = torch.zeros((T, N), dtype=torch.bool)
    for t, ((b, s, _), m) in enumerate(zip(frames, mine)):
        n = int(m.sum())
        boxes[t, :n] = b.reshape(-1, 4).cpu()[m].to(torch.float64)  # (n, 4)
        scores[t, :n] = s.reshape(-1).cpu()[m].to(torch.float64)
        valid[t, :n] = True
    return boxes, scores, valid


def seq_nms(frames, *, link_threshold: float = 0.5, suppress_threshold: float = 0.3,
            nms_threshold: float = 0.5, rescore: str = "avg") -> list:
    """Seq-NMS over one video, all classes, then per-frame NMS.

    Args:
        frames (list of T tuples): per frame ``(boxes Tensor[N_t, 4], scores Tensor[N_t],
            labels Tensor[N_t])``, boxes in (x1, y1, x2, y2)
        link_threshold: IoU to link boxes of adjacent frames
        suppress_threshold: IoU with a path's box from which on a box is suppressed
        nms_threshold: IoU of the final per-frame NMS
        rescore: ``"avg"`` or ``"max"``
    Returns:
        list of T tuples ``(boxes, scores, labels)``: the kept boxes with their new
        scores (the input's dtype), by descending score within a frame
    """
    T = len(frames)
    if T == 0:
        return []
    device = frames[0][0].device
    counts = torch.tensor([len(f[1]) for f in frames])  # (T,)
    boxes = torch.cat([f[0].reshape(-1, 4) for f in frames]).cpu()  # (M, 4)
    scores = torch.cat([f[1].reshape(-1) for f in frames]).cpu()  # (M,)
    labels = torch.cat([f[2].reshape(-1) for f in frames]).cpu()  # (M,)
    frame = torch.repeat_interleave(torch.arange(T), counts)  # (M,)
    keep = torch.zeros(len(scores), dtype=torch.bool)
    new_scores = torch.zeros(len(scores), dtype=torch.float64)

    for c in labels.unique():
        idx = (labels == c).nonzero().squeeze(1)  # (M_c,) frame by frame, input order within a frame
        f = frame[idx]
        per_frame = torch.bincount(f, minlength=T)  # (T,)
        slot = torch.arange(len(idx)) - (torch.cumsum(per_frame, 0) - per_frame)[f]  # (M_c,) rank in frame
        N = int(per_frame.max())
        padded_boxes = torch.zeros((T, N, 4), dtype=torch.float64)
        padded_scores = torch.zeros((T, N), dtype=torch.float64)
        valid = torch.zeros((T, N), dtype=torch.bool)
        padded_boxes[f, slot] = boxes[idx].to(torch.float64)
        padded_scores[f, slot] = scores[idx].to(torch.float64)
        valid[f, slot] = True
        on_path, rescored = seq_nms_class(padded_boxes, padded_scores, valid,
                                          link_threshold, suppress_threshold, rescore)
        keep[idx] = on_path[f, slot]
        new_scores[idx] = rescored[f, slot]

    out = []
    bounds = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(counts, 0)]).tolist()
    for t in range(T):
        rows = torch.arange(bounds[t], bounds[t + 1])[keep[bounds[t]:bounds[t + 1]]]  # (K_t,)
        kept = rows[batched_nms(boxes[rows].to(torch.float64), new_scores[rows], labels[rows], nms_threshold)]
        out.append((boxes[kept].to(device), new_scores[kept].to(device, scores.dtype), labels[kept].to(device)))
    return out


# --------------------------------------------------------------------------- the reference
def _pair_iou(a, b):
    """torchvision's box_iou for one pair (continuous convention), same operations."""
    w = max(min(a[2], b[2]) - max(a[0], b[0]), 0.0)
    h = max(min(a[3], b[3]) - max(a[1], b[1]), 0.0)
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def reference_seq_nms(frames, link_threshold=0.5, suppress_threshold=0.3, nms_threshold=0.5, rescore="avg"):
    """Plain Python Seq-NMS over one video; same input and output as ``seq_nms``.

    The algorithm as the paper states it, with lists and loops, recomputing the whole dynamic
    program for every path: slow, and obviously right. ``seq_nms`` must give exactly the same
    boxes and scores (``tests/test_seq_nms.py``); ``benchmarks/bench_eval.py`` times the two.
    """
    T = len(frames)
    B = [f[0].double().tolist() for f in frames]
    S = [f[1].double().tolist() for f in frames]
    L = [f[2].tolist() for f in frames]
    new_score = [[None] * len(s) for s in S]  # None: suppressed
    for c in sorted({lab for labels in L for lab in labels}):
        ids = [[i for i, lab in enumerate(L[t]) if lab == c] for t in range(T)]
        alive = [set(i) for i in ids]
        # links[t][i]: boxes j of frame t - 1 with IoU >= link_threshold, in order
        links = [{i: [j for j in (ids[t - 1] if t else []) if _pair_iou(B[t - 1][j], B[t][i]) >= link_threshold]
                  for i in ids[t]} for t in range(T)]
        while True:
            acc, pred = [{} for _ in range(T)], [{} for _ in range(T)]
            for t in range(T):
                for i in ids[t]:
                    if i not in alive[t]:
                        continue
                    best, arg = -math.inf, -1
                    for j in links[t][i]:
                        if j in alive[t - 1] and acc[t - 1][j] > best:
                            best, arg = acc[t - 1][j], j
                    acc[t][i], pred[t][i] = (S[t][i] + best, arg) if best > 0 else (S[t][i], -1)
            end, best = None, -math.inf
            for t in range(T):
                for i in ids[t]:
                    if i in acc[t] and acc[t][i] > best:
                        end, best = (t, i), acc[t][i]
            if end is None:
                break
            path, (t, i) = [], end
            while i >= 0:
                path.append((t, i))
                t, i = t - 1, pred[t][i]
            value = best / len(path) if rescore == "avg" else max(S[t][i] for t, i in path)
            for t, i in path:
                new_score[t][i] = value
                alive[t] = {k for k in alive[t] if k != i and _pair_iou(B[t][i], B[t][k]) < suppress_threshold}
    out = []
    for t in range(T):
        order = sorted((i for i, s in enumerate(new_score[t]) if s is not None), key=lambda i: -new_score[t][i])
        keep = []
        for i in order:
            if all(L[t][k] != L[t][i] or _pair_iou(B[t][k], B[t][i]) <= nms_threshold for k in keep):
                keep.append(i)
        out.append([(tuple(np.float32(B[t][i])), np.float32(new_score[t][i]), L[t][i]) for i in keep])
    return out
