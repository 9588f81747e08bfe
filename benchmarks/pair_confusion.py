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
from collections import defaultdict

from minivod.data.motion import motion_group
from minivod.data.vid import VIDDataset
from minivod.engine.evaluate import default_data_root, load_model, predict_dataset, score_dataset, shipped_checkpoint
from minivod.engine.train import resolve_device
from minivod.eval.per_box import box_answers

from record import write_results
from tables import markdown_table

OUTCOMES = ("right", "pair", "other", "missed")


def pair_of(label: int) -> int:
    """The other class of a texture pair: classes come as (shape, striped), (shape, checked)."""
    return label + 1 if label % 2 == 1 else label - 1


def confusion(detections, dataset) -> dict:
    counts = defaultdict(lambda: dict.fromkeys(OUTCOMES, 0))
    answers = box_answers(detections, dataset)
    for video in dataset.videos:
        for f in video.frames:
            for j in range(len(f)):
                label, truth = int(answers[f.index][j]), int(f.labels[j])
                outcome = ("missed" if label == 0 else "right" if label == truth
                           else "pair" if label == pair_of(truth) else "other")
                groups = ["all", "degraded" if f.tags[j] else "clean", *f.tags[j], str(motion_group(f.motion_iou[j:j + 1])[0])]
                for g in groups:
                    counts[g][outcome] += 1
    return {g: {k: v / max(sum(c.values()), 1) for k, v in c.items()} | {"boxes": sum(c.values())}
            for g, c in counts.items()}


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
