"""The shipped checkpoints on a second, freshly generated data_small: do the directions survive?

    python benchmarks/bench_split.py                 # generator seed 1, every headline method
    python benchmarks/bench_split.py --seed 2 --methods baseline selsa

data_small is one draw of the generator (``python -m minivod generate-data --seed 0``). A gain
measured on it could belong to that draw: its 48 val videos, their objects and degradations. This
script generates another split with another seed of the same generator (into
``runs/data_small_seed<seed>``; it is not committed, the command above makes it again in about
20 s), runs every shipped checkpoint, unchanged, over its val videos, and compares each method
with the detector it builds on (the baseline; SSVD: ``ssvd_single``) with the 95% paired bootstrap
interval over the new split's videos. The last column says whether the sign of the mAP gain is the
one the same two shipped checkpoints give on data_small val (``benchmarks/results/checkpoints.json``).

Detections are cached beside the split (``runs/data_small_seed<seed>/dets/<method>.txt``).
Writes ``benchmarks/results/split_seed<seed>.{md,json}``.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys

from minivod.eval import FIGURES

from record import REPO, RESULTS, machine, write_results
from tables import intervals, markdown_table, short

METHODS = ("baseline", "ssvd_single", "selsa", "dsfnet", "mst", "psla", "ssvd")
COMPARED_WITH = {"ssvd": "ssvd_single"}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=1, help="generator seed of the new split (data_small is 0)")
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples")
    args = parser.parse_args(argv)
    if args.seed == 0:
        parser.error("seed 0 is data_small itself; pick another seed")

    from minivod.data.generate import generate
    from minivod.data.vid import VIDDataset
    from minivod.engine.checkpoint import load_checkpoint
    from minivod.engine.evaluate import evaluate_model, load_model, shipped_checkpoint
    from minivod.eval import evaluate_vid, figures, ground_truth_from_dataset, read_vid_results, write_vid_results
    from minivod.eval.bootstrap import frame_videos, paired_bootstrap
    from minivod.eval.verdict import FAILS, HOLDS, claim_verdict

    root = REPO / "runs" / f"data_small_seed{args.seed}"
    if not (root / "ImageSets").is_dir():
        print(f"generating {root} (python -m minivod generate-data --seed {args.seed} --out {root})", flush=True)
        generate(root, seed=args.seed)
    val = VIDDataset(root, "val")
    gt, videos = ground_truth_from_dataset(val), frame_videos(val)
    methods = list(dict.fromkeys([COMPARED_WITH.get(m, "baseline") for m in args.methods
                                  if m not in ("baseline", "ssvd_single")] + list(args.methods)))

    rows, dets = {}, {}
    for m in methods:
        path = shipped_checkpoint(m)
        meta = load_checkpoint(path)["meta"]
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        cached = root / "dets" / f"{m}_{sha[:12]}.txt"  # a retrained checkpoint detects anew
        if not cached.is_file():
            print(f"  {m}: detecting on {len(val.videos)} videos", flush=True)
            model, _ = load_model(m, path, args.device, len(val.class_map))
            _, detections, _ = evaluate_model(model, m, val, args.device, progress=False)
            cached.parent.mkdir(parents=True, exist_ok=True)
            write_vid_results(cached, detections)
        dets[m] = read_vid_results(cached, num_classes=gt.num_classes, frame_indices=gt.frames.keys())
        rows[m] = {"checkpoint": f"minivod/checkpoints/{path.name}", "sha256": sha,
                   "backbone_start": "pre-trained" if meta["config"].get("pretrained_backbone") else "scratch",
                   **figures(evaluate_vid(dets[m], gt))}

    shipped_scores = json.loads((RESULTS / "checkpoints.json").read_text())["checkpoints"]
    comparisons = {}
    for m in methods:
        base = COMPARED_WITH.get(m, "baseline")
        if m in ("baseline", "ssvd_single") or base not in rows:
            continue
        c = paired_bootstrap(gt, dets[base], dets[m], videos, resamples=args.resamples, seed=0)
        on_small = shipped_scores.get(m, {}).get("mAP"), shipped_scores.get(base, {}).get("mAP")
        same = None if None in on_small else (on_small[0] - on_small[1] > 0) == (c["mAP"]["diff"] > 0)
        comparisons[m] = {"against": base, "interval": c,
                          "interval_says": {HOLDS: "above 0", FAILS: "below 0"}.get(
                              claim_verdict(c["mAP"]["low"], c["mAP"]["high"]), "contains 0"),
                          "data_small_gain": None if None in on_small else round(on_small[0] - on_small[1], 3),
                          "same_sign_as_data_small": same}

    # the rows and comparisons of an earlier run for the methods not asked this time, where the
    # checkpoint is still the one shipped (a retrained one is dropped until it is measured)
    path = RESULTS / f"split_seed{args.seed}.json"
    earlier = json.loads(path.read_text()) if path.is_file() else {"rows": {}, "comparisons": {}}
    current = {m: hashlib.sha256(shipped_checkpoint(m).read_bytes()).hexdigest()
               for m in earlier["rows"] if m not in rows and shipped_checkpoint(m).is_file()}
    kept = {m for m, r in earlier["rows"].items() if m in current and r.get("sha256") == current[m]}
    for m in sorted(set(earlier["rows"]) - set(rows) - kept):
        print(f"  {m}: dropped from the earlier {path.name} (its shipped checkpoint changed; --methods {m} measures it)")
    rows = {**{m: earlier["rows"][m] for m in kept}, **rows}
    comparisons = {**{m: c for m, c in earlier["comparisons"].items()
                      if m in kept and c["against"] in kept and m not in comparisons}, **comparisons}

    text = "\n".join([
        f"The shipped checkpoints, unchanged, on a second split: `python -m minivod generate-data --seed {args.seed}` "
        f"({len(val.videos)} val videos; data_small is seed 0). `python benchmarks/bench_split.py --seed {args.seed}`.",
        "", markdown_table(["method", "backbone start"] + [short(f) for f in FIGURES],
                           [[m, r["backbone_start"]] + [f"{r[f]:.3f}" for f in FIGURES] for m, r in rows.items()]),
        "", f"Gain over the detector each method builds on, on this split, with the 95% paired bootstrap interval "
        f"over its val videos ({args.resamples} resamples) and where the mAP interval lies (one checkpoint "
        f"each, so no verdict here: the verdicts over training seeds are in `seeds.md`); last column: the mAP gain of the same two checkpoints on data_small val and whether "
        f"this split agrees in sign.", "",
        markdown_table(["method", "against"] + [short(f) for f in FIGURES] + ["mAP interval", "data_small", "same sign"],
                       [[m, c["against"], *intervals(c["interval"]), c["interval_says"],
                         "" if c["data_small_gain"] is None else f"{c['data_small_gain']:+.3f}",
                         {True: "yes", False: "no", None: ""}[c["same_sign_as_data_small"]]]
                        for m, c in comparisons.items()], "ll" + "r" * len(FIGURES) + "lrl"),
        "", "A row whose backbone start is `scratch` is a checkpoint trained from random weights on the previous "
        "data_small (see `minivod/checkpoints/README.md`); it is retrained in the re-measurement issue.", ""])
    print(text)
    write_results(f"split_seed{args.seed}", {"rows": rows, "comparisons": comparisons,
                                            "command": f"python benchmarks/bench_split.py --seed {args.seed}",
                                            "machine": machine("platform", "torch", device=args.device)}, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
