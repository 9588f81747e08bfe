"""Speed of the tiny baseline against torchvision's stock FasterRCNN with the same parts.

    python benchmarks/bench_baseline.py [--device cpu|cuda] [--steps 30]

Measures, on the same machine and the same data_small clips:
- training iterations per second (batch 4, single frames), ours vs torchvision's class;
- inference ms per frame: ours frame by frame, ours through the video engine
  (features cached: backbone passes per frame is reported), torchvision's class.
Prints a table and writes benchmarks/results/baseline_speed.json. The ratio
"ours / torchvision" should be about 1 (the same parts do the same work).
"""
from __future__ import annotations

import argparse
import time

import torch

from minivod.data.clips import TrainClips
from minivod.data.transforms import ClipTransform
from minivod.data.vid import VIDDataset, load_image
from minivod.engine.evaluate import CHECKPOINT_DIR, default_data_root, load_model
from minivod.engine.inference import detect_video
from minivod.engine.train import TrainConfig, collate_clips, make_optimizer, resolve_device
from minivod.methods import build_model
from minivod.models.twin import torchvision_twin

from record import machine, write_results


def sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_training(step, batches, device, warmup=3):
    for images, targets in batches[:warmup]:
        step(images, targets)
    sync(device)
    start = time.perf_counter()
    for images, targets in batches[warmup:]:
        step(images, targets)
    sync(device)
    return (len(batches) - warmup) / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--steps", type=int, default=30, help="timed training steps")
    parser.add_argument("--videos", type=int, default=4, help="validation videos for inference timing")
    parser.add_argument("--rounds", type=int, default=3, help="alternating timing rounds (best kept)")
    args = parser.parse_args()
    device = resolve_device(args.device)
    data = default_data_root()
    train_set = VIDDataset(data, "train")
    val = VIDDataset(data, "val")

    # the same clips for both models
    model = build_model("baseline", "tiny", 8)
    clips = TrainClips(train_set, k=0, transform=ClipTransform(model.cfg.min_size, model.cfg.max_size), seed=0)
    batches = []
    for b in range(args.steps + 3):
        images, targets, _ = collate_clips([clips[4 * b + i] for i in range(4)])
        targets = [{k: v.to(device) for k, v in t.items() if k in ("boxes", "labels")} for t in targets]
        batches.append((images.to(device), targets))

    def training_rate(net, ours):
        net.train()
        opt, sched = make_optimizer(net, TrainConfig())

        def step(images, targets):
            torch.manual_seed(0)
            losses = net(images, targets) if ours else net(list(images[:, 0]), targets)
            opt.zero_grad()
            sum(losses.values()).backward()
            opt.step()
        return time_training(step, batches, device)

    torch.manual_seed(0)
    ours = build_model("baseline", "tiny", 8).to(device)
    theirs = torchvision_twin(ours).to(device)
    # alternate the two in rounds and keep each one's best round, so that a
    # background load on the machine hits both alike
    rate_ours = rate_theirs = 0.0
    for _ in range(args.rounds):
        rate_ours = max(rate_ours, training_rate(ours, True))
        rate_theirs = max(rate_theirs, training_rate(theirs, False))

    # inference with trained weights when they ship (realistic numbers of boxes)
    shipped = CHECKPOINT_DIR / "baseline_tiny.pt"
    if shipped.is_file():
        ours, _ = load_model("baseline", shipped, device, 8)
    ours.eval()
    theirs = torchvision_twin(ours).to(device).eval()
    videos = val.videos[:args.videos]
    frames = [load_image(f.image_path).to(device) for v in videos for f in v.frames]
    def per_frame_ms(call):
        sync(device)
        t = time.perf_counter()
        for im in frames:
            call(im)
        sync(device)
        return 1000 * (time.perf_counter() - t) / len(frames)

    ms_ours = ms_theirs = ms_engine = float("inf")
    with torch.no_grad():
        for im in frames[:3]:
            ours(im[None, None])
            theirs([im])
        for _ in range(args.rounds):
            ms_ours = min(ms_ours, per_frame_ms(lambda im: ours(im[None, None])))
            ms_theirs = min(ms_theirs, per_frame_ms(lambda im: theirs([im])))
            seconds, passes = 0.0, 0  # the engine also reads the JPEGs from disk
            for v in videos:
                _, cache, spent = detect_video(ours, v, device)
                seconds, passes = seconds + spent, passes + cache.computed
            ms_engine = min(ms_engine, 1000 * seconds / len(frames))

    rows = [("training it/s (batch 4)", rate_ours, rate_theirs),
            ("inference ms/frame (one frame per call)", ms_ours, ms_theirs),
            ("inference ms/frame (video engine: JPEG decode, batched, cached)", ms_engine, float("nan"))]
    print(f"{'':<64} {'minivod':>9} {'torchvision':>12} {'ratio':>7}")
    for name, a, b in rows:
        print(f"{name:<64} {a:9.2f} {b:12.2f} {a / b if b == b else float('nan'):7.2f}")
    print(f"backbone passes per frame in the engine: {passes / len(frames):.2f}")
    result = {
        "machine": machine("platform", "processor", "cpu_count", "threads", "torch", device=device),
        "weights": "shipped baseline_tiny.pt" if shipped.is_file() else "random init",
        "train_it_per_s": {"minivod": rate_ours, "torchvision": rate_theirs},
        "infer_ms_per_frame": {"minivod": ms_ours, "torchvision": ms_theirs, "minivod_engine": ms_engine},
        "backbone_passes_per_frame": passes / len(frames), "frames": len(frames),
    }
    write_results("baseline_speed", result)


if __name__ == "__main__":
    main()
