"""SSVD ablations on data_small val.

    python benchmarks/bench_ssvd.py [--iters 3000] [--device cpu] [--quick] [--skip-train]
                                  [--only table2,fusion,table5,flow,controls]

- SSVD Table II: the single-frame one-stage detector, the motion stream, the
  sampling stream, both (late fusion), by slow / medium / fast (and clean /
  degraded). The variants are trained here, each with ``--iters`` iterations
  (default 3000, the budget of every shipped checkpoint) into
  ``runs/bench/<method>_<iters>_s0`` (``benchmarks/runs.py``; a finished run is
  reused, also one trained before into ``runs/ssvd_bench_<iters>/<method>``). The variants
  with a flow network start from the shipped SSVD's pre-trained one
  (``runs/ssvd_tiny/flow_pretrained.pt``, when present) rather than repeating
  the pre-training. Each multi-frame variant is also scored with no support
  frame (the same weights on the reference alone), to separate what the
  supports add from what the training did.
- Controls, not in the paper (``controls``): the single-frame detector with two
  late-fused heads on the same maps (``ssvd_single_2heads``: SSVD with no support
  frame anywhere), and trained three times as long (as many frames through the
  FPN as SSVD's 3-frame clips): is SSVD's gain without supports its training?
- SSVD Fig. 6: late fusion (NMS 0.45), early fusion (concatenation),
  motion-guided sampling, at the same budget.
- SSVD Table V: mAP and ms/frame against the number of support frames at test
  time, for the shipped ``ssvd`` checkpoint (the same weights throughout).
- The flow network's end-point error on data_small val (200 fixed pairs within
  +-K): after the pre-training on ground-truth flow (from the checkpoint's
  metadata) and after end-to-end training (the shipped weights), against the
  zero flow.

Writes benchmarks/results/ssvd.json and .md (``ssvd_<iters>it`` when --iters is
not 3000, ``_4videos`` with ``--quick``, so reduced numbers are never mistaken for the full ones).
"""
from __future__ import annotations

import argparse
import functools
import shutil

from minivod.data.vid import VIDDataset
from minivod.engine.evaluate import default_data_root, load_model, predict_dataset, score_dataset, shipped_checkpoint
from minivod.engine.train import resolve_device

from record import REPO, chosen_parts, machine, part_lines, results_name, write_results
from runs import trained_checkpoint
from tables import markdown_table, md_table, row, show

FLOW_PRETRAINED = REPO / "runs" / "ssvd_tiny" / "flow_pretrained.pt"  # the shipped SSVD's pre-trained flow network
TABLE2 = {"(a) single frame": "ssvd_single", "(b) motion stream": "ssvd_motion",
          "(c) sampling stream": "ssvd_sampling", "(d) both streams (SSVD, late fusion)": "ssvd"}
FUSION = {"motion-guided sampling": "ssvd_guided", "early fusion (concatenation)": "ssvd_early",
          "late fusion (NMS 0.45)": "ssvd"}


def score(model, method, dataset, device, predict=None):
    """mAP (all, by speed, clean / degraded) and ms/frame of ``model`` on ``dataset``."""
    if predict is None:
        per_video, timing = predict_dataset(model, method, dataset, device, progress=False)
        ms = timing["ms_per_frame"]
    else:
        per_video, seconds, frames = [], 0.0, 0
        for video in dataset.videos:
            dets, _, spent = predict(model, video, device)
            per_video.append(dets)
            seconds, frames = seconds + spent, frames + len(video)
        ms = 1000 * seconds / frames
    result, _ = score_dataset(per_video, dataset)
    return row(result, ms)


def copy_flow(folder):
    """The same flow pre-training as the shipped SSVD (see ``prepare_flow``), when it is here."""
    if FLOW_PRETRAINED.is_file():
        shutil.copy(FLOW_PRETRAINED, folder / "flow_pretrained.pt")


@functools.cache
def trained(method, iters, device, skip_train):
    """The model of ``method`` trained for ``iters``: the shipped checkpoint at 3000 iterations when there is
    one (made by the same command), else a run in ``runs/bench/`` (trained now unless it has finished, or
    None with ``skip_train``). Loaded once: Table II and Fig. 6 share ``ssvd``."""
    checkpoint = trained_checkpoint(method, iters, train=not skip_train, device=device, prepare=copy_flow)
    return None if checkpoint is None else load_model(method, checkpoint, device)[0]


def buffered(supports, only=None):
    """Algorithm 2 with ``supports`` support frames (0: the reference frame through the streams' heads
    alone), as a ``score`` predictor; ``only``: the streams whose heads detect."""
    from minivod.data.sampling import BufferedSchedule
    from minivod.engine.inference import detect_video_buffered

    def predict(model, video, device):
        return detect_video_buffered(model, video, device, BufferedSchedule(model.ssvd.window, supports),
                                     **({} if only is None else {"only": only}))
    return predict


def scored(models: dict, table: dict, val, device) -> dict:
    """The rows of ``table`` (``{name: method}``) whose model is trained."""
    rows = {}
    for name, method in table.items():
        if models[method] is not None:
            rows[name] = score(models[method], method, val, device)
            show(name, rows[name])
    return rows


# --------------------------------------------------------------------------- the parts
# each measures one table on ``val`` and returns its entries of the results file
def table2(val, device, args) -> dict:
    """SSVD Table II: single frame, motion stream, sampling stream, both; each also without supports"""
    models = {method: trained(method, args.iters, device, args.skip_train) for method in TABLE2.values()}
    rows = scored(models, TABLE2, val, device)
    for name, method in TABLE2.items():  # the same weights on the reference frame alone: what the supports add
        if method != "ssvd_single" and models[method] is not None:
            rows[f"{name}, 0 support frames"] = score(models[method], method, val, device, buffered(0))
            show(f"{name}, 0 support frames", rows[f"{name}, 0 support frames"])
    if models["ssvd"] is not None:  # one head of the jointly trained SSVD, on the reference alone
        for stream in models["ssvd"].stream_names:
            label = f"(d) SSVD's {stream} head only, 0 support frames"
            rows[label] = score(models["ssvd"], "ssvd", val, device, buffered(0, only=(stream,)))
            show(label, rows[label])
    return {"table2": rows}


def fusion(val, device, args) -> dict:
    """SSVD Fig. 6: late fusion, early fusion, motion-guided sampling, at the same budget"""
    models = {method: trained(method, args.iters, device, args.skip_train) for method in FUSION.values()}
    return {"fusion": scored(models, FUSION, val, device)}


def controls(val, device, args) -> dict:
    """Not in the paper: single-frame detectors trained like SSVD (two heads; 3x the iterations)"""
    rows = {}  # is SSVD's gain without supports only its training?
    for name, method, iters in (("(a) single frame, two late-fused heads", "ssvd_single_2heads", args.iters),
                                (f"(a) single frame, {3 * args.iters} iterations", "ssvd_single", 3 * args.iters)):
        model = trained(method, iters, device, args.skip_train)
        if model is not None:
            rows[name] = score(model, method, val, device)
            show(name, rows[name])
    return {"controls": rows}


def table5(val, device, args) -> dict:
    """SSVD Table V: support frames at test time (the shipped ssvd checkpoint, same weights throughout)"""
    model, meta = load_model("ssvd", shipped_checkpoint("ssvd"), device)
    rows = {}
    for k in ((0, 2, 6) if args.quick else (0, 2, 4, 6, 8, 2 * model.ssvd.window)):
        rows[f"{k} support frames"] = score(model, "ssvd", val, device, buffered(k))
        show(f"{k} support frames", rows[f"{k} support frames"])
    return {"table5": rows, "table5_checkpoint_iterations": meta.get("iteration")}


def flow(val, device, args) -> dict:
    """The flow network's end-point error on val: after its pre-training and after end-to-end training"""
    from minivod.data.flow_pairs import FlowPairs
    from minivod.methods.flow_pretrain import flow_epe

    model, meta = load_model("ssvd", shipped_checkpoint("ssvd"), device)
    mean, std = model.transform.mean, model.transform.std
    pairs = FlowPairs(default_data_root(), "val")
    epe = flow_epe(model.flownet.float(), lambda x: (x - mean) / std, pairs, model.ssvd.window, device=device)
    pre = {k[4:]: v for k, v in meta.get("prepare", {}).items() if k.startswith("val_")}
    for name, r in (("after pre-training", pre), ("after end-to-end training", epe)):
        if r:
            print(f"  {name:<28} EPE {r['epe']:.3f} (zero flow {r['zero_epe']:.3f}), moving pixels "
                  f"{r['epe_moving']:.3f} (zero flow {r['zero_epe_moving']:.3f})")
    return {"flow": {"after_pretraining": pre, "after_end_to_end_training": epe,
                     "pretraining": {k: v for k, v in meta.get("prepare", {}).items() if not k.startswith("val_")}}}


PARTS = {"table2": table2, "fusion": fusion, "controls": controls, "table5": table5, "flow": flow}  # --only name -> part


# --------------------------------------------------------------------------- the page
def flow_table(flow: dict) -> str:
    rows = [[label, *(f"{r[k]:.3f}" for k in ("epe", "zero_epe", "epe_moving", "zero_epe_moving")),
             f"{r.get('oracle_epe_moving', float('nan')):.3f}"]
            for label, r in (("after pre-training on ground truth", flow.get("after_pretraining")),
                             ("after end-to-end training (shipped)", flow.get("after_end_to_end_training"))) if r]
    return ("### Flow network end-point error (pixels, data_small val, 200 pairs within +-K)\n\n"
            + markdown_table(["weights", "EPE", "zero-flow EPE", "EPE moving", "zero-flow EPE moving",
                              "P3 oracle moving"], rows) + "\n")


def markdown(results: dict) -> str:
    """ssvd.md: every table in ``results``."""
    text = (f"data_small val ({results['videos']} videos), {results['machine']['processor']}, "
            f"{results['machine']['device']}\n\n"
            "ms/frame: wall-clock of Algorithm 2 (one reference at a time), measured while other jobs shared "
            "the CPU: compare the mAP columns, not the timings, across rows.\n\n")
    budget = f"{results['budget_iters']} iterations"
    if results["budget_iters"] != 3000:
        budget += " (REDUCED budget; the shipped checkpoints have 3000)"
    titles = {"table2": f"SSVD Table II, each variant trained {budget}",
              "controls": "Controls (not in the paper): single-frame detectors trained like SSVD, no support frame",
              "fusion": f"SSVD Fig. 6 fusion schemes, trained {budget}",
              "table5": "SSVD Table V: support frames at test time (shipped ssvd checkpoint, 3000 iterations)"}
    text += "".join(md_table(title, results[key]) + "\n" for key, title in titles.items() if key in results)
    return text + (flow_table(results["flow"]) if "flow" in results else "")


def main():
    parser = argparse.ArgumentParser(description=__doc__, epilog=part_lines(PARTS),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iters", type=int, default=3000, help="training budget of the ablation variants")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--quick", action="store_true", help="4 validation videos, fewer sweep points")
    parser.add_argument("--skip-train", action="store_true", help="only the variants already trained")
    parser.add_argument("--only", default="", help="comma-separated parts (default: all): table2,fusion,table5,flow,controls")
    args = parser.parse_args()
    device = resolve_device(args.device)
    val = VIDDataset(default_data_root(), "val")
    if args.quick:
        val.videos = val.videos[:4]
    results = {"budget_iters": args.iters, "videos": len(val.videos)}
    for name in chosen_parts(parser, PARTS, args.only):
        print(PARTS[name].__doc__.splitlines()[0])
        results.update(PARTS[name](val, device, args))
    results["machine"] = machine("platform", "processor", "torch", "threads", device=device)
    name = results_name("ssvd", args.iters, len(val.videos) if args.quick else None)
    results = write_results(name, results, markdown, keep_earlier=True)  # keeps parts measured with --only
    print(markdown(results))


if __name__ == "__main__":
    main()
