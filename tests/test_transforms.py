"""Clip augmentation keeps the frames of a clip consistent with each other."""
import numpy as np
import torch

from minivod.data.transforms import ClipTransform, hflip, random_expand, random_iou_crop


def _clip():
    """Three frames, each with a bright square of track 7 at a known place (and one of track 9)."""
    images = torch.zeros(3, 3, 60, 80)
    targets = []
    for t in range(3):
        x = 10 + 5 * t
        images[t, :, 20:35, x:x + 15] = 1.0
        targets.append({"boxes": torch.tensor([[x, 20, x + 15, 35], [50, 5, 70, 20]], dtype=torch.float32),
                        "labels": torch.tensor([1, 2]), "track_ids": torch.tensor([7, 9])})
    return images, targets


def _box_matches_pixels(image, box):
    x1, y1, x2, y2 = box.round().long().tolist()
    inside = image[0, y1:y2, x1:x2]  # continuous boxes: [x1, x2) x [y1, y2)
    ring = image[0, max(y1 - 1, 0):y2 + 1, max(x1 - 1, 0):x2 + 1]
    return inside.float().mean() > 0.8 and ring.float().sum() - inside.float().sum() < 0.3 * ring.numel()


def test_flip_expand_crop_keep_boxes_on_their_pixels():
    images, targets = _clip()
    rng = np.random.default_rng(0)
    for _ in range(20):
        im, tg = random_expand(images, targets, rng)
        im, tg = random_iou_crop(im, tg, rng)
        im, tg = hflip(im, tg)
        for t in range(3):
            for box, tid in zip(tg[t]["boxes"], tg[t]["track_ids"]):
                if tid == 7 and (box[2] - box[0]) > 6 and (box[3] - box[1]) > 6:
                    assert _box_matches_pixels(im[t] > 0.99, box)


def test_same_draw_for_every_frame():
    images, targets = _clip()
    images = images.repeat(1, 1, 1, 1)
    same = images[:1].repeat(3, 1, 1, 1)
    tg = [targets[0]] * 3
    out, out_t = ClipTransform(80, train=True, seed=5)(same, tg)
    assert torch.equal(out[0], out[1]) and torch.equal(out[1], out[2])
    assert all(torch.equal(out_t[0]["boxes"], o["boxes"]) for o in out_t)
    # track ids stay attached to their boxes
    assert all(set(o["track_ids"].tolist()) <= {7, 9} for o in out_t)


def test_resize_scales_boxes():
    images, targets = _clip()
    out, tg = ClipTransform(120, train=False)(images, targets)
    assert out.shape[-2:] == (120, 160)
    assert torch.allclose(tg[0]["boxes"][0], torch.tensor([20.0, 40, 50, 70]))
