"""The class oracle: relabels by the track's majority class, merges the duplicates it makes."""
from types import SimpleNamespace

import numpy as np
import torch

from minivod.eval.oracle import class_oracle, track_classes


class _Frame(SimpleNamespace):
    def __len__(self):
        return len(self.boxes)


def test_relabels_to_the_majority_class_and_merges_duplicates():
    box = [10, 10, 29, 29]
    frames = [_Frame(index=i + 1, boxes=np.array([box], np.float32), labels=np.array([label]),
                     track_ids=np.array([0])) for i, label in enumerate([3, 3, 4])]
    video = SimpleNamespace(frames=frames)
    assert track_classes(video) == {0: 3}
    dets = {
        1: (torch.tensor([[10.0, 10, 29, 29]]), torch.tensor([0.9]), torch.tensor([4])),        # wrong class: fixed
        2: (torch.tensor([[10.0, 10, 29, 29], [11.0, 10, 29, 30]]), torch.tensor([0.8, 0.6]),
            torch.tensor([3, 4])),                                                              # duplicate: merged
        3: (torch.tensor([[60.0, 60, 79, 79]]), torch.tensor([0.7]), torch.tensor([5])),        # on nothing: kept
    }
    out = class_oracle(dets, SimpleNamespace(videos=[video]))
    assert out[1][2].tolist() == [3]
    assert out[2][2].tolist() == [3] and out[2][1].tolist() == [torch.tensor(0.8).item()]
    assert out[3][2].tolist() == [5] and torch.equal(out[3][0], dets[3][0])
