"""``python -m minivod train`` and ``python -m minivod eval``."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from minivod.engine.evaluate import default_data_root, evaluate_model, load_model, shipped_checkpoint
from minivod.eval.cli import add_val_list_argument
from minivod.methods import METHODS


def add_parsers(subparsers):
    p = subparsers.add_parser(
        "train", help="train a method on a VID-layout dataset (data_small by default)",
        description="Train a detector. Writes OUT/last.pt (atomically, every --checkpoint-every iterations), "
                    "OUT/log.jsonl (losses) and OUT/losses.png. Several GPUs: torchrun --nproc_per_node N "
                    "-m minivod train ...")
    p.add_argument("--method", default="baseline", choices=list(METHODS),
                   help="a method, or an ablation variant (e.g. selsa_frame_only)")
    p.add_argument("--preset", default="tiny", choices=["tiny", "paper"])
    p.add_argument("--data", default=None, help="dataset root (default: data_small)")
    p.add_argument("--iters", type=int, default=None, help="training iterations (default: the preset's)")
    p.add_argument("--batch-size", type=int, default=None, help="clips per iteration, over all processes")
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (CUDA when available)")
    p.add_argument("--amp", action="store_true", help="automatic mixed precision")
    p.add_argument("--workers", type=int, default=None, help="DataLoader-style worker count (unused at 0)")
    p.add_argument("--checkpoint-every", type=int, default=None, help="iterations between checkpoints")
    p.add_argument("--out", default=None, help="output folder (default: runs/<method>_<preset>)")
    p.add_argument("--resume", action="store_true", help="continue OUT/last.pt to the same result")
    p.add_argument("--pretrained-backbone", action="store_true",
                   help="paper preset: start from torchvision's ImageNet ResNet-101 weights (needs the network); "
                        "the tiny preset always starts from minivod/checkpoints/backbone_tiny.pt unless --from-scratch")
    p.add_argument("--from-scratch", action="store_true",
                   help="tiny preset: do not start from the pre-trained tiny backbone (random initialisation)")
    p.add_argument("--train-list", default=None,
                   help="training frames, in place of DATA/ImageSets/VID/train.txt: any list the VID codebases "
                        "distribute (VID_train_15frames.txt: train on the listed reference frames, supports from "
                        "the whole snippet; VID_train_every10frames.txt) or '<snippet>/<frame> <index>' per line; "
                        "the format is recognised from the file; a path, or one relative to DATA")
    p.add_argument("--det-list", default=None,
                   help="DET stills mixed into training, in place of DATA/ImageSets/DET/train_30classes.txt "
                        "(e.g. the codebases' ImageSets/DET_train_30classes.txt)")
    p.set_defaults(func=run_train)

    p = subparsers.add_parser(
        "eval", help="detect on a split with a trained method and score it (VID protocol)",
        description="Run a method over every video of a split (each frame's backbone once, features cached), "
                    "score with the ImageNet VID protocol (mAP, slow/medium/fast, degradations), print a table "
                    "and write results.json (with ms_per_frame). Without --checkpoint the shipped tiny "
                    "checkpoint of the method is used.")
    p.add_argument("--method", default="baseline", choices=list(METHODS))
    p.add_argument("--checkpoint", default=None, help="a checkpoint from `minivod train` (default: shipped)")
    p.add_argument("--data", default=None, help="dataset root (default: data_small)")
    p.add_argument("--split", default="val")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto")
    p.add_argument("--seq-nms", action="store_true", help="apply Seq-NMS per video before scoring")
    p.add_argument("--out", default="results.json", help="where to write the scores")
    p.add_argument("--dets", default=None, help="also write the detections as an ILSVRC VID result file")
    add_val_list_argument(p)
    p.set_defaults(func=run_eval)


def run_train(args) -> int:
    from minivod.engine.train import TrainConfig, train

    overrides = {k: v for k, v in (("iters", args.iters), ("batch_size", args.batch_size), ("lr", args.lr),
                                   ("num_workers", args.workers),
                                   ("checkpoint_every", args.checkpoint_every)) if v is not None}
    cfg = TrainConfig.for_preset(args.preset, seed=args.seed, amp=args.amp, **overrides)
    out = args.out or f"runs/{args.method}_{args.preset}"
    if args.pretrained_backbone and args.from_scratch:
        print("error: --pretrained-backbone and --from-scratch contradict each other", file=sys.stderr)
        return 2
    model_overrides = ({"pretrained_backbone": True} if args.pretrained_backbone
                       else {"pretrained_backbone": False} if args.from_scratch else None)
    from minivod.data.lists import resolve_list
    from minivod.data.vid import DataError

    data = args.data or default_data_root()
    lists = {k: resolve_list(v, data) if v else None for k, v in (("train_list", args.train_list),
                                                                  ("det_list", args.det_list))}
    try:
        _, path = train(args.method, args.preset, data, out, cfg, device=args.device, resume=args.resume,
                        model_overrides=model_overrides, **lists)
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


def run_eval(args) -> int:
    from minivod.data.vid import DataError, VIDDataset
    from minivod.engine.train import resolve_device
    from minivod.eval import write_vid_results
    from minivod.eval.cli import format_table, to_json

    from minivod.data.lists import resolve_list

    device = resolve_device(args.device)
    data = args.data or default_data_root()
    try:
        dataset = VIDDataset(data, args.split, image_set=resolve_list(args.val_list, data) if args.val_list else None)
        checkpoint = args.checkpoint or shipped_checkpoint(args.method)
        model, meta = load_model(args.method, checkpoint, device, len(dataset.class_map))
    except (DataError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    result, detections, timing = evaluate_model(model, args.method, dataset, device, use_seq_nms=args.seq_nms)
    result.update(method=args.method, checkpoint=str(checkpoint), seq_nms=args.seq_nms, device=device, **timing)
    print(format_table(result))
    print(f"ms per frame: {result['ms_per_frame']:.1f} ({device}); backbone passes: {timing['backbone_passes']} "
          f"for {timing['frames']} frames")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(to_json(result), indent=2) + "\n")
    print(f"wrote {out}")
    if args.dets:
        write_vid_results(args.dets, detections)
        print(f"wrote {args.dets}")
    return 0
