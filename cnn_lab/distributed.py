"""DistributedDataParallel on PyTorch's own launcher (torchrun).

``torchrun --nproc-per-node N -m cnn_lab train FILE`` starts N processes; each joins the
process group here (NCCL on GPUs, gloo on CPUs), trains on its own shard of every epoch,
and rank 0 alone writes the run directory. A variant with ``nproc: N`` launched without
torchrun re-launches itself under torchrun.
"""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from typing import Iterator

from .config import RunConfig


@contextlib.contextmanager
def maybe_init_process_group(cfg: RunConfig) -> Iterator[None]:
    import torch
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or dist.is_initialized():
        yield
        return
    use_cuda = torch.cuda.is_available() and cfg.device in ("auto", "cuda")
    if use_cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    try:
        yield
    finally:
        dist.destroy_process_group()


def torchrun_command(config_path: str, cfg: RunConfig, extra: list[str] | None = None) -> list[str]:
    """The torchrun command line that trains this variant on ``cfg.nproc`` local processes."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={cfg.nproc}",
           "-m", "cnn_lab", "train", config_path, "--profile", cfg.profile, "--out", cfg.out_dir,
           "--no-progress"]
    for key in ("epochs", "batch_size", "train_size", "test_size", "seed", "device", "data"):
        value = getattr(cfg, key)
        cmd += ["--set", f"{key}={value}"]
    seeds = cfg.seeds if isinstance(cfg.seeds, int) else "[" + ",".join(map(str, cfg.seeds or [])) + "]"
    cmd += ["--set", f"seeds={seeds}"]
    return cmd + list(extra or [])


def launch_torchrun(config_path: str, cfg: RunConfig) -> int:
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    return subprocess.call(torchrun_command(config_path, cfg), env=env)
