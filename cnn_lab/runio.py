"""Run directories: atomic writes and tidy reads.

A run directory holds ``config.yaml`` (the resolved config), ``metrics.csv`` (one row per
finished epoch), ``run.json`` (status, final metrics, environment), ``checkpoint.pt`` (the
last finished epoch), and, where recorded, ``grad_norms.csv``, ``confusion.csv``,
``predictions.npy`` (the last epoch's predicted class of every test image, uint8, in
test-subset order) and ``labels.npy`` (those images' true classes, the same order).
Every file is written to a temporary file in the same folder and renamed over the old one,
so a kill at any moment leaves either the old or the new file, never a truncated one.
"""
from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Mapping

CONFIG = "config.yaml"
METRICS = "metrics.csv"
RUN = "run.json"
CHECKPOINT = "checkpoint.pt"
GRAD_NORMS = "grad_norms.csv"
CONFUSION = "confusion.csv"
PREDICTIONS = "predictions.npy"
LABELS = "labels.npy"

METRIC_COLUMNS = (
    "epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "seconds", "images_per_s",
)
# Wall-clock columns: the only ones that differ between two runs of one config on the CPU.
TIMING_COLUMNS = ("seconds", "images_per_s")


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes the file private; results are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


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


def read_npy(path: str | os.PathLike) -> Any:
    """The array in ``path``, or None when the file is absent (runs made before it existed)."""
    import numpy as np

    path = Path(path)
    return np.load(path, allow_pickle=False) if path.exists() else None


def atomic_torch_save(path: str | os.PathLike, obj: Any) -> None:
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


# ---------------------------------------------------------------- reading


def read_run(run_dir: str | os.PathLike) -> dict[str, Any]:
    """One run as plain data: ``config``, ``run`` (run.json), ``metrics`` (DataFrame), extras."""
    import pandas as pd
    import yaml

    run_dir = Path(run_dir)
    out: dict[str, Any] = {"dir": run_dir}
    out["config"] = yaml.safe_load((run_dir / CONFIG).read_text(encoding="utf-8"))
    out["run"] = read_json(run_dir / RUN) if (run_dir / RUN).exists() else {"status": "missing"}
    metrics = run_dir / METRICS
    out["metrics"] = pd.read_csv(metrics) if metrics.exists() else pd.DataFrame(columns=METRIC_COLUMNS)
    for name, key in ((GRAD_NORMS, "grad_norms"), (CONFUSION, "confusion")):
        p = run_dir / name
        out[key] = pd.read_csv(p) if p.exists() else None
    out["predictions"] = read_npy(run_dir / PREDICTIONS)
    out["labels"] = read_npy(run_dir / LABELS)
    return out


def find_runs(root: str | os.PathLike) -> list[Path]:
    """Every run directory (one holding config.yaml) below ``root``, sorted."""
    root = Path(root)
    if not root.exists():
        return []
    return sorted(p.parent for p in root.rglob(CONFIG))
