"""MST ablations on data_small val (MST paper, Tables III, IV, VI, VII, IX).

    python benchmarks/bench_mst.py [--iters 3000] [--quick | --videos N] [--parts table3,table4,k,r,query,selection,seeds]
                                   [--k-values 10,15,20,25,30] [--r-values 0.1,0.2,0.3,0.4,0.5]
                                   [--device cpu]

- Table III: baseline; frame level; proposal level; each with DAlign; DAlign +
  frame + proposal; all (with the instance level). mAP, slow / medium / fast,
  clean / degraded, ms/frame.
- Table IV: DAlign against a small flow-based alignment (``FlowAlign``): the
  alignment module's parameters and FLOPs on one frame pair of tiny's
  128 x 15 x 20 maps, the whole model's parameters, and mAP.
- Tables VI and VII: K (candidate instances) and r (share of support proposals per
  instance) of the instance level at test time, with ms/frame. They change
  inference only, so they are measured on the trained ``mst`` model.
- Table IX: query-all against query-ref in the frame level.
- ``selection``: the instance level trained with the paper's rule, Eq. 12's
  ground-truth assignment (``mst_gt_selection``), against minivod's default, the
  test-time selection in training too (``mst``): the paper's rule leaks the
  foreground label (``benchmarks/mst_leak.py`` measures it).
- Not in the paper (``seeds``): the baseline, the frame level and MST trained a
  second time with ``seed=1`` (other clip order, initial weights and RoI samples):
  how much of a gap between two rows one training run per row can carry.

Every variant is trained with the baseline's settings (``TrainConfig.for_preset("tiny")``)
for ``--iters`` iterations (default 3000, the real budget); at 3000 the shipped
checkpoints (``minivod/checkpoints/{baseline,mst}_tiny.pt``) are used where they
exist, other variants are trained into ``runs/bench/<method>_<iters>_s<seed>``
(``benchmarks/runs.py``; kept and shared with the other benchmarks, so an
interrupted run resumes with the variants already trained; runs trained before
into ``runs/mst_bench_<iters>[_seed1]/<method>`` are still found). Each row is
measured once per checkpoint and number of videos, then read from
``eval_<N>videos.json`` beside the run. The results files are labelled with the budget: ``benchmarks/results/mst.json``
and ``.md`` at 3000 iterations, ``mst_<iters>it.json`` / ``.md`` otherwise, with
``_<N>videos`` on a subset of the validation videos (``--quick``: 4; ``--videos N``). FLOPs are counted by
``torch.utils.flop_counter`` (convolutions and matrix products; the bilinear
sampling itself is not counted).
"""
from __future__ import annotations

import argparse
import functools
import json

import torch

from minivod.data.vid import VIDDataset
from minivod.engine.evaluate import default_data_root, load_model, predict_dataset, score_dataset
from minivod.engine.train import resolve_device
from minivod.methods import build_model
from minivod.models import count_parameters

from record import chosen_parts, machine, part_lines, results_name, write_results
from runs import RUNS, shipped, trained_checkpoint
from tables import markdown_table, md_table, row, show

TABLE3 = {
    "(a) baseline": "baseline",
    "(b) frame level": "mst_frame",
    "(c) proposal level": "mst_proposal",
    "(d) DAlign + frame level": "mst_dalign_frame",
    "(e) DAlign + proposal level": "mst_dalign_proposal",
    "(f) DAlign + frame + proposal": "mst_no_instance",
    "(g) all (MST)": "mst",
}


TITLES = {
    "table3": ("Table III: each level (and DAlign)", ()),
    "table4": ("Table IV: alignment (module cost on a reference + one support, 128x15x20 maps)",
               ("params", "align_params", "align_gflops")),
    "table6_K": ("Table VI: K, candidate instances at test time (r = 20%)", ()),
    "table7_r": ("Table VII: r, share of support proposals per instance at test time (K = 20)", ()),
    "table9": ("Table IX: which frames the frame level updates", ()),
    "selection": ("How the instance level selects in training: the paper's rule against minivod's", ()),
    "seeds": ("Not in the paper: a second training run (seed 1) of the baseline, the frame level and MST", ()),
}


def measure(model, method, dataset, device, label):
    per_video, timing = predict_dataset(model, method, dataset, device, progress=False)
    result, _ = score_dataset(per_video, dataset)
    r = row(result, timing["ms_per_frame"])
    show(label, r)
    return r


SKIP_TRAIN = False  # --skip-train: rows of variants not trained yet are left out (None)


def evaluate(method, dataset, device, iters, label, seed=0):
    """The row of a trained variant (trained now if missing), measured once per (checkpoint, videos) and kept
    beside its run (``eval_<videos>videos.json``; a shipped checkpoint's in ``runs/bench/shipped/<method>/``):
    the same model is in several tables. None when the variant is not trained and ``--skip-train`` is given."""
    checkpoint = trained_checkpoint(method, iters, seed, train=not SKIP_TRAIN, device=device)
    if checkpoint is None:
        print(f"  {label:<40} not trained yet (--skip-train)", flush=True)
        return None
    folder = RUNS / "shipped" / method if checkpoint == shipped(method, iters, seed) else checkpoint.parent
    cache = folder / f"eval_{len(dataset.videos)}videos.json"
    if cache.is_file() and json.loads(cache.read_text()).get("checkpoint_mtime") == checkpoint.stat().st_mtime:
        r = json.loads(cache.read_text())["row"]
        show(label + " (measured earlier)", r)
        return r
    model, _ = load_model(method, checkpoint, device, len(dataset.class_map))
    r = measure(model, method, dataset, device, label)
    r["params"] = count_parameters(model)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"checkpoint_mtime": checkpoint.stat().st_mtime, "row": r}, indent=1))
    return r


MISSING: list[str] = []  # rows left out by --skip-train


def present(rows: dict) -> dict:
    """The rows that were measured (without ``--skip-train``'s None rows, which go to ``MISSING``)."""
    MISSING.extend(label for label, row in rows.items() if row is None and label not in MISSING)
    return {label: row for label, row in rows.items() if row is not None}


def alignment_cost(module: torch.nn.Module, channels=128, h=15, w=20) -> dict:
    """Parameters and forward FLOPs of an alignment module on a clip of a reference and one support map
    (both are aligned to the reference: 2 frames)."""
    from torch.utils.flop_counter import FlopCounterMode

    maps = torch.rand(1, 2, channels, h, w)  # (B, T, C, h, w): the reference and one support
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        module(maps)
    return {"params": count_parameters(module), "gflops": counter.get_total_flops() / 1e9}


@functools.cache
def alignment_costs(num_classes: int) -> dict:
    """``{"DAlign": cost, "FlowAlign": cost}``: the two alignment modules of Table IV (always measured)."""
    return {name: alignment_cost(build_model(method, "tiny", num_classes).frame_aggregator[0])
            for name, method in (("DAlign", "mst"), ("FlowAlign", "mst_flow"))}


@functools.cache
def trained_mst(iters: int, device: str, num_classes: int):
    """The trained ``mst`` model whose test-time K and r Tables VI and VII change."""
    return load_model("mst", trained_checkpoint("mst", iters, device=device), device, num_classes)[0]


# --------------------------------------------------------------------------- the parts
# each measures one table on ``val`` and returns its entry of the results file
def table3(val, device, args) -> dict:
    """Table III: each level (frame, proposal, instance), with and without DAlign"""
    return {"table3": present({label: evaluate(m, val, device, args.iters, label) for label, m in TABLE3.items()})}


def table4(val, device, args) -> dict:
    """Table IV: DAlign against a flow-based alignment (FlowAlign), with the modules' cost"""
    cost = alignment_costs(len(val.class_map))
    rows = {"MST with FlowAlign (Ours-F)": evaluate("mst_flow", val, device, args.iters, "mst_flow"),
            "MST with DAlign (Ours-D)": evaluate("mst", val, device, args.iters, "mst")}
    for name, module in (("MST with FlowAlign (Ours-F)", "FlowAlign"), ("MST with DAlign (Ours-D)", "DAlign")):
        if rows[name] is not None:
            rows[name] = {**rows[name], "align_params": cost[module]["params"], "align_gflops": cost[module]["gflops"]}
    return {"table4": present(rows)}


def table6_K(val, device, args) -> dict:
    """Table VI: K, candidate instances at test time (r = 20%; the trained mst, --k-values)"""
    model, rows = trained_mst(args.iters, device, len(val.class_map)), {}
    for K in (int(k) for k in args.k_values.split(",")):
        model.instance.top_k, model.instance.ratio = K, 0.2
        rows[f"K = {K}"] = measure(model, "mst", val, device, f"K = {K}")
    return {"table6_K": rows}


def table7_r(val, device, args) -> dict:
    """Table VII: r, share of support proposals per instance at test time (K = 20; --r-values)"""
    model, rows = trained_mst(args.iters, device, len(val.class_map)), {}
    for r in (float(r) for r in args.r_values.split(",")):
        model.instance.top_k, model.instance.ratio = 20, r
        rows[f"r = {int(r * 100)}%"] = measure(model, "mst", val, device, f"r = {r}")
    return {"table7_r": rows}


def table9(val, device, args) -> dict:
    """Table IX: query-all against query-ref in the frame level"""
    return {"table9": present({"query-ref": evaluate("mst_query_ref", val, device, args.iters, "query-ref"),
                               "query-all (MST)": evaluate("mst", val, device, args.iters, "query-all")})}


def selection(val, device, args) -> dict:
    """The instance level trained with the paper's selection (Eq. 12) against the test-time one"""
    return {"selection": present({
        "ground-truth instances (Eq. 12, the paper)": evaluate("mst_gt_selection", val, device, args.iters,
                                                               "ground truth"),
        "test-time selection (top-K, r%; MST here)": evaluate("mst", val, device, args.iters,
                                                              "test-time selection")})}


def seeds(val, device, args) -> dict:
    """Not in the paper: the baseline, the frame level and MST trained a second time (seed 1)"""
    rows = {}  # one training run per row: how far does a second seed move a row?
    for label, method in (("(a) baseline", "baseline"), ("(b) frame level", "mst_frame"), ("(g) all (MST)", "mst")):
        rows[f"{label}, seed 0"] = evaluate(method, val, device, args.iters, f"{method} seed 0")
        rows[f"{label}, seed 1"] = evaluate(method, val, device, args.iters, f"{method} seed 1", seed=1)
    return {"seeds": present(rows)}


PARTS = {"table3": table3, "table4": table4, "k": table6_K, "r": table7_r, "query": table9,
         "selection": selection, "seeds": seeds}  # --parts name -> the part


# --------------------------------------------------------------------------- the page
def markdown(results: dict) -> str:
    """mst.md: every table in ``results``, then the alignment modules' cost."""
    mc = results["machine"]
    md = [md_table(title, results[key], extra) for key, (title, extra) in TITLES.items() if key in results]
    md.append("### Alignment modules (Table IV, upper part)\n\n"
              + markdown_table(["module", "parameters", "GFLOPs"],
                               [[k, f"{v['params']:,}", f"{v['gflops']:.3f}"] for k, v in results["alignment_cost"].items()])
              + "\n\nFLOPs of one forward pass on a reference and one support map (128 x 15 x 20), counted by "
              "torch.utils.flop_counter (convolutions and matrix products; bilinear sampling not counted).\n")
    missing = results.get("not_trained", [])  # files written before it was recorded have none
    return (f"MST ablations, data_small val ({results['videos']} videos), every model trained {results['budget_iters']} "
            f"iterations x 4 clips; {mc['processor']}, torch {mc['torch']}, {mc['device']}, {mc['threads']} thread(s)\n\n"
            + "mAP rows are one training run each (the `seeds` table shows what a second run changes). A row's "
            "ms/frame is measured once, when the row is first evaluated (then cached), on a machine that may be "
            "training other variants at the time: these speeds are rough, not a comparison.\n\n"
            + (f"Not trained yet at this budget, so not in the tables: {', '.join(missing)} "
               f"(`python benchmarks/bench_mst.py --iters {results['budget_iters']}` trains them).\n\n" if missing else "")
            + "\n".join(md))


def main():
    parser = argparse.ArgumentParser(description=__doc__, epilog=part_lines(PARTS),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iters", type=int, default=3000, help="training budget of every variant")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--quick", action="store_true", help="4 validation videos")
    parser.add_argument("--videos", type=int, default=None, help="only the first N validation videos")
    parser.add_argument("--k-values", default="10,15,20,25,30", help="K of Table VI")
    parser.add_argument("--r-values", default="0.1,0.2,0.3,0.4,0.5", help="r of Table VII")
    parser.add_argument("--parts", default=",".join(PARTS),
                        help="comma-separated subset of the parts below (the alignment modules' parameters and "
                             "FLOPs are always measured)")
    parser.add_argument("--skip-train", action="store_true",
                        help="leave out the rows of variants that are not trained yet instead of training them")
    args = parser.parse_args()
    global SKIP_TRAIN
    SKIP_TRAIN = args.skip_train
    device = resolve_device(args.device)
    val = VIDDataset(default_data_root(), "val")
    total = len(val.videos)
    if args.quick or args.videos:
        val.videos = val.videos[:args.videos or 4]
    results = {"budget_iters": args.iters, "videos": len(val.videos),
               "alignment_cost": alignment_costs(len(val.class_map))}
    print("alignment modules:", json.dumps(results["alignment_cost"]))
    for name in chosen_parts(parser, PARTS, args.parts):
        print(PARTS[name].__doc__.splitlines()[0])
        results.update(PARTS[name](val, device, args))
    results["not_trained"] = MISSING
    results["machine"] = machine("platform", "processor", "torch", "threads", device=device)
    name = results_name("mst", args.iters, len(val.videos) if len(val.videos) < total else None)
    results = write_results(name, results, markdown, keep_earlier=True)  # keeps parts measured earlier
    print(markdown(results))


if __name__ == "__main__":
    main()
