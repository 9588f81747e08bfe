"""mAP of one group of ground truth: slow / medium / fast motion, or a degradation tag.

FGFA (Zhu et al., 2017, ``vid_eval_motion.py``) splits the ImageNet VID
ground truth by motion IoU and evaluates each group on its own. Matching is
the ordinary one, against all ground truth of the class; what changes is how
each detection counts. Ground truth outside the group is *ignored*:

- it leaves the positive count of its class;
- a detection matched to an ignored box is neither a TP nor an FP;
- a detection matched to a box of the group is a TP;
- an unmatched detection (an FP) is weighed by what it overlaps most, over the
  boxes of its frame of any class (+1-pixel IoU, 0 when disjoint):

  * a box of the group: weight 1 (a full FP);
  * an ignored box: weight 0;
  * a tie (a box of each kind at the same best IoU, 0 included): the fraction of
    the frame's boxes that are ignored;
  * a frame without any box: the fraction of all boxes of the split that are in
    the group.

FP weights are thus fractional and precision uses the weighted FP count. The
same rules serve the degradation tags: the group is the boxes carrying the tag
(``"clean"``: the boxes carrying none).
"""
from __future__ import annotations

import numpy as np

SPEED_GROUPS = ("slow", "medium", "fast")
CLEAN = "clean"
DEGRADED = "degraded"  # any tag at all: the complement of clean


def speed_group_masks(motion_iou: np.ndarray) -> dict:
    """Boolean masks of the three speed groups.

    The bounds of :func:`minivod.data.motion.motion_group`: slow > 0.9,
    medium 0.7..0.9 (both ends included), fast < 0.7. A NaN motion IoU (unknown)
    is in no group.

    Args:
        motion_iou (ndarray[G])
    Returns:
        dict name -> ndarray[G] of bool
    """
    m = np.asarray(motion_iou, dtype=np.float64)
    return {"slow": m > 0.9, "medium": (m >= 0.7) & (m <= 0.9), "fast": m < 0.7}


def tag_group_masks(box_tags, tags=None) -> dict:
    """Boolean masks of the boxes carrying each tag, plus ``"clean"`` (no tag) and ``"degraded"`` (any).

    Args:
        box_tags (list of G tuples of str)
        tags: the tags to report; default: every tag that occurs, sorted
    Returns:
        dict tag -> ndarray[G] of bool
    """
    if tags is None:
        tags = sorted({t for bt in box_tags for t in bt})
    masks = {tag: np.array([tag in bt for bt in box_tags], dtype=bool) for tag in tags if tag not in (CLEAN, DEGRADED)}
    masks[CLEAN] = np.array([len(bt) == 0 for bt in box_tags], dtype=bool)
    masks[DEGRADED] = ~masks[CLEAN]
    return masks


def group_weights(matched, in_group, det_frame_pos, overlaps, gt):
    """TP and FP weight of each detection when only the ``in_group`` boxes count.

    Args:
        matched (ndarray[D]): ground-truth row each detection took, -1 for none
        in_group (ndarray[G] of bool): the group
        det_frame_pos (ndarray[D]): frame position of each detection
        overlaps: ``(det, gt, iou)`` of every same-frame pair with IoU > 0 (any class),
            at least for the unmatched detections
        gt (FlatGroundTruth)
    Returns:
        tp (ndarray[D]), fp (ndarray[D]): float weights
    """
    n_frames = len(gt.frame_indices)
    n_gt = np.diff(gt.frame_start)  # (F,) boxes per frame
    n_ignored = np.bincount(gt.frame_pos[~in_group], minlength=n_frames)  # (F,)
    n_in = n_gt - n_ignored  # (F,)
    is_matched = matched >= 0
    tp = np.zeros(len(matched))  # (D,)
    tp[is_matched] = in_group[matched[is_matched]]  # matched to an ignored box: 0

    # FGFA's ovmax_nig / ovmax_ig: best IoU with a box of the group / an ignored box,
    # -1 when the frame has no such box
    ov_in = np.where(n_in[det_frame_pos] > 0, 0.0, -1.0)  # (D,)
    ov_out = np.where(n_ignored[det_frame_pos] > 0, 0.0, -1.0)  # (D,)
    det, box, iou = overlaps
    g = in_group[box]
    np.maximum.at(ov_in, det[g], iou[g])
    np.maximum.at(ov_out, det[~g], iou[~g])

    split_fraction = n_in.sum() / max(n_gt.sum(), 1)  # for frames without any box
    tie_weight = np.where(n_gt > 0, n_ignored / np.maximum(n_gt, 1), split_fraction)  # (F,)
    fp = np.where(ov_in > ov_out, 1.0, np.where(ov_out > ov_in, 0.0, tie_weight[det_frame_pos]))  # (D,)
    fp[is_matched] = 0.0
    return tp, fp
