"""DistributedDataParallel on PyTorch's own launcher (torchrun).

``torchrun --nproc-per-node N -m cnn_lab train FILE`` starts N processes on a machine (on
each of ``--nnodes`` machines); each joins the process group here (NCCL on GPUs, gloo on
CPUs), trains on its own shard of every epoch, and rank 0 alone writes the run directory.
A variant with ``nproc: N`` launched without torchrun re-launches itself under torchrun.
BatchNorm under DDP is ``syncbn.SyncBatchNorm``: PyTorch's, less its host synchronisation.
"""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from typing import Callable, Iterator, TypeVar

import yaml

from .config import ConfigError, RunConfig, uses_cuda

T = TypeVar("T")


def check_world(cfg: RunConfig, local_world: int) -> None:
    """One process per GPU: more processes on this machine (``local_world``: torchrun's
    LOCAL_WORLD_SIZE, not the world size, which counts every node's) than this machine's
    GPUs is a config error, not a CUDA crash."""
    import torch

    if local_world > 1 and uses_cuda(cfg.device) and local_world > torch.cuda.device_count():
        raise ConfigError(f"{local_world} processes on this machine (nproc / --nproc-per-node) but "
                          f"{torch.cuda.device_count()} CUDA device(s): use at most one process per GPU, "
                          f"or --set device=cpu")


@contextlib.contextmanager
def maybe_init_process_group(cfg: RunConfig) -> Iterator[None]:
    import torch
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or dist.is_initialized():
        yield
        return
    check_world(cfg, int(os.environ.get("LOCAL_WORLD_SIZE", world)))
    use_cuda = uses_cuda(cfg.device)
    if use_cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    try:
        yield
    finally:
        dist.destroy_process_group()


def torchrun_command(config_path: str | None, cfg: RunConfig, extra: list[str] | None = None) -> list[str]:
    """The torchrun command line that trains this resolved config on ``cfg.nproc`` local processes.

    Every setting is passed explicitly, so the workers train exactly ``cfg`` whatever
    overrides produced it.
    """
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={cfg.nproc}",
           "-m", "cnn_lab", "train", *([str(config_path)] if config_path else []),
           "--profile", cfg.profile, "--no-progress"]
    for key, value in cfg.to_dict().items():
        if key in ("nproc", "profile"):
            continue
        # YAML flow style reads back as the same value and type (1e-05 as a float, "" as a string)
        text = yaml.safe_dump(value, default_flow_style=True, width=10**6).strip()
        cmd += ["--set", f"{key}={text.removesuffix(chr(10) + '...').strip()}"]
    return cmd + list(extra or [])


def launch_torchrun(config_path: str | None, cfg: RunConfig) -> int:
    """Run ``torchrun_command`` with one thread per process (the processes share the cores)."""
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    return subprocess.call(torchrun_command(config_path, cfg), env=env)


# ---------------------------------------------------------------- inside a process group


def dist_info() -> tuple[int, int]:
    """(rank, world size); (0, 1) outside torchrun."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def local_rank0_first(fn: Callable[[], T]) -> T:
    """``fn()`` on each machine's first process (LOCAL_RANK 0; on one machine, rank 0) first,
    then, once every process has met the others at a barrier, on the rest: what the first
    builds on its machine's disk (the decoded data cache) the rest then read rather than all
    build it at once. A failure in a first process still releases the rest, which then meet
    it (or not) themselves."""
    import torch.distributed as dist

    rank, world = dist_info()
    if world == 1:
        return fn()
    if int(os.environ.get("LOCAL_RANK", rank)) == 0:
        try:
            return fn()
        finally:
            dist.barrier()
    dist.barrier()
    return fn()


def all_reduce(t):
    """The sum of ``t`` over all ranks (a copy); ``t`` itself in one process."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        t = t.clone()
        dist.all_reduce(t)
    return t


def gather_shards(local, n: int):
    """Every rank's predictions for its interleaved shard (rank r holds images r, r+world, ...)
    put back into test-set order (on every rank; rank 0 is the one that writes them)."""
    import torch
    import torch.distributed as dist

    rank, world = dist_info()
    if world == 1:
        return local
    size = -(-n // world)  # the largest shard; shorter ones are padded for all_gather
    padded = local.new_zeros(size, dtype=torch.int64)
    padded[: len(local)] = local
    parts = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded)
    out = local.new_empty(n, dtype=torch.int64)
    for r, part in enumerate(parts):
        out[r::world] = part[: len(range(r, n, world))]
    return out


def sync_batchnorm(model):
    """Under DDP, BatchNorm over the whole global batch (``syncbn.SyncBatchNorm``, on GPUs and
    CPUs alike), so a run's numbers do not depend on how many processes share it."""
    from . import syncbn

    return syncbn.convert(model)


def sync_buffers(model, world: int) -> None:
    """Rank 0's buffers (BatchNorm running statistics) on every rank, before evaluating."""
    if world > 1:
        import torch.distributed as dist

        for buf in model.buffers():
            dist.broadcast(buf, 0)


def hand_to_torchrun(config_path: str | None, cfg: RunConfig) -> int | None:
    """Where a variant trains: a config with ``nproc`` > 1 started outside torchrun is handed to
    torchrun (after checking the world size), and torchrun's exit status is returned; None
    means train here, in this process (one process, or already one of torchrun's workers)."""
    if cfg.nproc <= 1 or "LOCAL_RANK" in os.environ:
        return None
    check_world(cfg, cfg.nproc)
    return launch_torchrun(config_path, cfg)
