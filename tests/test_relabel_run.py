"""``benchmarks/relabel_run.py``: a run renamed when a method's name changes and its configuration does not."""
import sys
from pathlib import Path

import pytest
import torch

BENCHMARKS = str(Path(__file__).resolve().parents[1] / "benchmarks")
sys.path.insert(0, BENCHMARKS)  # the scripts import their helpers (runs, record) as top-level modules
import relabel_run  # noqa: E402
import runs  # noqa: E402

sys.path.remove(BENCHMARKS)  # and no other test sees the folder's module names

from minivod.engine.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from minivod.methods import build_model  # noqa: E402


@pytest.fixture
def bench(tmp_path, monkeypatch):
    monkeypatch.setattr(runs, "RUNS", tmp_path / "runs")
    monkeypatch.setattr(relabel_run, "RESULTS", tmp_path / "results")
    (tmp_path / "results" / "runs").mkdir(parents=True)
    return tmp_path


def _run(bench, name, method, options, weights):
    folder = runs.run_dir(name, 0)
    folder.mkdir(parents=True)
    meta = {"method": method, "method_options": options, "preset": "tiny", "num_classes": 8, "iteration": 3000}
    for file in ("model.pt", "last.pt"):
        save_checkpoint(folder / file, {"meta": dict(meta), "model": weights})
    (bench / "results" / "runs" / f"{runs.run_name(name, 0)}.json").write_text("{}")
    return folder


def test_relabel_moves_the_run_and_keeps_its_old_name(bench):
    weights = {k: v.half() if v.is_floating_point() else v
               for k, v in build_model("ssvd_fpn_both", "tiny", 8).state_dict().items()}
    old = _run(bench, "old_name", "old_name", {"fpn_grad": "both"}, weights)
    relabel_run.relabel("old_name", "ssvd_fpn_both", 0, "the same configuration")
    new = runs.run_dir("ssvd_fpn_both", 0)
    assert not old.exists() and not (bench / "results" / "runs" / "old_name_3000_s0.json").exists()
    for file in ("model.pt", "last.pt"):
        meta = load_checkpoint(new / file)["meta"]
        assert meta["method"] == "ssvd_fpn_both" and meta["method_options"] == {"fpn_grad": "both"}
        assert meta["trained_as"] == {"method": "old_name", "method_options": {"fpn_grad": "both"},
                                      "note": "the same configuration"}
    moved = load_checkpoint(new / "model.pt")["model"]
    assert moved.keys() == weights.keys() and all(torch.equal(moved[k], weights[k]) for k in weights)
    with pytest.raises(SystemExit, match="no finished run"):
        relabel_run.relabel("old_name", "ssvd_fpn_both", 0, "again")


def test_relabel_refuses_weights_of_another_model(bench):
    _run(bench, "other", "baseline", {}, build_model("baseline", "tiny", 8).state_dict())
    with pytest.raises(RuntimeError, match="state_dict"):
        relabel_run.relabel("other", "ssvd", 0, "not the same model")
    assert runs.run_dir("other", 0).is_dir() and not runs.run_dir("ssvd", 0).exists()
