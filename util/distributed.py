"""Multi-process data-parallel training, started by ``torchrun`` (one or several machines).

``torchrun --nproc_per_node N train.py ...`` sets ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``,
``MASTER_ADDR`` and ``MASTER_PORT``; :func:`init_distributed` reads them, joins the process
group (``nccl`` on CUDA, ``gloo`` on the CPU) and picks this process's device
(``cuda:LOCAL_RANK``). Without those variables everything here is a single-process no-op, so
``python train.py`` behaves as before.

The rules the training loop follows (see ``train.py``):

- every rank reads its own shard of each global batch (``data.EpochSampler``), in the same
  deterministic order a single process would use;
- ``DistributedDataParallel`` averages gradients (``models/runtime.py``);
- only rank 0 writes checkpoints, logs, pages and Visdom; what differs per rank (image pools,
  random-number states, per-image banks) is gathered into rank 0's checkpoint, so a resumed
  run continues exactly;
- decisions that end a run (a non-finite loss on any rank, rank 0's time budget) are agreed
  by all ranks, so no rank waits forever for the others.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from util.errors import UserError

# Options that may differ between ranks (they describe the process, not the run).
RANK_LOCAL_OPTIONS = frozenset({"gpu_ids", "cli_args", "parser_defaults", "local_rank", "verbose", "no_progress"})


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands: ``rank`` of ``world_size``, ``local_rank`` on its machine."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str = ""

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


_CONTEXT = DistributedContext()


def context() -> DistributedContext:
    """The context set by :func:`init_distributed` (single process until then)."""
    return _CONTEXT


def launched_by_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def init_distributed(gpu_ids: list[int]) -> tuple[DistributedContext, torch.device]:
    """Join the process group when started by ``torchrun``; returns the context and this rank's device.

    On CUDA each process takes ``cuda:LOCAL_RANK`` (``--gpu_ids`` is for single-process runs);
    ``--gpu_ids -1`` or a machine without CUDA trains on the CPU with the gloo backend.
    """
    global _CONTEXT
    if not launched_by_torchrun() or int(os.environ["WORLD_SIZE"]) == 1:
        return _CONTEXT, select_device(gpu_ids)
    rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = bool(gpu_ids) and torch.cuda.is_available()
    if use_cuda:
        if local_rank >= torch.cuda.device_count():
            raise UserError(
                f"LOCAL_RANK {local_rank} but only {torch.cuda.device_count()} CUDA device(s) on this machine; "
                f"lower --nproc_per_node"
            )
        torch.cuda.set_device(local_rank)
        device = torch.device(f"cuda:{local_rank}")
    else:
        device = torch.device("cpu")
    backend = "nccl" if use_cuda else "gloo"
    if not dist.is_initialized():
        kwargs = {"device_id": device} if use_cuda else {}
        dist.init_process_group(backend=backend, rank=rank, world_size=world_size, **kwargs)
    _CONTEXT = DistributedContext(rank, world_size, local_rank, backend)
    return _CONTEXT, device


def parse_gpu_ids(text: str) -> list[int]:
    """``"0,1"`` -> [0, 1]; ``"-1"`` -> []."""
    try:
        ids = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--gpu_ids must be comma-separated integers, got {text!r}") from None
    return [i for i in ids if i >= 0]


def select_device(gpu_ids: list[int]) -> torch.device:
    """Single process: the first requested GPU, or the CPU when none is requested or CUDA is absent."""
    if gpu_ids and torch.cuda.is_available():
        if len(gpu_ids) > 1:
            print(
                f"note: one process uses one GPU; --gpu_ids {gpu_ids} -> cuda:{gpu_ids[0]} "
                f"(for several GPUs: torchrun --nproc_per_node {len(gpu_ids)} train.py ...)",
                file=sys.stderr,
            )
        if gpu_ids[0] >= torch.cuda.device_count():
            raise UserError(
                f"--gpu_ids {gpu_ids[0]}: only {torch.cuda.device_count()} CUDA device(s) present; "
                f"use an id below that, or -1 for CPU"
            )
        torch.cuda.set_device(gpu_ids[0])
        return torch.device(f"cuda:{gpu_ids[0]}")
    return torch.device("cpu")


def shutdown() -> None:
    """Leave the process group (end of training)."""
    global _CONTEXT
    if dist.is_initialized():
        dist.destroy_process_group()
    _CONTEXT = DistributedContext()


def _device_for_collectives() -> torch.device:
    return torch.device("cuda", torch.cuda.current_device()) if _CONTEXT.backend == "nccl" else torch.device("cpu")


def any_rank(flag: bool) -> bool:
    """True on every rank when ``flag`` is true on at least one rank."""
    if not _CONTEXT.enabled:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=_device_for_collectives())
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item() > 0)


def broadcast_object(value: Any) -> Any:
    """Rank 0's ``value`` on every rank."""
    if not _CONTEXT.enabled:
        return value
    holder = [value]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def gather_objects(value: Any) -> list[Any] | None:
    """Every rank's ``value`` as a list on rank 0 (``None`` elsewhere)."""
    if not _CONTEXT.enabled:
        return [value]
    gathered: list[Any] | None = [None] * _CONTEXT.world_size if _CONTEXT.is_main else None
    dist.gather_object(value, gathered, dst=0)
    return gathered


def all_gather_objects(value: Any) -> list[Any]:
    """Every rank's ``value``, in rank order, on every rank (``[value]`` without torchrun)."""
    if not _CONTEXT.enabled:
        return [value]
    gathered: list[Any] = [None] * _CONTEXT.world_size
    dist.all_gather_object(gathered, value)
    return gathered


def mean_over_ranks(values: dict[str, float]) -> dict[str, float]:
    """The mean of each value over all ranks (for logging losses)."""
    if not _CONTEXT.enabled or not values:
        return values
    keys = sorted(values)
    tensor = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=_device_for_collectives())
    dist.all_reduce(tensor)
    tensor /= _CONTEXT.world_size
    means = dict(zip(keys, tensor.tolist()))
    return {k: means[k] for k in values}


def options_fingerprint(opt: argparse.Namespace) -> dict[str, str]:
    """Option values that must agree between ranks, as comparable strings."""
    return {k: json.dumps(v, sort_keys=True, default=str) for k, v in sorted(vars(opt).items()) if k not in RANK_LOCAL_OPTIONS}


def check_ranks_agree(opt: argparse.Namespace) -> None:
    """Raise a :class:`UserError` on every rank when the ranks were started with different options."""
    if not _CONTEXT.enabled:
        return
    mine = options_fingerprint(opt)
    digest = hashlib.sha256(json.dumps(mine).encode()).hexdigest()
    everyone: list[Any] = [None] * _CONTEXT.world_size
    dist.all_gather_object(everyone, (digest, mine))
    reference_digest, reference = everyone[0]
    for rank, (other_digest, other) in enumerate(everyone):
        if other_digest == reference_digest:
            continue
        differing = sorted(k for k in set(reference) | set(other) if reference.get(k) != other.get(k))
        details = ", ".join(f"--{k}: rank 0 {reference.get(k)} vs rank {rank} {other.get(k)}" for k in differing[:6])
        raise UserError(
            f"the torchrun processes were started with different options ({details}); start every rank with the same command"
        )
