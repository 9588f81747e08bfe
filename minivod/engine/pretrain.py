"""``python -m minivod pretrain-backbone``: the tiny preset's stand-in for ImageNet pre-training.

Every paper minivod implements starts its detector from a ResNet-101 trained to
classify ImageNet. The tiny preset gets the same first step at its own scale:
the tiny backbone, with a global average pool and a linear layer on top, learns
to classify fixed-size crops of the *training* split (``minivod.data.crops``):
sharp object crops labelled with their class (eight classes, whose pairs differ
only in texture) and background crops labelled 0. What it learns to see in
sharp crops, the texture above all, is what a detector started from it can read
and what aggregation can carry to the degraded frames.

The run is deterministic for a seed on a CPU. It writes the backbone's weights
(the classifier layer is dropped, as torchvision's ImageNet weights come
without a detection head) with metadata: the command, the seed, the crop counts
and the accuracy on val crops (sharp and motion-blurred / defocused), measured
once at the end; val never enters training.

    python -m minivod pretrain-backbone --data data_small --out minivod/checkpoints/backbone_tiny.pt
"""
from __future__ import annotations

import math
import sys
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import Tensor, nn
from tqdm import tqdm

from minivod.data.crops import CropSet, build_crops
from minivod.data.vid import DataError, VIDDataset
from minivod.engine.checkpoint import save_checkpoint
from minivod.models.backbone import TinyBackbone
from minivod.models.config import tiny_config


@dataclass
class PretrainConfig:
    """Settings of the classification pre-training."""

    crop_size: int = 48          # px, about twice the median object
    epochs: int = 12
    batch_size: int = 64
    lr: float = 0.05             # SGD with momentum, cosine decay to 0
    momentum: float = 0.9
    weight_decay: float = 5e-4
    jitter: int = 4              # px of random shift of each crop centre
    background_per_frame: float = 0.5
    seed: int = 0


class CropClassifier(nn.Module):
    """TinyBackbone -> global average pool -> linear: (B, 3, S, S) -> logits (B, C + 1)."""

    def __init__(self, num_classes: int, channels, strides, mean, std):
        super().__init__()
        self.backbone = TinyBackbone(channels, strides)
        self.fc = nn.Linear(self.backbone.out_channels, num_classes + 1)
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))

    def forward(self, images: Tensor) -> Tensor:
        maps = self.backbone((images - self.mean) / self.std)  # (B, C, S/8, S/8)
        return self.fc(maps.mean((2, 3)))  # (B, C + 1)


@torch.no_grad()
def accuracy(model: CropClassifier, crops: CropSet, mask: np.ndarray, batch_size: int = 256) -> dict:
    """Class accuracy and texture accuracy (the right member of the pair) on the crops in ``mask``."""
    model.eval()
    idx = np.flatnonzero(mask)
    if not len(idx):
        return {"crops": 0, "class": float("nan"), "texture": float("nan")}
    preds = torch.cat([model(crops.batch(idx[i:i + batch_size])[0]).argmax(1)
                       for i in range(0, len(idx), batch_size)]).numpy()
    labels = crops.labels[idx]
    obj = labels > 0
    # classes come in (striped, checked) pairs 2k - 1, 2k: the texture is the parity of the index
    texture = (preds[obj] % 2 == labels[obj] % 2) & (preds[obj] > 0)
    return {"crops": int(len(idx)), "class": float((preds == labels).mean()),
            "texture": float(texture.mean()) if obj.any() else float("nan")}


def pretrain_backbone(data, out, cfg: PretrainConfig = PretrainConfig(), progress: bool = True,
                      command: str = "") -> dict:
    """Train the tiny backbone as a crop classifier; write its weights to ``out``; return the metadata."""
    torch.manual_seed(cfg.seed)
    det = tiny_config()
    train_set = VIDDataset(data, "train", with_det=True)
    num_classes = len(train_set.class_map)
    crops = build_crops(train_set, cfg.crop_size, sharp_only=True, seed=cfg.seed,
                        background_per_frame=cfg.background_per_frame)
    model = CropClassifier(num_classes, det.tiny_channels, det.tiny_strides, det.image_mean, det.image_std)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    steps_per_epoch = len(crops) // cfg.batch_size
    total = cfg.epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / total)))
    loss_fn = nn.CrossEntropyLoss()
    t0 = time.time()
    bar = tqdm(total=total, desc="pretrain-backbone", disable=not progress)
    losses = []
    for epoch in range(cfg.epochs):
        rng = np.random.default_rng((cfg.seed, epoch))
        order = rng.permutation(len(crops))
        model.train()
        for k in range(steps_per_epoch):
            images, labels = crops.batch(order[k * cfg.batch_size:(k + 1) * cfg.batch_size], rng,
                                         jitter=cfg.jitter, flip=True)
            loss = loss_fn(model(images), labels)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
            bar.update()
            bar.set_postfix(epoch=epoch, loss=f"{np.mean(losses[-20:]):.3f}")
    bar.close()
    seconds = time.time() - t0

    val = build_crops(VIDDataset(data, "val"), cfg.crop_size, sharp_only=False, seed=cfg.seed)
    sharp = np.array([not b for b in val.blurred]) & (val.labels > 0)
    meta = {
        "kind": "tiny backbone pre-trained as a crop classifier",
        "command": command,
        "config": asdict(cfg),
        "tiny_channels": list(det.tiny_channels),
        "tiny_strides": list(det.tiny_strides),
        "num_classes": num_classes,
        "class_names": train_set.class_map.names,
        "train_crops": {"objects": int((crops.labels > 0).sum()), "background": int((crops.labels == 0).sum())},
        "final_loss": float(np.mean(losses[-steps_per_epoch:])),
        "train_seconds": seconds,
        "val_accuracy": {
            "train crops (sharp objects + background)": accuracy(model, crops, np.ones(len(crops), bool)),
            "val objects, not motion-blurred or defocused": accuracy(model, val, sharp),
            "val objects, motion-blurred or defocused": accuracy(model, val, val.blurred),
        },
    }
    state = {k: v.half() if v.is_floating_point() else v for k, v in model.backbone.state_dict().items()}
    save_checkpoint(out, {"meta": meta, "model": state})
    return meta


def add_parser(subparsers):
    p = subparsers.add_parser(
        "pretrain-backbone", help="pre-train the tiny backbone as a classifier of training crops (the tiny "
                                  "preset's ImageNet)",
        description="Train the tiny backbone, with a pooled linear classifier on top, to classify fixed-size "
                    "crops of the training split (VID frames and DET stills): sharp object crops by class, and "
                    "background crops. Writes the backbone's weights (float16) with the accuracy on val crops. "
                    "The tiny preset of every method starts from minivod/checkpoints/backbone_tiny.pt, made by "
                    "this command with its defaults; `minivod train --from-scratch` skips it.")
    p.add_argument("--data", default=None, help="dataset root (default: data_small)")
    p.add_argument("--out", required=True, help="where to write the backbone weights (.pt)")
    p.add_argument("--epochs", type=int, default=PretrainConfig.epochs)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_run)


def _run(args) -> int:
    from minivod.engine.evaluate import default_data_root

    cfg = PretrainConfig(epochs=args.epochs, seed=args.seed)
    command = "python -m minivod " + " ".join(sys.argv[1:]) if sys.argv[0].endswith(("minivod", "__main__.py")) else ""
    try:
        meta = pretrain_backbone(args.data or default_data_root(), args.out, cfg, command=command)
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{meta['train_crops']['objects']} object crops, {meta['train_crops']['background']} background crops; "
          f"{meta['train_seconds'] / 60:.1f} CPU-min")
    for name, acc in meta["val_accuracy"].items():
        print(f"{name:<48} {acc['crops']:>6} crops   class {acc['class']:.3f}   texture {acc['texture']:.3f}")
    print(f"wrote {args.out}")
    return 0
