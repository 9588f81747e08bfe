"""The notebooks' first cell and where data_small is found (or generated) outside a checkout."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

import minivod.data.locate as runtime

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
SETUP_CELL = (REPO / "notebooks" / "setup_cell.py").read_text().rstrip("\n")


def code_cells(path):
    return ["".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_notebook_starts_with_the_setup_cell_and_uses_its_root(path):
    cells = code_cells(path)
    assert cells[0] == SETUP_CELL
    for source in cells[1:]:  # no later cell points back at a fixed ../data_small or re-picks the device
        assert 'Path("../data_small")' not in source and "DEVICE =" not in source


def test_setup_cell_prints_nothing_in_a_checkout():
    code = SETUP_CELL + "\nprint(repr(ROOT), DEVICE)"
    run = subprocess.run([sys.executable, "-c", code], cwd=REPO / "notebooks", capture_output=True, text=True,
                         check=True)
    assert run.stderr == ""  # nbval compares stderr too
    assert run.stdout.strip() in ("PosixPath('../data_small') cpu", "PosixPath('../data_small') cuda",
                                  "WindowsPath('../data_small') cpu", "WindowsPath('../data_small') cuda")


@pytest.fixture
def nowhere(tmp_path, monkeypatch):
    """No data_small anywhere: not beside the package, not in or above the working folder, not in the cache."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(runtime, "PACKAGE_DIR", tmp_path / "site-packages" / "minivod")
    monkeypatch.setenv("MINIVOD_DATA", str(tmp_path / "cache" / "data_small"))
    return tmp_path


def test_missing_data_small_names_where_it_looked(nowhere):
    with pytest.raises(FileNotFoundError, match=r"data_small not found \(looked in \.\./data_small, .*cache"):
        runtime.find_data_small(generate=False)


def test_missing_data_small_is_generated_once_into_the_cache(nowhere, monkeypatch, capsys):
    from minivod.data import generate

    calls = []

    def small(out, progress=True):  # the real one takes a minute or two; same code path, fewer videos
        calls.append(Path(out).relative_to(nowhere / "cache").as_posix())
        return generate.generate(out, seed=0, train_videos=1, val_videos=1, frames=12, det_images=0, progress=False)

    monkeypatch.setattr(generate, "generate_data_small", small)
    root = runtime.find_data_small()
    assert root == nowhere / "cache" / "data_small" and len(calls) == 1
    assert calls[0].startswith("data_small.partial-") and calls[0].endswith("/data_small")
    assert (root / "ImageSets" / "VID" / "val.txt").is_file()
    assert [p.name for p in root.parent.iterdir()] == ["data_small"]  # the staging folder is gone
    assert "generating it in" in capsys.readouterr().err
    assert runtime.find_data_small() == root and len(calls) == 1  # found the second time


def test_an_incomplete_cache_folder_is_not_overwritten(nowhere):
    (nowhere / "cache" / "data_small").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="exists but is not a complete data_small"):
        runtime.find_data_small()
