"""The papers' ablation claims, each as one trained run against the run it is compared with.

    python benchmarks/bench_ablations.py                     # every pair whose two runs exist
    python benchmarks/bench_ablations.py --only ssvd         # the pairs of one method (or a row name)
    python benchmarks/bench_ablations.py --train --only dsfnet   # train the missing runs first

Each run is seed 0 of ``python -m minivod train --method M --preset tiny --seed 0 --out
runs/bench/M_3000_s0`` (the headline budget, ``benchmarks/runs.py``), scored on data_small val
and recorded in ``benchmarks/results/runs/``. A pair is the gain of ``row`` over ``against``
with its 95% paired bootstrap interval over val videos, for mAP and for the fast and degraded
boxes (the premise of the five papers), and the verdict of
:func:`minivod.eval.verdict.claim_verdict` on the mAP interval (one seed each: the interval alone
decides, so "holds" here is weaker than the seed table's).

Where both runs of a pair were also trained with another seed, that seed is compared the same way
(the second table). A pair whose runs are not on this machine (``runs/`` is not kept), or whose two runs score what they
scored when it was measured, keeps the entry an earlier run of this script wrote (for the pairs
still listed in ``PAIRS``), so
``benchmarks/results/ablations.{md,json}`` grows as runs are trained.
"""
from __future__ import annotations

import argparse
import json
import sys

from minivod.eval.ablations import pair_key
from minivod.eval.verdict import claim_verdict

from record import RESULTS, write_results
from runs import evaluate_run, find_run, read_dets, train_command, trained_checkpoint
from tables import intervals, markdown_table

FIGURES = ("mAP", "mAP_fast", "mAP_degraded")

# (row, against, the claim "row beats against" stands for)
PAIRS = [
    ("selsa", "selsa_frame_only", "SELSA Table 1: aggregating over the video beats aggregating within the frame"),
    ("dsfnet_frame", "baseline", "DSFNet Table 1: frame-level fusion helps"),
    ("dsfnet_instance", "baseline", "DSFNet Table 1: instance-level fusion helps"),
    ("dsfnet", "dsfnet_frame", "DSFNet Table 1: instance-level fusion adds to frame-level"),
    ("dsfnet", "dsfnet_instance", "DSFNet Table 1: frame-level fusion adds to instance-level"),
    ("mst_frame", "baseline", "MST Table III: the frame level helps"),
    ("mst_no_instance", "mst_dalign_frame", "MST Table III: the proposal level adds to the frame level (both with DAlign)"),
    ("mst", "mst_no_instance", "MST Table III: the instance level adds"),
    ("mst_dalign_frame", "mst_frame", "MST Table III: DAlign helps the frame level"),
    ("mst", "mst_flow", "MST Table IV: DAlign beats a flow warp"),
    ("mst", "mst_query_ref", "MST Table IX: every frame as a query beats the reference only"),
    ("psla_d1_paper", "psla", "PSLA at d = 1, Eq. (1) unscaled, non-key loss only (the paper's) against minivod's d = 4"),
    ("psla_d2_paper", "psla", "PSLA at d = 2, Eq. (1) unscaled, non-key loss only (the paper's) against minivod's d = 4"),
    ("ssvd_motion", "ssvd_single", "SSVD Table II: the motion stream helps on its own"),
    ("ssvd_sampling", "ssvd_single", "SSVD Table II: the sampling stream helps on its own"),
    ("ssvd", "ssvd_single_2heads", "SSVD: the gain is from aggregation, not from two heads"),
    ("ssvd_single_2heads", "ssvd_single", "control: two late-fused heads on the single frame"),
    ("ssvd_single_loss2", "ssvd_single", "control: the single-frame detector with its loss doubled"),
    ("ssvd", "ssvd_fpn_both", "SSVD: a shared FPN trained by the motion head alone (one head per FPN, as the paper's) beats both heads' summed gradient"),
    ("ssvd_vid_phase2", "ssvd", "SSVD Algorithm 1: phase 2 on VID clips only beats minivod's DET stills in phase 2"),
    ("ssvd", "ssvd_identity_init", "SSVD Sec. IV-B: random offset initialisation beats minivod's identity start"),
    ("ssvd", "ssvd_flow_full_lr", "SSVD: the flow net at its own lr 0.001 beats fine-tuning at the detector's"),
]
SEED = 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", help="the pairs whose row or reference starts with one of these")
    parser.add_argument("--train", action="store_true", help="train the missing runs (resumes unfinished ones)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                        help="also compare seed s against seed s wherever both runs of a pair exist with it")
    args = parser.parse_args(argv)

    from minivod.data.vid import VIDDataset
    from minivod.engine.evaluate import default_data_root
    from minivod.eval import ground_truth_from_dataset
    from minivod.eval.bootstrap import frame_videos, paired_bootstrap

    pairs = [p for p in PAIRS if not args.only or any(p[0].startswith(o) or p[1].startswith(o) for o in args.only)]
    methods = list(dict.fromkeys(m for row, against, _ in pairs for m in (row, against)))
    if args.train:
        for m in methods:
            trained_checkpoint(m, seed=SEED, use_shipped=False, device=args.device, progress=True)

    path = RESULTS / "ablations.json"
    earlier = json.loads(path.read_text())["pairs"] if path.is_file() else {}
    val = VIDDataset(default_data_root(), "val")
    gt, videos = ground_truth_from_dataset(val), frame_videos(val)
    records = {m: evaluate_run(m, SEED, val, args.device) for m in methods if find_run(m, SEED) is not None}
    entries = {k: v for k, v in earlier.items() if k in {pair_key(r, a) for r, a, _ in PAIRS}}  # pairs still asked
    for row, against, claim in pairs:
        if row not in records or against not in records:
            continue
        key = pair_key(row, against)
        mAPs = [records[row]["val"]["mAP"], records[against]["val"]["mAP"]]
        if entries.get(key, {}).get("mAP") != mAPs:  # not the same two runs as on record: measure
            c = paired_bootstrap(gt, read_dets(against, SEED, gt), read_dets(row, SEED, gt), videos,
                                 resamples=args.resamples, seed=0)
            entries[key] = {
                "row": row, "against": against, "claim": claim, "seed": SEED,
                "mAP": mAPs,
                "interval": {f: c[f] for f in FIGURES}, "verdict": claim_verdict(c["mAP"]["low"], c["mAP"]["high"]),
                "commands": [records[row]["command"], records[against]["command"]]}
        # where both runs were also trained with another seed: seed s against seed s, the same way
        by_seed = dict(entries[key].get("by_seed", {}))
        for seed in args.seeds:
            if seed == SEED or find_run(row, seed) is None or find_run(against, seed) is None:
                continue
            seed_mAPs = [evaluate_run(m, seed, val, args.device)["val"]["mAP"] for m in (row, against)]
            if by_seed.get(str(seed), {}).get("mAP") != seed_mAPs:
                c = paired_bootstrap(gt, read_dets(against, seed, gt), read_dets(row, seed, gt), videos,
                                     resamples=args.resamples, seed=0)
                by_seed[str(seed)] = {"mAP": seed_mAPs, "interval": {f: c[f] for f in FIGURES},
                                      "verdict": claim_verdict(c["mAP"]["low"], c["mAP"]["high"])}
        if by_seed:
            entries[key]["by_seed"] = by_seed

    done = [p for p in PAIRS if pair_key(p[0], p[1]) in entries]
    missing = [p for p in PAIRS if pair_key(p[0], p[1]) not in entries]
    lines = [f"Ablations, seed 0 of each run (3000 iterations x 4 clips from the pre-trained tiny backbone), "
             f"data_small val ({len(val.videos)} videos). Gain of the row over the run it is compared with, "
             f"95% paired bootstrap interval over val videos ({args.resamples} resamples); verdict on mAP by the "
             "interval alone (one seed each).", "",
             markdown_table(["claim", "row", "against", "mAP (row / against)", "mAP gain", "fast", "degraded",
                             "verdict"],
                            [[e["claim"], e["row"], e["against"], f"{e['mAP'][0]:.3f} / {e['mAP'][1]:.3f}",
                              *intervals(e["interval"], FIGURES), e["verdict"]]
                             for e in (entries[pair_key(r, a)] for r, a, _ in done)], "llll" + "r" * 3 + "l")]
    other_seeds = [[e["row"], e["against"], seed, f"{b['mAP'][0]:.3f} / {b['mAP'][1]:.3f}",
                    *intervals(b["interval"], FIGURES), b["verdict"]]
                   for e in (entries[pair_key(r, a)] for r, a, _ in done) for seed, b in sorted(e.get("by_seed", {}).items())]
    if other_seeds:
        lines += ["", "The same pairs at another seed where both runs were trained with it (seed s against seed s):", "",
                  markdown_table(["row", "against", "seed", "mAP (row / against)", "mAP gain", "fast", "degraded",
                                  "verdict"], other_seeds, "llll" + "r" * 3 + "l")]
    if missing:
        untrained = sorted({m for r, a, _ in missing for m in (r, a) if find_run(m, SEED) is None})
        lines += ["", "Not measured yet: " + "; ".join(pair_key(r, a) for r, a, _ in missing) + "."]
        if untrained:
            lines += ["Train: " + "; ".join(f"`{train_command(m, SEED)}`" for m in untrained) + "."]
    lines += ["", "Then `python benchmarks/bench_ablations.py`; each entry of ablations.json names its two runs' "
              "training commands."]
    text = "\n".join(lines) + "\n"
    print(text)
    write_results("ablations", {"pairs": entries, "command": "python benchmarks/bench_ablations.py"}, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
