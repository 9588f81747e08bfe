"""The flow colour wheel (minivod.flow_colours): hue is the direction, brightness the length."""
from __future__ import annotations

import matplotlib.colors as mcolors
import numpy as np
import torch

from minivod.flow_colours import colour_wheel, flow_colours


def test_direction_is_hue_and_length_is_brightness():
    flow = np.zeros((2, 1, 5), np.float32)
    flow[:, 0, 0] = (2, 0)  # right, full length
    flow[:, 0, 1] = (0, 1)  # down, half length
    flow[:, 0, 2] = (-2, 0)  # left
    flow[:, 0, 3] = (0, -2)  # up
    hsv = mcolors.rgb_to_hsv(flow_colours(flow, max_magnitude=2.0))[0]  # (5, 3)
    np.testing.assert_allclose(hsv[:4, 0], [0.0, 0.25, 0.5, 0.75], atol=1e-6)  # right, down, left, up
    np.testing.assert_allclose(hsv[:, 2], [1.0, 0.5, 1.0, 1.0, 0.0], atol=1e-6)
    assert np.all(flow_colours(flow)[0, 4] == 0)  # no motion is black
    np.testing.assert_allclose(flow_colours(torch.from_numpy(flow), 2.0), flow_colours(flow, 2.0))
    assert flow_colours(4 * flow, 2.0)[0, 1].max() == 1.0  # longer than the scale: clipped to full


def test_the_key_shows_the_flow_of_its_position():
    key = colour_wheel(3.0, size=61)  # (61, 61, 4), one pixel per 0.1
    assert key.shape == (61, 61, 4)
    assert key[30, 30, 3] == 1 and np.all(key[30, 30, :3] == 0)  # the centre: no motion
    assert key[0, 0, 3] == 0 and key[30, 60, 3] == 1  # a corner is outside the disc, the right edge inside
    r, c = 30 + 20, 30 - 10  # 2.0 down and 1.0 left of the centre
    np.testing.assert_allclose(key[r, c, :3], flow_colours(np.array([[[-1.0]], [[2.0]]]), 3.0)[0, 0], atol=1e-6)
