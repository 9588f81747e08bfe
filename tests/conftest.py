import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

FIXTURE = Path(__file__).parent / "fixtures" / "vid_mini"
LISTS_FIXTURE = Path(__file__).parent / "fixtures" / "vid_lists"
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


@pytest.fixture
def vid_lists(tmp_path):
    """A copy of the hand-written ILSVRC2015-layout fixture with the codebases' lists, frames drawn from its XML.

    Each frame is grey with its boxes filled in a colour per class, so a detector has something to see.
    """
    import xml.etree.ElementTree as ET

    root = tmp_path / "ILSVRC2015"
    shutil.copytree(LISTS_FIXTURE, root)
    colours = {"n02691156": (200, 40, 40), "n02419796": (40, 40, 200)}
    for xml in sorted((root / "Annotations").rglob("*.xml")):
        anno = ET.parse(xml).getroot()
        w, h = (int(anno.find("size").find(k).text) for k in ("width", "height"))
        image = np.full((h, w, 3), 128, np.uint8)
        for obj in anno.findall("object"):
            x1, y1, x2, y2 = (int(obj.find("bndbox").find(k).text) for k in ("xmin", "ymin", "xmax", "ymax"))
            image[y1:y2 + 1, x1:x2 + 1] = colours.get(obj.find("name").text, (60, 160, 60))
        path = root / "Data" / xml.relative_to(root / "Annotations").with_suffix(".JPEG")
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(path)
    return root


@pytest.fixture(scope="session")
def data_small():
    root = REPO / "data_small"
    if not (root / "ImageSets").is_dir():
        pytest.skip("data_small is not in this checkout")
    return root
