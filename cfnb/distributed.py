"""Sharding work over processes with ``torch.distributed``: under ``torchrun`` (RANK / WORLD_SIZE / LOCAL_RANK
in the environment) each process takes the batches k with ``k % world_size == rank``.

Used by ``cfnb.explain_dataset`` and ``cfnb.audit.spurious``. The process group is initialised here unless it
already is (gloo for CPU runs, nccl for CUDA runs) and ended when the work ends if it was initialised here. Rank 0
alone touches shared files while the others wait (``on_main``), collects the others' results (``gather``), and an
error on any rank stops them all.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch

WAIT = timedelta(hours=24)
"""How long a process waits at a barrier for the others (the slowest rank's share of the batches)."""


@dataclass(frozen=True)
class Ranks:
    """This process's place among the run's processes.

    Attributes:
        rank / world_size / local_rank: as torchrun numbers them (0 / 1 / 0 for a single process).
        owns_group: this run initialised the process group and ends it.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False

    @property
    def main(self) -> bool:
        """Whether this is rank 0, which writes the shared files."""
        return self.rank == 0

    def takes(self, batch: int) -> bool:
        """Whether this process works on batch ``batch``."""
        return batch % self.world_size == self.rank


def launched() -> bool:
    """Whether this process was started by torchrun (or another launcher setting RANK and WORLD_SIZE)."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def local_device(device: torch.device) -> torch.device:
    """``device``, with a CUDA device without an index made this process's GPU (``cuda:LOCAL_RANK``) under
    torchrun."""
    if device.type == "cuda" and device.index is None and launched():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


def join(device: torch.device) -> Ranks:
    """Join the process group (initialising it under torchrun when nobody has); a single process otherwise."""
    import torch.distributed as dist

    local = int(os.environ.get("LOCAL_RANK", "0"))
    if dist.is_available() and dist.is_initialized():
        return Ranks(dist.get_rank(), dist.get_world_size(), local, owns_group=False)
    if not launched() or int(os.environ["WORLD_SIZE"]) == 1:
        return Ranks()
    if not dist.is_available():
        raise RuntimeError("launched with WORLD_SIZE > 1, but this PyTorch build has no torch.distributed")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=WAIT)
    return Ranks(dist.get_rank(), dist.get_world_size(), local, owns_group=True)


def share(ranks: Ranks, value: Any) -> Any:
    """Rank 0's ``value`` on every rank (the others wait for it)."""
    if ranks.world_size == 1:
        return value
    import torch.distributed as dist

    box = [value if ranks.main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather(ranks: Ranks, value: Any) -> list[Any] | None:
    """Every rank's ``value`` (in rank order) on rank 0; None on the others."""
    if ranks.world_size == 1:
        return [value]
    import torch.distributed as dist

    everyone: list[Any] | None = [None] * ranks.world_size if ranks.main else None
    dist.gather_object(value, everyone, dst=0)
    return everyone


def on_main(ranks: Ranks, work: Callable[[], object]) -> None:
    """Run ``work`` on rank 0 while the others wait; its error, if any, is raised on every rank."""
    error: Exception | None = None
    if ranks.main:
        try:
            work()
        except Exception as caught:
            error = caught
    error = share(ranks, error)
    if error is not None:
        raise error


def gather_failures(ranks: Ranks, error: BaseException | None) -> list[str]:
    """Wait until every rank gets here; the failures of the other ranks, each as ``rank R: Type: message``."""
    mine = None if error is None else f"rank {ranks.rank}: {type(error).__name__}: {error}"
    if ranks.world_size == 1:
        return []
    import torch.distributed as dist

    everyone: list[str | None] = [None] * ranks.world_size
    dist.all_gather_object(everyone, mine)
    return [failure for rank, failure in enumerate(everyone) if failure is not None and rank != ranks.rank]


def leave(ranks: Ranks) -> None:
    """End the process group if this run initialised it."""
    if ranks.owns_group:
        import torch.distributed as dist

        dist.destroy_process_group()
