"""What every method costs: ms per frame at inference, ms per training iteration, split by stage; multiply-adds.

    python benchmarks/bench_cost.py                          # every headline method, tiny preset (~15 CPU-min)
    python benchmarks/bench_cost.py --methods baseline selsa --repeats 3 --skip-train --skip-paper
    python benchmarks/bench_cost.py --label before           # the same on an older checkout (see cost.md)

Inference runs each shipped checkpoint (``minivod/checkpoints/<method>_tiny.pt``) over
the first ``--videos`` val videos of data_small with the engine's own schedule
(``minivod.engine.evaluate.predict_dataset``). Training runs ``--iters`` iterations of
the training loop's step (``minivod.engine.train.train_step``) on clips of the train
split, from the tiny preset's start (SSVD in its second, multi-frame phase; its flow
pre-training is not included). Methods are interleaved within each repeat and the
median over ``--repeats`` is reported, so a load on the machine hits every method alike.

Time is split by stage with forward hooks on the detector's modules (exclusive times:
a module's time without the modules it calls):

- ``data``: reading and decoding JPEGs (inference), drawing and augmenting clips (training)
- ``backbone``: resizing / normalising and the backbone (SSVD: its FPN)
- ``rpn``: the RPN (SSVD: its anchors)
- ``roi_pool``: RoIAlign
- ``aggregation``: every module that mixes frames (frame aggregators, RoI aggregators,
  MST's instance level, PSLA's propagation and update, SSVD's flow, offsets and deformable conv)
- ``head``: the box head's FC layers and predictor (SSVD: its dense heads)
- ``post``: sampling and post-processing inside the RoI heads
- ``backward``: the backward pass and the optimiser step (training)
- ``other``: the rest (the engine's bookkeeping, box decoding outside modules, Python)

Multiply-adds (``torch.utils.flop_counter``; it counts convolutions, matrix products and
attention, not RoIAlign, NMS, deformable convolution or element-wise work) are per frame
at inference, for the tiny preset on data_small and for the ``paper`` preset (ResNet-101,
random weights: no download) on the first 8 frames of one val video resized to a
240-pixel shorter side, so the ratios can be set beside the papers'.

Writes ``benchmarks/results/cost_<label>.json`` and ``benchmarks/results/cost.md`` (every
label found, ``before`` beside ``after``).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch

from record import REPO, RESULTS, machine, write_results

METHODS = ("baseline", "selsa", "dsfnet", "mst", "psla", "ssvd_single", "ssvd")
STAGES = ("data", "backbone", "rpn", "roi_pool", "aggregation", "head", "post", "backward", "other")
# the single-frame detector each method is compared with, and how many frames one of its training clips has
COMPARED_WITH = {"ssvd": "ssvd_single"}
# inference targets of the cost issue, as a multiple of the single-frame detector's ms/frame
TARGETS = {"selsa": 3.0, "dsfnet": 3.0, "ssvd": 3.0, "mst": 4.0, "psla": 1.0}
MODULE_STAGE = {  # module name (or its first part) -> stage
    "transform": "backbone", "backbone": "backbone", "backbone.body": "backbone", "fpn": "backbone",
    "rpn": "rpn", "anchor_generator": "rpn",
    "roi_heads.box_roi_pool": "roi_pool",
    "roi_heads.box_head": "head", "roi_heads.box_predictor": "head", "heads": "head",
    "roi_heads": "post",
    "frame_aggregator": "aggregation", "roi_aggregators": "aggregation", "instance": "aggregation",
    "rfu": "aggregation", "dense_ft": "aggregation", "flownet": "aggregation",
    "offset_predictor": "aggregation", "dconv": "aggregation",
}


# --------------------------------------------------------------------------- stage timer
class StageTimer:
    """Exclusive wall time per stage from forward hooks on a model's modules (and wrapped functions)."""

    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)
        self._stack: list[list] = []

    def _enter(self, stage: str):
        self._stack.append([stage, time.perf_counter(), 0.0])

    def _leave(self):
        stage, start, inner = self._stack.pop()
        spent = time.perf_counter() - start
        self.seconds[stage] += spent - inner
        if self._stack:
            self._stack[-1][2] += spent

    def attach(self, model: torch.nn.Module) -> list:
        """Hook the modules of ``MODULE_STAGE`` (a ModuleList's entries in its place); returns the handles."""
        handles, modules = [], dict(model.named_modules())
        for name, module in modules.items():
            parent = name.rsplit(".", 1)[0] if "." in name else None
            if name in MODULE_STAGE and not isinstance(module, torch.nn.ModuleList):
                stage = MODULE_STAGE[name]
            elif parent in MODULE_STAGE and (isinstance(modules[parent], torch.nn.ModuleList)
                                             or parent == "backbone.body"):
                stage = MODULE_STAGE[parent]  # e.g. roi_aggregators.0; PSLA runs slices of backbone.body
            else:
                continue
            handles.append(module.register_forward_pre_hook(lambda m, i, s=stage: self._enter(s)))
            handles.append(module.register_forward_hook(lambda m, i, o: self._leave()))
        return handles

    def wrap(self, fn, stage: str):
        """``fn`` counted as ``stage`` (e.g. image loading)."""
        def timed(*args, **kwargs):
            self._enter(stage)
            try:
                return fn(*args, **kwargs)
            finally:
                self._leave()
        return timed


def _patch_loader(timer: StageTimer) -> list:
    """Count every minivod module's ``load_image`` as data loading; returns what to restore."""
    patched = []
    for name, module in list(sys.modules.items()):
        if name.startswith("minivod") and hasattr(module, "load_image"):
            patched.append((module, module.load_image))
            module.load_image = timer.wrap(module.load_image, "data")
    return patched


def _split(timer: StageTimer, total: float, per: int) -> dict:
    """ms per unit (frame or iteration) of each stage; ``other`` is what no stage holds."""
    ms = {s: 1000 * timer.seconds.get(s, 0.0) / per for s in STAGES}
    ms["other"] = max(0.0, 1000 * total / per - sum(v for k, v in ms.items() if k != "other"))
    return ms


# --------------------------------------------------------------------------- inference
def measure_inference(model, method: str, dataset) -> dict:
    """One pass over ``dataset`` with the engine's schedule: total ms/frame and its split by stage."""
    from minivod.engine.evaluate import predict_dataset

    timer = StageTimer()
    handles, patched = timer.attach(model), _patch_loader(timer)
    try:
        _, timing = predict_dataset(model, method, dataset, "cpu", progress=False)
    finally:
        for h in handles:
            h.remove()
        for module, fn in patched:
            module.load_image = fn
    return {"ms": timing["ms_per_frame"], "stages": _split(timer, timing["seconds"], timing["frames"])}


# --------------------------------------------------------------------------- training
def training_setup(method: str, data: Path, seed: int = 0):
    """A fresh tiny-preset model and an iterator over training batches, as ``minivod train`` builds them."""
    from minivod.data.clips import TrainClips
    from minivod.data.transforms import ClipTransform
    from minivod.data.vid import VIDDataset
    from minivod.engine.train import TrainConfig, collate_clips, make_optimizer
    from minivod.methods import build_model, get_method

    cfg = TrainConfig.for_preset("tiny", seed=seed)
    spec = get_method(method)
    torch.manual_seed(seed)
    dataset = VIDDataset(data, "train", with_det=cfg.with_det)
    model = build_model(method, "tiny", len(dataset.class_map))
    model.set_iteration(cfg.iters, cfg.iters)  # the last (multi-frame) phase (SSVD); a no-op for the others
    transform = ClipTransform(model.cfg.min_size, model.cfg.max_size, train=True, **cfg.augment)
    clips = TrainClips(dataset, k=spec.train_support, frames_per_video=cfg.frames_per_video,
                       window=spec.train_window, transform=transform, seed=seed,
                       support_fn=model.train_support_fn())
    opt, sched = make_optimizer(model, cfg)
    generator = torch.Generator().manual_seed(seed)

    def batches():
        while True:
            order = torch.randperm(len(clips), generator=generator).tolist()
            for k in range(0, len(order) - cfg.batch_size + 1, cfg.batch_size):
                images, targets, support_targets = collate_clips([clips[i] for i in order[k:k + cfg.batch_size]])
                if spec.support_targets:
                    targets = [{**t, "support": s} for t, s in zip(targets, support_targets)]
                yield images, targets

    return model.train(), batches(), opt, sched, cfg, 1 + spec.train_support


def measure_training(setup, iters: int) -> dict:
    """``iters`` training steps (after one warm-up step): ms per iteration and its split by stage."""
    from minivod.engine.train import train_step

    model, batches, opt, sched, cfg, _ = setup
    train_step(model, *next(batches), opt, sched, cfg, "cpu")  # warm-up
    timer = StageTimer()
    handles = timer.attach(model)
    forward_and_back = 0.0
    start = time.perf_counter()
    try:
        for _ in range(iters):
            timer._enter("data")
            images, targets = next(batches)
            timer._leave()
            before = dict(timer.seconds)
            t0 = time.perf_counter()
            train_step(model, images, targets, opt, sched, cfg, "cpu")
            step = time.perf_counter() - t0
            forward = sum(timer.seconds[s] - before.get(s, 0.0) for s in STAGES if s != "data")
            timer.seconds["backward"] += step - forward  # backward, clipping, optimiser, scheduler
            forward_and_back += step
    finally:
        for h in handles:
            h.remove()
    return {"ms": 1000 * (time.perf_counter() - start) / iters,
            "stages": _split(timer, time.perf_counter() - start, iters)}


# --------------------------------------------------------------------------- multiply-adds
def count_macs(model, method: str, dataset) -> float:
    """Multiply-adds per frame over ``dataset`` with the engine's schedule (flop_counter's FLOPs / 2)."""
    from torch.utils.flop_counter import FlopCounterMode

    from minivod.engine.evaluate import predict_dataset

    with FlopCounterMode(display=False) as counter:
        _, timing = predict_dataset(model, method, dataset, "cpu", progress=False)
    return counter.get_total_flops() / 2 / timing["frames"]


def paper_macs(method: str, dataset, min_size: int) -> float:
    """Per-frame multiply-adds of the ``paper`` preset (random weights) at a reduced input size."""
    from minivod.methods import build_model

    torch.manual_seed(0)
    model = build_model(method, "paper", len(dataset.class_map), min_size=min_size,
                        max_size=min_size * 4 // 3).eval()
    return count_macs(model, method, dataset)


def short_video(dataset, frames: int):
    """The first video of ``dataset`` cut to its first ``frames`` frames."""
    import copy

    cut = dataset.subset([0])
    video = copy.copy(cut.videos[0])
    video.frames = video.frames[:frames]
    cut.videos = [video]
    return cut


# --------------------------------------------------------------------------- report
def median_run(runs: list[dict]) -> dict:
    return {"ms": statistics.median(r["ms"] for r in runs),
            "stages": {s: statistics.median(r["stages"][s] for r in runs) for s in STAGES},
            "repeats": [round(r["ms"], 2) for r in runs]}


def ratio_rows(section: dict, per_clip: dict | None = None) -> dict:
    """Each method's ms over its single-frame detector's (and, in training, over frames per clip x that)."""
    rows = {}
    for m, r in section.items():
        base = section.get(COMPARED_WITH.get(m, "baseline"))
        if base is None:
            continue
        rows[m] = r["ms"] / base["ms"]
        if per_clip:
            rows[m] = (rows[m], rows[m] / per_clip[m])
    return rows


def markdown(results: dict) -> str:
    """cost.md: every label's tables (inference, training, multiply-adds), ``before`` first."""
    order = sorted(results, key=lambda k: (k != "before", k != "after", k))
    lines = ["# What each method costs", "",
             "Written by `python benchmarks/bench_cost.py` (see its docstring for what each stage holds). "
             "Median of interleaved repeats on this machine's CPU, one thread; read the ratios rather than the "
             "absolute times. `before`: the code before the aggregation-cost work (commit b9b194b), measured "
             "with the same script.", ""]
    for label in order:
        res = results[label]
        lines += [f"## {label} ({res['meta']['when']}, {res['meta']['machine']})", ""]
        if res.get("inference"):
            inf = res["inference"]
            ratios = ratio_rows(inf)
            shown = ("data", "backbone", "rpn", "roi_pool", "aggregation", "head", "post", "other")
            lines += [f"### Inference, ms per frame ({res['meta']['videos']} val videos, shipped checkpoints)", "",
                      "| method | ms/frame | x single-frame (each repeat) | target | " + " | ".join(shown) + " |",
                      "|---" * (4 + len(shown)) + "|"]
            for m, r in inf.items():
                x, target = ratios.get(m, float("nan")), TARGETS.get(m)
                base = inf.get(COMPARED_WITH.get(m, "baseline"))
                spread = ""
                if base is not None and m not in ("baseline", "ssvd_single") and len(r.get("repeats", [])) > 1:
                    each = [a / b for a, b in zip(r["repeats"], base["repeats"])]  # repeat k against repeat k
                    spread = f" ({min(each):.2f}-{max(each):.2f})"
                if target is None:
                    verdict = ""
                elif m == "psla":
                    verdict = "< 1x: " + ("met" if x < 1 else "not met")
                else:
                    verdict = f"<= {target:g}x: " + ("met" if x <= target else "not met")
                lines.append(f"| {m} | {r['ms']:.1f} | {x:.2f}{spread} | {verdict} | "
                             + " | ".join(f"{r['stages'][s]:.1f}" for s in shown) + " |")
            lines.append("")
        if res.get("training"):
            tr = res["training"]
            per_clip = res["frames_per_clip"]
            ratios = ratio_rows(tr, per_clip)
            lines += [f"### Training, ms per iteration ({res['meta']['iters']} iterations, batch of 4 clips)", "",
                      "| method | frames/clip | ms/iter | x single-frame | / frames per clip (target <= 1.3) | "
                      + " | ".join(("data", "backbone", "rpn", "roi_pool", "aggregation", "head", "post",
                                    "backward", "other")) + " |", "|---" * (5 + len(STAGES)) + "|"]
            for m, r in tr.items():
                x, per = ratios.get(m, (float("nan"), float("nan")))
                st = r["stages"]
                lines.append(f"| {m} | {per_clip[m]} | {r['ms']:.0f} | {x:.2f} | {per:.2f} | "
                             + " | ".join(f"{st[s]:.0f}" for s in STAGES) + " |")
            lines.append("")
        if res.get("macs"):
            lines += ["### Multiply-adds per frame (GMAC, counted convolutions, matrix products and attention)", "",
                      f"| method | tiny, data_small | x single-frame | paper, {res['meta']['paper_size']} px, 8 frames "
                      "| x single-frame |", "|---|---|---|---|---|"]
            macs = res["macs"]
            for m, v in macs.items():
                base = macs.get(COMPARED_WITH.get(m, "baseline"), {})
                cells = []
                for key in ("tiny", "paper"):
                    if v.get(key) is None:
                        cells += ["", ""]
                    else:
                        cells += [f"{v[key] / 1e9:.3f}", f"{v[key] / base[key]:.2f}" if base.get(key) else ""]
                lines.append(f"| {m} | " + " | ".join(cells) + " |")
            lines.append("")
        if label == "after" and res.get("inference"):
            why = where_the_time_goes(res)
            lines += ["### Targets not met, and why", ""] + (why or ["All inference targets are met."]) + [""]
    return "\n".join(lines) + "\n"


def where_the_time_goes(res: dict) -> list[str]:
    """For each method whose inference target is not met: which equation costs what, from the measured
    numbers (stage split, multiply-adds) and the sizes of the tiny preset on data_small."""
    from minivod.methods.mst import WINDOW
    from minivod.methods.ssvd import SSVDConfig

    inf, macs = res.get("inference", {}), res.get("macs", {})
    h, w = 120 // 8, 160 // 8  # data_small frames through the stride-8 tiny backbone
    lines = []

    def share(m):
        r = inf[m]
        return f"{r['stages']['aggregation']:.1f} of its {r['ms']:.1f} ms/frame"

    def gmac_gap(m, base):
        if m in macs and base in macs:
            return (f"; counted multiply-adds {macs[m]['tiny'] / 1e9:.2f} G per frame against "
                    f"{macs[base]['tiny'] / 1e9:.2f} G ({macs[m]['tiny'] / macs[base]['tiny']:.1f}x)")
        return ""

    for m, target in TARGETS.items():
        base = COMPARED_WITH.get(m, "baseline")
        if m not in inf or base not in inf:
            continue
        x = inf[m]["ms"] / inf[base]["ms"]
        if (m == "psla" and x < 1) or (m != "psla" and x <= target):
            continue
        if m == "mst":
            T = 2 * WINDOW + 1
            tokens = T * h * w
            lines.append(
                f"- **mst** ({x:.1f}x, target {target:g}x): aggregation is {share(m)}{gmac_gap(m, base)}. Most "
                f"of it is the frame level, Eq. (4)-(6) with the paper's `query=\"all\"` (Table IX): every "
                f"reference frame's clip of T = {T} frames is updated as a whole, each of its T·h·w = "
                f"{T}·{h}·{w} = {tokens} positions attending to all {tokens}, so {tokens ** 2 / 1e6:.1f}M "
                f"query-key pairs per frame, and the RPN runs again on the {T - 1} enhanced support maps of "
                f"every reference (the `rpn` column). DAlign's offsets (Eq. 1-3) are per (reference, support) "
                f"pair too. Nothing here is recomputed: each reference has its own aligned, enhanced clip. "
                f"Reaching {target:g}x needs a change of method (`query=\"ref\"`, a shorter window).")
        elif m == "ssvd":
            n = SSVDConfig().test_support
            lines.append(
                f"- **ssvd** ({x:.1f}x ssvd_single, target {target:g}x): aggregation is {share(m)}"
                f"{gmac_gap(m, base)}. Algorithm 2 aggregates {n} support frames per reference, and for each "
                f"(reference, support) pair it estimates flow (the flow decoder on the two frames' pyramids), "
                f"predicts offsets and runs the deformable sampling at every FPN level; the frames' own FPN "
                f"and flow pyramids are computed once per frame. With ResNet-101 the backbone dwarfs this "
                f"per-pair work (the paper's 2.2x, Table V); with the tiny FPN it does not. Reaching "
                f"{target:g}x needs fewer support frames (Table V's trade-off).")
        elif m == "dsfnet":
            lines.append(
                f"- **dsfnet** ({x:.1f}x, target {target:g}x): aggregation is {share(m)}{gmac_gap(m, base)}. "
                f"The instance level (Eq. 4-7) relates each of a reference frame's RoIs (up to 100) to its own "
                f"and 8 x 64 support RoIs at both FC layers: Eq. (6)'s key embedding zeta and Eq. (4)'s value "
                f"transform gamma run on all 612 neighbours (2 x 2 x 512 x 256 x 256 = 134M multiply-adds per "
                f"frame for the support rows alone), and Eq. (7)'s geometric term embeds every pair (two of its "
                f"three terms factor into per-box sines and cosines, the aspect-ratio gap does not). The frame "
                f"level (Eq. 1-3) runs the RPN a second time, on the fused reference map. Not done yet, and the "
                f"next saving that changes no result: zeta and gamma of a support frame's RoIs depend on that "
                f"frame alone, so they could be kept per frame like its pooled RoIs (about 0.13 of DSFNet's "
                f"counted multiply-adds).")
        else:
            lines.append(f"- **{m}** ({x:.1f}x, target {target:g}x): aggregation is {share(m)}{gmac_gap(m, base)}.")
    training, per_clip = res.get("training", {}), res.get("frames_per_clip", {})
    for m, r in training.items():
        base = training.get(COMPARED_WITH.get(m, "baseline"))
        if base is None or m in ("baseline", "ssvd_single"):
            continue
        per = r["ms"] / base["ms"] / per_clip[m]
        if per > 1.3:
            lines.append(
                f"- **{m}, training** ({per:.2f}x frames per clip x {COMPARED_WITH.get(m, 'baseline')}, target "
                f"1.3x): aggregation takes {r['stages']['aggregation']:.0f} of its {r['ms']:.0f} ms per iteration "
                f"and its backward pass {r['stages']['backward']:.0f} ms; the per-pair work above is done for "
                f"each of the {per_clip[m] - 1} supports of every clip, forward and backward, on top of each "
                f"frame's own cost.")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--data", type=Path, default=REPO / "data_small")
    parser.add_argument("--videos", type=int, default=4, help="val videos per inference pass")
    parser.add_argument("--iters", type=int, default=20, help="training iterations per measurement")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--paper-size", type=int, default=240, help="shorter side for the paper preset's count")
    parser.add_argument("--skip-train", action="store_true")
    parser.add_argument("--skip-macs", action="store_true")
    parser.add_argument("--skip-paper", action="store_true")
    parser.add_argument("--label", default="after", help="results go to cost_<label>.json")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--report-only", action="store_true", help="rewrite cost.md from the cost_*.json files")
    args = parser.parse_args(argv)
    if args.report_only:
        return write_report(args.out)

    from minivod.data.vid import VIDDataset
    from minivod.engine.evaluate import load_model, shipped_checkpoint

    torch.set_num_threads(1)
    val = VIDDataset(args.data, "val")
    subset = val.subset(list(range(min(args.videos, len(val.videos)))))
    models = {m: load_model(m, shipped_checkpoint(m), "cpu")[0] for m in args.methods}
    about = machine("processor", "torch")
    results = {"meta": {"when": time.strftime("%Y-%m-%d"), "machine": f"{about['processor']}, torch {about['torch']}, 1 thread",
                        "videos": len(subset.videos), "iters": args.iters, "repeats": args.repeats,
                        "paper_size": args.paper_size}}

    runs = defaultdict(list)
    for m in args.methods:  # warm-up (first-call allocations, lazy imports)
        measure_inference(models[m], m, subset.subset([0]))
    for r in range(args.repeats):
        for m in args.methods:
            runs[m].append(measure_inference(models[m], m, subset))
            print(f"inference {m} repeat {r}: {runs[m][-1]['ms']:.1f} ms/frame", flush=True)
    results["inference"] = {m: median_run(runs[m]) for m in args.methods}

    if not args.skip_train:
        setups = {m: training_setup(m, args.data) for m in args.methods}
        results["frames_per_clip"] = {m: s[-1] for m, s in setups.items()}
        runs = defaultdict(list)
        for r in range(args.repeats):
            for m in args.methods:
                runs[m].append(measure_training(setups[m], args.iters))
                print(f"training {m} repeat {r}: {runs[m][-1]['ms']:.0f} ms/iteration", flush=True)
        results["training"] = {m: median_run(runs[m]) for m in args.methods}

    if not args.skip_macs:
        results["macs"] = {}
        for m in args.methods:
            results["macs"][m] = {"tiny": count_macs(models[m], m, subset)}
            if not args.skip_paper:
                results["macs"][m]["paper"] = paper_macs(m, short_video(val, 8), args.paper_size)
            print(f"multiply-adds {m}: " + ", ".join(f"{k} {v / 1e9:.3f} G" for k, v in results["macs"][m].items()),
                  flush=True)

    write_results(f"cost_{args.label}", results, out=args.out)
    return write_report(args.out)


def write_report(out: Path) -> int:
    """cost.md from every cost_<label>.json in ``out``."""
    everything = {p.stem[len("cost_"):]: json.loads(p.read_text()) for p in sorted(out.glob("cost_*.json"))}
    text = markdown(everything)
    (out / "cost.md").write_text(text)
    print(text)
    print(f"wrote {out / 'cost.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
