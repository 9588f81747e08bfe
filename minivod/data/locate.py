"""Where a notebook, the demo or a command finds data_small, generating it when there is none.

In a checkout, data_small sits beside the package (or at ``../data_small`` from
``notebooks/``). Installed from a wheel, or on a hosted runtime (Colab, Kaggle, a lab's
JupyterHub) without the repository, it is generated on first use (byte for byte the committed one) into
``$MINIVOD_DATA`` (default ``~/.cache/minivod/data_small``): 1.5 CPU-minutes, once.

The first code cell of every notebook calls it through :func:`minivod.runtime.notebook_setup`.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # minivod/


def cache_root() -> Path:
    """Where data_small is generated when no copy is found."""
    return Path(os.environ.get("MINIVOD_DATA") or Path.home() / ".cache" / "minivod" / "data_small")


def _is_dataset(root: Path) -> bool:
    return (root / "ImageSets" / "VID" / "val.txt").is_file() and (root / "map_vid.txt").is_file()


def find_data_small(generate: bool = True, progress: bool = True) -> Path:
    """The first data_small found, as the path it was found at; generated into :func:`cache_root` if none is.

    Looked for at ``../data_small`` (a notebook in ``notebooks/``), beside the package (a checkout),
    ``./data_small``, then the cache.
    """
    candidates = [Path("../data_small"), PACKAGE_DIR.parent / "data_small", Path("data_small"), cache_root()]
    for root in candidates:
        if _is_dataset(root):
            return root
    target = cache_root()
    if not generate:
        raise FileNotFoundError("data_small not found (looked in " + ", ".join(map(str, candidates)) + "); "
                                "`python -m minivod generate-data --out data_small` writes it")
    from minivod.data.generate import generate_data_small

    if target.exists():
        raise FileNotFoundError(f"{target} exists but is not a complete data_small (no ImageSets/VID/val.txt or "
                                f"map_vid.txt): remove it, or point MINIVOD_DATA elsewhere")
    print(f"data_small not found: generating it in {target} (deterministic, a minute or two on a CPU, once)",
          file=sys.stderr)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=target.name + ".partial-", dir=target.parent))  # one per process
    try:
        generate_data_small(staging / target.name, progress=progress)  # its README names the folder it is in
        try:
            (staging / target.name).rename(target)  # only a complete dataset is ever found
        except OSError:
            if not _is_dataset(target):  # else another process finished first: use its copy
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
