"""torch.distributed for jobs: who am I, on which device, and collective error handling.

Under ``torchrun`` (``WORLD_SIZE`` > 1 in the environment) the process group is created here:
backend nccl when the ranks run on CUDA, gloo on CPU; each rank uses ``cuda:LOCAL_RANK``. A
process group created by the caller is used as it is. Without either, the job is one process.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import torch

from .errors import JobError

T = TypeVar("T")
#: Ranks wait this long for each other at the final barrier (a big shard on a slow rank). Only
#: that barrier has it: set-up and every other collective use torch's default timeout, so workers
#: whose launcher died (SIGKILL, OOM, preemption) while they start give up within that time.
BARRIER_TIMEOUT = datetime.timedelta(hours=24)


@dataclass
class DistContext:
    """This process's place in the job: ``rank`` of ``world_size``, its ``device``."""

    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")
    owns_group: bool = False
    wait_group: Any = None  # a process group with BARRIER_TIMEOUT, for the final barrier only

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @classmethod
    def setup(cls, device: str = "auto") -> DistContext:
        import torch.distributed as dist

        env_world = int(os.environ.get("WORLD_SIZE", "1"))
        use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
        if device == "cuda" and not torch.cuda.is_available():
            raise JobError("device 'cuda' was asked for, but torch sees no CUDA device")
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        dev = (
            torch.device(f"cuda:{local_rank % max(torch.cuda.device_count(), 1)}")
            if use_cuda
            else torch.device("cpu")
        )
        if use_cuda:
            torch.cuda.set_device(dev)
        owns = False
        if dist.is_available() and not dist.is_initialized() and env_world > 1:
            dist.init_process_group(backend="nccl" if use_cuda else "gloo")  # default timeout
            owns = True
        if dist.is_available() and dist.is_initialized():
            ctx = cls(dist.get_rank(), dist.get_world_size(), dev, owns)
            if ctx.distributed:  # gloo: barriers of a CPU group work for CUDA ranks too
                ctx.wait_group = dist.new_group(backend="gloo", timeout=BARRIER_TIMEOUT)
            return ctx
        return cls(0, 1, dev, False)

    def agree(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on every rank; if it raises on any rank, raise there the original error and
        on every other rank a :class:`JobError` with its message (so no rank waits forever)."""
        err: BaseException | None = None
        result: Any = None
        try:
            result = fn()
        except Exception as exc:  # noqa: BLE001 - re-raised below, on this rank and the others
            err = exc
        if not self.distributed:
            if err is not None:
                raise err
            return result
        import torch.distributed as dist

        messages: list[Any] = [None] * self.world_size
        dist.all_gather_object(messages, None if err is None else (type(err).__name__, str(err)))
        if err is not None:
            raise err
        for r, m in enumerate(messages):
            if m is not None:
                raise JobError(f"rank {r} failed: {m[0]}: {m[1]}")
        return result

    def same(self, value: Any, what: str) -> None:
        """Raise :class:`JobError` on every rank unless ``value`` is equal on all ranks."""
        if not self.distributed:
            return
        import torch.distributed as dist

        values: list[Any] = [None] * self.world_size
        dist.all_gather_object(values, value)
        odd = [r for r, v in enumerate(values) if v != values[0]]
        if odd:
            raise JobError(
                f"{what} differs between rank 0 and rank(s) {odd}: {values[0]!r} vs "
                f"{values[odd[0]]!r}; every rank must see the same input"
            )

    def barrier_async(self) -> Any:
        import torch.distributed as dist

        if not self.distributed:
            return None
        return dist.barrier(group=self.wait_group, async_op=True)

    def close(self) -> None:
        """Destroy the groups this context created (the final-barrier group always, the default
        group when it created it), so no collective thread outlives the job."""
        import torch.distributed as dist

        if self.wait_group is not None:
            if dist.is_initialized():
                dist.destroy_process_group(self.wait_group)
            self.wait_group = None
        if self.owns_group:
            if dist.is_initialized():
                dist.destroy_process_group()
            self.owns_group = False
