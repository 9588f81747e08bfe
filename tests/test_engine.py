"""The training and inference engines: resume, checkpoints, feature cache, online/offline, DDP."""
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from minivod.data.generate import generate
from minivod.data.vid import VIDDataset, load_image
from minivod.engine.checkpoint import CheckpointMismatch, check_compatible, load_checkpoint
from minivod.engine.inference import detect_video, detect_video_online, online_supports
from minivod.engine.train import TrainConfig, collate_clips, train
from minivod.methods import build_model
from minivod.models import VODetector, preset

TINY = dict(iters=4, batch_size=2, warmup_iters=2, checkpoint_every=100, log_every=1, frames_per_video=3)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("engine") / "data"
    generate(root, seed=1, train_videos=2, val_videos=1, frames=8, det_images=2, progress=False)
    return root


def test_resume_reproduces_an_uninterrupted_run(tiny_data, tmp_path):
    cfg = TrainConfig(**TINY)
    full, _ = train("baseline", "tiny", tiny_data, tmp_path / "full", cfg, device="cpu", progress=False)
    train("baseline", "tiny", tiny_data, tmp_path / "cut", cfg, device="cpu", progress=False, stop_at=2)
    assert load_checkpoint(tmp_path / "cut" / "last.pt")["meta"]["iteration"] == 2
    with pytest.raises(ValueError, match="cannot resume with different training settings .*lr"):
        train("baseline", "tiny", tiny_data, tmp_path / "cut", TrainConfig(**{**TINY, "lr": 0.1}), device="cpu",
              progress=False, resume=True)
    # the rest of the run in two DataLoader worker processes: the same draws, the same result
    resumed, _ = train("baseline", "tiny", tiny_data, tmp_path / "cut", TrainConfig(**TINY, num_workers=2),
                       device="cpu", progress=False, resume=True)
    for (name, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    logged = (tmp_path / "cut" / "log.jsonl").read_text().splitlines()
    assert len(logged) == 4 and (tmp_path / "cut" / "losses.png").is_file()


def test_resume_refuses_a_method_whose_resolved_configuration_changed(tiny_data, tmp_path):
    """A preset default changed between a run's start and its --resume (SSVD's ``fpn_grad`` once did): the run
    would finish under another configuration than it started, so resuming names the option and stops. A run's
    ``trained_as`` (``benchmarks/relabel_run.py``) survives the resume."""
    cfg = TrainConfig(**TINY)
    train("ssvd_single", "tiny", tiny_data, tmp_path, cfg, device="cpu", progress=False, stop_at=1)
    path = tmp_path / "last.pt"
    ckpt = load_checkpoint(path)
    assert ckpt["meta"]["method_config"]["opts"]["head_convs"] == build_model("ssvd_single", "tiny", 8).opts.head_convs
    ckpt["meta"]["trained_as"] = {"method": "old_name", "method_options": {}, "note": "renamed"}
    torch.save(ckpt, path)
    train("ssvd_single", "tiny", tiny_data, tmp_path, cfg, device="cpu", progress=False, resume=True, stop_at=2)
    ckpt = load_checkpoint(path)
    assert ckpt["meta"]["iteration"] == 2 and ckpt["meta"]["trained_as"]["note"] == "renamed"
    ckpt["meta"]["method_config"]["opts"]["head_convs"] += 1  # as if the default had been another
    torch.save(ckpt, path)
    with pytest.raises(ValueError, match=r"configuration changed since the run started \(opts.head_convs\)"):
        train("ssvd_single", "tiny", tiny_data, tmp_path, cfg, device="cpu", progress=False, resume=True)


def test_checkpoint_loads_weights_only_and_refuses_other_methods(tiny_data, tmp_path):
    cfg = TrainConfig(**{**TINY, "iters": 1})
    _, path = train("baseline", "tiny", tiny_data, tmp_path, cfg, device="cpu", progress=False)
    ckpt = load_checkpoint(path)  # torch.load(weights_only=True) inside
    assert ckpt["meta"]["method"] == "baseline" and ckpt["meta"]["num_classes"] == 8
    check_compatible(ckpt, "baseline", "tiny", 8)
    with pytest.raises(CheckpointMismatch, match="holds a 'baseline' model with the 'tiny' preset"):
        check_compatible(ckpt, "selsa", "tiny")
    with pytest.raises(CheckpointMismatch, match="'paper' preset was asked for"):
        check_compatible(ckpt, "baseline", "paper")
    with pytest.raises(CheckpointMismatch, match="trained for 8 classes"):
        check_compatible(ckpt, "baseline", "tiny", 30)
    assert not list(tmp_path.glob("*.tmp"))  # the atomic write left nothing behind


class MeanOfSupports(nn.Module):
    """A test RoI aggregator: adds the mean support feature (so supports change the output)."""

    def forward(self, ref_feats, support_feats, ctx):
        if support_feats is None or len(support_feats) == 0:
            return ref_feats
        same_clip = (ctx.ref_clip_index[:, None] == ctx.support_clip_index[None]).float()  # (N_ref, N_sup)
        mean = same_clip @ support_feats / same_clip.sum(1, keepdim=True).clamp(min=1)  # (N_ref, D)
        return ref_feats + 0.5 * mean


def _aggregating_model():
    torch.manual_seed(0)
    cfg = preset("tiny", 8)
    return VODetector(cfg, roi_aggregators=nn.ModuleList([MeanOfSupports() for _ in cfg.box_fc_dims])).eval()


def test_cache_runs_each_backbone_once(tiny_data):
    video = VIDDataset(tiny_data, "val").videos[0]
    model = _aggregating_model()
    passes = []
    model.backbone.register_forward_hook(lambda m, inp, out: passes.append(inp[0].shape[0]))
    dets, cache, seconds = detect_video(model, video, "cpu", num_support=3, mode="shuffled")
    assert len(dets) == len(video) and seconds > 0
    assert sum(passes) == len(video) == cache.computed  # 8 frames, each used 1 + 3 times, one pass each
    baseline = build_model("baseline", "tiny", 8).eval()
    dets, cache, _ = detect_video(baseline, video, "cpu")
    assert cache.computed == len(video)


def _same_detections(a, b, atol=1e-4):
    """Equal up to float error and the order of tied scores (batched vs single-frame passes)."""
    if len(a["scores"]) != len(b["scores"]):
        return False
    if not torch.allclose(a["scores"].sort().values, b["scores"].sort().values, atol=atol):
        return False
    gap = torch.cdist(a["boxes"], b["boxes"], p=1).min(1).values if len(a["boxes"]) else torch.zeros(0)
    return bool((gap < 1e-2).all())


def test_online_and_offline_agree(tiny_data):
    video = VIDDataset(tiny_data, "val").videos[0]
    images = [load_image(f.image_path) for f in video.frames]
    # the single-frame baseline: identical detections either way
    baseline = build_model("baseline", "tiny", 8).eval()
    offline, _, _ = detect_video(baseline, video, "cpu")
    online, _, _ = detect_video_online(baseline, images, "cpu")
    for a, b in zip(offline, online):
        assert _same_detections(a, b)
    # with supports: offline given the online sampler matches online inference ...
    model = _aggregating_model()
    offline, _, _ = detect_video(model, video, "cpu", support_fn=lambda n, t: online_supports(t, 2))
    online, cache, _ = detect_video_online(model, images, "cpu", radius=2)
    for a, b in zip(offline, online):
        assert _same_detections(a, b)
    assert cache.computed == len(video) and len(cache.frames) <= 2  # the buffer stays bounded
    # ... and the supports do change the result (so the check above can fail)
    alone, _, _ = detect_video(model, video, "cpu", support_fn=lambda n, t: [t, t])
    assert not all(_same_detections(a, b) for a, b in zip(offline, alone))


def test_collate_pads_with_mean_colour():
    a = (torch.ones(2, 3, 10, 12), [{"boxes": torch.zeros(1, 4), "labels": torch.ones(1, dtype=torch.long)}] * 2)
    b = (torch.zeros(2, 3, 8, 14), [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long)}] * 2)
    batch, targets, _ = collate_clips([a, b])
    assert batch.shape == (2, 2, 3, 10, 14)
    assert torch.allclose(batch[0, 0, 0, :, 12:], torch.tensor(0.485))
    assert len(targets) == 2 and len(targets[0]["boxes"]) == 1


def test_ddp_with_two_gloo_processes_gives_single_process_gradients(tmp_path):
    """torchrun, two CPU processes on gloo, one clip each == one process, both clips."""
    worker = Path(__file__).with_name("ddp_worker.py")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for attempt in range(2):  # a second try only for the launcher itself (a port taken meanwhile, a gloo abort)
        with socket.socket() as s:  # a free port for the rendezvous
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr",
                              "127.0.0.1", "--master_port", str(port), str(worker), str(tmp_path / "ddp.pt")],
                             env=env, timeout=300, capture_output=True, text=True)
        if run.returncode == 0:
            break
    assert run.returncode == 0, run.stderr[-3000:]
    ddp_grads = torch.load(tmp_path / "ddp.pt", weights_only=True)
    sys.path.insert(0, str(worker.parent))
    from ddp_worker import clip_batch, make_model, loss_of

    model = make_model()
    grads = {}
    for rank in range(2):
        model.zero_grad()
        loss_of(model, *clip_batch(rank), seed=100 + rank).backward()
        for name, p in model.named_parameters():
            if p.grad is not None:
                grads[name] = grads.get(name, 0) + p.grad / 2
    assert set(grads) == set(ddp_grads)
    for name, g in grads.items():
        assert torch.allclose(g, ddp_grads[name], atol=1e-5, rtol=1e-4), name


def test_method_hooks_reach_the_engines(tiny_data, tmp_path, monkeypatch):
    """A MethodSpec's hooks (support targets, prepare) and the model's (set_iteration, train_support_fn,
    trains_on_stills, test_schedule) reach the engines."""
    import minivod.methods as methods
    from minivod.data.sampling import BufferedSchedule
    from minivod.engine.evaluate import load_model, predict_dataset

    seen = {"iterations": [], "clips": [], "support": []}

    class Recording(VODetector):
        def set_iteration(self, iteration, total):
            seen["iterations"].append((iteration, total))

        def train_support_fn(self):
            return lambda n, ref, rng: [ref, ref, ref]

        def trains_on_stills(self, iteration, total):
            seen.setdefault("stills_asked", []).append((iteration, total))
            return False

        def test_schedule(self):
            return BufferedSchedule(window=1, num_support=2)

        def detect(self, ref, supports=None):
            seen.setdefault("detected", []).append(0 if supports is None else len(supports))
            return super().detect(ref, supports)

        def compute_losses(self, images, targets):
            seen["clips"].append(images.shape[1])
            seen["support"].append([len(t["support"]) for t in targets])
            assert all("track_ids" in s for t in targets for s in t["support"])
            return super().compute_losses(images, targets)

    def prepare(model, data, device, out, progress):
        seen["prepared"] = (Path(data) == Path(tiny_data), device)
        return {"steps": 3}

    spec = methods.MethodSpec("hooked", Recording, train_support=3, support_targets=True, prepare=prepare)
    monkeypatch.setitem(methods.METHODS, "hooked", spec)
    cfg = TrainConfig(**{**TINY, "iters": 2})
    _, path = train("hooked", "tiny", tiny_data, tmp_path, cfg, device="cpu", progress=False)
    assert seen["prepared"] == (True, "cpu")
    assert seen["stills_asked"] == [(0, 2), (1, 2)]
    assert load_checkpoint(path)["meta"]["prepare"] == {"steps": 3}
    assert seen["iterations"] == [(0, 2), (1, 2)]
    assert seen["clips"] == [4, 4]  # the reference + the three frames train_support_fn chose
    assert seen["support"] == [[3, 3], [3, 3]]
    val = VIDDataset(tiny_data, "val")
    model, _ = load_model("hooked", path, "cpu")
    per_video, timing = predict_dataset(model, "hooked", val, "cpu", progress=False)
    assert len(seen["detected"]) == sum(len(v) for v in val.videos)  # one call per frame: the buffered loop
    assert max(seen["detected"]) == 2  # the frames before and after, t +- 1
    assert timing["backbone_passes"] == sum(len(v) for v in val.videos)


def test_batches_without_stills_come_from_the_video_clips(tiny_data):
    """``batch_at(..., stills=False)`` draws only video clips, each once per epoch of its own; with stills
    allowed the draw is the one every earlier run made; SSVD's ``ssvd_vid_phase2`` keeps stills out of
    phase 2 only."""
    from minivod.data.clips import TrainClips
    from minivod.engine.train import batch_at, epoch_batches
    from minivod.methods import METHODS

    dataset = VIDDataset(tiny_data, "train", with_det=True)
    clips = TrainClips(dataset, k=2, frames_per_video=3)
    stills = {i for i, (vi, _) in enumerate(clips.items) if dataset.videos[vi].is_still}
    assert stills and set(clips.video_items) == set(range(len(clips))) - stills
    cfg = TrainConfig(**{**TINY, "batch_size": 2})
    per_epoch = len(clips.video_items) // cfg.batch_size
    drawn = [i for it in range(per_epoch) for i in batch_at(clips, cfg, it, stills=False)[1]]
    assert not set(drawn) & stills and len(set(drawn)) == len(drawn) == per_epoch * cfg.batch_size
    assert batch_at(clips, cfg, 1, stills=True) == (0, epoch_batches(len(clips), 2, cfg.seed, 0)[1])

    cfg_model = preset("tiny", 8)
    paper, minivod = METHODS["ssvd_vid_phase2"].build(cfg_model), METHODS["ssvd"].build(cfg_model)
    end_of_phase1 = int(paper.ssvd.still_fraction * 300)
    assert paper.trains_on_stills(end_of_phase1 - 1, 300) and not paper.trains_on_stills(end_of_phase1, 300)
    assert all(minivod.trains_on_stills(it, 300) for it in (0, end_of_phase1, 299))
