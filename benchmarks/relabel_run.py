"""Rename a trained run when a method's name changes and its configuration does not.

    python benchmarks/relabel_run.py ssvd_fpn_one_head ssvd --seed 0 1 2 \\
        --note "trained as ssvd_fpn_one_head (fpn_grad='motion'), the tiny SSVD's default since #16"

Moves ``runs/bench/<old>_3000_s<seed>/`` to ``runs/bench/<new>_3000_s<seed>/``, and in its
``model.pt`` and ``last.pt`` sets the method and its options to the new name's, keeping what they
were under ``meta["trained_as"]`` with the note; the run's record in ``benchmarks/results/runs/``
(rewritten by the next benchmark that scores it, ``runs.evaluate_run``) carries that entry on. The
old record file is removed.

The weights must load, strictly, into a model built under the new name, but that check cannot tell
two configurations apart that have the same parameters (SSVD's ``fpn_grad`` has none): that the two
names train the same run is the caller's claim, stated in the note.

Used in #16 when SSVD's tiny default became ``fpn_grad="motion"``: the runs trained as
``ssvd_fpn_one_head`` are SSVD's, and the runs trained as ``ssvd`` are the control ``ssvd_fpn_both``.
"""
from __future__ import annotations

import argparse
import shutil
import sys

from record import RESULTS
from runs import ITERS, run_dir, run_name


def relabel(old: str, new: str, seed: int, note: str) -> None:
    from minivod.engine.checkpoint import load_checkpoint, save_checkpoint
    from minivod.engine.train import _plain
    from minivod.methods import METHODS
    from minivod.models import preset

    src, dst = run_dir(old, seed), run_dir(new, seed)
    if not (src / "model.pt").is_file():
        raise SystemExit(f"{src}/model.pt: no finished run to rename")
    if dst.exists():
        raise SystemExit(f"{dst}: already exists; move it away first")
    spec = METHODS[new]
    for name in ("model.pt", "last.pt"):
        path = src / name
        if not path.is_file():
            continue
        ckpt = load_checkpoint(path)
        meta = ckpt["meta"]
        if name == "model.pt":  # the weights are the new name's model's, key for key
            model = spec.build(preset(meta["preset"], meta["num_classes"]))
            model.load_state_dict({k: v.float() for k, v in ckpt["model"].items()}, strict=True)
        if "trained_as" not in meta:
            meta["trained_as"] = {"method": meta["method"], "method_options": meta.get("method_options", {}),
                                  "note": note}
        meta["method"], meta["method_options"] = new, _plain(spec.options)
        save_checkpoint(path, ckpt)
    shutil.move(str(src), str(dst))
    log = src.parent / f"{src.name}.log"
    if log.is_file():
        shutil.move(str(log), str(dst.parent / f"{dst.name}.log"))
    (RESULTS / "runs" / f"{run_name(old, seed, ITERS)}.json").unlink(missing_ok=True)
    print(f"{src} -> {dst} (method {new!r}; trained as {old!r})")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("--seed", type=int, nargs="+", required=True)
    parser.add_argument("--note", required=True,
                        help="why the new name trains the same run (the weights' strict load cannot check it)")
    args = parser.parse_args(argv)
    for seed in args.seed:
        relabel(args.old, args.new, seed, args.note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
