"""Data-parallel training over processes: the plumbing that ``torchrun`` needs, kept out of the loop.

``torchrun --nproc_per_node N -m iclab.cli run ...`` (or ``iclab run --nproc N``, which
launches it) starts N processes, the *ranks*, with ``RANK``, ``WORLD_SIZE`` and
``LOCAL_RANK`` in their environment. Every rank runs the same study code; this module makes
that one training:

- :func:`init` joins the ranks in a process group (gloo on the CPU, NCCL for CUDA tensors);
  without ``WORLD_SIZE`` > 1 nothing here does anything, and a single process trains as before.
- Every rank draws the whole global batch of step ``s`` (``batch_at``, a function of
  ``(data_seed, s)``) and keeps its slice, rows ``[r * B / N, (r + 1) * B / N)`` of rank
  ``r`` (:meth:`Ranks.shard`). The data stream is the single-process one, so a job resumes
  exactly and a job on N processes sees the batches one process sees.
- The model is wrapped in ``DistributedDataParallel`` (:func:`loss_function`), which averages
  the gradients over the ranks; each rank's loss is its slice's share of the global batch's
  loss (a masked loss is divided by the global batch's count of positions that count,
  over N), so the averaged gradient is the global batch's gradient.
- The logged loss is the mean over the ranks of their losses: the global batch's loss
  (:meth:`Ranks.mean`, one all-reduce per logging interval).
- Rank 0 (``Ranks.main``) alone runs the probes and writes checkpoints, rows, arrays and the
  report. The other ranks measure into a scratch directory (``FollowerRun`` of
  :mod:`iclab.studies.execute`) that reads
  the run's checkpoints, so a study's ``measure`` runs unchanged on every rank; they repeat
  the probes that follow training there, and their results are thrown away.
"""

from __future__ import annotations

import datetime
import functools
import os
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from iclab.errors import ConfigError
from iclab.train.batches import loss_on_batch


@dataclass(frozen=True)
class Ranks:
    """This process's place in the job: ``rank`` of ``size`` processes (``local`` on its machine)."""

    rank: int = 0
    size: int = 1
    local: int = 0

    @property
    def main(self) -> bool:
        """Whether this process writes (rank 0)."""
        return self.rank == 0

    @property
    def parallel(self) -> bool:
        return self.size > 1

    def shard(self, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """This rank's slice of a global batch (each tensor's leading axis is the batch).

        With a ``loss_mask``, ``mask_count`` is added: the global batch's count of positions
        that count, over the number of ranks (see :func:`iclab.train.batches.loss_on_batch`).
        """
        if not self.parallel:
            return tensors
        n = next(iter(tensors.values())).shape[0]
        if n % self.size:
            raise ConfigError(f"train.batch_size = {n} does not split over {self.size} processes; "
                              f"give a multiple of {self.size}")
        rows = slice(self.rank * n // self.size, (self.rank + 1) * n // self.size)
        out = {k: v[rows] for k, v in tensors.items()}
        if "loss_mask" in tensors:
            out["mask_count"] = tensors["loss_mask"][:, 1:].sum().clamp_min(1).to(torch.float32) / self.size
        return out

    def mean(self, values: torch.Tensor) -> torch.Tensor:
        """The mean of ``values`` over the ranks (every rank gets it)."""
        if not self.parallel:
            return values
        values = values.clone()
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
        return values / self.size


def ranks() -> Ranks:
    """This process's ranks, from the environment ``torchrun`` sets (one process without it)."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    return Ranks(int(os.environ.get("RANK", "0")), size, int(os.environ.get("LOCAL_RANK", "0")))


def init() -> Ranks:
    """Join this job's process group, once (a no-op in a single process). Ranks other than 0
    show no progress bars."""
    r = ranks()
    if r.parallel and not dist.is_initialized():
        backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"
        if torch.cuda.is_available():
            torch.cuda.set_device(r.local)
        dist.init_process_group(backend, timeout=datetime.timedelta(hours=1))  # a probe on rank 0 can be long
        if not r.main:
            os.environ["ICLAB_NO_PROGRESS"] = "1"
    return r


def on_main(fn: Callable[[], object]) -> object:
    """``fn()`` on rank 0, its (picklable) result given to every rank: e.g. the run directory
    that rank 0 creates."""
    r = ranks()
    if not r.parallel:
        return fn()
    box = [fn() if r.main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


class _Loss(nn.Module):
    """The training loss as a module's forward, so that DistributedDataParallel sees the whole
    step (also for vector-world models, whose loss is not their forward)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return loss_on_batch(self.model, batch)


def loss_function(model: nn.Module, r: Ranks, device: torch.device) -> Callable[[dict], torch.Tensor]:
    """``batch -> loss`` of ``model`` (the module trained, possibly compiled); across ranks
    through DistributedDataParallel, which averages the gradients in ``backward``."""
    if not r.parallel:
        return functools.partial(loss_on_batch, model)
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    # Buffers here are constants (rotary frequencies, masks): not sent every step. The graph is
    # the same every step (static): parameters it never uses (a vector-world model reads
    # inputs_embeds, not the token embedding) are found once, not searched for every step.
    return DistributedDataParallel(_Loss(model), device_ids=ids, forward_sync_buffers=False, static_graph=True)
