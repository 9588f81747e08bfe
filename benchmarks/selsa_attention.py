"""Where does SELSA's attention go, and why? Same-object mass and the key-side term of Eq. (1).

    python benchmarks/selsa_attention.py                                   # the seed-0 retrained SELSA
    python benchmarks/selsa_attention.py --checkpoint minivod/checkpoints/selsa_tiny.pt --label shipped

SELSA's claim (Sec. 3.2) is that the learned weights of Eq. (1)-(2) put more mass on the
same object in other frames than on other proposals. Notebook 02's figure showed every
row attending to the same few proposals. With phi(x) = W_q x + b_q and psi(s) = W_k s + b_k,

    w_ij = phi(x_i)^T psi(s_j) / sqrt(D) = [ (W_q x_i)^T psi(s_j)  +  b_q^T psi(s_j) ] / sqrt(D)

and the second term depends on the neighbour j only: if it varies more over j than the
first, every reference proposal ranks the neighbours alike, whatever it shows.

On ``--stride``-th frame of each val video (8 shuffled support frames, as at test time)
the script takes, for every reference RoI on an object (IoU >= 0.5 with a ground-truth
box) and each of the two SELSA modules:

- **same-object mass**: the weight on neighbours (reference-frame and support RoIs) that lie
  on the same track (IoU >= 0.5 with that track's box in their frame), against the share of
  such neighbours (what uniform weights would give);
- **key-side share**: over the neighbours j of a row, the variance of b_q^T psi(s_j) / sqrt(D)
  against the variance of the whole logit;
- **row agreement**: the mean cosine similarity between the weight rows of two reference
  RoIs of *different* tracks in the same frame (1: they attend alike);
- **common-query share**: the same for q_mean^T psi(s_j) / sqrt(D), q_mean the mean query of the
  frame (b_q is part of it): a large shared component of the queries also ranks all rows alike;
- the same-object mass again with the queries centred (phi(x_i) - q_mean) at test time (a
  diagnosis, not a trained fix).

Writes benchmarks/results/selsa_attention_<label>.json and .md.
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch
from torchvision.ops import box_iou
from tqdm import tqdm

from minivod.data.clips import frame_target
from minivod.data.sampling import test_support
from minivod.data.vid import load_image
from minivod.engine.evaluate import load_model
from minivod.engine.inference import FeatureCache
from minivod.methods.relation import gather_neighbours
from minivod.methods.selsa import SELSA

from record import add_probe_arguments, machine, probe_command, probe_split, write_results

REPO = Path(__file__).resolve().parents[1]
DEFAULT = REPO / "benchmarks" / "checkpoints" / "selsa_3000_s0.pt"


def track_of(boxes, gt_boxes, gt_ids):
    """Track id of each box (IoU >= 0.5 with a ground-truth box), -1 for none."""
    if len(gt_boxes) == 0 or len(boxes) == 0:
        return torch.full((len(boxes),), -1, dtype=torch.long)
    iou, best = box_iou(boxes.float(), gt_boxes).max(dim=1)
    return torch.where(iou >= 0.5, gt_ids[best], torch.full_like(best, -1))


class Capture:
    """Forward hooks on the SELSA modules: their inputs during one ``detect`` call."""

    def __init__(self, model):
        self.calls = []
        self.modules = [m for m in model.roi_aggregators if isinstance(m, SELSA)]
        for layer, m in enumerate(self.modules):
            m.register_forward_hook(lambda mod, args, out, layer=layer: self.calls.append((layer, mod, args)))


def row_stats(module: SELSA, x, s, ctx, tracks, centre_queries: bool = False):
    """Per reference RoI on an object: (same-object mass, same-object share, key-side variance share,
    common-query variance share); and the weights."""
    nb = gather_neighbours(x, s, ctx, include_reference=True)
    q = module.phi(x)  # (N_ref, D)
    q_mean = q.mean(dim=0)  # (D,): what every query shares
    if centre_queries:
        q = q - q_mean
    k = module.psi(nb.feats)  # (M, D)
    scale = math.sqrt(q.shape[-1])
    logits = q @ k.T / scale  # (N_ref, M), SELSA Eq. (1)
    key_side = (k @ module.phi.bias) / scale  # (M,): b_q^T psi(s_j) / sqrt(D), the same for every row
    common = (k @ q_mean) / scale  # (M,): the mean query's logit, the same for every row
    w = logits.softmax(dim=1)  # one clip, every neighbour allowed (SELSA Eq. 2)
    ref_tracks, nb_tracks = tracks
    out = []
    for i in range(len(x)):
        if ref_tracks[i] < 0:
            continue
        same = nb_tracks == ref_tracks[i]
        same[i] = False  # not itself
        total_var = float(logits[i].var())
        share = (lambda v: float(v.var()) / total_var if total_var > 0 else float("nan"))  # noqa: E731
        other = (nb_tracks >= 0) & ~same
        other[i] = False
        out.append((float(w[i][same].sum()), float(same.float().mean()), share(key_side), share(common),
                    float(w[i, i]), float(w[i][other].sum()), float(w[i][nb_tracks < 0].sum())))
    return out, w, ref_tracks


@torch.no_grad()
def measure(model, val, device, stride: int, num_support: int, progress=True) -> dict:
    cap = Capture(model)
    layers = len(cap.modules)
    stats = {f"layer{l}": {"mass": [], "share": [], "key_var": [], "common_var": [], "mass_centred": [], "agree": [],
                                       "self": [], "other": [], "background": []} for l in range(layers)}
    for video in tqdm(val.videos, desc="selsa attention", disable=not progress):
        cache = FeatureCache(model, lambda t, v=video: load_image(v.frames[t].image_path), device)
        n = len(video)
        for t in range(0, n, stride):
            supports = test_support(n, t, num_support, mode="shuffled")
            cap.calls.clear()
            model.detect(cache.get([t]), cache.get(supports))
            frames = [t] + supports
            targets = [frame_target(video.frames[f]) for f in frames]
            for layer, module, (x, s, ctx) in cap.calls:
                ref_tracks = track_of(ctx.ref_boxes.cpu(), targets[0]["boxes"], targets[0]["track_ids"])
                sup_tracks = torch.full((len(s),), -1, dtype=torch.long)
                for j in range(1, len(frames)):
                    rows = (ctx.support_frame_index == j).nonzero().flatten().cpu()
                    sup_tracks[rows] = track_of(ctx.support_boxes[rows].cpu(), targets[j]["boxes"],
                                                targets[j]["track_ids"])
                tracks = (ref_tracks, torch.cat([ref_tracks, sup_tracks]))
                rows, w, _ = row_stats(module, x, s, ctx, tracks)
                rows_c, _, _ = row_stats(module, x, s, ctx, tracks, centre_queries=True)
                st = stats[f"layer{layer}"]
                st["mass"] += [r[0] for r in rows]
                st["share"] += [r[1] for r in rows]
                st["key_var"] += [r[2] for r in rows]
                st["common_var"] += [r[3] for r in rows]
                st["self"] += [r[4] for r in rows]
                st["other"] += [r[5] for r in rows]
                st["background"] += [r[6] for r in rows]
                st["mass_centred"] += [r[0] for r in rows_c]
                on = (ref_tracks >= 0).nonzero().flatten()
                rows_w = torch.nn.functional.normalize(w[on], dim=1)  # (n_on, M)
                cos = rows_w @ rows_w.T  # (n_on, n_on)
                other = (ref_tracks[on][:, None] != ref_tracks[on][None, :]).triu(1)  # pairs on different tracks
                st["agree"] += cos[other].tolist()
    mean = lambda v: sum(v) / len(v) if v else float("nan")  # noqa: E731
    return {layer: {"rows": len(v["mass"]), "same_object_mass": mean(v["mass"]), "same_object_share": mean(v["share"]),
                    "key_side_variance_share": mean(v["key_var"]), "common_query_variance_share": mean(v["common_var"]),
                    "same_object_mass_centred_queries": mean(v["mass_centred"]), "self_mass": mean(v["self"]),
                    "other_object_mass": mean(v["other"]), "background_mass": mean(v["background"]),
                    "row_agreement_other_tracks": mean(v["agree"]), "pairs": len(v["agree"])}
            for layer, v in stats.items()}


def report(label, checkpoint, result) -> str:
    lines = [f"SELSA attention on data_small val: `{label}` (`{checkpoint}`)", "",
             "| module | rows | same-object mass | uniform would give | itself | other objects | background | "
             "row agreement, other tracks | "
             "key-side (b_q) variance share | common-query variance share | same-object mass, centred queries |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for layer, r in result["layers"].items():
        lines.append(f"| {layer} | {r['rows']} | {r['same_object_mass']:.3f} | {r['same_object_share']:.3f} | "
                     f"{r['self_mass']:.3f} | {r['other_object_mass']:.3f} | {r['background_mass']:.3f} | "
                     f"{r['row_agreement_other_tracks']:.3f} | {r['key_side_variance_share']:.3f} | "
                     f"{r['common_query_variance_share']:.3f} | {r['same_object_mass_centred_queries']:.3f} |")
    lines += ["", "Rows: reference RoIs on an object (IoU >= 0.5 with a ground-truth box). Uniform would give: the "
              "share of a row's neighbours on the same track. Itself / other objects / background: the rest of "
              "the row's mass (neighbours on another track; on no object, IoU < 0.5 with every box). Row agreement: mean cosine similarity of the weight "
              "rows of two reference RoIs on different objects of one frame (1: they attend alike). Variance "
              "shares, mean over rows: Var_j of a column-only term over Var_j of the row's logits w_ij; the "
              "key-side term is b_q^T psi(s_j) / sqrt(D), the common-query term q_mean^T psi(s_j) / sqrt(D) with "
              "q_mean the mean of the frame's queries phi(x_i). Centred queries: phi(x_i) - q_mean at test "
              "time, a diagnosis, not a trained model."]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=str(DEFAULT.relative_to(REPO)), help="a SELSA checkpoint")
    parser.add_argument("--label", default="selsa_s0", help="names the results file")
    add_probe_arguments(parser)
    args = parser.parse_args()
    device, val = probe_split(args)
    model, _ = load_model("selsa", REPO / args.checkpoint, device, len(val.class_map))
    result = {"layers": measure(model, val, device, args.stride, num_support=8), "label": args.label,
              "checkpoint": args.checkpoint, "stride": args.stride, "videos": len(val.videos),
              "command": probe_command("selsa_attention.py", args, ("checkpoint", "label", "stride", "videos")),
              "machine": machine("processor", "torch", device=device)}
    text = report(args.label, args.checkpoint, result)
    print(text)
    write_results(f"selsa_attention_{args.label}", result, text + f"\n`{result['command']}`\n")


if __name__ == "__main__":
    main()
