"""The ``minivod`` command line: ``python -m minivod <command> --help``."""
from __future__ import annotations

import argparse
import importlib
import sys

# (module, function that registers its sub-command); imported lazily so that
# `minivod --help` stays fast and one broken command can't hide the others.
COMMANDS = [
    ("minivod.data.generate", "add_parser"),
    ("minivod.eval.cli", "add_evaluate_parser"),
    ("minivod.eval.cli", "add_compare_parser"),
    ("minivod.engine.cli", "add_parsers"),
    ("minivod.engine.pretrain", "add_parser"),
    ("minivod.demo", "add_parser"),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="minivod",
        description="minivod: video object detection (SELSA, DSFNet, MST, PSLA, SSVD) on ImageNet VID "
                    "and the synthetic data_small. Run `minivod <command> --help` for each command.")
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    for module, register in COMMANDS:
        try:
            getattr(importlib.import_module(module), register)(sub)
        except ImportError as e:  # a command whose module is not there yet
            if e.name is None or not e.name.startswith("minivod"):
                raise
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
