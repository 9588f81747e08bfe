"""``python -m minivod generate-data``: write ``data_small`` in the ImageNet VID layout.

Everything is drawn from one ``numpy`` generator seeded by ``--seed``, so the
same seed gives the same annotations and the same pixels. The rendering, the
classes and the flow are in ``synthetic.py``; this file decides *what happens*
in each video (how objects move, when the light drops, when the camera loses
focus, when an object turns into a rare pose) and writes the files.

Speeds are drawn so that all three VID speed groups are well represented, and
fast objects move in bursts with pauses between them: a fast object is blurred
(its texture, which tells the two classes of a pair apart, is gone) in some
frames and sharp in others, so the rest of the video holds the answer.

A degradation either leaves the texture readable or wipes it out, with little in
between, so that the tags mean what they say. Motion below ``SHUTTER_SPEED``
px/frame leaves no visible blur (slow and medium objects stay sharp); above it
the blur grows quickly (``BLUR_PER_SPEED``) and comes with camera shake
(``BLUR_SIGMA_RATIO``), and a box is tagged ``motion_blur`` once the shake's
Gaussian alone keeps under 5% of the texture's contrast (``TAG_BLUR_LEN``).
Defocus comes on within a frame or two and holds (a plateau, not a slow ramp),
and is tagged from ``TAG_DEFOCUS`` on, where it too keeps under 5%.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from PIL import Image

from minivod.data.synthetic import SHAPE_COLOURS, class_list, object_box, render_frame

SHUTTER_SPEED = 0.7        # px/frame: slower motion leaves no visible blur
BLUR_PER_SPEED = 4.0       # motion-blur length in px per px/frame of speed above SHUTTER_SPEED
BLUR_SIGMA_RATIO = 0.8     # extra isotropic blur (camera shake) per px of blur length ...
MAX_SHAKE_SIGMA = 2.0      # ... up to this sigma (px): the texture is gone well before it
TAG_BLUR_LEN = 2.0         # a box is tagged motion_blur from this blur length on (shake sigma 1.6 px)
TAG_DEFOCUS = 1.6          # ... and defocus from this Gaussian sigma on (px)
JPEG_QUALITY = 90


def texture_contrast(sigma, period=4.0):
    """Fraction of a texture's contrast (period in px) left by a Gaussian blur of ``sigma`` px."""
    return math.exp(-2 * math.pi ** 2 * sigma ** 2 / period ** 2)


def blur_length(speed):
    """Motion-blur length (px) of an object moving ``speed`` px/frame (array or float)."""
    return BLUR_PER_SPEED * np.maximum(np.asarray(speed, dtype=np.float64) - SHUTTER_SPEED, 0.0)


def class_wnid(k):
    """Synthetic WordNet-style ids, one per class (index k = 1..C)."""
    return f"n9{k:07d}"


def class_names():
    return [f"{shape}_{texture}" for shape, texture in class_list()]


# --------------------------------------------------------------------------- scenes
def _ramp(n, start, length, peak, sharpness=1.0):
    """A bump that rises to ``peak`` and falls back over ``length`` frames from ``start``.

    ``sharpness`` > 1 flattens the top: the bump reaches ``peak`` sooner and holds it.
    """
    out = np.zeros(n)
    t = np.arange(n)
    inside = (t >= start) & (t < start + length)
    out[inside] = peak * np.minimum(sharpness * np.sin(np.pi * (t[inside] - start + 0.5) / length), 1.0)
    return out


def sample_object(rng, k, n, width, height, still=False):
    shape, texture = class_list()[k - 1]
    size = rng.uniform(8.0, 18.0)                              # radius in px
    side = 1.8 * size
    kind = "still" if still else rng.choice(["slow", "medium", "fast"], p=[0.3, 0.3, 0.4])
    rel = {"still": 0.0, "slow": rng.uniform(0.0, 0.004), "medium": rng.uniform(0.01, 0.02),
           "fast": rng.uniform(0.04, 0.085)}[kind]
    speed = np.full(n, rel * side)
    if kind == "fast":  # bursts and pauses: sharp frames exist between the blurred ones
        period, phase = rng.uniform(18, 32), rng.uniform(0, 2 * np.pi)
        speed *= np.clip(1.6 * (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / period + phase)), 0, 1.3)
    heading = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.normal(0, 0.08, n))
    theta0 = rng.uniform(-0.25, 0.25)
    theta = theta0 + np.zeros(n)
    scale = 1 + 0.04 * np.sin(np.arange(n) / rng.uniform(5, 10))
    rare = None
    if not still and rng.random() < 0.3:                         # a rare pose for a while
        start, length = rng.integers(0, max(1, n - 8)), rng.integers(8, 14)
        if rng.random() < 0.5:
            theta = theta + _ramp(n, start, length, rng.choice([-1, 1]) * rng.uniform(1.2, 2.6))
        else:
            scale = scale * np.exp(_ramp(n, start, length, rng.choice([np.log(1.8), np.log(0.55)])))
        rare = (int(start), int(length))
    elif still and rng.random() < 0.15:
        theta = theta + rng.choice([-1, 1]) * rng.uniform(1.2, 2.6)
    # integrate the motion, bouncing off a border that lets objects leave the frame partly
    lo_x, hi_x, lo_y, hi_y = -0.2 * side, width + 0.2 * side, -0.2 * side, height + 0.2 * side
    x, y = rng.uniform(0.15, 0.85) * width, rng.uniform(0.15, 0.85) * height
    xs, ys = np.zeros(n), np.zeros(n)
    dir_x, dir_y = 1.0, 1.0
    for t in range(n):
        xs[t], ys[t] = x, y
        x += dir_x * speed[t] * math.cos(heading[t])
        y += dir_y * speed[t] * math.sin(heading[t])
        if not lo_x < x < hi_x:
            dir_x, x = -dir_x, min(max(x, lo_x), hi_x)
        if not lo_y < y < hi_y:
            dir_y, y = -dir_y, min(max(y, lo_y), hi_y)
    vx, vy = np.gradient(xs) if n > 1 else np.zeros(1), np.gradient(ys) if n > 1 else np.zeros(1)
    blur_len = blur_length(np.hypot(vx, vy))
    poses = [[float(xs[t]), float(ys[t]), float(theta[t]), float(scale[t]), float(vx[t]), float(vy[t]),
              float(blur_len[t]), float(min(BLUR_SIGMA_RATIO * blur_len[t], MAX_SHAKE_SIGMA))] for t in range(n)]
    return {"class_index": k, "shape": shape, "texture": texture, "colour": list(SHAPE_COLOURS[shape]),
            "size": float(size), "speed_kind": kind, "theta0": float(theta0), "rare_pose": rare,
            "poses": poses}


def sample_scene(rng, n, width, height, still=False):
    """One video's plan: objects with their per-frame poses and per-frame camera effects."""
    num_classes = len(class_list())
    count = int(rng.integers(1, 4)) if still else int(rng.integers(2, 5))
    objects = []
    for track_id in range(count):
        obj = sample_object(rng, int(rng.integers(1, num_classes + 1)), n, width, height, still)
        obj["track_id"] = track_id
        obj["z"] = float(rng.random())
        objects.append(obj)
    gain = 1 + 0.03 * rng.standard_normal(n)
    defocus = np.zeros(n)
    if not still:
        if rng.random() < 0.35:                                   # illumination change
            start, length = rng.integers(0, n - 6), rng.integers(10, 18)
            peak = rng.choice([-rng.uniform(0.5, 0.68), rng.uniform(0.6, 0.9)], p=[0.7, 0.3])
            gain = gain + _ramp(n, start, length, peak)
        if rng.random() < 0.55:                                   # defocus
            start, length = rng.integers(0, n - 6), rng.integers(10, 20)
            defocus = _ramp(n, start, length, rng.uniform(1.8, 2.6), sharpness=3.0)
    occluders = []
    if not still and rng.random() < 0.3:                          # a static post in front
        x1 = int(rng.integers(10, width - 20))
        occluders.append({"x1": x1, "x2": x1 + int(rng.integers(5, 10)),
                          "colour": [float(c) for c in rng.uniform(0.1, 0.4, 3)]})
    frames = [{"gain": float(gain[t]), "defocus": float(defocus[t])} for t in range(n)]
    return {"width": width, "height": height, "num_frames": n, "objects": objects, "frames": frames,
            "occluders": occluders, "background_seed": int(rng.integers(0, 2 ** 31 - 1))}


# --------------------------------------------------------------------------- annotation
def annotate_frame(scene, t, alphas):
    """Boxes, tags and occlusion flags of frame ``t`` from the rendered coverage."""
    w, h = scene["width"], scene["height"]
    order = sorted(scene["objects"], key=lambda o: o["z"])
    posts = np.zeros((h, w), np.float32)
    for bar in scene["occluders"]:
        posts[:, int(bar["x1"]):int(bar["x2"])] = 1
    frame = scene["frames"][t]
    out = []
    for i, obj in enumerate(order):
        pose = obj["poses"][t]
        if pose is None:
            continue
        bx1, by1, bx2, by2 = object_box(obj, pose)
        full = (bx2 - bx1) * (by2 - by1)
        cx1, cy1, cx2, cy2 = max(bx1, 0), max(by1, 0), min(bx2, w), min(by2, h)
        if cx2 - cx1 < 4 or cy2 - cy1 < 4:
            continue
        truncated = 1 - (cx2 - cx1) * (cy2 - cy1) / full
        # coverage by everything in front: later objects and the posts
        front = posts.copy()
        for other in alphas[i + 1:]:
            front = 1 - (1 - front) * (1 - other)
        area = alphas[i].sum()
        occluded = float((alphas[i] * front).sum() / area) if area > 0 else 1.0
        if truncated > 0.7 or occluded > 0.85 or area < 12:
            continue  # too little of it is visible to be annotated
        tags = []
        if pose[6] >= TAG_BLUR_LEN:
            tags.append("motion_blur")
        if frame["defocus"] >= TAG_DEFOCUS:
            tags.append("defocus")
        if occluded >= 0.25:
            tags.append("occlusion")
        if truncated >= 0.25:
            tags.append("truncation")
        if abs(pose[2] - obj["theta0"]) > 0.6 or not 0.75 <= pose[3] <= 1.35:
            tags.append("rare_pose")
        if not 0.6 <= frame["gain"] <= 1.4:
            tags.append("illumination")
        # inclusive pixel corners, as in the VID XML
        box = (int(math.floor(cx1)), int(math.floor(cy1)), int(math.ceil(cx2)) - 1, int(math.ceil(cy2)) - 1)
        out.append({"track_id": obj["track_id"], "class_index": obj["class_index"], "box": box,
                    "occluded": int(occluded >= 0.25), "tags": tags})
    return out


def annotation_xml(folder, filename, width, height, objects, wnids):
    lines = ["<annotation>", f"\t<folder>{folder}</folder>", f"\t<filename>{filename}</filename>",
             "\t<source><database>minivod data_small</database></source>",
             f"\t<size><width>{width}</width><height>{height}</height></size>"]
    for o in objects:
        x1, y1, x2, y2 = o["box"]
        lines += ["\t<object>", f"\t\t<trackid>{o['track_id']}</trackid>",
                  f"\t\t<name>{wnids[o['class_index'] - 1]}</name>",
                  f"\t\t<bndbox><xmax>{x2}</xmax><xmin>{x1}</xmin><ymax>{y2}</ymax><ymin>{y1}</ymin></bndbox>",
                  f"\t\t<occluded>{o['occluded']}</occluded>", "\t\t<generated>0</generated>",
                  f"\t\t<degradations>{' '.join(o['tags'])}</degradations>", "\t</object>"]
    lines.append("</annotation>")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- writing
def write_video(root, kind, split, name, scene, wnids, degrade=True):
    """Render and write every frame of one scene; returns the per-frame annotations."""
    data_dir = root / "Data" / kind / split / name
    anno_dir = root / "Annotations" / kind / split / name
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    anno_dir.parent.mkdir(parents=True, exist_ok=True)
    annos = []
    for t in range(scene["num_frames"]):
        image, alphas = render_frame(scene, t, degrade=degrade)
        objects = annotate_frame(scene, t, alphas)
        stem = f"{t:06d}" if kind == "VID" else ""
        img_path = data_dir / f"{stem}.JPEG" if stem else data_dir.with_suffix(".JPEG")
        xml_path = anno_dir / f"{stem}.xml" if stem else anno_dir.with_suffix(".xml")
        img_path.parent.mkdir(parents=True, exist_ok=True)
        xml_path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(img_path, quality=JPEG_QUALITY, subsampling=0)
        xml_path.write_text(annotation_xml(name, stem or name, scene["width"], scene["height"], objects, wnids))
        annos.append(objects)
    return annos


def generate(out, seed=0, train_videos=40, val_videos=48, frames=48, val_frames=None, det_images=160,
             width=160, height=120, progress=True):
    """Write a complete dataset to ``out``; returns its statistics (also written as stats.json).

    ``frames`` is the length of a training video, ``val_frames`` of a validation one
    (None: the same): many shorter val videos give the paired bootstrap over videos
    more units to resample for the same number of frames. Rendering runs on one thread,
    so the files are the same on any machine (a multi-threaded blur sums in another order).
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _generate(out, seed, train_videos, val_videos, frames, val_frames, det_images, width, height, progress)
    finally:
        torch.set_num_threads(threads)


def _generate(out, seed, train_videos, val_videos, frames, val_frames, det_images, width, height, progress):
    val_frames = frames if val_frames is None else val_frames
    length = {"train": frames, "val": val_frames}
    from tqdm import tqdm

    from minivod.data.stats import dataset_stats, write_stats

    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    names = class_names()
    wnids = [class_wnid(k) for k in range(1, len(names) + 1)]
    (root / "map_vid.txt").write_text("".join(f"{w} {k} {n}\n" for k, (w, n) in enumerate(zip(wnids, names), 1)))
    jobs = [("train", i) for i in range(train_videos)] + [("val", i) for i in range(val_videos)]
    scenes = {}
    for split, i in jobs:  # plan every scene first, so the counts don't change the draws
        scenes[(split, i)] = sample_scene(rng, length[split], width, height)
    stills = [sample_scene(rng, 1, width, height, still=True) for _ in range(det_images)]
    lists = {"train": [], "val": []}
    bar = tqdm(total=len(jobs) + det_images, desc="generate-data", disable=not progress)
    for split, i in jobs:
        name = f"minivod_{split}_{i:08d}"
        scene = scenes[(split, i)]
        write_video(root, "VID", split, name, scene, wnids)
        scene_path = root / "Scenes" / "VID" / split / f"{name}.json"
        scene_path.parent.mkdir(parents=True, exist_ok=True)
        scene_path.write_text(json.dumps(_round(scene), separators=(",", ":")))
        lists[split] += [f"{name}/{t:06d}" for t in range(length[split])]
        bar.update()
    det_lines = []
    for j, scene in enumerate(stills):
        name = f"minidet_{j:08d}"
        write_video(root, "DET", "train", name, scene, wnids)
        det_lines.append(name)
        bar.update()
    bar.close()
    for split, frame_ids in lists.items():
        path = root / "ImageSets" / "VID" / f"{split}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"{f} {k}\n" for k, f in enumerate(frame_ids, 1)))
    det_path = root / "ImageSets" / "DET" / "train_30classes.txt"
    det_path.parent.mkdir(parents=True, exist_ok=True)
    det_path.write_text("".join(f"{f} {k}\n" for k, f in enumerate(det_lines, 1)))
    settings = dict(seed=seed, train_videos=train_videos, val_videos=val_videos, frames=frames,
                    val_frames=val_frames, det_images=det_images, width=width, height=height)
    stats = dataset_stats(root)
    write_stats(root, stats, settings)
    return stats


def _round(obj, nd=4):
    """Round floats in a scene so its JSON stays small (and identical across runs)."""
    if isinstance(obj, float):
        return round(obj, nd)
    if isinstance(obj, dict):
        return {k: _round(v, nd) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_round(v, nd) for v in obj]
    return obj


DATA_SMALL_VAL_FRAMES = 32  # data_small's validation videos are shorter than its training ones


def generate_data_small(out, progress=True) -> dict:
    """Write data_small itself (the committed dataset: seed 0 and the command's defaults) to ``out``."""
    return generate(out, seed=0, val_frames=DATA_SMALL_VAL_FRAMES, progress=progress)


def load_scene(root, split, snippet):
    """The stored scene of a data_small video (for its ground-truth flow)."""
    path = Path(root) / "Scenes" / "VID" / split / f"{snippet}.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no scene file (only generated datasets carry ground-truth flow)")
    return json.loads(path.read_text())


def add_parser(subparsers):
    p = subparsers.add_parser(
        "generate-data", help="write the synthetic data_small dataset in the ImageNet VID layout",
        description="Render a synthetic video dataset in the exact ImageNet VID layout (Data/, Annotations/, "
                    "ImageSets/, map_vid.txt), plus DET-style stills, per-video scene files for ground-truth "
                    "optical flow, stats.json and a README with the counts. The same --seed gives the same files.")
    p.add_argument("--out", required=True, help="output folder (the dataset root)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0, the committed data_small)")
    p.add_argument("--train-videos", type=int, default=40)
    p.add_argument("--val-videos", type=int, default=48)
    p.add_argument("--frames", type=int, default=48, help="frames per training video")
    p.add_argument("--val-frames", type=int, default=DATA_SMALL_VAL_FRAMES, help="frames per validation video")
    p.add_argument("--det-images", type=int, default=160, help="DET-style still images for training")
    p.add_argument("--width", type=int, default=160)
    p.add_argument("--height", type=int, default=120)
    p.set_defaults(func=_run)


def _run(args):
    stats = generate(args.out, seed=args.seed, train_videos=args.train_videos, val_videos=args.val_videos,
                     frames=args.frames, val_frames=args.val_frames, det_images=args.det_images, width=args.width, height=args.height)
    for split in ("train", "val"):
        s = stats[split]
        print(f"{split}: {s['videos']} videos, {s['frames']} frames, {s['boxes']} boxes, "
              f"speed groups {s['speed_groups']}")
    print(f"wrote {args.out}")

