"""The README's worked example ("How a method plugs in") runs as written and its aggregator is used."""
import re
from pathlib import Path

import torch

import minivod.methods

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_example() -> str:
    """The ```python blocks of the README's "How a method plugs in" section, in order."""
    text = README.read_text()
    section = text.split("## How a method plugs in", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 3, "the worked example is three steps: aggregator, builder, spec"
    return "\n".join(blocks)


def test_readme_example_runs_and_aggregates():
    torch.manual_seed(0)
    scope = {"__name__": "readme_example"}
    try:
        exec(compile(readme_example(), str(README), "exec"), scope)
        spec = minivod.methods.get_method("similar_mean")
        model = scope["model"]
        assert model.aggregates_rois and len(model.roi_aggregators) == len(model.cfg.box_fc_dims)
        det = scope["detections"][0]
        assert det["boxes"].shape[1] == 4 and len(det["boxes"]) == len(det["scores"]) == len(det["labels"])
        assert spec.train_support == 2 and spec.test_support == 8

        # the aggregator sees the support RoIs and trains: a loss on a clip reaches its weights
        model.train()
        clip = torch.rand(1, 3, 3, 120, 160)  # (B, T, 3, H, W)
        target = [{"boxes": torch.tensor([[20.0, 30.0, 70.0, 90.0]]), "labels": torch.tensor([1])}]
        seen = []
        hook = model.roi_aggregators[0].register_forward_hook(lambda m, args, out: seen.append(args[1].shape[0]))
        losses = model(clip, target)
        hook.remove()
        sum(losses.values()).backward()
        assert seen and seen[0] > 0  # support RoIs reached the first aggregator
        assert model.roi_aggregators[-1].out.weight.grad.abs().sum() > 0
    finally:
        minivod.methods.METHODS.pop("similar_mean", None)
