"""Run directories: atomic writes and tidy reads.

A run directory holds ``config.yaml`` (the resolved config), ``metrics.csv`` (one row per
finished epoch), ``run.json`` (``RunRecord``: status, final metrics, environment), ``checkpoint.pt`` (the
last finished epoch), and, where recorded, ``grad_norms.csv``, ``confusion.csv``,
``predictions.npy`` (the last epoch's predicted class of every test image, uint8, in
test-subset order) and ``labels.npy`` (those images' true classes, the same order).
Every file is written to a temporary file in the same folder and renamed over the old one,
so a kill at any moment leaves either the old or the new file, never a truncated one; a
failed write (disk full) raises ``WriteError`` naming the file. While a process trains the
run it holds ``.lock`` (``file_lock``); ``set-aside-<n>/`` keeps the epoch files of an
attempt whose checkpoint could not be resumed.

Reading checks each file (a copy can still be cut short, a hand edit can break one): a file
that does not hold what it should raises ``DamagedRunFile``, naming it and what is wrong.
"""
from __future__ import annotations

import contextlib
import csv
import dataclasses
import errno
import fcntl
import io
import json
import os
import platform
import socket
import subprocess
import tempfile
import time
import typing
from pathlib import Path
from typing import Any, Iterable, Mapping

from .config import FIELD_NAMES, RunConfig
from .runcheck import DamagedRunFile, check_fields, read_json, read_npy, read_table, read_yaml

CONFIG = "config.yaml"
METRICS = "metrics.csv"
RUN = "run.json"
CHECKPOINT = "checkpoint.pt"
GRAD_NORMS = "grad_norms.csv"
CONFUSION = "confusion.csv"
LOCK = ".lock"  # held by the process writing the folder (see ``file_lock``)
SET_ASIDE = "set-aside-"  # set-aside-<n>/: the epoch files of an attempt that could not be resumed
PREDICTIONS = "predictions.npy"
LABELS = "labels.npy"

METRIC_COLUMNS = (
    "epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "seconds", "images_per_s",
)
# Wall-clock columns: the only ones that differ between two runs of one config on the CPU.
TIMING_COLUMNS = ("seconds", "images_per_s")
GRAD_COLUMNS = ("epoch", "step", "layer_index", "layer", "grad_norm", "numel", "weight_norm")
RUN_STATUSES = ("running", "completed", "diverged", "interrupted", "failed")
# RunConfig fields added after the first runs were recorded: an older config.yaml lacks them
# (every other field is in every config.yaml, so a file without one was cut short or edited)
CONFIG_FIELDS_ADDED = ("budget",)



@dataclasses.dataclass
class RunRecord:
    """``run.json``: what training writes about a run and the report reads.

    Every field has a default, so a file written before a field existed still reads; a field
    left at None is not written (``final`` appears with the first epoch, ``finished`` when the
    run stops, ``diverged_at`` only for a diverged run, ``train_seconds`` and ``images_per_s``
    only for a completed one).
    """

    exp_name: str = ""
    seed: int | None = None
    model: str | None = None
    profile: str | None = None
    status: str = "missing"  # running, completed, diverged, interrupted, failed; missing: no run.json
    message: str = ""
    epochs: int | None = None  # asked for
    epochs_done: int | None = None
    params: int | None = None
    train_size: int | None = None  # images actually used
    test_size: int | None = None
    world_size: int = 1
    data: dict[str, Any] = dataclasses.field(default_factory=dict)  # CifarData.info()
    environment: dict[str, Any] = dataclasses.field(default_factory=dict)  # versions, device, git commit
    started: str | None = None
    data_seconds: float | None = None
    precision: dict[str, Any] | None = None  # the amp / channels_last the run trains in, and why
    # epochs that include torch.compile's delay (the first of each process), left out of images_per_s
    compile_epochs: list[int] = dataclasses.field(default_factory=list)
    final: dict[str, Any] | None = None  # the last epoch's metrics
    diverged_at: dict[str, int] | None = None  # epoch and step
    finished: str | None = None
    train_seconds: float | None = None
    images_per_s: float | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "RunRecord":
        """The record of a decoded run.json (fields it lacks take their defaults; unknown keys are ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names and v is not None})

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


def cpu_model() -> str:
    """The CPU's model name, as ``lscpu`` shows it (from /proc/cpuinfo)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_commit() -> str | None:
    from .data import project_root

    root = project_root()
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    if sha.returncode != 0:
        return None
    return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def environment(device: Any) -> dict[str, Any]:
    """The machine and software a run (or a benchmark) ran on, for run.json's ``environment``."""
    import torch
    import torchvision

    env = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "platform": platform.platform(),
        "processor": cpu_model(),  # the model line lscpu shows
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
        "git_commit": git_commit(),
    }
    if device.type == "cuda":
        env["device_name"] = torch.cuda.get_device_name(device)
        env["cuda"] = torch.version.cuda
        env["cudnn"] = torch.backends.cudnn.version()
    return env


def read_record(run_dir: str | os.PathLike) -> RunRecord:
    """The run's ``run.json`` (a default record, status "missing", where there is none);
    ``DamagedRunFile`` when it is not a record (``record_dict``)."""
    path = Path(run_dir) / RUN
    return RunRecord.from_dict(record_dict(path)) if path.exists() else RunRecord()


def record_dict(path: str | os.PathLike) -> dict[str, Any]:
    """A ``run.json`` as decoded, checked: valid JSON, a mapping with a status, and every
    field ``RunRecord`` knows of its type (``DamagedRunFile`` otherwise)."""
    d = read_json(path)
    check_fields(path, d, typing.get_type_hints(RunRecord), required=("status",))
    if d["status"] not in RUN_STATUSES:
        raise DamagedRunFile(path, "bad_field", name="status", value=repr(d["status"]),
                             expected="one of " + ", ".join(RUN_STATUSES))
    if d.get("epochs_done") is not None and d["epochs_done"] < 0:
        raise DamagedRunFile(path, "bad_field", name="epochs_done", value=d["epochs_done"], expected="zero or more")
    return d


def write_record(run_dir: str | os.PathLike, record: RunRecord) -> None:
    write_json(Path(run_dir) / RUN, record.to_dict())


def read_config(run_dir: str | os.PathLike) -> dict[str, Any]:
    """The run's resolved ``config.yaml`` as plain data: every RunConfig field (but those added
    later, ``CONFIG_FIELDS_ADDED``) of its type, or ``DamagedRunFile``."""
    path = Path(run_dir) / CONFIG
    values = read_yaml(path)
    required = [f for f in FIELD_NAMES if f not in CONFIG_FIELDS_ADDED]
    check_fields(path, values, typing.get_type_hints(RunConfig), required)
    return values


class WriteError(OSError):
    """A run file could not be written (disk full, no permission); the old file is untouched.

    ``str(err)`` is one line naming the file and the reason.
    """


def _write_error(path: Path, err: OSError) -> WriteError:
    reason = err.strerror or str(err) or type(err).__name__
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        reason = f"disk full: {reason}"
    out = WriteError(f"{path}: cannot write it ({reason})")
    out.errno = err.errno
    return out


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, then rename it over ``path``.

    On any failure the temporary file is removed and ``path`` keeps its old content; an
    ``OSError`` comes out as a ``WriteError`` naming ``path``.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes the file private; results are meant to be shared
        os.replace(tmp, path)
    except BaseException as err:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(err, OSError) and not isinstance(err, WriteError):
            raise _write_error(path, err) from None
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")


def csv_text(rows: Iterable[Mapping[str, Any]], columns: Iterable[str]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _fmt(v) for k, v in row.items()})
    return buf.getvalue()


def _fmt(v: Any) -> Any:
    # repr round-trips floats exactly, so equal runs give byte-identical files
    return repr(v) if isinstance(v, float) else v


def write_csv(path: str | os.PathLike, rows: Iterable[Mapping[str, Any]], columns: Iterable[str]) -> None:
    atomic_write_text(path, csv_text(rows, columns))


def write_npy(path: str | os.PathLike, array: Any) -> None:
    import numpy as np

    buf = io.BytesIO()
    np.save(buf, np.asarray(array), allow_pickle=False)
    atomic_write_bytes(path, buf.getvalue())


def atomic_torch_save(path: str | os.PathLike, obj: Any) -> None:
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def save_epoch(run_dir: str | os.PathLike, checkpoint: Mapping[str, Any], confusion: Any = None,
               predictions: Any = None, labels: Any = None) -> None:
    """The files of a finished epoch. ``checkpoint`` holds the epoch, the model, optimizer and
    scheduler states and the metric and gradient rows so far; ``confusion`` (10x10, rows: true
    class), ``predictions`` and ``labels`` are tensors of the epoch's evaluation."""
    import torch

    from .data import CLASSES

    run_dir = Path(run_dir)
    # The epoch's predictions before its checkpoint: a kill between the two leaves the
    # checkpoint of the epoch before, so the resumed run recomputes (and rewrites) them.
    if predictions is not None:
        write_npy(run_dir / PREDICTIONS, predictions.numpy())
        write_npy(run_dir / LABELS, labels.cpu().to(torch.uint8).numpy())
    # Checkpoint next: it carries the metric rows, so a kill between the writes below
    # is repaired on resume by rewriting them from the checkpoint.
    atomic_torch_save(run_dir / CHECKPOINT, dict(checkpoint))
    write_csv(run_dir / METRICS, checkpoint["rows"], METRIC_COLUMNS)
    if checkpoint["grad_rows"]:
        write_csv(run_dir / GRAD_NORMS, checkpoint["grad_rows"], GRAD_COLUMNS)
    if confusion is not None:
        table = [{"true": name, **dict(zip(CLASSES, counts))} for name, counts in zip(CLASSES, confusion.tolist())]
        write_csv(run_dir / CONFUSION, table, ("true", *CLASSES))


def set_aside(run_dir: str | os.PathLike) -> Path:
    """Move every epoch file (all but config.yaml, run.json and dot files) into a new
    ``set-aside-<n>/`` folder of ``run_dir``, so a restart from epoch 1 loses nothing."""
    run_dir = Path(run_dir)
    n = 1
    while (run_dir / f"{SET_ASIDE}{n}").exists():
        n += 1
    dest = run_dir / f"{SET_ASIDE}{n}"
    dest.mkdir()
    for p in sorted(run_dir.iterdir()):
        if p.is_file() and p.name not in (CONFIG, RUN) and not p.name.startswith("."):
            os.replace(p, dest / p.name)
    return dest


# ---------------------------------------------------------------- locks


class Busy(RuntimeError):
    """Another live process holds the lock ``path``; ``holders`` says who ("pid N on HOST since T")."""

    def __init__(self, path: Path, holders: str):
        super().__init__(f"{path}: held by {holders}")
        self.path, self.holders = path, holders


def _holder_line() -> str:
    since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    return f"pid {os.getpid()} on {socket.gethostname()} since {since}"


def _alive(line: str) -> bool:
    """False only for a holder line of this host whose process is gone."""
    parts = line.split()
    if len(parts) < 4 or parts[0] != "pid" or parts[3] != socket.gethostname():
        return True
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return False
    except (ValueError, PermissionError):
        return True
    return True


def lock_holders(path: str | os.PathLike) -> str:
    """Who holds the lock file ``path``, as written by ``file_lock``."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError:
        lines = []
    live = [ln for ln in lines if ln.strip() and _alive(ln)]
    return "; ".join(live) or "another process"


def busy_holder(path: str | os.PathLike) -> str | None:
    """The holder of an exclusive ``file_lock`` on ``path``, or None when it is free (creates nothing)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return lock_holders(path)
    finally:
        os.close(fd)
    return None


@contextlib.contextmanager
def file_lock(path: str | os.PathLike, *, shared: bool = False):
    """Hold an advisory lock (``fcntl.flock``) on ``path`` while the block runs; ``Busy`` if taken.

    Exclusive by default; shared locks coexist with each other but not with an exclusive
    one. The system drops the lock when the process ends, however it ends, so a lock is
    never stale. The file holds its holders' pid and host for the message of the next
    process; the last holder removes it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + 0.5  # rides out a holder that is just letting go
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            if time.monotonic() > deadline:
                raise Busy(path, lock_holders(path)) from None
            time.sleep(0.05)
            continue
        try:
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)  # its last holder removed the file meanwhile: lock the new one
    try:
        if not shared:
            os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_END)
        os.write(fd, (_holder_line() + "\n").encode())
        yield path
    finally:
        try:  # the last holder (the one that can make its lock exclusive) removes the file
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.unlink(path)
        except OSError:
            pass
        os.close(fd)


# ---------------------------------------------------------------- reading


def read_checkpoint(path: str | os.PathLike, device: Any = "cpu") -> dict[str, Any]:
    """A checkpoint written by the training loop; raises if it is missing, truncated or garbage."""
    import torch

    ckpt = torch.load(path, map_location=device, weights_only=False)
    if not isinstance(ckpt, dict) or len(ckpt.get("rows", ())) != ckpt.get("epoch"):
        raise ValueError("not a checkpoint of this project")
    return ckpt


def unusable_reason(err: BaseException) -> str:
    """Why ``read_checkpoint`` (or applying it) failed, in a few words."""
    if isinstance(err, FileNotFoundError):
        return "missing though metrics.csv is there"
    first = str(err).strip().splitlines()[:1]
    detail = first[0].split(". ")[0] if first else ""  # torch appends paragraphs of advice
    return f"damaged ({type(err).__name__}: {detail})" if detail else f"damaged ({type(err).__name__})"


def read_run(run_dir: str | os.PathLike) -> dict[str, Any]:
    """One run as plain data: ``config``, ``run`` (run.json), ``metrics`` (DataFrame), extras.

    Each file is read on its own: ``damaged`` maps the name of every file that could not be
    read to its ``DamagedRunFile``, and that file's entry is None. A file that is absent reads
    as before it existed: run.json as status "missing", metrics.csv as no rows, the others None.
    """
    import pandas as pd

    from .data import CLASSES

    run_dir = Path(run_dir)
    out: dict[str, Any] = {"dir": run_dir, "damaged": {}}

    def read(name: str, reader, *args, absent: Any = None) -> Any:
        if name != CONFIG and not (run_dir / name).exists():
            return absent
        try:
            return reader(*args)
        except DamagedRunFile as err:
            out["damaged"][name] = err
            return None

    out["config"] = read(CONFIG, read_config, run_dir)
    out["run"] = read(RUN, record_dict, run_dir / RUN, absent={"status": "missing"})
    out["metrics"] = read(METRICS, read_table, run_dir / METRICS, METRIC_COLUMNS,
                          absent=pd.DataFrame(columns=METRIC_COLUMNS))
    out["grad_norms"] = read(GRAD_NORMS, read_table, run_dir / GRAD_NORMS, GRAD_COLUMNS[:5], ("layer",))
    out["confusion"] = read(CONFUSION, read_table, run_dir / CONFUSION, ("true", *CLASSES), ("true",))
    out["predictions"] = read(PREDICTIONS, read_npy, run_dir / PREDICTIONS)
    out["labels"] = read(LABELS, read_npy, run_dir / LABELS)
    return out


def find_runs(root: str | os.PathLike) -> list[Path]:
    """Every run directory (one holding config.yaml or run.json) below ``root``, sorted."""
    root = Path(root)
    if not root.exists():
        return []
    return sorted({p.parent for name in (CONFIG, RUN) for p in root.rglob(name)})
