"""Devices and data-parallel training across processes launched by torchrun.

A process started by `torchrun` sees WORLD_SIZE, RANK and LOCAL_RANK; training then
joins a process group (gloo on CPU, nccl on CUDA), averages gradients across ranks
after every backward pass, and lets only rank 0 evaluate, save and report.
Without torchrun the world is one process and nothing here touches torch.distributed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from ..errors import ParameterError, UserError
from .config import DEVICES


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """`auto` picks CUDA when present, then MPS, else the CPU; an unavailable device is a UserError."""
    if name not in DEVICES:
        raise ParameterError("device", f"{{param}} {name!r}: use one of {', '.join(DEVICES)}")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "mps" if _mps_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ParameterError("device", "{param} cuda: no CUDA device is visible to torch; use cpu")
        return torch.device("cuda", local_rank % max(torch.cuda.device_count(), 1))
    if name == "mps" and not _mps_available():
        raise ParameterError("device", "{param} mps: Apple's MPS backend is not available here; use cpu")
    return torch.device(name)


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())


@dataclass(frozen=True)
class World:
    """Where this process stands among the training processes."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def world_from_env() -> World:
    """The world torchrun describes in the environment (one process when it is absent)."""
    try:
        size = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError:
        raise UserError("WORLD_SIZE, RANK and LOCAL_RANK must be integers (as torchrun sets them)") from None
    if size < 1 or not 0 <= rank < size:
        raise UserError(f"RANK {rank} is outside WORLD_SIZE {size}")
    return World(rank, size, local)


def join(world: World, device: torch.device) -> None:
    """Join the process group: nccl for CUDA, gloo otherwise (torchrun gives the rendezvous address)."""
    import torch.distributed as dist

    if world.distributed and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=world.rank, world_size=world.size)


def leave(world: World) -> None:
    import torch.distributed as dist

    if world.distributed and dist.is_initialized():
        dist.destroy_process_group()


def average_gradients(params: list[torch.nn.Parameter], world: World) -> None:
    """Average gradients over ranks in one flat all-reduce, so every rank takes the same optimizer step."""
    if not world.distributed:
        return
    import torch.distributed as dist

    grads = [p.grad for p in params if p.grad is not None]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world.size
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def any_rank(flag: bool, world: World, device: torch.device) -> bool:
    """True on every rank when the flag is set on any rank (a stop request, a time budget spent)."""
    if not world.distributed:
        return flag
    import torch.distributed as dist

    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def gather(obj: object, world: World) -> list:
    """Every rank's object, in rank order, on every rank (used for the per-rank RNG states)."""
    if not world.distributed:
        return [obj]
    import torch.distributed as dist

    out: list = [None] * world.size
    dist.all_gather_object(out, obj)
    return out


def broadcast(obj: object, world: World) -> object:
    """Rank 0's object on every rank (a stop decision taken after rank 0's evaluation)."""
    if not world.distributed:
        return obj
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]
