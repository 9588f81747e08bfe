"""Gather every benchmark's figures into one results file and one Markdown page.

    python benchmarks/gather.py                 # re-measure the method comparison, then gather
    python benchmarks/gather.py --collect-only  # gather what benchmarks/results/ holds now

Step 1 (skipped by ``--collect-only``) evaluates every shipped checkpoint on
data_small val, with and without Seq-NMS (the same code as ``python -m minivod
demo``), and writes ``benchmarks/results/comparison.json``. Step 2 reads every
results file under ``benchmarks/results/`` and writes

- ``benchmarks/results/summary.json``: all of them in one file, each with the command that made it;
- ``benchmarks/results/summary.md``: the comparison table, then each benchmark's table;
- the block between ``<!-- results:begin -->`` and ``<!-- results:end -->`` in README.md:
  the comparison table and the machine it was measured on.

The benchmarks that train models (the ablations) are not re-run here; each
section names the command that re-runs it.
"""
from __future__ import annotations

import argparse
import json
import sys

from record import REPO, RESULTS, machine, write_results
from tables import markdown_table

README = REPO / "README.md"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"

# name -> (title, command that writes benchmarks/results/<name>.json / .md)
SOURCES = {
    "comparison": ("Every shipped method on data_small val", "python benchmarks/gather.py"),
    "checkpoints": ("Shipped checkpoints", "python benchmarks/checkpoint_table.py"),
    "baseline_speed": ("Baseline speed against torchvision's FasterRCNN", "python benchmarks/bench_baseline.py"),
    "eval_speed": ("Evaluator and Seq-NMS speed at ImageNet VID val size", "python benchmarks/bench_eval.py"),
    "selsa_dsfnet": ("SELSA and DSFNet ablations", "python benchmarks/bench_selsa_dsfnet.py"),
    "pair_confusion": ("Texture-pair confusion (why degraded boxes gain little)", "python benchmarks/pair_confusion.py"),
    "texture_probe_backbone": ("The texture cue in the pre-trained tiny backbone: a linear probe at each depth",
                               "python benchmarks/texture_probe.py"),
    "testbed": ("The testbed: baseline seeds, clean against degraded boxes, the class oracle",
                "python benchmarks/bench_testbed.py"),
    "mst": ("MST with DAlign ablations", "python benchmarks/bench_mst.py"),
    "psla": ("PSLA: speed, accuracy and variants", "python benchmarks/bench_psla.py"),
    "ssvd": ("SSVD ablations", "python benchmarks/bench_ssvd.py"),
    "seeds": ("Every method over training seeds, against its single-frame detector (the retraining, in progress)",
              "python benchmarks/bench_seeds.py"),
    "split_seed1": ("The shipped checkpoints on a second generated split (generator seed 1)",
                    "python benchmarks/bench_split.py --seed 1"),
    "cost": ("What each method costs, stage by stage, before and after the aggregation-cost work",
             "python benchmarks/bench_cost.py"),
}


MACHINE = ("platform", "processor", "cpu_count", "python", "torch", "threads")  # what comparison.json records


def measure_comparison(device: str, only=None) -> dict:
    """Every shipped checkpoint on data_small val (``minivod.demo.compare``); writes comparison.json.

    ``only``: re-measure just these methods and keep the other rows of the existing file.
    """
    from minivod.demo import compare, shipped_methods
    from minivod.engine.evaluate import default_data_root
    from minivod.engine.train import resolve_device

    device = resolve_device(device)
    methods = shipped_methods()
    old = {}
    if only and (RESULTS / "comparison.json").is_file():
        old = json.loads((RESULTS / "comparison.json").read_text())["methods"]
    todo = [m for m in methods if not only or m in only or m not in old]
    rows = compare(todo, default_data_root(), device)
    clean = lambda v: None if isinstance(v, float) and v != v else v  # noqa: E731  (NaN -> null)
    fresh = {m: {k: ({t: clean(x) for t, x in v.items()} if isinstance(v, dict) else clean(v))
                 for k, v in r.items()} for m, r in rows.items()}
    from minivod.data.vid import VIDDataset

    val = VIDDataset(default_data_root(), "val")
    data = f"data_small val ({len(val.videos)} videos, {sum(len(v) for v in val.videos)} frames)"
    payload = {"machine": machine(*MACHINE, device=device), "data": data,
               "methods": {m: fresh[m] if m in fresh else old[m] for m in methods}}
    return write_results("comparison", payload)


def comparison_markdown(payload: dict) -> str:
    from minivod.demo import table

    nan = float("nan")
    rows = {m: {k: (nan if v is None else v) for k, v in r.items()} for m, r in payload["methods"].items()}
    mc = payload["machine"]
    data = payload.get("data", "data_small val (16 videos, 768 frames)")
    note = ("\nRows whose backbone start is `scratch` were trained from scratch on the previous data_small, before "
            "the pre-trained tiny backbone; they are scored on today's data and are not comparable with the "
            "baseline until they are retrained.\n") if any(r.get("backbone_start") == "scratch" for r in rows.values()) else ""
    return (f"{data}; ms/frame measured on {mc['processor']} "
            f"({mc.get('device', 'cpu')}, {mc.get('threads', '?')} threads), torch {mc['torch']}.\n\n"
            + table(rows, markdown=True) + "\n" + note)


def checkpoints_markdown(payload: dict) -> str:
    rows = [[f"`{r['file']}`", f"`{r['command']}`", f"{r['train_minutes']} min, {r['iterations']} it",
             *(f"{r[f]:.3f}" for f in ("mAP", "mAP_slow", "mAP_medium", "mAP_fast"))]
            for r in payload["checkpoints"].values()]
    return markdown_table(["checkpoint", "command", "training", "mAP", "slow", "medium", "fast"], rows,
                          align="lllrrrr") + "\n"


def baseline_speed_markdown(payload: dict) -> str:
    t, i = payload["train_it_per_s"], payload["infer_ms_per_frame"]
    return markdown_table(["", "minivod", "torchvision FasterRCNN"],
                          [["training (it/s)", f"{t['minivod']:.2f}", f"{t['torchvision']:.2f}"],
                           ["inference (ms/frame)", f"{i['minivod']:.2f}", f"{i['torchvision']:.2f}"],
                           ["through the video engine (ms/frame)", f"{i['minivod_engine']:.2f}", ""]]) + "\n"


def eval_speed_markdown(payload: dict) -> str:
    e = payload["evaluate_vid"]
    return (f"{e['snippets']} snippets, {e['frames']:,} frames, {e['detections']:,} detections:\n\n"
            + markdown_table(["evaluation", "seconds"],
                             [["mAP only", f"{e['plain_s']:.1f}"], ["+ slow / medium / fast", f"{e['motion_s']:.1f}"],
                              ["+ degradation tags", f"{e['motion_and_tags_s']:.1f}"]]) + "\n\n"
            + markdown_table(["Seq-NMS (300 frames x 300 boxes)", "batched (s)", "reference loop (s)", "same output"],
                             [[f"{r['classes']} classes", f"{r['batched_s']:.2f}", f"{r['reference_s']:.2f}",
                               f"{r['outputs_equal']}"] for r in payload["seq_nms"].values()], align="lrrl") + "\n")


FORMATTERS = {"comparison": comparison_markdown, "checkpoints": checkpoints_markdown,
              "baseline_speed": baseline_speed_markdown, "eval_speed": eval_speed_markdown}


def section(name: str) -> tuple[str, dict | None]:
    """The Markdown of one benchmark (its own .md, else formatted from its .json) and its data."""
    title, command = SOURCES[name]
    data = json.loads((RESULTS / f"{name}.json").read_text()) if (RESULTS / f"{name}.json").is_file() else None
    if name in FORMATTERS and data is not None:
        body = FORMATTERS[name](data)
    elif (RESULTS / f"{name}.md").is_file():
        body = (RESULTS / f"{name}.md").read_text()
    else:
        body = "_Not measured yet._\n"
    return f"## {title}\n\n`{command}`\n\n{body.rstrip()}\n", data


def update_readme(block: str) -> bool:
    text = README.read_text()
    if BEGIN not in text or END not in text:
        print(f"warning: {README} has no {BEGIN} ... {END} block; not updated", file=sys.stderr)
        return False
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    README.write_text(f"{head}{BEGIN}\n{block.rstrip()}\n{END}{tail}")
    return True


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--collect-only", action="store_true", help="do not re-measure the comparison")
    parser.add_argument("--device", default="auto", help="for the comparison: cpu, cuda or auto")
    parser.add_argument("--methods", nargs="*", default=None,
                        help="re-measure only these methods in the comparison; keep the others' rows")
    args = parser.parse_args(argv)
    if not args.collect_only:
        measure_comparison(args.device, args.methods)
    if not (RESULTS / "comparison.json").is_file():
        print("error: benchmarks/results/comparison.json is missing; run without --collect-only", file=sys.stderr)
        return 2
    parts, summary = [], {"gathered_on": machine(*MACHINE), "benchmarks": {}}
    for name in SOURCES:
        text, data = section(name)
        parts.append(text)
        summary["benchmarks"][name] = {"title": SOURCES[name][0], "command": SOURCES[name][1], "results": data}
    page = "# minivod benchmarks\n\nGathered by `python benchmarks/gather.py`.\n\n" + "\n".join(parts)
    write_results("summary", summary, page)
    comparison = json.loads((RESULTS / "comparison.json").read_text())
    block = comparison_markdown(comparison) + "\nAll benchmark tables: [`benchmarks/results/summary.md`]" \
                                              "(benchmarks/results/summary.md).\n"
    update_readme(block)
    print(page)
    print(f"wrote {RESULTS / 'summary.md'}, {RESULTS / 'summary.json'} and the results block of {README.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
