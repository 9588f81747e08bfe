"""The training engine shared by every method.

SGD with momentum and weight decay, a linear warm-up then steps, gradient
clipping; batches of clips (reference + support frames) from VID snippets mixed
with DET stills. The run is a pure function of its settings: the order of the
items in epoch ``e`` and each item's support frames and augmentation depend only
on ``(seed, e, i)``, and the model's own random draws (RoI sampling) come from
torch's generator, saved in every checkpoint. So ``resume`` continues a run to
exactly the result of an uninterrupted one (on a CPU).

Several GPUs (or CPU processes): start with ``torchrun --nproc_per_node N -m
minivod train ...``; each process takes its share of every batch, and
DistributedDataParallel averages the gradients, which equals one process
training on the whole batch.
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from minivod.data.clips import TrainClips
from minivod.data.transforms import MEAN_FILL, ClipTransform
from minivod.data.vid import VIDDataset
from minivod.engine.checkpoint import check_compatible, load_checkpoint, save_checkpoint
from minivod.methods import build_model, get_method
from minivod.models.base import VideoDetectorBase


@dataclass
class TrainConfig:
    """Optimisation settings. ``for_preset`` gives the defaults of each preset."""

    iters: int = 3000
    batch_size: int = 4                   # clips per iteration (over all processes)
    lr: float = 0.02
    momentum: float = 0.9
    weight_decay: float = 1e-4
    warmup_iters: int = 200
    warmup_factor: float = 0.01
    lr_steps: tuple = (0.67, 0.89)        # fractions of ``iters`` where lr drops 10x
    clip_grad_norm: float = 10.0
    frames_per_video: int = 15            # reference frames per snippet and epoch
    with_det: bool = True                 # mix DET stills into training
    seed: int = 0
    amp: bool = False
    checkpoint_every: int = 500
    log_every: int = 10
    num_workers: int = 0                  # DataLoader processes reading and augmenting clips
    augment: dict = field(default_factory=dict)  # ClipTransform switches

    @staticmethod
    def for_preset(name: str, **overrides) -> "TrainConfig":
        base = {"tiny": dict(), "paper": dict(iters=120_000, batch_size=8, lr=0.01, warmup_iters=1000,
                                             checkpoint_every=5000, num_workers=4)}[name]
        return TrainConfig(**{**base, **overrides})


# --------------------------------------------------------------------------- data
def collate_clips(items):
    """Pad clips of different sizes to one (B, T, 3, H, W) batch with the mean colour.

    Padding goes right and down, so boxes are unchanged; after normalisation the
    padding is zero, as in torchvision's batching.
    """
    T = items[0][0].shape[0]
    H = max(im.shape[-2] for im, _ in items)
    W = max(im.shape[-1] for im, _ in items)
    batch = torch.tensor(MEAN_FILL).view(1, 1, 3, 1, 1).repeat(len(items), T, 1, H, W)  # (B, T, 3, H, W)
    for b, (im, _) in enumerate(items):
        batch[b, :, :, :im.shape[-2], :im.shape[-1]] = im
    targets = [tg[0] for _, tg in items]  # the reference frame's boxes; supports carry no loss
    support_targets = [tg[1:] for _, tg in items]
    return batch, targets, support_targets


def epoch_batches(num_items: int, batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """The batches of one epoch: a permutation that depends only on (seed, epoch)."""
    order = np.random.default_rng((seed, epoch, 7)).permutation(num_items)
    n = num_items // batch_size
    return [order[k * batch_size:(k + 1) * batch_size].tolist() for k in range(n)]


def batch_at(clips: TrainClips, cfg: TrainConfig, iteration: int, stills: bool = True):
    """Indices of the global batch used at ``iteration`` and its epoch.

    ``stills=False``: the batch is drawn from the video clips only (``clips.video_items``, in epochs of
    their own), for a model whose ``trains_on_stills`` says so at this iteration.
    """
    pool = None if stills or len(clips.video_items) == len(clips) else clips.video_items
    n = len(clips) if pool is None else len(pool)
    per_epoch = n // cfg.batch_size
    if per_epoch == 0:
        raise ValueError(f"{n} training clips are fewer than one batch of {cfg.batch_size}")
    epoch, k = divmod(iteration, per_epoch)
    batch = epoch_batches(n, cfg.batch_size, cfg.seed, epoch)[k]
    return epoch, batch if pool is None else [pool[i] for i in batch]


# --------------------------------------------------------------------------- schedule
def lr_factor(cfg: TrainConfig, iteration: int) -> float:
    """Linear warm-up from ``warmup_factor``, then a 10x drop at each of ``lr_steps``."""
    factor = 0.1 ** sum(iteration >= int(s * cfg.iters) for s in cfg.lr_steps)
    if iteration < cfg.warmup_iters:
        alpha = iteration / cfg.warmup_iters
        factor *= cfg.warmup_factor * (1 - alpha) + alpha
    return factor


def make_optimizer(model, cfg: TrainConfig):
    """SGD over the trainable parameters at ``cfg.lr``, times the model's ``lr_factors`` for the parts
    that train slower (SSVD's flow network); the schedule scales every group alike."""
    factors = model.lr_factors() if isinstance(model, VideoDetectorBase) else {}
    groups: dict[float, list] = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            factor = next((f for prefix, f in factors.items() if name.startswith(prefix)), 1.0)
            groups.setdefault(factor, []).append(p)
    params = groups.get(1.0, []) if set(groups) <= {1.0} else [{"params": ps, "lr": cfg.lr * f} for f, ps in groups.items()]
    opt = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda it: lr_factor(cfg, it))
    return opt, sched


# --------------------------------------------------------------------------- distributed
def distributed_setup(device: str):
    """Join the process group when started by torchrun; returns (rank, world_size, device)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, device
    backend = "nccl" if device.startswith("cuda") else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend)
    rank = dist.get_rank()
    if device.startswith("cuda"):
        local = int(os.environ.get("LOCAL_RANK", rank))
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    return rank, world, device


def resolve_device(device: Optional[str]) -> str:
    """``None``/``"auto"``: CUDA when there is one, else the CPU; an explicit CUDA request without one fails."""
    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"--device {device} was asked for, but torch sees no CUDA device")
    return device


# --------------------------------------------------------------------------- the loop
def to_device(x, device):
    """Tensors, and lists / dicts of them (targets with their support frames), moved to ``device``."""
    if isinstance(x, torch.Tensor):
        return x.to(device, non_blocking=True)
    if isinstance(x, dict):
        return {k: to_device(v, device) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(to_device(v, device) for v in x)
    return x


def train_step(model, images, targets, opt, sched, cfg: TrainConfig, device: str, scaler=None):
    """One optimisation step; returns the losses as floats (for logging)."""
    images = images.to(device, non_blocking=True)
    targets = to_device(targets, device)
    device_type = "cuda" if device.startswith("cuda") else "cpu"
    with torch.autocast(device_type, dtype=torch.float16 if device_type == "cuda" else torch.bfloat16,
                        enabled=cfg.amp):
        losses = model(images, targets)
    loss = sum(losses.values())
    opt.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
    else:
        loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad_norm)
    if scaler is not None:
        scaler.step(opt)
        scaler.update()
    else:
        opt.step()
    sched.step()
    out = {k: v.detach() for k, v in losses.items()}
    out["loss"] = loss.detach()
    return out


def train(method: str, preset_name: str, data, out, cfg: TrainConfig, device=None, resume=False,
          progress=True, model_overrides=None, stop_at: Optional[int] = None, train_list=None, det_list=None):
    """Train ``method`` on the training split of ``data``; writes ``out/last.pt``, ``log.jsonl``, ``losses.png``.

    ``train_list`` and ``det_list`` replace ``ImageSets/VID/train.txt`` and
    ``ImageSets/DET/train_30classes.txt`` (any format of :mod:`minivod.data.lists`, e.g. the
    codebases' ``VID_train_15frames.txt``: then the reference frames are the listed ones).

    ``stop_at`` ends the run after that many iterations, as an interruption would
    (after writing a checkpoint); ``resume=True`` then continues it.
    Returns the trained model (unwrapped) and the path of the final checkpoint.
    """
    device = resolve_device(device)
    rank, world, device = distributed_setup(device)
    if cfg.batch_size % world:
        raise ValueError(f"batch size {cfg.batch_size} must be divisible by the {world} processes")
    out = Path(out)
    spec = get_method(method)
    torch.manual_seed(cfg.seed)
    if device == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)
    dataset = VIDDataset(data, "train", with_det=cfg.with_det, image_set=train_list, det_list=det_list)
    model = build_model(method, preset_name, len(dataset.class_map), **(model_overrides or {})).to(device)
    mcfg = model.cfg
    transform = ClipTransform(mcfg.min_size, mcfg.max_size, train=True, **cfg.augment)
    clips = TrainClips(dataset, k=spec.train_support, frames_per_video=cfg.frames_per_video,
                       window=spec.train_window, transform=transform, seed=cfg.seed,
                       support_fn=model.train_support_fn())
    opt, sched = make_optimizer(model, cfg)
    scaler = torch.amp.GradScaler("cuda") if cfg.amp and device.startswith("cuda") else None
    start, spent_before = 0, 0.0
    ckpt_path = out / "last.pt"
    meta = {"method": method, "method_options": _plain(spec.options), "preset": preset_name,
            "num_classes": len(dataset.class_map),
            "class_names": list(dataset.class_map.names), "config": _plain(asdict(mcfg)),
            "train_config": _plain(asdict(cfg)), "data": _portable(data),
            "method_config": method_config(model)}
    if train_list or det_list:
        meta["lists"] = {"train": str(train_list) if train_list else None, "det": str(det_list) if det_list else None}
    if resume:
        ckpt = load_checkpoint(ckpt_path)
        check_compatible(ckpt, method, preset_name, len(dataset.class_map), ckpt_path)
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        torch.set_rng_state(ckpt["rng"]["torch"])
        start = int(ckpt["meta"]["iteration"])
        spent_before = float(ckpt["meta"].get("train_seconds", 0.0))
        check_same_schedule(ckpt["meta"].get("train_config", {}), meta["train_config"], ckpt_path)
        saved_options = ckpt["meta"].get("method_options")
        if saved_options is not None and saved_options != meta["method_options"]:
            raise ValueError(f"{ckpt_path}: cannot resume {method} with other method options "
                             f"({saved_options} in the checkpoint, {meta['method_options']} now)")
        saved_config = ckpt["meta"].get("method_config")  # the options as resolved (a preset's defaults too)
        if saved_config is not None and saved_config != meta["method_config"]:
            changed = sorted(f"{part}.{k}" for part in set(saved_config) | set(meta["method_config"])
                             for k in set(saved_config.get(part, {})) | set(meta["method_config"].get(part, {}))
                             if saved_config.get(part, {}).get(k) != meta["method_config"].get(part, {}).get(k))
            raise ValueError(f"{ckpt_path}: cannot resume {method}: its configuration changed since the run "
                             f"started ({', '.join(changed)})")
        for key in ("prepare", "trained_as"):
            if key in ckpt["meta"]:
                meta[key] = ckpt["meta"][key]
    elif spec.prepare is not None:  # a method's own step before the loop (e.g. SSVD's flow pre-training)
        meta["prepare"] = _plain(spec.prepare(model, data, device, out, progress and rank == 0) or {})
        torch.manual_seed(cfg.seed)  # the loop's draws do not depend on what prepare drew
    net = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device] if device.startswith("cuda") else None)
    net.train()
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        print(f"training {method}/{preset_name} on {dataset} ({len(clips)} clips per epoch), device {device}, "
              f"{world} process(es)")
    log = None
    if rank == 0:  # on resume, keep the rows before the checkpoint (an interruption may have logged more)
        kept = [r for r in _read_log(out / "log.jsonl") if r["iter"] < start] if resume else []
        log = open(out / "log.jsonl", "w")
        log.writelines(json.dumps(r) + "\n" for r in kept)
    bar = tqdm(range(start, cfg.iters), initial=start, total=cfg.iters, desc=f"train {method}",
               disable=not progress or rank != 0)
    t0 = time.time() - spent_before  # training time accumulates over resumed runs
    # its own generator: creating the loader must not draw from torch's global one (saved for resume)
    batches = ShareOfBatches(clips, cfg, start, rank, world, stills=lambda it: model.trains_on_stills(it, cfg.iters))
    loader = torch.utils.data.DataLoader(clips, batch_sampler=batches, num_workers=cfg.num_workers,
                                         collate_fn=collate_clips, generator=torch.Generator().manual_seed(cfg.seed))
    for it, (images, targets, support_targets) in zip(bar, loader):
        if spec.support_targets:
            targets = [{**t, "support": s} for t, s in zip(targets, support_targets)]
        model.set_iteration(it, cfg.iters)
        losses = train_step(net, images, targets, opt, sched, cfg, device, scaler)
        if rank == 0 and (it % cfg.log_every == 0 or it == cfg.iters - 1):
            row = {"iter": it, "lr": opt.param_groups[0]["lr"], **{k: float(v) for k, v in losses.items()}}
            if not all(math.isfinite(v) for v in row.values()):
                raise FloatingPointError(f"non-finite loss at iteration {it}: {row}")
            log.write(json.dumps(row) + "\n")
            log.flush()
            bar.set_postfix(loss=f"{row['loss']:.3f}")
        done = it + 1
        if rank == 0 and (done % cfg.checkpoint_every == 0 or done in (cfg.iters, stop_at)):
            state = {"meta": {**meta, "iteration": done, "train_seconds": time.time() - t0},
                     "model": model.state_dict(), "optimizer": opt.state_dict(),
                     "scheduler": sched.state_dict(), "rng": {"torch": torch.get_rng_state()}}
            save_checkpoint(ckpt_path, state)
        if done == stop_at:
            break
    bar.close()
    if log:
        log.close()
        plot_losses(out / "log.jsonl", out / "losses.png")
    if rank == 0 and start < cfg.iters and (stop_at is None or stop_at >= cfg.iters):
        export_weights(model, {**meta, "iteration": cfg.iters, "train_seconds": time.time() - t0}, out / "model.pt")
    return model, ckpt_path


def export_weights(model, meta: dict, path) -> None:
    """The small file that ships: the model's weights in float16 and the metadata (no optimizer)."""
    weights = {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    save_checkpoint(path, {"meta": {**meta, "weights_dtype": "float16"}, "model": weights})


class ShareOfBatches(torch.utils.data.Sampler):
    """This process's share of every global batch from iteration ``start`` on, as ``(epoch, item)`` keys.

    Passing the epoch with each item (rather than setting it on the dataset) keeps the
    draws identical whatever the number of DataLoader workers.
    """

    def __init__(self, clips, cfg: TrainConfig, start: int, rank: int = 0, world: int = 1, stills=None):
        self.clips, self.cfg, self.start, self.rank, self.world = clips, cfg, start, rank, world
        self.stills = stills or (lambda it: True)  # iteration -> may the batch hold DET stills

    def __len__(self):
        return self.cfg.iters - self.start

    def __iter__(self):
        for it in range(self.start, self.cfg.iters):
            epoch, batch = batch_at(self.clips, self.cfg, it, self.stills(it))
            yield [(epoch, i) for i in batch[self.rank::self.world]]


def check_same_schedule(saved: dict, current: dict, path) -> None:
    """Refuse to resume with other optimisation settings (the run would not be the same run)."""
    free = {"checkpoint_every", "log_every", "num_workers"}
    diff = {k: (saved.get(k), v) for k, v in current.items() if k not in free and k in saved and saved[k] != v}
    if diff:
        details = ", ".join(f"{k}: {a} in the checkpoint, {b} now" for k, (a, b) in diff.items())
        raise ValueError(f"{path}: cannot resume with different training settings ({details})")


def _read_log(path):
    path = Path(path)
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _portable(data) -> str:
    """The dataset path as given, or relative to the repository when it lies inside it."""
    path = Path(data).resolve()
    repo = Path(__file__).resolve().parents[2]
    return str(path.relative_to(repo)) if path.is_relative_to(repo) else str(data)


def method_config(model) -> dict:
    """The method's own options as the model resolved them (e.g. ``{"ssvd": {...}}``), plain JSON types.

    Every dataclass the model keeps as an attribute, except the detector preset (``config`` in the
    meta): a preset's default that changes between a run's start and its ``--resume`` is caught.
    """
    return {name: json.loads(json.dumps(asdict(value))) for name, value in sorted(vars(model).items())
            if name != "cfg" and is_dataclass(value) and not isinstance(value, type)}


def _plain(d):
    """Dataclass dicts with tuples -> lists, for a weights_only checkpoint."""
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}


def plot_losses(log_path, png_path):
    """Plot every logged loss against the iteration (smoothed), and save it."""
    from matplotlib.figure import Figure  # no pyplot: leaves a notebook's backend alone

    rows = [json.loads(line) for line in Path(log_path).read_text().splitlines() if line.strip()]
    if not rows:
        return
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    its = [r["iter"] for r in rows]
    for key in rows[0]:
        if key in ("iter", "lr"):
            continue
        vals = np.array([r[key] for r in rows])
        k = max(1, len(vals) // 50)
        smooth = np.convolve(vals, np.ones(k) / k, mode="same") if k > 1 else vals
        ax.plot(its, smooth, label=key, lw=2 if key == "loss" else 1)
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png_path, dpi=80)
