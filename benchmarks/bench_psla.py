"""PSLA on data_small val: speed against accuracy, propagation variants, RFU / DenseFT ablation.

    OMP_NUM_THREADS=1 python benchmarks/bench_psla.py [--iters 3000] [--repeats 5] [--skip-variants]

1. The shipped checkpoints (``psla_tiny.pt``, ``baseline_tiny.pt``, both trained for
   3000 iterations x 4 clips): mAP (slow / medium / fast, clean / degraded) and
   ms/frame of the baseline and of PSLA against the key-frame interval l (one
   checkpoint, the schedule changed at test time). Both are timed in this process,
   one thread, the whole val split, ``--repeats`` times; the table gives the median
   and the load average of the machine around the timings (it is shared).
2. The cost of a key frame against a non-key frame: multiply-adds (counted with
   torch's ``FlopCounterMode``, whole detector incl. RPN and R-FCN) and median ms
   of one frame each way (same frame, batch of one).
3. Parameter counts: the baseline, PSLA and its parts.
4. Variants trained with ``--iters`` iterations each (3000 = the shipped budget; the
   results file says which budget was used): PSLA against Dense PSLA, MatchTrans and
   Nonlocal propagation (PSLA Tables 3 and 5, "F" = with RFU and DenseFT), and the
   framework ablation (Table 5: (a) PSLA only, (b) + RFU, (c) + RFU + Quality Net),
   all evaluated at l = 10. A reduced budget keeps the lr steps at the same fractions and
   shortens the warm-up to iters / 6. Trained models are kept in ``runs/bench/<method>_<iters>_s0``
   (``benchmarks/runs.py``) and reused, also those trained before into ``runs/psla_bench/``.

Writes benchmarks/results/psla.json and .md.
"""
from __future__ import annotations

import argparse
import functools
import os
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from minivod.data.vid import VIDDataset, load_image
from minivod.engine.evaluate import default_data_root, load_model, predict_dataset, score_dataset, shipped_checkpoint
from minivod.data.sampling import KeyFrameSchedule, key_frames
from minivod.engine.inference import detect_video_key_frames
from minivod.models import count_parameters

from record import machine, part_lines, write_results
from runs import trained_checkpoint
from tables import md_table as _md_table
from tables import markdown_table, row, show

md_table = functools.partial(_md_table, ms_digits=2)  # PSLA's timings are compared at 0.01 ms

INTERVALS = (1, 2, 5, 10, 15, 20, 30)
VARIANTS = {  # name: (method, what it is)
    "PSLA F (full, c)": ("psla", "PSLA + RFU + DenseFT (Transform + Quality Net)"),
    "DensePSLA F": ("psla_dense", "softmax over the dense (2d+1)^2 window, + RFU + DenseFT"),
    "MatchTrans F": ("psla_matchtrans", "affinities / their sum over the dense window, + RFU + DenseFT"),
    "Nonlocal F": ("psla_nonlocal", "softmax over all positions, + RFU + DenseFT"),
    "PSLA (a)": ("psla_a", "PSLA from the latest key frame only (no RFU, no Quality Net)"),
    "PSLA (b)": ("psla_b", "PSLA + RFU (no Quality Net)"),
}


def scores(result, seconds, frames):
    """The table row of an ``evaluate_vid`` result, detected in ``seconds`` over ``frames`` frames."""
    return row(result, 1000 * seconds / frames)


def run_psla(model, dataset, interval):
    """Detections of every val video with the key-frame schedule; (per_video, seconds, key frames)."""
    per_video, seconds, keys = [], 0.0, 0
    for video in dataset.videos:
        dets, record, spent = detect_video_key_frames(model, video, "cpu",
                                                      KeyFrameSchedule(interval, model.opts.key_position))
        per_video.append(dets)
        seconds, keys = seconds + spent, keys + record.computed
    return per_video, seconds, keys


def train_config(iters):
    """The shipped budget's settings; a reduced budget keeps the schedule's shape (lr steps at the same
    fractions) with a warm-up of at most a sixth of it."""
    from minivod.engine.train import TrainConfig

    return TrainConfig.for_preset("tiny", iters=iters, warmup_iters=min(200, iters // 6))


@functools.cache
def shipped(method, num_classes):
    """The shipped checkpoint of ``method`` (``psla`` or ``baseline``), loaded once for every part."""
    return load_model(method, shipped_checkpoint(method), "cpu", num_classes)[0]


def speed_vs_interval(dataset, repeats):
    """Baseline and PSLA at every interval, timed in rounds (one pass of each per round, interleaved,
    so that a change in the machine's load hits all settings alike); mAP from the first round."""
    frames = sum(len(v) for v in dataset.videos)
    baseline, model = shipped("baseline", len(dataset.class_map)), shipped("psla", len(dataset.class_map))

    def run_baseline():
        per_video, timing = predict_dataset(baseline, "baseline", dataset, "cpu", progress=False)
        return per_video, timing["seconds"], frames

    settings = {"baseline (Faster R-CNN, every frame)": run_baseline}
    settings.update({f"PSLA l={l}": (lambda l=l: run_psla(model, dataset, l)) for l in INTERVALS})
    first, times, loads = {}, {name: [] for name in settings}, []
    for _ in range(repeats):
        loads.append(os.getloadavg()[0])
        for name, run in settings.items():
            per_video, seconds, keys = run()
            first.setdefault(name, (per_video, keys))
            times[name].append(seconds)
    loads.append(os.getloadavg()[0])
    rows = {}
    for name, (per_video, keys) in first.items():
        result, _ = score_dataset(per_video, dataset)
        rows[name] = {**scores(result, statistics.median(times[name]), frames),
                      "ms_all": [round(1000 * t / frames, 2) for t in times[name]], "key_frames": keys}
        show(name, rows[name], ms_digits=2)
    seq = {}
    for name in ("baseline (Faster R-CNN, every frame)", "PSLA l=10"):
        result, _ = score_dataset(first[name][0], dataset, use_seq_nms=True)
        seq[f"{name} + Seq-NMS"] = scores(result, 0.0, frames)
        show(f"{name} + Seq-NMS", seq[f"{name} + Seq-NMS"], ms_digits=2)
    return rows, seq, loads


def frame_costs(model, baseline, dataset, repeats=30):
    """Multiply-adds and median ms of one key frame, one non-key frame and one baseline frame."""
    image = load_image(dataset.videos[0].frames[0].image_path)[None]  # (1, 3, H, W)
    with torch.no_grad():
        batch, sizes, original = model.transform(image)
        F_t = model.key_frame(batch)  # a temporal feature to propagate from
        steps = {
            "key frame (N_l + N_h + RFU + RPN + R-FCN)":
                lambda: model.detect_maps(model.key_frame(model.transform(image)[0], F_t), sizes, original),
            "non-key frame (N_l + DenseFT + RPN + R-FCN)":
                lambda: model.detect_maps(model.non_key_frames(model.transform(image)[0], F_t), sizes, original),
            "baseline frame (backbone + RPN + RoIAlign + 2 FC)":
                lambda: baseline.detect(baseline.frame_features(image)),
        }
        rows = {}
        for name, step in steps.items():
            with FlopCounterMode(display=False) as counter:
                step()
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                step()
                times.append(time.perf_counter() - start)
            rows[name] = {"GMACs": counter.get_total_flops() / 2e9, "ms_median": 1000 * statistics.median(times)}
            print(f"  {name:<52} {rows[name]['GMACs']:.3f} GMACs  {rows[name]['ms_median']:.2f} ms", flush=True)
    return rows


def non_key_inputs(model, dataset, interval=10):
    """For every non-key frame of ``dataset`` (schedule l): its Transform Net map E and the temporal
    feature F_t of its key frame, both (1, C, h, w): what DenseFT's propagation reads."""
    for video in dataset.videos:
        is_key, key_of = key_frames(len(video), interval, model.opts.key_position)
        temporal = {}
        for key in sorted(set(key_of)):
            batch, _, _ = model.transform(load_image(video.frames[key].image_path)[None])
            temporal[key] = model.key_frame(batch, temporal.get(max(temporal, default=None)))
        for t in (t for t in range(len(video)) if not is_key[t]):
            batch, _, _ = model.transform(load_image(video.frames[t].image_path)[None])
            yield model.dense_ft.transform_net(model.low_features(batch)), temporal[key_of[t]]


@torch.no_grad()
def quality_weight(model, dataset, interval=10):
    """The mean Quality Net weight on the propagated map F^ over the non-key frames (the rest goes to
    the Transform Net's map E), for any propagation."""
    weights = [float(model.dense_ft.quality_net.weights(model.dense_ft.align(E, F_t), E)[:, 0].mean())
               for E, F_t in non_key_inputs(model, dataset, interval)]
    return sum(weights) / len(weights)


@torch.no_grad()
def propagation_usage(model, dataset, interval=10):
    """How much the non-key frames use propagation: the mean Quality Net weight on the propagated map
    and the mean largest PSLA weight of a position (1 / |Phi| = uniform, 1 = one position)."""
    quality, peaks = [], []
    for E, F_t in non_key_inputs(model, dataset, interval):  # one pass over the non-key frames
        quality.append(float(model.dense_ft.quality_net.weights(model.dense_ft.align(E, F_t), E)[:, 0].mean()))
        peaks.append(float(model.dense_ft.align.weights(E, F_t).max(1).values.mean()))  # weights: (1, K, h, w)
    row = {"quality_weight_on_propagated": sum(quality) / len(quality),
           "mean_peak_psla_weight": sum(peaks) / len(peaks),
           "uniform_psla_weight": 1 / len(model.dense_ft.align.offsets), "non_key_frames": len(peaks)}
    print("  " + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()))
    return row


def parameter_counts(model, baseline):
    parts = {
        "baseline (all)": count_parameters(baseline),
        "PSLA (all)": count_parameters(model),
        "N_l (stem + stages 1-3)": sum(p.numel() for p in model.backbone.body[: model.low_layers].parameters()),
        "N_h (stage 4)": sum(p.numel() for p in model.backbone.body[model.low_layers:].parameters()),
        "RFU (PSLA embeddings + Update Net)": count_parameters(model.rfu),
        "DenseFT Transform Net": count_parameters(model.dense_ft.transform_net),
        "DenseFT PSLA embeddings": count_parameters(model.dense_ft.align),
        "DenseFT Quality Net": count_parameters(model.dense_ft.quality_net),
        "RPN": count_parameters(model.rpn),
        "R-FCN head": count_parameters(model.roi_heads),
        "baseline box head (2 FC + predictor)": count_parameters(baseline.roi_heads),
    }
    for k, v in parts.items():
        print(f"  {k:<40} {v:>9,d}")
    return parts


def variant_rows(dataset, iters):
    """Each of ``VARIANTS`` trained ``iters`` iterations (or reused), evaluated at l = 10."""
    rows = {}
    for name, (method, what) in VARIANTS.items():
        checkpoint = trained_checkpoint(method, iters, use_shipped=False, config=train_config(iters))
        model, _ = load_model(method, checkpoint, "cpu", len(dataset.class_map))
        per_video, seconds, _ = run_psla(model, dataset, 10)
        result, _ = score_dataset(per_video, dataset)
        rows[name] = {**scores(result, seconds, sum(len(v) for v in dataset.videos)), "method": method,
                      "what": what, "params": count_parameters(model)}
        if model.dense_ft.quality_net is not None:  # did the Quality Net's gate stay open on propagation?
            rows[name]["quality_on_propagated"] = quality_weight(model, dataset)
        show(name, rows[name], ms_digits=2)
    return rows


# --------------------------------------------------------------------------- the parts
# each measures one table on val and returns its entries of the results file
def usage(dataset, args) -> dict:
    """How much the non-key frames use propagation (shipped psla, l = 10)"""
    return {"propagation_usage": propagation_usage(shipped("psla", len(dataset.class_map)), dataset)}


def intervals(dataset, args) -> dict:
    """Speed against accuracy: the baseline and PSLA at every key-frame interval l (shipped checkpoints)"""
    rows, seq, loads = speed_vs_interval(dataset, args.repeats)
    return {"interval_sweep": rows, "seq_nms": seq, "repeats": args.repeats, "load_average": loads}


def costs(dataset, args) -> dict:
    """The cost of one key frame, one non-key frame and one baseline frame (multiply-adds, ms)"""
    n = len(dataset.class_map)
    return {"frame_costs": frame_costs(shipped("psla", n), shipped("baseline", n), dataset)}


def parameters(dataset, args) -> dict:
    """Parameter counts: the baseline, PSLA and its parts"""
    n = len(dataset.class_map)
    return {"parameters": parameter_counts(shipped("psla", n), shipped("baseline", n))}


def variants(dataset, args) -> dict:
    """Propagation variants and the RFU / DenseFT ablation, each trained --iters iterations, at l = 10"""
    return {"variants": {"iters": args.iters, "rows": variant_rows(dataset, args.iters)}}


PARTS = {"usage": usage, "intervals": intervals, "frame_costs": costs, "parameters": parameters,
         "variants": variants}


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=part_lines(PARTS) + "\n(--usage-only: usage; --variants-only: variants; --skip-variants: all but variants)")
    parser.add_argument("--iters", type=int, default=3000, help="training budget of each variant")
    parser.add_argument("--repeats", type=int, default=5, help="timed passes over val per setting")
    parser.add_argument("--skip-variants", action="store_true")
    parser.add_argument("--variants-only", action="store_true", help="only train / evaluate the variants")
    parser.add_argument("--usage-only", action="store_true", help="only measure how much propagation is used")
    args = parser.parse_args()
    chosen = ["usage"] if args.usage_only else ["variants"] if args.variants_only else list(PARTS)
    chosen = [name for name in chosen if not (args.skip_variants and name == "variants")]
    torch.set_num_threads(1)
    dataset = VIDDataset(default_data_root(), "val")
    results = {"machine": machine("platform", "cpu_count", "threads", "torch", device="cpu")}
    for name in chosen:
        print(PARTS[name].__doc__.splitlines()[0] + ":")
        results.update(PARTS[name](dataset, args))
    # keeps what another run (e.g. --variants-only) wrote meanwhile
    write_results("psla", results, markdown, keep_earlier=True)


def markdown(results):
    text = ["# PSLA on data_small val", "",
            f"CPU, one thread ({results['machine']['platform']}); the machine is shared: timings are the median "
            f"of {results.get('repeats', '?')} passes over val (rounds interleave the settings), with the "
            "1-min load average.", ""]
    if "interval_sweep" in results:
        loads = results["load_average"]
        text += [md_table("Speed against accuracy: key-frame interval l (shipped checkpoints, 3000 iterations)",
                          results["interval_sweep"], extra=("key_frames", "ms_all")), "",
                 f"1-min load average at the start of each round and at the end: {loads}", "",
                 md_table("With Seq-NMS (same detections, then Seq-NMS; its time is not in ms/frame)",
                          results["seq_nms"]).replace(" 0.00 |", " - |"), "",
                 "### Cost of one frame (batch of one)", "",
                 markdown_table(["frame", "GMACs", "ms (median)"],
                                [[k, f"{v['GMACs']:.3f}", f"{v['ms_median']:.2f}"]
                                 for k, v in results["frame_costs"].items()]),
                 "", "### Parameters", "",
                 markdown_table(["part", "parameters"], [[k, f"{v:,d}"] for k, v in results["parameters"].items()])]
    if "propagation_usage" in results:
        u = results["propagation_usage"]
        text += ["", "### How much the non-key frames use propagation (shipped checkpoint, l = 10)", "",
                 f"- Quality Net weight on the propagated map F^, mean over {u['non_key_frames']} non-key frames: "
                 f"{u['quality_weight_on_propagated']:.3f} (the rest is the Transform Net's map of the frame itself)",
                 f"- largest PSLA weight of a position, mean: {u['mean_peak_psla_weight']:.3f} "
                 f"(uniform over Phi: {u['uniform_psla_weight']:.3f})"]
    if "variants" not in results:
        text += ["", "### Propagation variants and RFU / DenseFT ablation", "",
                 "Not measured yet: run `python benchmarks/bench_psla.py --variants-only --iters N`."]
    if "variants" in results:
        iters = results["variants"]["iters"]
        label = ("the full budget" if iters == 3000 else
                 f"a REDUCED budget of {iters} iterations (not the shipped 3000; warm-up {min(200, iters // 6)})")
        rows = results["variants"]["rows"]
        text += ["", md_table(f"Propagation variants and RFU / DenseFT ablation, l = 10, each trained with {label}",
                              rows, extra=("params", "quality_on_propagated")), ""]
        text += [f"- {k}: {v['what']} (`{v['method']}`)" for k, v in rows.items()]
        text += ["", "quality_on_propagated: the mean weight DenseFT's Quality Net gives the propagated map on val's "
                 "non-key frames (the rest goes to the non-key frame's own Transform Net map); near 0, the gate "
                 "closed on propagation in training. `quality_prior` (the tiny default 0.9) starts it open; a "
                 "checkpoint trained before that default (or with `quality_prior=None`) starts near 0.5."]
    return "\n".join(text) + "\n"


if __name__ == "__main__":
    main()
