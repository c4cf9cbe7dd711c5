"""torchrun plumbing: gloo on CPU, NCCL on GPU. Single-process runs use no process group. (DDP wrapping, barrier and
all-reduce are optbench.standalone.training's, shared with the submission script.)"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from optbench.errors import OptbenchError


@dataclass(frozen=True)
class DistEnv:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def setup(device: str) -> DistEnv:
    """Read torchrun's env (RANK, WORLD_SIZE, LOCAL_RANK) and start the process group when world_size > 1."""
    ws = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "cuda":
        if not torch.cuda.is_available():
            raise OptbenchError("--device cuda: no CUDA device is available (use --device cpu)")
        dev = torch.device("cuda", local)
        torch.cuda.set_device(dev)
    elif device == "cpu":
        dev = torch.device("cpu")
    else:
        raise OptbenchError(f"--device: {device!r} is not one of cpu, cuda")
    if ws > 1 and not dist.is_initialized():
        if dev.type == "cuda":
            dist.init_process_group(backend="nccl", device_id=dev)
        else:
            dist.init_process_group(backend="gloo")
    return DistEnv(rank, ws, local, dev)


def teardown() -> None:
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def any_rank(flag: bool, env: DistEnv) -> bool:
    """True if the flag is set on any rank (used to stop all ranks together on divergence)."""
    if not env.distributed:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=env.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)
