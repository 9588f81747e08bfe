"""minivod.eval.attention: RoIs labelled by track, weight rows split by group, columns grouped, inputs captured."""
import math

import torch
from torch import nn

from minivod.eval.attention import InputCapture, group_columns, mass_by_track, track_of


def test_track_of_needs_half_overlap():
    gt = torch.tensor([[0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0]])
    ids = torch.tensor([7, 3])
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0],     # exactly track 7
                          [21.0, 21.0, 31.0, 31.0],   # IoU 81/119 = 0.68 with track 3
                          [0.0, 0.0, 10.0, 4.0],      # IoU 0.4 with track 7: background
                          [50.0, 50.0, 60.0, 60.0]])  # nowhere
    assert track_of(boxes, gt, ids).tolist() == [7, 3, -1, -1]
    assert track_of(boxes, gt[:0], ids[:0]).tolist() == [-1, -1, -1, -1]
    assert track_of(boxes[:0], gt, ids).shape == (0,)


def test_mass_by_track_by_hand():
    # two reference RoIs (tracks 1 and -1) over five neighbours: the two references first, then
    # a support RoI on track 1, one on track 2, one on background
    w = torch.tensor([[0.1, 0.2, 0.3, 0.15, 0.25],
                      [0.2, 0.2, 0.2, 0.2, 0.2]])
    ref = torch.tensor([1, -1])
    nb = torch.tensor([1, -1, 1, 2, -1])
    m = mass_by_track(w, ref, nb, self_columns=torch.arange(2))
    row = {k: float(v[0]) for k, v in m.items()}
    expected = {"same_object": 0.3, "itself": 0.1, "other_objects": 0.15, "background": 0.2 + 0.25,
                "uniform": 1 / 5}  # uniform: one neighbour of five on track 1, itself left out
    assert all(math.isclose(row[k], v, abs_tol=1e-6) for k, v in expected.items()), row
    assert math.isclose(sum(row[k] for k in ("same_object", "itself", "other_objects", "background")), 1.0,
                        abs_tol=1e-6)
    assert all(math.isnan(v[1]) for v in m.values())  # a row off every object has no same object


def test_mass_by_track_without_self_columns_counts_every_match():
    w = torch.tensor([[0.5, 0.5]])
    m = mass_by_track(w, torch.tensor([4]), torch.tensor([4, 4]))
    assert math.isclose(float(m["same_object"][0]), 1.0, abs_tol=1e-6) and float(m["itself"][0]) == 0


def test_group_columns_sums_by_track_and_frame_background_last():
    w = torch.tensor([[0.1, 0.2, 0.3, 0.4]])
    tracks = torch.tensor([-1, 2, 0, 2])
    frames = torch.tensor([1, 1, 0, 1])
    grouped, groups = group_columns(w, tracks, frames)
    assert groups == [(0, 0), (2, 1), (-1, 1)]
    assert torch.allclose(grouped, torch.tensor([[0.3, 0.6, 0.1]]))


def test_input_capture_records_and_then_lets_go():
    layers = nn.ModuleList([nn.Linear(3, 3), nn.Linear(3, 2)])
    x = torch.randn(4, 3)
    with InputCapture(layers) as cap:
        layers[1](layers[0](x))
    assert [k for k, _ in cap.calls] == [0, 1]
    assert torch.equal(cap.calls[0][1][0], x)
    layers[0](x)  # hooks removed: nothing more is recorded
    assert len(cap.calls) == 2
