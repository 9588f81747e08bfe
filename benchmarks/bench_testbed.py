"""Can data_small answer the papers' question? The baseline over seeds, clean against degraded, the class oracle.

    python benchmarks/bench_testbed.py            # evaluate the runs that exist
    python benchmarks/bench_testbed.py --train    # train the missing ones first (~25 CPU-min each)

The single-frame baseline is trained from the pre-trained tiny backbone with
several seeds (``python -m minivod train --method baseline --preset tiny --seed S
--out runs/bench/baseline_3000_sS``; the shipped ``baseline_tiny.pt`` is seed 0)
and measured on data_small val. The testbed asks for:

- a seed-to-seed standard deviation of val mAP of at most 0.02 (so a gap of a few
  hundredths between methods can be told from noise);
- degraded-box AP at least 0.15 below clean-box AP (single frames of degraded
  objects are genuinely hard);
- the class oracle (``minivod.eval.oracle``: each detection takes the class of the
  ground-truth track it sits on) at least 0.10 mAP above the baseline, with its
  95% paired bootstrap interval over val videos (aggregation has something to
  recover).

Each evaluation is cached beside its run (``val_result.json``, ``val_dets.txt``);
each run's record goes to ``benchmarks/results/runs/``; the summary to
``benchmarks/results/testbed.{md,json}``.
"""
from __future__ import annotations

import argparse
import sys

from minivod.eval import FIGURES, figures

from record import machine, write_results
from runs import ITERS, TAGS, evaluate_run, find_run, read_dets, train_command, trained_checkpoint
from tables import intervals, markdown_table, mean_std, short


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--train", action="store_true", help="train the runs that are missing (resumes unfinished)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples")
    args = parser.parse_args(argv)

    from minivod.data.vid import VIDDataset
    from minivod.engine.evaluate import default_data_root
    from minivod.eval import evaluate_vid, ground_truth_from_dataset
    from minivod.eval.bootstrap import frame_videos, paired_bootstrap
    from minivod.eval.oracle import class_oracle

    val = VIDDataset(default_data_root(), "val")
    if args.train:
        for seed in args.seeds:
            trained_checkpoint("baseline", seed=seed, use_shipped=False, device=args.device, progress=True)
    missing = [s for s in args.seeds if find_run("baseline", s) is None]
    if missing:
        print("not trained yet (run with --train, or: " + "; ".join(train_command("baseline", s) for s in missing) + ")",
              file=sys.stderr)
    seeds = [s for s in args.seeds if find_run("baseline", s) is not None]
    if not seeds:
        return 2
    runs = [evaluate_run("baseline", s, val, args.device) for s in seeds]

    # the class oracle on seed 0 (the shipped checkpoint), against seed 0 itself
    gt = ground_truth_from_dataset(val)
    base_dets = read_dets("baseline", seeds[0], gt)
    oracle_dets = class_oracle(base_dets, val)
    oracle = figures(evaluate_vid(oracle_dets, gt), TAGS)
    videos = frame_videos(val)
    comparisons = {"oracle vs baseline (seed 0)": paired_bootstrap(gt, base_dets, oracle_dets, videos,
                                                                   resamples=args.resamples, seed=0)}
    if len(seeds) > 1:
        other = read_dets("baseline", seeds[1], gt)
        comparisons[f"baseline seed {seeds[1]} vs seed {seeds[0]}"] = paired_bootstrap(
            gt, base_dets, other, videos, resamples=args.resamples, seed=0)

    summary = {k: mean_std([r["val"][k] for r in runs]) for k in FIGURES}
    gap = [r["val"]["mAP_clean"] - r["val"]["mAP_degraded"] for r in runs]
    checks = {
        "std of val mAP over seeds <= 0.02": summary["mAP"][1] <= 0.02,
        "degraded AP >= 0.15 below clean AP (every seed)": min(gap) >= 0.15,
        "oracle gain >= 0.10 mAP": comparisons["oracle vs baseline (seed 0)"]["mAP"]["diff"] >= 0.10,
    }
    lines = [f"Single-frame baseline from the pre-trained tiny backbone, {ITERS} iterations x 4 clips, "
             f"{len(runs)} seeds; data_small val ({len(val.videos)} videos, {sum(len(v) for v in val.videos)} "
             "frames). `clean` = boxes without a degradation tag, `degraded` = with any.", ""]
    shown = FIGURES + ("mAP_motion_blur", "mAP_defocus")
    rows = [[f"seed {r['seed']}"] + [f"{r['val'][f]:.3f}" for f in shown] + [f"{r['cpu_minutes']:.1f}"] for r in runs]
    rows.append(["**mean ± std**"] + [f"{m:.3f} ± {s:.3f}" for m, s in summary.values()] + ["", "", ""])
    rows.append(["class oracle (seed 0's boxes)"] + [f"{oracle[f]:.3f}" for f in shown] + [""])
    lines.append(markdown_table(["run"] + [short(f) for f in shown] + ["CPU-min"], rows))
    lines += ["", "Paired bootstrap over val videos (95% interval of B − A, "
              f"{args.resamples} resamples):", "",
              markdown_table(["B vs A"] + [short(f) for f in FIGURES],
                             [[name, *intervals(c)] for name, c in comparisons.items()])]
    lines += ["", "Targets:", ""] + [f"- {'met' if ok else 'NOT met'}: {what}" for what, ok in checks.items()]
    lines += ["", "Commands: " + "; ".join(f"`{r['command']}`" for r in runs)
              + "; then `python benchmarks/bench_testbed.py`."]
    text = "\n".join(lines) + "\n"
    print(text)
    record = {"machine": machine("platform", "torch", device=args.device),
              "runs": runs, "mean_std": summary, "oracle": oracle, "comparisons": comparisons, "checks": checks,
              "command": "python benchmarks/bench_testbed.py"}
    write_results("testbed", record, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
