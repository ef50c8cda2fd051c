"""Where a process sits among torchrun's ranks, joining the group, sharding rows, and the
collectives `fit_distributed` uses (each a no-op in one process)."""

from __future__ import annotations

import contextlib
import datetime
import os
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

from probes._validation import bad_argument

__all__ = ["DistEnv", "distributed_env", "process_group", "shard_indices"]


@dataclass(frozen=True)
class DistEnv:
    """Where this process sits: `rank` of `world_size`, `local_rank` on its machine."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def distributed_env() -> DistEnv:
    """This process's place, from an initialised process group or torchrun's variables."""
    try:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return DistEnv(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    rank = int(os.environ.get("RANK", "0") or 0)
    return DistEnv(rank, world, int(os.environ.get("LOCAL_RANK", "0") or 0))


@contextlib.contextmanager
def process_group(backend: str | None = None, *, init_method: str | None = None, rank: int | None = None,
                  world_size: int | None = None, timeout_s: float = 300.0) -> Iterator[DistEnv]:
    """Join (and afterwards leave) the process group torchrun describes, or the one given.

    Does nothing for a single process. Backend: NCCL when CUDA is available, else gloo. An
    already initialised group is used as is and left alone.
    """
    import torch
    import torch.distributed as dist

    env = distributed_env()
    world = world_size if world_size is not None else env.world_size
    if dist.is_initialized() or world <= 1:
        yield distributed_env() if dist.is_initialized() else DistEnv(0, 1, 0)
        return
    backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
    dist.init_process_group(backend, init_method=init_method or "env://",
                            rank=rank if rank is not None else env.rank, world_size=world,
                            timeout=datetime.timedelta(seconds=timeout_s))
    try:
        yield distributed_env()
    finally:
        dist.destroy_process_group()


def shard_indices(n: int, rank: int, world_size: int) -> np.ndarray:
    """Rows `i % world_size == rank`, padded by wrapping round to `ceil(n / world_size)` rows,
    so that every rank holds the same number of rows and takes the same number of steps."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise bad_argument("rank", rank, f"must be in [0, {world_size})")
    own = np.arange(rank, n, world_size)
    size = -(-n // world_size) if n else 0
    if own.size == 0 and size:
        own = np.arange(n)[rank % n: rank % n + 1]
    if own.size < size:
        own = np.concatenate([own, own[: size - own.size]])
    return own


# -- collectives (no-ops in one process) --------------------------------------------------------
class _Comm:
    def __init__(self, env: DistEnv, device: Any):
        self.env = env
        self.device = device
        self.active = env.world_size > 1

    def mean(self, value: float) -> float:
        if not self.active:
            return value
        import torch
        import torch.distributed as dist

        tensor = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor)
        return float(tensor.item()) / self.env.world_size

    def sum(self, values: list[float]) -> list[float]:
        if not self.active:
            return values
        import torch
        import torch.distributed as dist

        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor)
        return [float(v) for v in tensor.tolist()]

    def max(self, value: float) -> float:
        if not self.active:
            return value
        import torch
        import torch.distributed as dist

        tensor = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
        return float(tensor.item())

    def broadcast(self, obj: Any) -> Any:
        if not self.active:
            return obj
        import torch.distributed as dist

        box = [obj if self.env.is_main else None]
        dist.broadcast_object_list(box, src=0, device=self.device if self.device.type == "cuda" else None)
        return box[0]
