"""Pre-training the tiny backbone: crops, determinism, loading into every method, bad input."""
import numpy as np
import pytest
import torch

from minivod.data.crops import build_crops
from minivod.data.generate import generate
from minivod.data.vid import DataError, VIDDataset
from minivod.engine.pretrain import PretrainConfig, pretrain_backbone
from minivod.models.backbone import TINY_BACKBONE_WEIGHTS, TinyBackbone, load_tiny_backbone
from minivod.models.config import tiny_config

QUICK = PretrainConfig(epochs=1, batch_size=16, crop_size=32)


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("pre") / "d"
    generate(root, seed=5, train_videos=2, val_videos=1, frames=12, val_frames=8, det_images=4, progress=False)
    return root


def test_crops_hold_sharp_objects_and_background(tiny_set):
    ds = VIDDataset(tiny_set, "train", with_det=True)
    crops = build_crops(ds, size=32, sharp_only=True, background_per_frame=1.0)
    sharp_boxes = sum(not tags for f in ds.frames() for tags in f.tags)
    assert (crops.labels > 0).sum() == sharp_boxes
    assert (crops.labels == 0).sum() > 0
    images, labels = crops.batch(np.arange(len(crops)), np.random.default_rng(0), jitter=2, flip=True)
    assert images.shape == (len(crops), 3, 32, 32) and images.dtype == torch.float32
    assert 0.0 <= images.min() and images.max() <= 1.0
    assert torch.equal(labels, torch.from_numpy(crops.labels))


def test_pretraining_is_deterministic_and_loads(tiny_set, tmp_path):
    torch.set_num_threads(1)
    a, b = tmp_path / "a.pt", tmp_path / "b.pt"
    meta = pretrain_backbone(tiny_set, a, QUICK, progress=False)
    pretrain_backbone(tiny_set, b, QUICK, progress=False)
    wa, wb = torch.load(a, weights_only=True)["model"], torch.load(b, weights_only=True)["model"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert meta["train_crops"]["objects"] > 0
    assert set(meta["val_accuracy"]) == {"train crops (sharp objects + background)",
                                         "val objects, not motion-blurred or defocused",
                                         "val objects, motion-blurred or defocused"}
    cfg = tiny_config()
    backbone = load_tiny_backbone(a, cfg.tiny_channels, cfg.tiny_strides)
    stem = backbone.body[0][0].weight
    assert torch.equal(stem, wa["body.0.0.weight"].float())
    with pytest.raises(ValueError, match="channels"):
        load_tiny_backbone(a, (8, 16, 32, 64), cfg.tiny_strides)


def test_no_training_boxes_is_an_error(tiny_set, tmp_path):
    ds = VIDDataset(tiny_set, "train", with_det=True)
    for f in ds.frames():
        f.tags = [("motion_blur",)] * len(f)  # nothing sharp left
    with pytest.raises(DataError, match="no sharp object boxes"):
        build_crops(ds, size=32, sharp_only=True, background_per_frame=0.0)


def test_missing_weights_say_how_to_make_them(tmp_path):
    with pytest.raises(FileNotFoundError, match="pretrain-backbone"):
        load_tiny_backbone(tmp_path / "none.pt", (16, 32, 64, 128), (2, 2, 2, 1))


@pytest.mark.parametrize("method", ["baseline", "selsa", "dsfnet", "mst", "psla", "ssvd", "ssvd_single"])
def test_every_method_starts_from_the_shipped_backbone(method):
    """The tiny preset loads backbone_tiny.pt into every method's trunk; --from-scratch does not."""
    from minivod.methods import build_model

    shipped = torch.load(TINY_BACKBONE_WEIGHTS, weights_only=True)["model"]["body.0.0.weight"].float()

    def stem_weight(model):
        for m in model.modules():
            if isinstance(m, torch.nn.Conv2d) and tuple(m.weight.shape) == tuple(shipped.shape):
                return m.weight
        raise AssertionError("no stem convolution found")

    torch.manual_seed(0)
    assert torch.equal(stem_weight(build_model(method, "tiny", 8)), shipped)
    torch.manual_seed(0)
    assert not torch.equal(stem_weight(build_model(method, "tiny", 8, pretrained_backbone=False)), shipped)


def test_shipped_backbone_matches_the_tiny_preset():
    cfg = tiny_config()
    assert isinstance(load_tiny_backbone(None, cfg.tiny_channels, cfg.tiny_strides), TinyBackbone)
