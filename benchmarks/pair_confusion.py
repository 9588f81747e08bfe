"""Where does aggregation help? Class confusion on clean and degraded boxes, per method.

    python benchmarks/pair_confusion.py [--methods baseline selsa dsfnet]

For every ground-truth box of data_small val: take the highest-scoring detection
overlapping it with IoU >= 0.5 (VID +1 convention) and ask whether its class is
right, the *other class of the same pair* (same silhouette and colour, other
texture: the confusion degradations cause), another class, or whether no
detection overlaps it. Reported for clean boxes, degraded boxes, each tag and
each speed group. Writes benchmarks/results/pair_confusion.json and .md.
"""
from __future__ import annotations

import argparse

from minivod.data.stats import box_groups
from minivod.data.vid import VIDDataset
from minivod.engine.evaluate import default_data_root, load_model, predict_dataset, score_dataset, shipped_checkpoint
from minivod.engine.train import resolve_device
from minivod.eval.per_box import box_outcomes, outcome_shares

from record import write_results
from tables import markdown_table


def confusion(detections, dataset) -> dict:
    """Right / pair / other / missed shares of each group of boxes (``minivod.eval.per_box``)."""
    return outcome_shares(box_outcomes(detections, dataset)["outcome"], box_groups(dataset))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="*", default=["baseline", "selsa", "dsfnet"])
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    val = VIDDataset(default_data_root(), "val")
    results = {}
    for method in args.methods:
        model, _ = load_model(method, shipped_checkpoint(method), device, len(val.class_map))
        per_video, _ = predict_dataset(model, method, val, device, progress=False)
        _, detections = score_dataset(per_video, val)
        results[method] = confusion(detections, val)
    text = markdown(results)
    print(text)
    write_results("pair_confusion", results, text)


def markdown(results: dict) -> str:
    """pair_confusion.md: right / pair / missed shares of each group's boxes, one column per method."""
    methods = list(results)
    groups = ["all", "clean", "degraded", "motion_blur", "defocus", "illumination", "occlusion", "slow", "medium", "fast"]
    rows = [[g, str(results[methods[0]][g]["boxes"])]
            + [f"{results[m][g]['right']:.2f} / {results[m][g]['pair']:.2f} / {results[m][g]['missed']:.2f}"
               for m in methods] for g in groups]
    return ("Top-scoring detection on each ground-truth box of data_small val (IoU >= 0.5): right class / the other "
            "class of its texture pair / no detection.\n\n"
            + markdown_table(["group", "boxes"] + [f"{m}: right / pair / missed" for m in methods], rows,
                             align="lr" + "l" * len(methods)) + "\n")


if __name__ == "__main__":
    main()
