"""What a benchmark writes: its results files, named by what was measured, and the machine it ran on.

A script that measures several tables is a dispatch over its parts: ``PARTS = {name: function}``, each
function measuring one part and returning its entries of the results file; :func:`part_lines` lists
them in ``--help`` and :func:`chosen_parts` reads the names given on the command line.

Every script writes ``benchmarks/results/<name>.json`` (the numbers, with a ``machine`` entry) and
most also ``<name>.md`` (its tables); ``benchmarks/gather.py`` and the notebooks read them, so the
keys of a file never change. Imported by the scripts in this folder (``python benchmarks/X.py`` puts
the folder on ``sys.path``).
"""
from __future__ import annotations

import json
import os
import platform
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
FULL_BUDGET = 3000  # training iterations of every shipped checkpoint (the tiny preset's default)


def _torch():
    import torch

    return torch


# how each fact about the machine is read; a results file names the facts it records
FACTS = {
    "platform": platform.platform,
    "processor": lambda: platform.processor() or platform.machine(),
    "cpu_count": os.cpu_count,
    "python": platform.python_version,
    "torch": lambda: _torch().__version__,
    "numpy": lambda: __import__("numpy").__version__,
    "threads": lambda: _torch().get_num_threads(),
    "omp_num_threads": lambda: os.environ.get("OMP_NUM_THREADS"),
}


def machine(*facts: str, **given) -> dict:
    """``{fact: value}`` for each named fact of :data:`FACTS`, then ``given`` (e.g. ``device="cpu"``).

    Each results file keeps the facts (and key names) it has always recorded, e.g.
    ``machine("platform", "processor", "torch", "threads", device=device)``.
    """
    return {**{f: FACTS[f]() for f in facts}, **given}


def results_name(base: str, iters: int | None = None, videos: int | None = None) -> str:
    """``<base>``, ``_<iters>it`` for a reduced training budget, ``_<videos>videos`` for a subset of val.

    ``mst`` at the full budget on all of val; ``mst_600it`` at 600 iterations; ``ssvd_4videos`` on the
    first 4 val videos (``--quick``): reduced numbers are never mistaken for the full ones.
    """
    name = base
    if iters is not None and iters != FULL_BUDGET:
        name += f"_{iters}it"
    if videos is not None:
        name += f"_{videos}videos"
    return name


def write_results(name: str, results: dict, markdown=None, keep_earlier: bool = False, out: Path = RESULTS) -> dict:
    """Write ``out/<name>.json`` and, with ``markdown``, ``out/<name>.md``; returns what was written.

    ``keep_earlier``: the entries of an existing ``<name>.json`` that this call did not measure are
    kept (a script measuring one part at a time, e.g. ``--parts table3``). ``markdown``: the page's
    text, or a function of the written results that makes it.
    """
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    if keep_earlier and path.is_file():
        results = {**json.loads(path.read_text()), **results}
    path.write_text(json.dumps(results, indent=2) + "\n")
    if markdown is not None:
        (out / f"{name}.md").write_text(markdown(results) if callable(markdown) else markdown)
    print(f"wrote {path}" + (" and .md" if markdown is not None else ""))
    return results


# --------------------------------------------------------------------------- the parts of a script
def part_lines(parts: dict) -> str:
    """The ``--help`` lines of a script's parts: each name and the first line of its function's docstring."""
    width = max(map(len, parts))
    return "parts:\n" + "\n".join(f"  {name:<{width}}  {fn.__doc__.strip().splitlines()[0]}"
                                    for name, fn in parts.items())


def chosen_parts(parser, parts: dict, names: str) -> list[str]:
    """The parts named in ``names`` (comma-separated; every part when empty), in the script's order."""
    chosen = set(names.split(",")) if names else set(parts)
    if chosen - set(parts):
        parser.error(f"unknown part(s) {', '.join(sorted(chosen - set(parts)))}; choose from {', '.join(parts)}")
    return [name for name in parts if name in chosen]


# --------------------------------------------------------------------------- probes on val frames
def add_probe_arguments(parser, stride: int = 8) -> None:
    """The options of a probe that runs a checkpoint on every ``--stride``-th frame of the val videos."""
    parser.add_argument("--data", default=None, help="dataset root (default: data_small)")
    parser.add_argument("--stride", type=int, default=stride, help="every stride-th frame of each val video")
    parser.add_argument("--videos", type=int, default=None, help="only the first N val videos")
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")


def probe_split(args):
    """(device, val dataset) for the options of :func:`add_probe_arguments`."""
    from minivod.data.vid import VIDDataset
    from minivod.engine.evaluate import default_data_root
    from minivod.engine.train import resolve_device

    val = VIDDataset(args.data or default_data_root(), split="val")
    return resolve_device(args.device), (val.subset(range(args.videos)) if args.videos else val)


def probe_command(script: str, args, names) -> str:
    """The command line that reproduces a probe, with the options among ``names`` that were given."""
    given = ((n, getattr(args, n)) for n in names)
    return f"python benchmarks/{script} " + " ".join(f"--{n} {v}" for n, v in given if v is not None)
