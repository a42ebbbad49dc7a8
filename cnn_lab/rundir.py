"""Who may write a run directory: its state (new, resumable, completed, diverged), a run of
another config or a damaged record there refused, and the lock a training process holds
on it (``claim``)."""
from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path
from typing import Iterator

from . import runio
from .config import ConfigError, RunConfig, result_fields
from .distributed import dist_info
from .runcheck import DamagedRunFile


class RunConflict(ConfigError):
    """An existing run directory holds a run of another config."""


class RunDamaged(ConfigError):
    """An existing run directory whose run.json or config.yaml cannot be read (nothing is changed)."""


class RunBusy(ConfigError):
    """Another live process is training into the run directory."""


def check_run_dir(cfg: RunConfig, seed: int) -> str:
    """'new', 'resume', 'completed' or 'diverged'; a different config there is refused, and so is a
    damaged run.json or config.yaml (``RunDamaged``: the file, what is wrong, what to do)."""
    run_dir = cfg.run_dir(seed)
    if not (run_dir / runio.CONFIG).exists():
        return "new"
    try:
        recorded, status = runio.read_config(run_dir), runio.read_record(run_dir).status
    except DamagedRunFile as err:
        raise RunDamaged(f"{err}; delete {run_dir} to start this run over, or restore {err.path.name} "
                         f"from a good copy") from None
    new, old = result_fields(dataclasses.replace(cfg, seed=seed)), result_fields(recorded)
    if old != new:
        diff = ", ".join(f"{k}: {old.get(k)!r} -> {new[k]!r}" for k in new if old.get(k) != new[k])
        raise RunConflict(
            f"{run_dir}: holds a run of another config ({diff}); choose another out_dir or exp_name, "
            f"or delete that directory to start over"
        )
    return status if status in ("completed", "diverged") else "resume"


def _busy_line(run_dir: Path, holder: str) -> str:
    return f"{run_dir}: another process is training this run ({holder}); wait for it to finish, or choose another out_dir"


def check_not_busy(run_dir: Path) -> None:
    """Refuse a run directory that another live process is writing (its lock is held)."""
    holder = runio.busy_holder(run_dir / runio.LOCK)
    if holder is not None:
        raise RunBusy(_busy_line(run_dir, holder))


@contextlib.contextmanager
def claim(cfg: RunConfig, seeds: list[int]) -> Iterator[list[str]]:
    """Hold the run directories of ``seeds`` while the block runs and give their states
    (``check_run_dir``, checked once, under the locks). Rank 0 locks them (``runio.file_lock``):
    another process holding one is ``RunBusy``; a directory made for a lock and left empty
    is removed again."""
    with contextlib.ExitStack() as stack:
        if dist_info()[0] == 0:  # the other ranks would see rank 0's own lock
            for run_dir in map(cfg.run_dir, seeds):
                if not run_dir.exists():
                    stack.callback(_remove_if_empty, run_dir)
                try:
                    stack.enter_context(runio.file_lock(run_dir / runio.LOCK))
                except runio.Busy as err:
                    raise RunBusy(_busy_line(run_dir, err.holders)) from None
        yield [check_run_dir(cfg, s) for s in seeds]


def _remove_if_empty(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not empty, or already gone
        folder.rmdir()

