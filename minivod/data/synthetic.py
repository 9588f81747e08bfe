"""The synthetic world behind ``data_small``: shapes, textures, rendering and flow.

A *scene* is a plain dict (stored as JSON beside the dataset) that says, for one
video, what each object is and where it is in every frame. This file turns a
scene into pixels, boxes, degradation tags and ground-truth optical flow; the
choice of scenes (motion, degradations, counts) lives in ``generate.py``.

The classes come in pairs that share a silhouette and a colour and differ only
in a fine texture (stripes against a checkerboard, both with a 2-pixel cell and
the same mean brightness). Motion blur, defocus and dim light wash the texture
out, and then the two classes of a pair look the same: a degraded frame is
genuinely ambiguous on its own, while sharp frames of the same object elsewhere
in the video are not. That is the premise of the papers minivod implements.

Coordinates: pixel ``i`` covers ``[i, i + 1)``; an object's pose maps its local
coordinates ``q`` (unit size, centred) to the image: ``p = c + s * R(theta) q``.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

SHAPES = ("disc", "square", "triangle", "cross")
TEXTURES = ("striped", "checked")
# One colour per silhouette, so the two classes of a pair share it.
SHAPE_COLOURS = {
    "disc": (0.85, 0.30, 0.25),
    "square": (0.25, 0.70, 0.35),
    "triangle": (0.30, 0.45, 0.90),
    "cross": (0.90, 0.75, 0.20),
}
TEXTURE_CELL = 2.0  # texture cell size in pixels at scale 1 (period 4 px)
SUPERSAMPLE = 2


def class_list():
    """The (shape, texture) pair of each class, in class-index order (index = position + 1)."""
    return [(s, t) for s in SHAPES for t in TEXTURES]


# --------------------------------------------------------------------------- geometry
def _polygon(shape):
    """Vertices (V, 2) of a polygonal silhouette in local units (radius ~1)."""
    if shape == "square":
        return np.array([[-0.8, -0.8], [0.8, -0.8], [0.8, 0.8], [-0.8, 0.8]])
    if shape == "triangle":
        a = np.deg2rad([-90, 30, 150])
        return np.stack([np.cos(a), np.sin(a)], 1) * 1.0
    if shape == "cross":
        w, l = 0.35, 1.0
        return np.array([[-w, -l], [w, -l], [w, -w], [l, -w], [l, w], [w, w],
                         [w, l], [-w, l], [-w, w], [-l, w], [-l, -w], [-w, -w]])
    raise ValueError(shape)


def _inside(shape, u, v):
    """Silhouette test in local coordinates (any array shape)."""
    if shape == "disc":
        return u * u + v * v <= 0.9 ** 2
    if shape == "square":
        return (np.abs(u) <= 0.8) & (np.abs(v) <= 0.8)
    if shape == "triangle":
        # inside all three half-planes of the triangle with vertices at -90, 30, 150 deg
        inside = np.ones_like(u, dtype=bool)
        for ang in (90.0, 210.0, 330.0):  # outward normals
            n = np.deg2rad(ang)
            inside &= u * np.cos(n) + v * np.sin(n) <= 0.5
        return inside
    if shape == "cross":
        return ((np.abs(u) <= 0.35) & (np.abs(v) <= 1.0)) | ((np.abs(v) <= 0.35) & (np.abs(u) <= 1.0))
    raise ValueError(shape)


def _texture(texture, u_px, v_px):
    """Fine pattern in {0, 1}, both textures with mean 0.5 (so blur makes them equal)."""
    a = np.floor(u_px / TEXTURE_CELL).astype(np.int64)
    b = np.floor(v_px / TEXTURE_CELL).astype(np.int64)
    if texture == "striped":
        return (a % 2).astype(np.float32)
    return ((a + b) % 2).astype(np.float32)


def object_box(obj, pose):
    """Tight box of the silhouette, float ``(x1, y1, x2, y2)`` in continuous pixels (unclipped)."""
    cx, cy, theta, scale = pose[:4]
    r = obj["size"] * scale
    if obj["shape"] == "disc":
        return np.array([cx - 0.9 * r, cy - 0.9 * r, cx + 0.9 * r, cy + 0.9 * r])
    c, s = math.cos(theta), math.sin(theta)
    q = _polygon(obj["shape"]) * r
    px = cx + c * q[:, 0] - s * q[:, 1]
    py = cy + s * q[:, 0] + c * q[:, 1]
    return np.array([px.min(), py.min(), px.max(), py.max()])


def _to_local(obj, pose, x, y):
    """Image points -> local silhouette units and texture pixels (rotating with the object)."""
    cx, cy, theta, scale = pose[:4]
    c, s = math.cos(theta), math.sin(theta)
    dx, dy = x - cx, y - cy
    ur = c * dx + s * dy  # rotate by -theta, still in pixels
    vr = -s * dx + c * dy
    r = obj["size"] * scale
    # the texture scales with the object, so its pixel period is TEXTURE_CELL * scale
    return ur / r, vr / r, ur / scale, vr / scale


# --------------------------------------------------------------------------- rendering
def _line_kernel(vx, vy, length, sigma):
    """Motion-blur kernel: a line of ``length`` px along (vx, vy), convolved with a Gaussian."""
    radius = int(math.ceil(length / 2 + 3 * sigma)) + 1
    ys, xs = np.mgrid[-radius:radius + 1, -radius:radius + 1].astype(np.float64)
    norm = math.hypot(vx, vy) or 1.0
    k = np.zeros_like(xs)
    n = max(2, int(math.ceil(length * 4)))
    for tt in np.linspace(-0.5, 0.5, n):  # sum of Gaussians along the segment
        px, py = tt * length * vx / norm, tt * length * vy / norm
        k += np.exp(-((xs - px) ** 2 + (ys - py) ** 2) / (2 * max(sigma, 0.3) ** 2))
    return (k / k.sum()).astype(np.float32)


def _blur(img, kernel):
    """Convolve an (C, H, W) array with a 2-D kernel, zero padding."""
    t = torch.from_numpy(np.ascontiguousarray(img))[None]  # (1, C, H, W)
    k = torch.from_numpy(kernel)[None, None].repeat(img.shape[0], 1, 1, 1)  # (C, 1, kh, kw)
    out = F.conv2d(t, k, padding=(kernel.shape[0] // 2, kernel.shape[1] // 2), groups=img.shape[0])
    return out[0].numpy()


def gaussian_kernel(sigma):
    radius = max(1, int(math.ceil(3 * sigma)))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    g = np.exp(-x ** 2 / (2 * sigma ** 2))
    k = np.outer(g, g)
    return (k / k.sum()).astype(np.float32)


def render_object_layer(obj, pose, width, height, blur=True):
    """Premultiplied colour (3, H, W) and coverage alpha (H, W) of one object."""
    ss = SUPERSAMPLE
    x1, y1, x2, y2 = object_box(obj, pose)
    pad = 2 + (int(math.ceil(abs(pose[4]) + abs(pose[5]))) * 3 if blur else 0)
    bx1, by1 = max(int(math.floor(x1)) - pad, 0), max(int(math.floor(y1)) - pad, 0)
    bx2, by2 = min(int(math.ceil(x2)) + pad, width), min(int(math.ceil(y2)) + pad, height)
    colour = np.zeros((3, height, width), np.float32)
    alpha = np.zeros((height, width), np.float32)
    if bx2 <= bx1 or by2 <= by1:
        return colour, alpha
    ys = by1 + (np.arange((by2 - by1) * ss) + 0.5) / ss
    xs = bx1 + (np.arange((bx2 - bx1) * ss) + 0.5) / ss
    gy, gx = np.meshgrid(ys, xs, indexing="ij")  # (h*ss, w*ss)
    u, v, tu, tv = _to_local(obj, pose, gx, gy)
    mask = _inside(obj["shape"], u, v).astype(np.float32)
    shade = 0.45 + 0.55 * _texture(obj["texture"], tu, tv)  # texture modulates brightness
    rgb = np.asarray(obj["colour"], np.float32)[:, None, None] * shade[None] * mask[None]
    # average the supersamples: (3, h*ss, w*ss) -> (3, h, w)
    h, w = by2 - by1, bx2 - bx1
    rgb = rgb.reshape(3, h, ss, w, ss).mean((2, 4))
    mask = mask.reshape(h, ss, w, ss).mean((1, 3))
    colour[:, by1:by2, bx1:bx2] = rgb
    alpha[by1:by2, bx1:bx2] = mask
    vx, vy, blur_len, blur_sigma = pose[4], pose[5], pose[6], pose[7]
    if blur and (blur_len > 0.5 or blur_sigma > 0.3):
        kernel = _line_kernel(vx, vy, blur_len, blur_sigma)
        stacked = _blur(np.concatenate([colour, alpha[None]]), kernel)  # (4, H, W)
        colour, alpha = stacked[:3], np.clip(stacked[3], 0, 1)
    return colour, alpha


def render_background(scene):
    """A smooth, per-video background with mild fine clutter, (3, H, W) in [0, 1]."""
    rng = np.random.default_rng(scene["background_seed"])
    h, w = scene["height"], scene["width"]
    coarse = torch.from_numpy(rng.uniform(0.25, 0.65, size=(1, 3, 4, 5)).astype(np.float32))
    bg = F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False)[0].numpy()
    fine = rng.normal(0, 0.02, size=(1, h, w)).astype(np.float32)
    fine = _blur(fine, gaussian_kernel(1.0))
    return np.clip(bg + fine, 0, 1)


def render_frame(scene, t, degrade=True):
    """Render frame ``t`` of a scene.

    Returns:
        image (ndarray[H, W, 3] uint8), and per object: its coverage alpha before
        occlusion (list of (H, W) float) in drawing order.
    """
    h, w = scene["height"], scene["width"]
    canvas = render_background(scene)
    alphas = []
    for obj in sorted(scene["objects"], key=lambda o: o["z"]):
        pose = obj["poses"][t]
        if pose is None:
            alphas.append(np.zeros((h, w), np.float32))
            continue
        colour, alpha = render_object_layer(obj, pose, w, h, blur=degrade)
        canvas = canvas * (1 - alpha[None]) + colour
        alphas.append(alpha)
    for bar in scene.get("occluders", []):  # static foreground posts, not a class
        x1, x2 = int(bar["x1"]), int(bar["x2"])
        canvas[:, :, x1:x2] = np.asarray(bar["colour"], np.float32)[:, None, None]
    if degrade:
        frame = scene["frames"][t]
        canvas = np.clip(canvas * frame["gain"], 0, 1)
        if frame["defocus"] > 0:
            canvas = _blur(canvas, gaussian_kernel(frame["defocus"]))
        noise = np.random.default_rng(scene["background_seed"] * 1000 + t).normal(0, 0.006, canvas.shape)
        canvas = canvas + noise.astype(np.float32)
    image = (np.clip(canvas, 0, 1) * 255 + 0.5).astype(np.uint8).transpose(1, 2, 0)  # (H, W, 3)
    return image, alphas


# --------------------------------------------------------------------------- flow
def gt_flow(scene, t):
    """Ground-truth optical flow from frame ``t`` to ``t + 1``.

    For a pixel ``p`` of frame ``t`` on an object, ``flow[:, y, x]`` is where that
    surface point is in frame ``t + 1`` minus ``p``; the background is static
    (flow 0). Where objects overlap the front one wins. So frame ``t`` is
    reproduced by sampling frame ``t + 1`` at ``p + flow(p)`` (backward warping).

    Returns:
        ndarray[2, H, W] float32 (dx, dy), and a validity mask ndarray[H, W] bool
        (False where the point leaves the image or is hidden by a static occluder).
    """
    h, w = scene["height"], scene["width"]
    flow = np.zeros((2, h, w), np.float32)
    valid = np.ones((h, w), bool)
    gy, gx = np.meshgrid(np.arange(h) + 0.5, np.arange(w) + 0.5, indexing="ij")  # pixel centres
    for obj in sorted(scene["objects"], key=lambda o: o["z"]):
        p0, p1 = obj["poses"][t], obj["poses"][t + 1]
        if p0 is None:
            continue
        u, v, _, _ = _to_local(obj, p0, gx, gy)
        on = _inside(obj["shape"], u, v)
        if p1 is None:
            valid[on] = False
            continue
        r1 = obj["size"] * p1[3]
        c, s = math.cos(p1[2]), math.sin(p1[2])
        x1 = p1[0] + r1 * (c * u - s * v)  # the same local point, posed at t + 1
        y1 = p1[1] + r1 * (s * u + c * v)
        flow[0][on] = (x1 - gx)[on]
        flow[1][on] = (y1 - gy)[on]
        valid[on] = True
    for bar in scene.get("occluders", []):
        valid[:, int(bar["x1"]):int(bar["x2"])] = False
    return flow, valid


def warp_backward(image_next, flow):
    """Sample ``image_next`` (C, H, W) at ``p + flow(p)``: the frame-t view predicted by the flow."""
    c, h, w = image_next.shape
    gy, gx = np.meshgrid(np.arange(h) + 0.5, np.arange(w) + 0.5, indexing="ij")
    # grid_sample's normalised coordinates with align_corners=False: -1 is the left edge of pixel 0
    nx = (gx + flow[0]) / w * 2 - 1
    ny = (gy + flow[1]) / h * 2 - 1
    grid = torch.from_numpy(np.stack([nx, ny], -1).astype(np.float32))[None]  # (1, H, W, 2)
    src = torch.from_numpy(np.ascontiguousarray(image_next, dtype=np.float32))[None]  # (1, C, H, W)
    return F.grid_sample(src, grid, mode="bilinear", align_corners=False)[0].numpy()
