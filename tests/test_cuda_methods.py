"""Every method on CUDA: two training iterations through the engine, then video inference.

Skipped without a GPU (CI has none); run with ``pytest -m cuda`` on a machine that has one.
"""
import pytest
import torch

from minivod.data.generate import generate
from minivod.data.vid import VIDDataset

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

METHODS = ("baseline", "selsa", "dsfnet", "mst", "psla", "ssvd_single", "ssvd")


@pytest.fixture(scope="module")
def small_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("cuda") / "data"
    generate(root, seed=2, train_videos=2, val_videos=1, frames=12, det_images=2, progress=False)
    return root


@pytest.mark.parametrize("method", METHODS)
def test_method_trains_and_detects_on_cuda(method, small_data, tmp_path):
    from minivod.engine.evaluate import predict_dataset
    from minivod.engine.train import TrainConfig, train

    cfg = TrainConfig(iters=2, batch_size=2, warmup_iters=1, checkpoint_every=100, log_every=1, frames_per_video=3)
    model, _ = train(method, "tiny", small_data, tmp_path, cfg, device="cuda", progress=False)
    assert all(p.device.type == "cuda" for p in model.parameters())
    val = VIDDataset(small_data, "val")
    per_video, timing = predict_dataset(model.eval(), method, val, "cuda", progress=False)
    assert len(per_video[0]) == len(val.videos[0])
    assert all(torch.isfinite(d["scores"]).all() for d in per_video[0])
    assert timing["ms_per_frame"] > 0


def test_cpu_deformable_convolutions_match_torchvision_on_cuda():
    """The CPU formulations (MST's DAlign, SSVD's sampling stream) equal torchvision's CUDA kernel."""
    import torchvision

    from minivod.models.deform_conv import deform_conv2d
    from minivod.methods.ssvd import DeformConv3x3

    torch.manual_seed(0)
    x = torch.randn(2, 8, 9, 11)  # (N, C, h, w)
    offset = 1.5 * torch.randn(2, 2 * 4 * 9, 9, 11)  # 4 offset groups, 3x3 taps
    weight, bias = torch.randn(6, 8, 3, 3), torch.randn(6)
    cpu = deform_conv2d(x, offset, weight, bias, padding=1)
    gpu = torchvision.ops.deform_conv2d(x.cuda(), offset.cuda(), weight.cuda(), bias.cuda(), padding=(1, 1))
    torch.testing.assert_close(cpu, gpu.cpu(), atol=1e-4, rtol=1e-4)
    conv = DeformConv3x3(8)
    torch.testing.assert_close(conv(x, offset), conv.cuda()(x.cuda(), offset.cuda()).cpu(), atol=1e-4, rtol=1e-4)
