import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

FIXTURE = Path(__file__).parent / "fixtures" / "vid_mini"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def vid_mini(tmp_path):
    """A copy of the hand-written VID-layout fixture, with small JPEG frames added."""
    root = tmp_path / "vid_mini"
    shutil.copytree(FIXTURE, root)
    for split in ("train", "val"):
        for line in (root / "ImageSets" / "VID" / f"{split}.txt").read_text().split("\n"):
            if not line.strip():
                continue
            path = root / "Data" / "VID" / split / (line.split()[0] + ".JPEG")
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((48, 64, 3), 128, np.uint8)).save(path)
    return root


@pytest.fixture(scope="session")
def data_small():
    root = REPO / "data_small"
    if not (root / "ImageSets").is_dir():
        pytest.skip("data_small is not in this checkout")
    return root
