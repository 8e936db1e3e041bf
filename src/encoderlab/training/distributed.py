"""Multi-process training under torchrun: process group, model wrapping (DDP or FSDP), metric reduction.

The same script runs alone (`python train.py`) or under `torchrun --nproc_per_node=N train.py`: torchrun
sets RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT, and `init_distributed` joins the group
(gloo on CPU, nccl on CUDA). Without those variables everything here is a cheap no-op for one process.
Only rank 0 logs and writes files; metrics are summed across ranks with `all_reduce_sum`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn

from .. import errors
from ..errors import ConfigError

T = TypeVar("T")


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def dist_info() -> DistInfo:
    """Rank and world size of this process (a single-process DistInfo when no group is initialised)."""
    if not (dist.is_available() and dist.is_initialized()):
        return DistInfo()
    return DistInfo(dist.get_rank(), int(os.environ.get("LOCAL_RANK", 0)), dist.get_world_size())


def init_distributed() -> DistInfo:
    """Join the torchrun process group if launched by torchrun (WORLD_SIZE > 1); idempotent."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        dist.init_process_group(backend=backend)
    return dist_info()


def shutdown_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if dist_info().enabled:
        dist.barrier()


def all_reduce_sum(values: torch.Tensor) -> torch.Tensor:
    """Element-wise sum over ranks (returns `values` itself for one process)."""
    if dist_info().enabled:
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def broadcast_object(obj: object) -> object:
    """Rank 0's `obj` on every rank."""
    if not dist_info().enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def main_rank_first(work: Callable[[], T]) -> T:
    """`work()` on rank 0 first, then on the other ranks: for steps that write shared files (a trained
    tokenizer, a tokenised corpus) that the other ranks then only read. If rank 0 fails, every rank raises
    its error instead of the others waiting for it at a barrier until the timeout."""
    if not dist_info().enabled:
        return work()
    failure = None
    if dist_info().is_main:
        try:
            result = work()
        except Exception as exc:
            failure = exc
    reported = broadcast_object(None if failure is None else (type(failure).__name__, str(failure)))
    if failure is not None:
        raise failure
    if reported is not None:
        name, message = reported
        error_type = getattr(errors, name, None)  # the same class for our errors (InputDataError, …)
        if isinstance(error_type, type) and issubclass(error_type, errors.EncoderlabError):
            raise error_type(message)
        raise errors.EncoderlabError(f"rank 0 failed ({name}): {message}")
    if dist_info().is_main:
        return result
    return work()


def wrap_model(model: nn.Module, strategy: str, device: torch.device) -> nn.Module:
    """DDP (a full replica per rank, gradients all-reduced) or FSDP2 (parameters sharded across ranks).

    FSDP shards every direct child that holds parameters, then the root, following torch's fully_shard
    recipe; larger models get better overlap by sharding per transformer block, which a task can do itself
    before handing the model over (fully_shard is idempotent on already-sharded modules).
    """
    info = dist_info()
    if not info.enabled:
        return model
    if strategy == "ddp":
        ids = [device.index] if device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids)
    if strategy == "fsdp":
        from torch.distributed.fsdp import fully_shard

        for child in model.children():
            if any(True for _ in child.parameters()):
                fully_shard(child)
        return fully_shard(model)
    raise ConfigError(f"distributed={strategy!r} must be ddp or fsdp")


def unwrap(model: nn.Module) -> nn.Module:
    """The user's module inside a DDP wrapper (FSDP2 shards in place, so it is already the module)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


@contextlib.contextmanager
def no_grad_sync(model: nn.Module, active: bool) -> Iterator[None]:
    """Skip the gradient all-reduce during the first micro-batches of an accumulation window."""
    if not active or not dist_info().enabled:
        yield
    elif isinstance(model, nn.parallel.DistributedDataParallel):
        with model.no_sync():
            yield
    elif hasattr(model, "set_requires_gradient_sync"):  # FSDP2
        model.set_requires_gradient_sync(False)
        try:
            yield
        finally:
            model.set_requires_gradient_sync(True)
    else:
        yield


# ------------------------------------------------------------------ whole states of a sharded model
def full_model_state(model: nn.Module, fsdp: bool) -> dict[str, torch.Tensor]:
    """The model's whole state dict (under FSDP gathered to CPU: a collective, every rank calls it)."""
    if fsdp:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    return unwrap(model).state_dict()


def full_optimizer_state(model: nn.Module, optimizer: torch.optim.Optimizer, fsdp: bool) -> dict[str, Any]:
    """The optimizer's whole state dict (under FSDP gathered to CPU: a collective)."""
    if fsdp:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

        return get_optimizer_state_dict(model, optimizer,
                                        options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    return optimizer.state_dict()


def load_full_state(model: nn.Module, optimizer: torch.optim.Optimizer, model_state: dict[str, torch.Tensor],
                    optimizer_state: dict[str, Any], fsdp: bool) -> None:
    """Whole model and optimizer states (as the two functions above give them) into a plain or sharded model."""
    if fsdp:
        from torch.distributed.checkpoint.state_dict import (
            StateDictOptions,
            set_model_state_dict,
            set_optimizer_state_dict,
        )

        options = StateDictOptions(full_state_dict=True)
        set_model_state_dict(model, model_state, options=options)
        set_optimizer_state_dict(model, optimizer, optimizer_state, options=options)
    else:
        unwrap(model).load_state_dict(model_state)
        optimizer.load_state_dict(optimizer_state)
