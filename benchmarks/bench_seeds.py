"""Every headline method over training seeds, against the single-frame detector it builds on.

    python benchmarks/bench_seeds.py                  # evaluate the runs that exist
    python benchmarks/bench_seeds.py --train          # train the missing ones first (resumes unfinished)
    python benchmarks/bench_seeds.py --methods selsa --seeds 0 1 2

Each run is ``python -m minivod train --method M --preset tiny --seed S --out
runs/bench/M_3000_sS`` (3000 iterations x 4 clips from the pre-trained tiny backbone, the
baseline's budget), scored on data_small val and recorded in ``benchmarks/results/runs/``
(``benchmarks/runs.py``). Per method: mean ± std over the seeds of every figure; its gain
over the detector it is compared with (the two-stage methods and PSLA: ``baseline``; SSVD:
``ssvd_single``) as seed 0 against seed 0 with the 95% paired bootstrap interval over val
videos (and, in a second table, seed s against seed s for the other seeds both have); and a verdict:

- **holds**: the interval is above zero and the seed ranges of mAP do not overlap;
- **worse**: the interval is below zero and the ranges do not overlap;
- **not established**: anything else (a gap inside the noise is not ranked).

Writes ``benchmarks/results/seeds.{md,json}``. An interval already in seeds.json for the same two seed-0 runs
(the same mAPs, the same number of resamples) is kept rather than drawn again.
"""
from __future__ import annotations

import argparse
import json
import sys

from minivod.eval import FIGURES
from minivod.eval.verdict import FAILS, claim_verdict

from record import RESULTS, write_results
from runs import evaluate_run, find_run, read_dets, train_command, trained_checkpoint
from tables import fmt_mean_std, intervals, markdown_table, mean_std, short

METHODS = ("baseline", "ssvd_single", "selsa", "dsfnet", "mst", "psla", "ssvd")
COMPARED_WITH = {"ssvd": "ssvd_single"}
PER_SEED = ("mAP", "mAP_fast", "mAP_clean", "mAP_degraded")  # the figures of the per-seed table
SEEDS = RESULTS / "seeds.json"


def verdict(interval: dict, runs: list[dict], base_runs: list[dict]) -> str:
    """holds / worse / not established, from the mAP interval and the seed ranges (see the docstring)."""
    v = claim_verdict(interval["low"], interval["high"], [r["val"]["mAP"] for r in runs],
                      [r["val"]["mAP"] for r in base_runs])
    return "worse" if v == FAILS else v


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--train", action="store_true", help="train the missing runs (resumes unfinished ones)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples")
    args = parser.parse_args(argv)

    from minivod.data.vid import VIDDataset
    from minivod.engine.evaluate import default_data_root
    from minivod.eval import ground_truth_from_dataset
    from minivod.eval.bootstrap import frame_videos, paired_bootstrap

    methods = list(dict.fromkeys(
        [COMPARED_WITH.get(m, "baseline") for m in args.methods if m not in ("baseline", "ssvd_single")]
        + list(args.methods)))
    if args.train:
        for m in methods:
            for seed in args.seeds:
                trained_checkpoint(m, seed=seed, use_shipped=False, device=args.device, progress=True)
    missing = [(m, s) for m in methods for s in args.seeds if find_run(m, s) is None]
    if missing:
        print("not trained yet (run with --train, or: " + "; ".join(train_command(m, s) for m, s in missing) + ")",
              file=sys.stderr)

    val = VIDDataset(default_data_root(), "val")
    runs = {m: [evaluate_run(m, s, val, args.device) for s in args.seeds if find_run(m, s) is not None]
            for m in methods}
    runs = {m: r for m, r in runs.items() if r}
    gt, videos = ground_truth_from_dataset(val), frame_videos(val)
    earlier = json.loads(SEEDS.read_text()).get("comparisons", {}) if SEEDS.is_file() else {}
    comparisons = {}

    def interval(m, base, seed, on_record):
        """Seed ``seed`` of ``m`` against seed ``seed`` of ``base``; the recorded interval if it is of these runs."""
        a = next(r for r in runs[base] if r["seed"] == seed)["val"]["mAP"]
        b = next(r for r in runs[m] if r["seed"] == seed)["val"]["mAP"]
        if on_record is not None and (on_record["mAP"]["a"], on_record["mAP"]["b"]) == (a, b):
            return on_record
        return paired_bootstrap(gt, read_dets(base, seed, gt), read_dets(m, seed, gt), videos,
                                resamples=args.resamples, seed=0)

    for m in runs:
        base = COMPARED_WITH.get(m, "baseline")
        if m in ("baseline", "ssvd_single") or base not in runs or runs[m][0]["seed"] != runs[base][0]["seed"]:
            continue
        seed = runs[m][0]["seed"]
        old = earlier.get(m, {}) if earlier.get(m, {}).get("against") == base and \
            earlier.get(m, {}).get("resamples", 1000) == args.resamples else {}
        c = interval(m, base, seed, old.get("interval") if old.get("seed") == seed else None)
        # every other seed both have, seed s against seed s: is the sign of the gain the same at each seed?
        common = sorted({r["seed"] for r in runs[m]} & {r["seed"] for r in runs[base]} - {seed})
        by_seed = {str(s): interval(m, base, s, old.get("by_seed", {}).get(str(s))) for s in common}
        comparisons[m] = {"against": base, "seed": seed, "resamples": args.resamples, "interval": c,
                          "by_seed": by_seed, "verdict": verdict(c["mAP"], runs[m], runs[base])}

    lines = [f"Every method trained from the pre-trained tiny backbone for 3000 iterations x 4 clips; data_small val "
             f"({len(val.videos)} videos). Mean ± std over seeds (number of seeds in brackets).", "",
             markdown_table(["method"] + [short(f) for f in FIGURES] + ["ms/frame", "CPU-min/run"],
                            [[m] + [fmt_mean_std([r["val"][f] for r in rs]) for f in FIGURES]
                             + [f"{mean_std([r['ms_per_frame'] for r in rs])[0]:.1f}",
                                f"{mean_std([r['cpu_minutes'] for r in rs])[0]:.0f}"] for m, rs in runs.items()])]
    lines += ["", f"Gain over the single-frame detector, seed 0 against seed 0, 95% paired bootstrap interval over "
              f"val videos ({args.resamples} resamples); verdict on mAP (see `bench_seeds.py`):", "",
              markdown_table(["method", "against"] + [short(f) for f in FIGURES] + ["verdict"],
                             [[m, c["against"], *intervals(c["interval"]), c["verdict"]] for m, c in comparisons.items()],
                             "ll" + "r" * len(FIGURES) + "l")]
    per_seed = [[m, c["against"], s, *intervals(i, PER_SEED)] for m, c in comparisons.items()
                for s, i in sorted(c["by_seed"].items())]
    if per_seed:
        lines += ["", "The same gain at the other seeds (seed s against seed s, same intervals): a gain whose sign "
                  "changes with the seed is not established whatever seed 0 says.", "",
                  markdown_table(["method", "against", "seed"] + [short(f) for f in PER_SEED], per_seed,
                                 "lll" + "r" * len(PER_SEED))]
    if missing:
        lines += ["", "Not trained yet: " + ", ".join(f"{m} seed {s}" for m, s in missing) + "."]
    lines += ["", "Commands: " + "; ".join(f"`{r['command']}`" for rs in runs.values() for r in rs)
              + "; then `python benchmarks/bench_seeds.py`."]
    text = "\n".join(lines) + "\n"
    print(text)
    write_results("seeds", {"runs": runs, "comparisons": comparisons, "missing": missing,
                            "command": "python benchmarks/bench_seeds.py"}, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
