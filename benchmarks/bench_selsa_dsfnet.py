"""SELSA and DSFNet ablations on data_small val.

    python benchmarks/bench_selsa_dsfnet.py [--device cpu] [--quick]

- SELSA Table 1: single-frame baseline, aggregation within the frame only, SELSA
  (mAP and slow / medium / fast).
- SELSA Fig. 3: SELSA's mAP against the number of test frames (shuffled), and
  sequential / strided / shuffled sampling at a fixed number of frames.
- DSFNet Table 1: baseline, frame-level fusion only, instance-level fusion only, both.

Every model was trained with the same command and budget as the baseline
(``python -m minivod train --method NAME --preset tiny --iters 3000``); the
checkpoints ship in ``minivod/checkpoints/``. Prints the tables and writes
benchmarks/results/selsa_dsfnet.json and .md (``selsa_dsfnet_4videos`` with ``--quick``).
"""
from __future__ import annotations

import argparse
import json

from minivod.data.vid import VIDDataset
from minivod.engine.evaluate import default_data_root, load_model, predict_dataset, score_dataset, shipped_checkpoint
from minivod.engine.train import resolve_device

from record import machine, results_name, write_results
from tables import md_table, row, show


def measure(method, dataset, device, **sampling):
    """The row of ``method``'s shipped checkpoint, with ``sampling`` (support frames at test time)."""
    model, _ = load_model(method, shipped_checkpoint(method), device, len(dataset.class_map))
    per_video, timing = predict_dataset(model, method, dataset, device, progress=False, **sampling)
    result, _ = score_dataset(per_video, dataset)
    r = row(result, timing["ms_per_frame"])
    show(f"{method} {json.dumps(sampling) if sampling else ''}", r)
    return r


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--quick", action="store_true", help="4 validation videos, fewer sweep points")
    args = parser.parse_args()
    device = resolve_device(args.device)
    val = VIDDataset(default_data_root(), "val")
    if args.quick:
        val.videos = val.videos[:4]
    print("SELSA Table 1")
    selsa_t1 = {"single-frame baseline": measure("baseline", val, device),
                "aggregation within the frame only": measure("selsa_frame_only", val, device),
                "SELSA (8 shuffled frames)": measure("selsa", val, device)}
    print("SELSA Fig. 3: number of test frames (shuffled)")
    counts = (1, 4, 8) if args.quick else (1, 2, 4, 8, 14, 20)
    selsa_k = {f"{k} support frames": measure("selsa", val, device, num_support=k, mode="shuffled") for k in counts}
    print("SELSA Fig. 3: sampling strategy at 8 support frames")
    selsa_mode = {"sequential": measure("selsa", val, device, num_support=8, mode="sequential")}
    for stride in ((4,) if args.quick else (2, 4, 8)):
        selsa_mode[f"stride {stride}"] = measure("selsa", val, device, num_support=8, mode="strided", stride=stride)
    selsa_mode["shuffled"] = selsa_k.get("8 support frames") or measure("selsa", val, device, num_support=8)
    print("DSFNet Table 1")
    dsfnet_t1 = {"baseline": selsa_t1["single-frame baseline"],
                 "frame-level fusion only": measure("dsfnet_frame", val, device),
                 "instance-level fusion only": measure("dsfnet_instance", val, device),
                 "both (DSFNet)": measure("dsfnet", val, device)}
    about = machine("platform", "processor", "torch", "threads", device=device, videos=len(val.videos))
    results = {"machine": about, "selsa_table1": selsa_t1, "selsa_fig3_frames": selsa_k,
               "selsa_fig3_sampling": selsa_mode, "dsfnet_table1": dsfnet_t1}
    text = (f"data_small val ({len(val.videos)} videos), {about['processor']}, torch {about['torch']}, "
            f"{device}\n\n" + md_table("SELSA Table 1", selsa_t1) + "\n"
            + md_table("SELSA Fig. 3: test frames", selsa_k) + "\n"
            + md_table("SELSA Fig. 3: sampling", selsa_mode) + "\n" + md_table("DSFNet Table 1", dsfnet_t1))
    write_results(results_name("selsa_dsfnet", videos=len(val.videos) if args.quick else None), results, text)
    print(text)


if __name__ == "__main__":
    main()
