"""ImageNet VID evaluation (FGFA / SELSA protocol, with the motion and degradation
breakdowns), the result-file reader and writer, Seq-NMS, and plots.

- ``ground_truth.py``  the split's ground truth (:class:`GroundTruth`)
- ``results_io.py``    detections (:class:`VIDDetections`) and the ILSVRC result file
- ``vid_eval.py``      matching, AP, :func:`evaluate_vid`, its headline :func:`figures`
- ``breakdown.py``     how detections count for one group (slow / medium / fast, a tag)
- ``bootstrap.py``     paired bootstrap over videos: is B better than A, or is it noise?
- ``ratio_bootstrap.py`` a ratio of sums over objects (or frames), its interval over resampled videos
- ``seq_nms.py``       Seq-NMS post-processing over a video (and its plain-loop reference)
- ``synthetic.py``     a small synthetic split and detections, for checks and timings
- ``plots.py``         precision-recall curves, AP by group, gains with their intervals
- ``seeds.py``         the seed benchmark read back: mean ± std over seeds, gains, verdicts
- ``verdict.py``       holds / fails / not established, and the box that closes every notebook
- ``attention.py``     RoIs labelled by track; where an aggregator's weight rows go (same object, background)
- ``cli.py``           ``python -m minivod evaluate`` and ``compare``
"""
from minivod.eval.breakdown import CLEAN, SPEED_GROUPS, group_weights, speed_group_masks, tag_group_masks
from minivod.eval.ground_truth import FrameGroundTruth, GroundTruth, ground_truth_from_dataset
from minivod.eval.results_io import VIDDetections, as_vid_detections, read_vid_results, write_vid_results
from minivod.eval.seq_nms import seq_nms, seq_nms_class
from minivod.eval.vid_eval import (
    FIGURES,
    average_precision,
    evaluate_vid,
    figures,
    match_detections,
    paired_iou_vid,
)

__all__ = [
    "CLEAN", "FIGURES", "SPEED_GROUPS", "FrameGroundTruth", "GroundTruth", "VIDDetections",
    "as_vid_detections", "average_precision", "evaluate_vid", "figures", "ground_truth_from_dataset",
    "group_weights", "match_detections", "paired_iou_vid", "read_vid_results", "seq_nms",
    "seq_nms_class", "speed_group_masks", "tag_group_masks", "write_vid_results",
]
