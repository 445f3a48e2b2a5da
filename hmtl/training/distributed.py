"""Data-parallel training under torchrun (``torch.distributed`` + ``DistributedDataParallel``).

``torchrun --nproc_per_node N train.py ...`` starts N processes with ``RANK`` / ``WORLD_SIZE`` / ``MASTER_ADDR`` /
``MASTER_PORT`` in their environment; ``setup()`` joins them into one process group (gloo on the CPU, NCCL for
GPU tensors) and returns a ``Group`` (a group of one under ``--nproc_per_node 1``). Without torchrun it returns
``SINGLE``, whose every method is the single-process no-op, so the trainer has one code path.

What the trainer does with it: every rank draws the same task schedule from the same seed and takes a disjoint
shard of each group's batches (``shard``); ``wrap`` puts the model in DDP, which all-reduces the gradients; rank 0
alone validates, tests and writes files, and ``run_on_main`` hands its result (or its error) to every rank, so all
of them take the same decisions and stop together. (torch is imported when used: the command line reads
``rank()`` before it loads anything.)
"""
from __future__ import annotations

import inspect
import math
import os
from datetime import timedelta
from typing import Any, Callable, TypeVar

from hmtl.errors import HmtlError

T = TypeVar("T")
# The other ranks wait in a collective while rank 0 alone validates, tests and saves: that may take long on a big
# corpus. A worker that dies ends the others at once (torchrun stops the group), so a long timeout costs nothing.
TIMEOUT = timedelta(hours=4)


class RankZeroError(HmtlError):
    """Raised on the other ranks when rank 0 failed in ``run_on_main``: rank 0 reports the error, they only stop."""


def under_torchrun() -> bool:
    """Started by torchrun (or another launcher that sets the process group's environment), with one process or
    more: a single process under torchrun joins a group of one, so its NCCL or gloo path is the one that runs."""
    return "WORLD_SIZE" in os.environ and "MASTER_ADDR" in os.environ


def exit_code_on_stop(code: int) -> None:
    """From now on a SIGTERM ends this process with ``code``: when one rank exits on an error, torchrun stops the
    others, which are on their way out with the same error, and they should say so (not -15)."""
    import signal

    if under_torchrun():
        try:
            signal.signal(signal.SIGTERM, lambda signum, frame: os._exit(code))
        except ValueError:  # not the main thread: leave the handler alone
            pass


class Single:
    """One process: nothing to share, nothing to wait for."""

    rank, world_size, is_main = 0, 1, True

    def barrier(self) -> None:
        pass

    def broadcast_object(self, obj: Any) -> Any:
        return obj

    def all_gather_object(self, obj: Any) -> list:
        return [obj]

    def run_on_main(self, fn: Callable[[], T]) -> T:
        return fn()

    def shard(self, items: list) -> list:
        return items

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        return model


SINGLE = Single()


class Group(Single):
    """This process's place in the torchrun process group."""

    def __init__(self) -> None:
        import torch.distributed as dist

        self.dist = dist
        self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
        self.is_main = self.rank == 0

    def barrier(self) -> None:
        self.dist.barrier()

    def broadcast_object(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank (what the others pass is ignored)."""
        box = [obj if self.is_main else None]
        self.dist.broadcast_object_list(box, src=0)
        return box[0]

    def all_gather_object(self, obj: Any) -> list:
        """Every rank's ``obj``, in rank order, on every rank."""
        gathered = [None] * self.world_size
        self.dist.all_gather_object(gathered, obj)
        return gathered

    def run_on_main(self, fn: Callable[[], T]) -> T:
        """``fn()`` on rank 0 only; every rank returns its result. When it raises, rank 0 raises the error itself
        and the other ranks a ``RankZeroError`` with its message, so every process stops at the same point."""
        outcome, error = None, None
        if self.is_main:
            try:
                outcome = ("ok", fn())
            except Exception as raised:  # noqa: BLE001 (re-raised below, after the others are told)
                error, outcome = raised, ("error", str(raised).strip().splitlines()[0] if str(raised).strip()
                                          else type(raised).__name__)
        outcome = self.broadcast_object(outcome)
        if outcome[0] == "error":
            if not self.is_main:
                exit_code_on_stop(2)
            self.barrier()  # rank 0 exits only once every rank knows: torchrun stops the others when it does
            if error is not None:
                raise error
            raise RankZeroError(outcome[1])
        return outcome[1]

    def shard(self, items: list) -> list:
        """This rank's share of ``items``: ``r, r + W, r + 2W, ...``, wrapped around to the start so that every
        rank gets ``ceil(len / W)`` of them (DDP needs the same number of steps on every rank)."""
        if not items:
            return items
        return [items[(i * self.world_size + self.rank) % len(items)] for i in range(math.ceil(len(items) / self.world_size))]

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """The model in DDP for the training steps. A step trains one group's heads, so the others get no gradient
        (``find_unused_parameters``); buffers (GloVe's table, CRF penalties) are constants: no sync per step."""
        from torch.nn.parallel import DistributedDataParallel

        if "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters:  # torch >= 2.13
            buffers = {"forward_sync_buffers": False}
        else:
            buffers = {"broadcast_buffers": False}
        return DistributedDataParallel(model, find_unused_parameters=True, **buffers)


_started_here = False


def setup(device: torch.device | None = None) -> Single:
    """Join the torchrun process group (once per process; a group someone else started, e.g. Accelerate's, is
    used as it is); ``SINGLE`` outside torchrun. On a GPU ``device`` (this rank's), gradients go through NCCL and
    the small objects the ranks exchange through gloo."""
    global _started_here
    if not under_torchrun():
        return SINGLE
    import torch.distributed as dist

    if not dist.is_available():
        raise HmtlError("torchrun: this PyTorch build has no torch.distributed; train in one process")
    if not dist.is_initialized():
        try:
            on_gpu = device is not None and device.type == "cuda"
            if on_gpu:
                import torch

                torch.cuda.set_device(device)
            dist.init_process_group("cpu:gloo,cuda:nccl" if on_gpu else "gloo", timeout=TIMEOUT)
        except (RuntimeError, ValueError) as error:
            raise HmtlError(f"torchrun: the process group did not start ({str(error).strip().splitlines()[0]}); "
                            "check MASTER_ADDR / MASTER_PORT (--master_port)") from None
        _started_here = True
    return Group()


def shutdown() -> None:
    """Leave the process group that ``setup`` started (a no-op otherwise)."""
    global _started_here
    if _started_here:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
        _started_here = False


def rank() -> int:
    """This process's rank from the environment (0 outside torchrun), before any process group exists."""
    return int(os.environ.get("RANK", "0")) if under_torchrun() else 0
