"""Every shipped checkpoint still detects what it detected when its reference was recorded.

A refactor must not change a result: for each ``minivod/checkpoints/<method>_tiny.pt`` the
engine's detections on the first 6 frames of one data_small val video (the method's own
supports or schedule) are compared with ``tests/fixtures/shipped_detections.json`` (top 5
per frame, to 1e-4). The reference is tied to the checkpoint's SHA-256: a retrained
checkpoint needs a new reference, written on purpose with

    python tests/test_shipped_detections.py --write
"""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
CHECKPOINTS = REPO / "minivod" / "checkpoints"
REFERENCE = Path(__file__).parent / "fixtures" / "shipped_detections.json"
FRAMES, TOP = 6, 5


def shipped_methods() -> list[str]:
    return sorted(p.name.removesuffix("_tiny.pt") for p in CHECKPOINTS.glob("*_tiny.pt") if p.name != "backbone_tiny.pt")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def detections(method: str, data_root: Path) -> list[dict]:
    """Top-``TOP`` detections of the first ``FRAMES`` frames of val video 0, as lists."""
    from types import SimpleNamespace

    from minivod.data.vid import Video, VIDDataset
    from minivod.engine.evaluate import load_model, predict_dataset

    video = VIDDataset(data_root, "val").videos[0]
    video = Video(video.name, video.frames[:FRAMES])
    model, _ = load_model(method, CHECKPOINTS / f"{method}_tiny.pt", "cpu")
    torch.manual_seed(0)
    (dets,), _ = predict_dataset(model, method, SimpleNamespace(videos=[video]), "cpu", progress=False)
    return [{k: d[k][:TOP].tolist() for k in ("boxes", "scores", "labels")} for d in dets]


@pytest.mark.parametrize("method", shipped_methods())
def test_shipped_checkpoint_detects_as_recorded(method, data_small):
    reference = json.loads(REFERENCE.read_text())
    assert method in reference, f"no reference for {method}: run `python tests/test_shipped_detections.py --write`"
    ref = reference[method]
    assert ref["sha256"] == sha256(CHECKPOINTS / f"{method}_tiny.pt"), (
        f"{method}_tiny.pt is not the checkpoint the reference was recorded with (retrained?): "
        "record it again with `python tests/test_shipped_detections.py --write`")
    got = detections(method, data_small)
    assert len(got) == len(ref["frames"])
    for t, (a, b) in enumerate(zip(got, ref["frames"])):
        assert a["labels"] == b["labels"], (method, t)
        torch.testing.assert_close(torch.tensor(a["scores"]), torch.tensor(b["scores"]), rtol=0, atol=1e-4)
        torch.testing.assert_close(torch.tensor(a["boxes"]).reshape(-1, 4), torch.tensor(b["boxes"]).reshape(-1, 4),
                                   rtol=0, atol=1e-3)


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit(__doc__)
    out = {m: {"sha256": sha256(CHECKPOINTS / f"{m}_tiny.pt"), "frames": detections(m, REPO / "data_small")}
           for m in shipped_methods()}
    REFERENCE.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {REFERENCE} ({', '.join(out)})")
