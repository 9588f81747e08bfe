"""One DDP step on two gloo processes (started by tests/test_engine.py through torchrun)."""
import os
import sys

import torch
import torch.distributed as dist


def make_model():
    from minivod.methods import build_model

    torch.manual_seed(0)
    return build_model("baseline", "tiny", 8).train()


def clip_batch(rank):
    """A fixed one-clip batch per rank: (1, 1, 3, 120, 160) with two boxes."""
    g = torch.Generator().manual_seed(rank)
    images = torch.rand(1, 1, 3, 120, 160, generator=g)
    targets = [{"boxes": torch.tensor([[10.0, 20, 50, 60], [80, 30, 120, 90]]) + rank,
                "labels": torch.tensor([1 + rank, 3])}]
    return images, targets


def loss_of(model, images, targets, seed):
    torch.manual_seed(seed)  # the RPN / RoI samplers draw from torch's generator
    losses = model(images, targets)
    return sum(losses.values())


if __name__ == "__main__":
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    model = make_model()
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    loss_of(ddp, *clip_batch(rank), seed=100 + rank).backward()
    if rank == 0:
        torch.save({n: p.grad for n, p in model.named_parameters() if p.grad is not None}, sys.argv[1])
    dist.barrier()  # leave together: a peer that exits early can abort the other's gloo connection
    dist.destroy_process_group()
    sys.stdout.flush()
    os._exit(0)  # skip interpreter teardown, where gloo's threads can abort the process ("terminate called ...")
