"""The ImageNet VID evaluation protocol, as in the FGFA / SELSA code lineage.

1. Each ground-truth box ``k`` has its own IoU threshold
   ``thr_k = min(0.5, w*h / ((w + 10) * (h + 10)))`` with ``w = x2 - x1 + 1``:
   small objects are matched with a relaxed threshold. IoUs use the same
   +1-pixel convention (``minivod.boxes``).
2. Within a frame, detections are taken in descending score. Each takes the
   not-yet-taken ground truth of its class with the highest IoU at or above that
   ground truth's own threshold (a true positive), or is a false positive.
3. Per class, detections of the whole split are ranked by score; precision and
   recall along that ranking give the all-point (VOC 2010+) AP, the area under
   the precision envelope. mAP is the mean over the classes that have ground
   truth in the split.

The per-group breakdowns (slow / medium / fast motion, degradation tags) reuse
the matching and only change how each detection counts: see ``breakdown.py``.

Everything is array code over all detections at once: a split the size of the
ImageNet VID validation set (17.6 million detections) is evaluated without a
Python loop over frames or detections.
"""
from __future__ import annotations

import numpy as np

from minivod.boxes import box_area_vid
from minivod.eval.breakdown import group_weights, speed_group_masks, tag_group_masks
from minivod.eval.ground_truth import FlatGroundTruth, GroundTruth
from minivod.eval.results_io import as_vid_detections

PAIR_CHUNK = 1 << 22  # (detection, ground truth) pairs built at a time; bounds the memory


# --------------------------------------------------------------------------- small parts
def paired_iou_vid(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of ``a[p]`` with ``b[p]`` (+1-pixel convention): the diagonal of ``box_iou_vid(a, b)``.

    Args:
        a (ndarray[P, 4]), b (ndarray[P, 4]): boxes in (x1, y1, x2, y2)
    Returns:
        ndarray[P]
    """
    iw = np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]) + 1  # (P,)
    ih = np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]) + 1  # (P,)
    inter = np.maximum(iw, 0) * np.maximum(ih, 0)
    union = box_area_vid(a) + box_area_vid(b) - inter
    return inter / union


def average_precision(recall: np.ndarray, precision: np.ndarray) -> float:
    """All-point (VOC 2010+) AP: the area under the precision envelope.

    ``AP = sum_i (r_{i+1} - r_i) * p_interp(r_{i+1})`` with
    ``p_interp(r) = max_{r' >= r} p(r')``, the curve padded with (0, 0) and (1, 0).

    Args:
        recall (ndarray[K]), precision (ndarray[K]): along the score ranking
    """
    r = np.concatenate([[0.0], recall, [1.0]])  # (K + 2,)
    p = np.concatenate([[0.0], precision, [0.0]])  # (K + 2,)
    p = np.maximum.accumulate(p[::-1])[::-1]  # p_interp: running max from the right
    step = np.flatnonzero(r[1:] != r[:-1])  # where recall changes
    return float(np.sum((r[step + 1] - r[step]) * p[step + 1]))


def pairs_in_ranges(lo: np.ndarray, hi: np.ndarray):
    """Yield ``(rows, cols)`` chunks listing every ``(i, j)`` with ``lo[i] <= j < hi[i]``, row-major.

    Args:
        lo (ndarray[R]), hi (ndarray[R]): int64 bounds per row
    Yields:
        rows (ndarray[P]), cols (ndarray[P]) with about PAIR_CHUNK pairs per chunk
    """
    n = hi - lo  # (R,)
    ends = np.cumsum(n)  # (R,)
    total = int(ends[-1]) if len(ends) else 0
    cuts = np.searchsorted(ends, np.arange(PAIR_CHUNK, total, PAIR_CHUNK))
    bounds = np.unique(np.concatenate([[0], cuts, [len(n)]]))
    for r0, r1 in zip(bounds[:-1], bounds[1:]):
        n_c = n[r0:r1]
        rows = np.repeat(np.arange(r0, r1), n_c)  # (P,)
        first = np.repeat(np.cumsum(n_c) - n_c, n_c)  # (P,) where each row's pairs start
        cols = np.repeat(lo[r0:r1], n_c) + np.arange(len(rows)) - first  # (P,)
        yield rows, cols


def _concat_pairs(chunks):
    """Concatenate ``(det, gt, iou)`` chunks into three arrays (empty ones if no chunk)."""
    if not chunks:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    return tuple(np.concatenate(parts) for parts in zip(*chunks))


# --------------------------------------------------------------------------- the protocol
def canonical_order(frame_pos, labels, scores, boxes, num_classes: int) -> np.ndarray:
    """The order the protocol visits detections in: by frame, class, descending score.

    Exact score ties within a frame and class are broken by box coordinates, so the
    result never depends on the order of the lines of a result file.

    Args:
        frame_pos (ndarray[D]), labels (ndarray[D]), scores (ndarray[D]), boxes (ndarray[D, 4])
    Returns:
        ndarray[D]: a permutation
    """
    key = frame_pos * (num_classes + 1) + labels  # (D,) one key per (frame, class)
    order = np.argsort(-scores)  # ties in any order: fixed below
    order = order[np.argsort(key[order], kind="stable")]  # lexsort by (key, -score), done in two passes
    k, s = key[order], scores[order]
    tie = (k[1:] == k[:-1]) & (s[1:] == s[:-1])  # (D - 1,) row i+1 ties with row i
    if tie.any():
        run = np.cumsum(np.concatenate([[True], ~tie]))  # (D,) id of each run of tied rows
        idx = np.flatnonzero(np.concatenate([tie, [False]]) | np.concatenate([[False], tie]))
        b = boxes[order[idx]]  # (R, 4) the rows of the tie runs
        order[idx] = order[idx][np.lexsort((b[:, 3], b[:, 2], b[:, 1], b[:, 0], run[idx]))]
    return order


def match_detections(det_boxes, det_key, gt_boxes, gt_key, gt_threshold) -> np.ndarray:
    """Greedy VID matching of all detections to the ground truth.

    Detections come grouped by ``det_key`` (one key per frame and class), in
    descending score within a group. In that order, each takes the not-yet-taken
    ground truth of its group with the highest IoU ``>= thr_k``; ties go to the
    earlier ground truth (FGFA: ``ov >= thr[k] and ov > ovmax``).

    The sequential loop runs as rounds over all groups at once: in each round,
    the best-scored detection of every group that still has a free candidate
    takes its best one. The detections before it have no free candidate left and
    stay false positives, so a round is one step of the loop in every group, and
    there are as many rounds as the most ground truth any (frame, class) has.

    Args:
        det_boxes (ndarray[D, 4]), det_key (ndarray[D], non-decreasing)
        gt_boxes (ndarray[G, 4]), gt_key (ndarray[G]), gt_threshold (ndarray[G])
    Returns:
        ndarray[D] int64: the ground-truth row each detection took, -1 for none
    """
    gt_order = np.argsort(gt_key, kind="stable")  # (G,) grouped by key, annotation order kept
    sorted_key = gt_key[gt_order]
    lo = np.searchsorted(sorted_key, det_key, side="left")  # (D,)
    hi = np.searchsorted(sorted_key, det_key, side="right")  # (D,)
    cand = []  # (det, gt, iou) with iou >= thr of the gt: the only pairs that can match
    for rows, slots in pairs_in_ranges(lo, hi):
        gts = gt_order[slots]
        iou = paired_iou_vid(det_boxes[rows], gt_boxes[gts])  # (P,)
        ok = iou >= gt_threshold[gts]
        cand.append((rows[ok], gts[ok], iou[ok]))
    det, gt, iou = _concat_pairs(cand)  # (P,) each, in detection order

    matched = np.full(len(det_boxes), -1, dtype=np.int64)
    taken = np.zeros(len(gt_boxes), dtype=bool)
    while len(det):  # within one detection, candidates are in GT (annotation) order
        key = det_key[det]
        new_group = np.concatenate([[True], key[1:] != key[:-1]])  # (P,)
        head = det[new_group][np.cumsum(new_group) - 1]  # (P,) first detection of the pair's group
        moving = np.flatnonzero(det == head)
        best = moving[np.lexsort((-iou[moving], det[moving]))]  # by detection, IoU descending, stable
        winner = best[np.concatenate([[True], det[best][1:] != det[best][:-1]])]
        matched[det[winner]] = gt[winner]
        taken[gt[winner]] = True
        keep = (det != head) & ~taken[gt]
        det, gt, iou = det[keep], gt[keep], iou[keep]
    return matched


def frame_overlaps(det_boxes, det_frame_pos, gt: FlatGroundTruth):
    """Every (detection, ground truth) pair of the same frame, any class, with IoU > 0.

    Args:
        det_boxes (ndarray[D, 4]), det_frame_pos (ndarray[D])
    Returns:
        det (ndarray[P]), gt (ndarray[P]) row indices, iou (ndarray[P])
    """
    out = []
    lo, hi = gt.frame_start[det_frame_pos], gt.frame_start[det_frame_pos + 1]  # (D,)
    for rows, gts in pairs_in_ranges(lo, hi):
        iou = paired_iou_vid(det_boxes[rows], gt.boxes[gts])
        ok = iou > 0
        out.append((rows[ok], gts[ok], iou[ok]))
    return _concat_pairs(out)


def class_ranking(labels, scores, num_classes: int) -> list:
    """Per class c (1..C), its detections by descending score (ties keep their order)."""
    ranking = [np.zeros(0, dtype=np.int64)]
    for c in range(1, num_classes + 1):
        idx = np.flatnonzero(labels == c)
        ranking.append(idx[np.argsort(-scores[idx], kind="stable")])
    return ranking


def ap_per_class(tp, fp, ranking, num_pos, with_curves=False):
    """AP of every class from per-detection TP / FP weights.

    Args:
        tp (ndarray[D]), fp (ndarray[D]): weights (0 / 1, or fractions in a breakdown)
        ranking (list): from :func:`class_ranking`
        num_pos (ndarray[C + 1]): ground-truth count per class
    Returns:
        ap (ndarray[C + 1], NaN where a class has no ground truth; entry 0 unused),
        curves (dict c -> (recall, precision), only with ``with_curves``)
    """
    ap = np.full(len(ranking), np.nan)
    curves = {}
    for c in range(1, len(ranking)):
        if num_pos[c] == 0:
            continue
        ctp = np.cumsum(tp[ranking[c]])  # (D_c,)
        cfp = np.cumsum(fp[ranking[c]])
        recall = ctp / num_pos[c]
        precision = ctp / np.maximum(ctp + cfp, np.finfo(np.float64).eps)
        ap[c] = average_precision(recall, precision)
        if with_curves:
            curves[c] = (recall, precision)
    return ap, curves


def _mean(ap) -> float:
    ok = np.isfinite(ap[1:])
    return float(ap[1:][ok].mean()) if ok.any() else float("nan")


def _frame_positions(frame_index, frame_indices) -> np.ndarray:
    """Position of each detection's frame in the split; raises for a frame not in it."""
    pos = np.searchsorted(frame_indices, frame_index)  # (D,)
    inside = pos < len(frame_indices)
    bad = ~inside
    bad[inside] = frame_indices[pos[inside]] != frame_index[inside]
    if bad.any():
        raise ValueError(f"{int(bad.sum())} detections are on frames that are not in the split "
                         f"(first: frame index {int(frame_index[bad][0])})")
    return pos


# --------------------------------------------------------------------------- the whole split
def evaluate_vid(detections, ground_truth: GroundTruth, *, motion_breakdown: bool = True,
                 tag_breakdown: bool = True, tags=None, return_curves: bool = False) -> dict:
    """Evaluate detections of a split with the ImageNet VID protocol.

    Args:
        detections: :class:`VIDDetections`, or ``{frame_index: (boxes Tensor[N, 4],
            scores Tensor[N], labels Tensor[N])}`` with boxes in the VID convention
            and labels in 1..C
        ground_truth (GroundTruth): every frame of the split
        motion_breakdown: also report slow / medium / fast (motion IoU > 0.9,
            0.7..0.9, < 0.7)
        tag_breakdown: also report one mAP per degradation tag, and ``"clean"``
        tags: the tags to report (default: all tags found in the ground truth)
        return_curves: add ``"pr_curves"``: class name -> (recall, precision)
    Returns:
        dict with ``mAP``, ``per_class`` (name -> AP, NaN for a class without
        ground truth), ``num_gt``; with the motion breakdown ``mAP_slow``,
        ``mAP_medium``, ``mAP_fast`` and ``per_class_by_speed``; with the tag
        breakdown ``mAP_by_tag`` and ``per_class_by_tag``. APs are fractions in [0, 1].
    """
    gt = ground_truth.flat
    C, names = ground_truth.num_classes, ground_truth.class_names
    dets = as_vid_detections(detections)
    if len(dets) and (dets.labels.min() < 1 or dets.labels.max() > C):
        raise ValueError(f"detection class indices must be in 1..{C}")
    if not np.isfinite(dets.scores).all() or not np.isfinite(dets.boxes).all():
        raise ValueError("detection scores and boxes must be finite")
    pos = _frame_positions(dets.frame_index, gt.frame_indices)  # (D,)

    order = canonical_order(pos, dets.labels, dets.scores, dets.boxes, C)  # (D,)
    pos, labels, scores, boxes = pos[order], dets.labels[order], dets.scores[order], dets.boxes[order]
    matched = match_detections(boxes, pos * (C + 1) + labels,
                               gt.boxes, gt.frame_pos * (C + 1) + gt.labels, gt.iou_threshold)  # (D,)
    ranking = class_ranking(labels, scores, C)

    tp = (matched >= 0).astype(np.float64)  # (D,)
    ap, curves = ap_per_class(tp, 1.0 - tp, ranking, np.bincount(gt.labels, minlength=C + 1), return_curves)
    result = {"mAP": _mean(ap), "per_class": {names[c - 1]: float(ap[c]) for c in range(1, C + 1)},
              "num_gt": {"all": len(gt.labels)}}
    if return_curves:
        result["pr_curves"] = {names[c - 1]: rp for c, rp in curves.items()}

    groups = {}
    if motion_breakdown:
        groups["speed"] = speed_group_masks(gt.motion_iou)
    if tag_breakdown:
        groups["tag"] = tag_group_masks(gt.tags, tags)
    if not groups:
        return result
    unmatched = np.flatnonzero(matched < 0)
    ov_det, ov_gt, ov_iou = frame_overlaps(boxes[unmatched], pos[unmatched], gt)
    overlaps = (unmatched[ov_det], ov_gt, ov_iou)
    for kind, masks in groups.items():
        per_class, maps = {}, {}
        for name, in_group in masks.items():
            tp_g, fp_g = group_weights(matched, in_group, pos, overlaps, gt)
            ap_g, _ = ap_per_class(tp_g, fp_g, ranking, np.bincount(gt.labels[in_group], minlength=C + 1))
            maps[name] = _mean(ap_g)
            per_class[name] = {names[c - 1]: float(ap_g[c]) for c in range(1, C + 1)}
            result["num_gt"][name] = int(in_group.sum())
        if kind == "speed":
            result.update({f"mAP_{name}": m for name, m in maps.items()})
            result["per_class_by_speed"] = per_class
        else:
            result["mAP_by_tag"] = maps
            result["per_class_by_tag"] = per_class
    return result


# --------------------------------------------------------------------------- the headline figures
FIGURES = ("mAP", "mAP_slow", "mAP_medium", "mAP_fast", "mAP_clean", "mAP_degraded")


def figures(result: dict, tags=("clean", "degraded"), missing=None) -> dict:
    """The headline figures of an :func:`evaluate_vid` result, as one flat row.

    ``mAP``, ``mAP_slow`` / ``mAP_medium`` / ``mAP_fast``, then ``mAP_<tag>`` for each of ``tags``
    (``clean``: boxes without a degradation tag, ``degraded``: with any; ``missing`` when no box has
    the tag). The row of the demo, the benchmarks and the bootstrap (:data:`FIGURES`).
    """
    by_tag = result.get("mAP_by_tag", {})
    row = {k: result[k] for k in ("mAP", "mAP_slow", "mAP_medium", "mAP_fast")}
    row.update({f"mAP_{tag}": by_tag.get(tag, missing) for tag in tags})
    return row
