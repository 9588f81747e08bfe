"""The package's layers import one way: boxes <- data <- models <- methods <- engine, eval beside.

    boxes     box conventions, no minivod import
    data      datasets, sampling, schedules            -> boxes
    eval      the ImageNet VID protocol, Seq-NMS       -> boxes, data
    models    detectors and their plug-in points       -> boxes, data
    methods   the papers' modules and their specs      -> boxes, data, models
    engine    training and inference loops             -> everything below

A method that needs a loop declares it (``test_schedule``) and the engine runs it; a
benchmark never imports from ``tests/``. Imports inside functions count too.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "minivod"
ALLOWED = {
    "boxes": set(),
    "data": {"boxes"},
    "eval": {"boxes", "data"},
    "models": {"boxes", "data"},
    "methods": {"boxes", "data", "models"},
    "engine": {"boxes", "data", "eval", "models", "methods"},
}


def layer_of(path: Path) -> str | None:
    """The layer of a file of the package (None: a top-level entry point such as demo.py, free to import)."""
    parts = path.relative_to(PACKAGE).parts
    name = parts[0].removesuffix(".py")
    return name if name in ALLOWED else None


def imported_layers(source: str, path: Path) -> list[tuple[int, str]]:
    """(line, layer) of every ``minivod.<layer>`` a file's source imports, relative imports resolved."""
    package = path.relative_to(ROOT).with_suffix("").parts[:-1]  # e.g. ("minivod", "methods")
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1] + ((base,) if base else ()))
            names = [base] if base != "minivod" else [f"minivod.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "minivod" and len(parts) > 1:
                found.append((node.lineno, parts[1]))
    return found


def back_edges(path: Path, source: str | None = None) -> list[str]:
    """The imports of ``path`` that go against the layers, as 'file:line: a -> b'."""
    layer = layer_of(path)
    if layer is None:
        return []
    source = path.read_text() if source is None else source
    return [f"{path.relative_to(ROOT)}:{line}: {layer} -> {other}"
            for line, other in imported_layers(source, path)
            if other != layer and other not in ALLOWED[layer]]


def test_the_package_imports_one_way():
    bad = [edge for path in sorted(PACKAGE.rglob("*.py")) for edge in back_edges(path)]
    assert not bad, "imports against the layers:\n" + "\n".join(bad)


@pytest.mark.parametrize("file, line", [
    ("methods/ssvd.py", "from minivod.engine.inference import FeatureCache"),
    ("methods/selsa.py", "from ..engine import train"),
    ("models/faster_rcnn.py", "from minivod.methods.selsa import SELSA"),
    ("models/base.py", "import minivod.engine.inference"),
    ("data/clips.py", "from minivod.models import preset"),
    ("eval/vid_eval.py", "from minivod import models"),
    ("eval/vid_eval.py", "    from minivod.engine.evaluate import load_model"),
])
def test_a_deliberate_back_edge_is_caught(file, line):
    """The check fails on each forbidden direction (the line is added to the file's source, not to the file)."""
    path = PACKAGE / file
    source = path.read_text() if path.is_file() else ""
    if line.startswith(" "):  # an import inside a function
        source += "\n\ndef _late():\n" + line + "\n"
    else:
        source += "\n" + line + "\n"
    assert back_edges(path, source), f"{line!r} in {file} should be a back edge"


def test_benchmarks_do_not_import_tests():
    test_modules = {p.stem for p in (ROOT / "tests").glob("*.py")} | {"tests"}
    bad = []
    for path in sorted((ROOT / "benchmarks").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            bad += [f"{path.relative_to(ROOT)}:{node.lineno}: {n}" for n in names if n.split(".")[0] in test_modules]
    assert not bad, "benchmarks importing from tests/:\n" + "\n".join(bad)

