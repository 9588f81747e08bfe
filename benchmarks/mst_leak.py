"""Does MST's instance level leak the label? Foreground scores of background proposals it updates.

    python benchmarks/mst_leak.py                                  # the shipped mst_tiny.pt
    python benchmarks/mst_leak.py --checkpoint runs/bench/mst_3000_s0/model.pt --label mst_s0
    python benchmarks/mst_leak.py --method mst_gt_selection --checkpoint ... --label gt_selection

At test time the instance level (MST Eq. 12) updates the ``top_k`` (K = 20) reference
proposals of highest objectness, whatever they cover. In the paper's training rule the
updated proposals are those with IoU >= 0.5 to a ground-truth box: exactly the rule
that labels a proposal foreground. A classifier trained that way can learn "updated =>
object", and then calls every updated background proposal an object at test time.

The probe runs the detector on every ``--stride``-th frame of the val videos (supports:
the frames within +-T, as in evaluation) twice: as trained, and with the instance level
switched off (its rows pass unchanged). For the K candidates of each frame it splits them
into foreground (IoU >= 0.5 with a ground-truth box, the training label rule) and
background (IoU < 0.5), and reports the mean foreground probability (1 - p(background)
of the classifier) of each group in both runs. A leak shows as background candidates
scored high with the update and low without it. Writes
benchmarks/results/instance_leak_<label>.json and .md.
"""
from __future__ import annotations

import argparse

import torch
from torchvision.ops import box_iou
from tqdm import tqdm

from minivod.data.clips import frame_target
from minivod.data.sampling import sliding_window
from minivod.data.vid import VIDDataset, load_image
from minivod.engine.evaluate import load_model, shipped_checkpoint
from minivod.engine.inference import FeatureCache
from minivod.methods import get_method

from record import add_probe_arguments, machine, probe_command, probe_split, write_results
from tables import markdown_table


class Recorder:
    """Forward hooks: the reference boxes the instance level sees, and the classifier's logits."""

    def __init__(self, model):
        self.boxes, self.clips, self.logits = [], [], []
        model.instance.register_forward_hook(self.on_instance)
        model.roi_heads.box_predictor.register_forward_hook(self.on_predictor)

    def on_instance(self, module, args, output):
        ctx = args[2]
        self.boxes.append(ctx.ref_boxes.float().cpu())  # (N_ref, 4)
        self.clips.append(ctx.ref_clip_index.cpu())  # (N_ref,)

    def on_predictor(self, module, args, output):
        self.logits.append(output[0].float().cpu())  # (N_ref, K+1)

    def pop(self):
        out = self.boxes.pop(), self.clips.pop(), self.logits.pop()
        self.boxes.clear(), self.clips.clear(), self.logits.clear()
        return out


def candidate_scores(boxes, clips, logits, gt_boxes, top_k: int):
    """(fg prob, is background) of the top-K rows of the one reference frame in a ``detect`` call."""
    assert int(clips.max()) == 0, "one reference frame per call"
    k = min(top_k, len(boxes))
    fg = 1 - logits[:k].softmax(dim=1)[:, 0]  # (k,)
    if len(gt_boxes) == 0:
        return fg, torch.ones(k, dtype=torch.bool)
    iou = box_iou(boxes[:k], gt_boxes).max(dim=1).values  # (k,)
    return fg, iou < 0.5


@torch.no_grad()
def probe(model, method: str, val: VIDDataset, device: str, stride: int, progress: bool = True) -> dict:
    spec = get_method(method)
    window = spec.test_window
    top_k = model.instance.top_k
    rec = Recorder(model)
    instance_forward = model.instance.forward
    scores = {"with": [], "without": []}
    background = []
    for video in tqdm(val.videos, desc="probe", disable=not progress):
        cache = FeatureCache(model, lambda t, v=video: load_image(v.frames[t].image_path), device)
        n = len(video)
        for t in range(0, n, stride):
            supports = sliding_window(n, t, window) or [t]
            gt = frame_target(video.frames[t])["boxes"]  # (G, 4), the detector's convention
            for name, forward in (("with", instance_forward), ("without", lambda x, s, ctx: x)):
                model.instance.forward = forward
                model.detect(cache.get([t]), cache.get(supports))
                fg, is_bg = candidate_scores(*rec.pop(), gt, top_k)
                scores[name].append(fg)
                if name == "with":
                    background.append(is_bg)
            model.instance.forward = instance_forward
    bg = torch.cat(background)
    out = {"frames": len(background), "candidates": int(bg.numel()), "background_candidates": int(bg.sum()),
           "top_k": top_k}
    for name, values in scores.items():
        fg = torch.cat(values)
        out[f"fg_prob_background_{name}"] = float(fg[bg].mean()) if bg.any() else None
        out[f"fg_prob_foreground_{name}"] = float(fg[~bg].mean()) if (~bg).any() else None
        out[f"background_called_object_{name}"] = float((fg[bg] > 0.5).float().mean()) if bg.any() else None
    return out


def report(label: str, method: str, checkpoint: str, r: dict) -> str:
    rows = [("background (IoU < 0.5)", r["background_candidates"], "background"),
            ("foreground (IoU >= 0.5)", r["candidates"] - r["background_candidates"], "foreground")]
    fmt = (lambda v: "-" if v is None else f"{v:.3f}")  # noqa: E731
    lines = [f"MST instance level, label leak probe: `{label}` (method `{method}`, checkpoint `{checkpoint}`)", "",
             f"{r['frames']} val frames, the top {r['top_k']} proposals of each ({r['candidates']} candidates).", "",
             markdown_table(["candidates", "count", "fg prob, instance level on", "fg prob, off"],
                            [[name, str(count), fmt(r[f"fg_prob_{key}_with"]), fmt(r[f"fg_prob_{key}_without"])]
                             for name, count, key in rows])]
    if r["background_called_object_with"] is not None:
        lines += ["", f"Background candidates with fg prob > 0.5: {r['background_called_object_with']:.3f} with the "
                  f"instance level, {r['background_called_object_without']:.3f} without."]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--method", default="mst", help="an MST method with the instance level (default: mst)")
    parser.add_argument("--checkpoint", help="default: the shipped minivod/checkpoints/<method>_tiny.pt")
    parser.add_argument("--label", default="shipped", help="names the results file (instance_leak_<label>)")
    add_probe_arguments(parser)
    args = parser.parse_args()
    device, val = probe_split(args)
    checkpoint = args.checkpoint or shipped_checkpoint(args.method)
    model, _ = load_model(args.method, checkpoint, device, len(val.class_map))
    if getattr(model, "instance", None) is None:
        parser.error(f"{args.method} has no instance level")
    result = probe(model, args.method, val, device, args.stride)
    result.update(method=args.method, checkpoint=str(checkpoint), label=args.label,
                  command=probe_command("mst_leak.py", args, ("method", "checkpoint", "label", "stride", "videos")),
                  machine=machine("processor", "torch", device=device))
    text = report(args.label, args.method, str(checkpoint), result)
    print(text)
    write_results(f"instance_leak_{args.label}", result, text + f"\n`{result['command']}`\n")


if __name__ == "__main__":
    main()
