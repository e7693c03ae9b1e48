"""torch.distributed for the runner: set up from torchrun's environment (gloo on CPU, NCCL on GPUs),
rank-0 checks, reductions of metrics, and the resumable DistributedSampler the loop iterates."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Iterator

import torch
import torch.distributed as dist
from torch.utils.data import Dataset, DistributedSampler, Sampler


@dataclass
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def init_world(device_pref: str) -> World:
    """torchrun sets WORLD_SIZE/RANK/LOCAL_RANK: join the process group (gloo on CPU, nccl on CUDA)."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and device_pref != "cpu"
    if not dist.is_initialized():
        if use_cuda:
            torch.cuda.set_device(local)
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return World(rank, size, local)


def barrier(world: World) -> None:
    if world.distributed:
        dist.barrier()


def all_reduce_sum(values: list[float], world: World) -> list[float]:
    """Element-wise sum of ``values`` over every rank."""
    if not world.distributed:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.tolist()


def broadcast(obj: Any, world: World) -> Any:
    """Rank 0's ``obj`` on every rank."""
    if not world.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def shutdown(world: World) -> None:
    if world.distributed and dist.is_initialized():
        dist.destroy_process_group()


class ResumableBatchSampler(Sampler[list[int]]):
    """Batches of this rank's share of a :class:`DistributedSampler` permutation (seeded by seed and
    epoch), starting at batch ``start``: the data position a checkpoint records. Trailing batches smaller
    than ``min_batch`` are dropped (BatchNorm needs 2 samples); ``drop_last`` drops any short one."""

    def __init__(self, dataset: Dataset, batch_size: int, world: World, seed: int, shuffle: bool = True,
                 drop_last: bool | str = "auto"):
        self.inner = DistributedSampler(dataset, num_replicas=world.size, rank=world.rank, shuffle=shuffle,
                                        seed=seed, drop_last=False)
        self.batch_size = batch_size
        self.min_batch = batch_size if drop_last is True else (2 if drop_last == "auto" else 1)
        self.start = 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.inner.set_epoch(epoch)
        self.start = start

    def _batches(self) -> list[list[int]]:
        idx = list(self.inner)
        out = [idx[i:i + self.batch_size] for i in range(0, len(idx), self.batch_size)]
        return [b for b in out if len(b) >= min(self.min_batch, len(idx))]

    def batches_per_epoch(self) -> int:
        return len(self._batches())

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self._batches()[self.start:])

    def __len__(self) -> int:
        return max(self.batches_per_epoch() - self.start, 0)


class SeededDataset(Dataset):
    """Makes per-sample augmentation a function of (seed, epoch, index), whatever the worker count or a
    resume: before each item, a MONAI transform (``dataset.transform.set_random_state``) or the dataset's
    own ``set_sample_seed`` hook is seeded."""

    def __init__(self, base: Dataset, seed: int):
        self.base, self.seed, self.epoch = base, seed, 0

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> Any:
        s = (self.seed * 1_000_003 + self.epoch * 10_007 + int(i)) % (2 ** 32)
        if hasattr(self.base, "set_sample_seed"):
            self.base.set_sample_seed(s)
        else:
            tf = getattr(self.base, "transform", None)
            if tf is not None and hasattr(tf, "set_random_state"):
                tf.set_random_state(seed=s)
        return self.base[i]
