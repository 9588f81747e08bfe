"""``python -m minivod evaluate`` and ``compare``: score an ILSVRC VID result file, or two against each other.

    python -m minivod evaluate --data data_small --split val --dets dets.txt \\
        --out results.json [--plots plots/]

Prints per-class AP and the slow / medium / fast and per-tag mAPs (3 decimals),
writes them as JSON, and optionally saves the precision-recall and per-group plots.

    python -m minivod compare --data data_small --split val --dets A.txt B.txt \\
        --out diff.json [--resamples 1000] [--seed 0]

Gives each figure for A and B, B - A, its 95% interval from a paired bootstrap over
the split's videos (``minivod.eval.bootstrap``) and a verdict, and writes them as JSON.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from minivod.data.lists import resolve_list
from minivod.eval.breakdown import SPEED_GROUPS
from minivod.eval.ground_truth import ground_truth_from_dataset
from minivod.eval.results_io import RESULT_FIELDS, read_vid_results
from minivod.eval.vid_eval import evaluate_vid


def add_evaluate_parser(subparsers):
    """Register the ``evaluate`` sub-command on an argparse ``subparsers`` object."""
    p = subparsers.add_parser(
        "evaluate", help="ImageNet VID mAP (with slow/medium/fast and degradation breakdowns) of a result file",
        description="Evaluate an ILSVRC VID result file (one detection per line: "
                    f"'{RESULT_FIELDS}', frame and class indices 1-based) with the ImageNet VID "
                    "protocol of the FGFA / SELSA code: per-box IoU threshold min(0.5, wh/((w+10)(h+10))), "
                    "+1-pixel boxes, all-point AP. See docs/evaluation.md.")
    p.add_argument("--data", required=True, help="dataset root in the ImageNet VID layout (e.g. data_small)")
    p.add_argument("--split", default="val", help="split to evaluate (default: val)")
    p.add_argument("--dets", required=True, help="result file")
    p.add_argument("--out", default=None, help="write the results as JSON here")
    add_val_list_argument(p)
    p.add_argument("--plots", default=None, help="save pr_curves.png and ap_by_group.png in this folder")
    p.add_argument("--no-breakdown", action="store_true", help="overall mAP only (faster)")
    p.set_defaults(func=run_evaluate)
    return p


def add_val_list_argument(p):
    p.add_argument("--val-list", default=None,
                   help="the frames to score, in place of DATA/ImageSets/VID/<split>.txt: the devkit's val.txt, "
                        "the codebases' VID_val_frames.txt or VID_val_videos.txt (frame indices are the devkit's "
                        "in each); the format is recognised from the file; a path, or one relative to DATA")


def _fmt(x) -> str:
    return "    -" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f}"


def format_table(result: dict) -> str:
    """A readable table: AP per class (and per speed group), then the group mAPs; 3 decimals."""
    speeds = [g for g in SPEED_GROUPS if f"mAP_{g}" in result]
    width = max([len(n) for n in result["per_class"]] + [12])
    lines = [f"{'class':<{width}}  {'AP':>6}" + "".join(f"  {g:>6}" for g in speeds)]
    for name, ap in result["per_class"].items():
        row = [_fmt(result["per_class_by_speed"][g][name]) for g in speeds]
        lines.append(f"{name:<{width}}  {_fmt(ap):>6}" + "".join(f"  {v:>6}" for v in row))
    lines.append(f"{'mAP':<{width}}  {_fmt(result['mAP']):>6}"
                 + "".join(f"  {_fmt(result[f'mAP_{g}']):>6}" for g in speeds))
    counts = result["num_gt"]
    if speeds:
        lines.append("ground-truth boxes: " + ", ".join(f"{g} {counts[g]}" for g in ["all"] + speeds))
    if "mAP_by_tag" in result:
        lines.append("")
        lines.append(f"{'degradation':<{width}}  {'mAP':>6}  {'boxes':>6}")
        for tag, m in result["mAP_by_tag"].items():
            lines.append(f"{tag:<{width}}  {_fmt(m):>6}  {counts[tag]:>6}")
    return "\n".join(lines)


def to_json(result: dict) -> dict:
    """The result without the PR curves, NaN (a class without ground truth) as null."""
    def clean(v):
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, float) and math.isnan(v):
            return None
        return v
    return clean({k: v for k, v in result.items() if k != "pr_curves"})


def run_evaluate(args) -> int:
    """Load the split, read the result file, evaluate, print, write JSON and plots."""
    from minivod.data.vid import VIDDataset

    try:
        dataset = VIDDataset(args.data, split=args.split, skip_empty=False, check_images=False,
                             image_set=resolve_list(args.val_list, args.data) if args.val_list else None)
        gt = ground_truth_from_dataset(dataset)
        dets = read_vid_results(args.dets, num_classes=gt.num_classes, frame_indices=gt.frames.keys())
        breakdown = not args.no_breakdown
        result = evaluate_vid(dets, gt, motion_breakdown=breakdown, tag_breakdown=breakdown,
                              return_curves=bool(args.plots))
    except ValueError as e:  # includes the data layer's DataError
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{args.dets}: {len(dets)} detections on {len(gt.frames)} frames of {args.data} ({args.split})")
    print(format_table(result))
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(to_json(result), indent=2) + "\n")
        print(f"wrote {out}")
    if args.plots:
        from minivod.eval.plots import plot_ap_by_group, plot_pr_curves

        folder = Path(args.plots)
        folder.mkdir(parents=True, exist_ok=True)
        plot_pr_curves(result).savefig(folder / "pr_curves.png", dpi=120)
        if breakdown:
            plot_ap_by_group(result).savefig(folder / "ap_by_group.png", dpi=120)
        print(f"wrote plots to {folder}")
    return 0


# --------------------------------------------------------------------------- compare
def add_compare_parser(subparsers):
    """Register the ``compare`` sub-command: B against A with paired bootstrap intervals over videos."""
    p = subparsers.add_parser(
        "compare", help="is detector B better than A? mAP differences with 95%% intervals (paired bootstrap)",
        description="Score two ILSVRC VID result files (what `minivod eval --dets` writes) on the same split and "
                    "give each figure (mAP, slow/medium/fast, clean/degraded where the data has tags) for A and B, "
                    "the difference B - A, and its 95% interval: the 2.5th to 97.5th percentile of B - A over "
                    "bootstrap resamples of the split's videos (each resample draws the split's videos with "
                    "replacement, a video drawn twice counts twice, and A and B are scored on the same draws). "
                    "It measures how much the difference depends on which videos happen to be in the split; it "
                    "does not cover training randomness (train with several seeds for that). If the interval "
                    "contains 0 the difference is not established on this split; if it lies above 0, B is "
                    "better, below 0, A is. Prints a table and writes JSON: per figure {a, b, diff, low, high}. "
                    "See docs/evaluation.md.")
    p.add_argument("--data", required=True, help="dataset root in the ImageNet VID layout (e.g. data_small)")
    p.add_argument("--split", default="val", help="split both files were made on (default: val)")
    p.add_argument("--dets", required=True, nargs=2, metavar=("A.txt", "B.txt"), help="the two result files")
    p.add_argument("--out", default=None, help="write the comparison as JSON here")
    add_val_list_argument(p)
    p.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the resampling (default 0)")
    p.set_defaults(func=run_compare)
    return p


def verdict(c: dict) -> str:
    """'B better', 'A better' or 'not established' from a comparison entry's interval."""
    if c["low"] > 0:
        return "B better"
    if c["high"] < 0:
        return "A better"
    return "not established"  # the interval contains 0 (or the figure has no value)


def _signed(x) -> str:
    return "     -" if math.isnan(x) else f"{x:+.3f}"


def format_comparison(result: dict, a_name="A", b_name="B") -> str:
    """The comparison as a table: figure, A, B, B - A, its 95% interval, the verdict; 3 decimals."""
    lines = [f"{'figure':<14}{'A':>7}{'B':>7}{'B - A':>8}   {'95% interval':<18}  verdict"]
    for name, c in result.items():
        if name.startswith("_"):
            continue
        lines.append(f"{name:<14}{_fmt(c['a']):>7}{_fmt(c['b']):>7}{_signed(c['diff']):>8}   "
                     f"{'[' + _signed(c['low']) + ', ' + _signed(c['high']) + ']':<18}  {verdict(c)}")
    meta = result.get("_meta", {})
    lines.append(f"A = {a_name}, B = {b_name}; interval: {meta.get('resamples')} paired resamples of the "
                 f"{meta.get('num_videos')} videos (seed {meta.get('seed')})")
    return "\n".join(lines)


def run_compare(args) -> int:
    """Read both files, bootstrap, print, write JSON."""
    from minivod.data.vid import VIDDataset
    from minivod.eval.bootstrap import frame_videos, paired_bootstrap

    try:
        if args.resamples < 1:
            raise ValueError(f"--resamples must be at least 1, got {args.resamples}")
        dataset = VIDDataset(args.data, split=args.split, skip_empty=False, check_images=False,
                             image_set=resolve_list(args.val_list, args.data) if args.val_list else None)
        gt = ground_truth_from_dataset(dataset)
        a, b = (read_vid_results(path, num_classes=gt.num_classes, frame_indices=gt.frames.keys())
                for path in args.dets)
        result = paired_bootstrap(gt, a, b, frame_videos(dataset), resamples=args.resamples, seed=args.seed)
    except ValueError as e:  # includes the data layer's DataError; a bad line is named as path:line
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"A = {args.dets[0]}: {len(a)} detections; B = {args.dets[1]}: {len(b)} detections; "
          f"{len(gt.frames)} frames of {args.data} ({args.split})")
    print(format_comparison(result, *args.dets))
    if args.out:
        result["_meta"].update({"a": str(args.dets[0]), "b": str(args.dets[1]), "data": str(args.data),
                                "split": args.split})
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(to_json(result), indent=2) + "\n")
        print(f"wrote {out}")
    return 0
