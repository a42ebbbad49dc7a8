"""Loading a reports folder ``R`` (``R/runs/<exp_name>/seed<N>/`` and ``R/cost.csv``) into tidy tables.

Accuracy is always the test accuracy of the LAST epoch (never the best epoch): the test
set is not used to pick anything.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from .. import runio
from ..data import project_root
from ..study import REFERENCE_PROFILES, STUDY_TABLE, VARIANT_ORDER, in_order

FULL_TRAIN = 50_000  # CIFAR-10's training set; a smaller train_size is a subset

FULL_TEST = 10_000

@dataclass
class Results:
    """Tidy tables of one reports folder."""

    reports_dir: Path
    runs: pd.DataFrame  # one row per run
    epochs: pd.DataFrame  # every metrics.csv row, with exp_name and seed
    grads: pd.DataFrame  # every grad_norms.csv row, with exp_name, seed, model
    confusion: pd.DataFrame  # long: exp_name, seed, true, pred, count
    cost: pd.DataFrame | None  # cost.csv, or None
    missing: list[str] = field(default_factory=list)  # study/extension variants with no run
    cache: dict[str, Any] = field(default_factory=dict, repr=False)  # statistics computed once per load
    reference: "Results | None" = None  # the project's reference runs (reports/reference/<profile>/), if found
    reference_note: str = ""  # why there is no reference, in one line (empty when there is one)

    @property
    def profiles(self) -> list[str]:
        return sorted(self.runs["profile"].dropna().unique()) if len(self.runs) else []

    @property
    def profile(self) -> str:
        p = self.profiles
        return p[0] if len(p) == 1 else ("/".join(p) if p else "未知")

    def variants(self) -> list[str]:
        """Variants present: study order, then extensions, then any others (sorted)."""
        return in_order(self.runs["exp_name"] if len(self.runs) else [])


# The columns of the runs table, in _run_row's order (also those of an empty one).
RUN_COLUMNS = (
    "exp_name", "seed", "model", "optimizer", "lr", "momentum", "weight_decay", "schedule", "augment", "status",
    "message", "final_epoch", "final_test_acc", "final_train_acc", "final_test_loss", "final_train_loss",
    "profile", "data_description", "data_kind", "epochs", "epochs_done", "batch_size", "train_size", "test_size",
    "params", "device", "train_seconds", "images_per_s", "seconds_per_epoch", "in_study", "study_acc", "dir",
    "data_path", "data_fingerprint", "python", "torch", "torchvision", "platform", "cpu_count", "git_commit",
    "started", "finished", "amp", "channels_last", "precision_source", "precision_timings", "cpu_model", "budget",
)


def _run_row(run: dict[str, Any]) -> dict[str, Any]:
    cfg, m = run["config"] or {}, run["metrics"]
    rec = runio.RunRecord.from_dict(run["run"])  # the schema fills what an older run.json lacks
    last = m.iloc[-1] if len(m) else None
    exp = cfg.get("exp_name", run["dir"].parent.name)
    return {
        "exp_name": exp,
        "seed": int(cfg.get("seed", rec.seed or 0)),
        "model": cfg.get("model", rec.model),
        "optimizer": cfg.get("optimizer"),
        "lr": cfg.get("lr"),
        "momentum": cfg.get("momentum"),
        "weight_decay": cfg.get("weight_decay"),
        "schedule": cfg.get("schedule"),
        "augment": bool(cfg.get("augment", False)),
        "status": "running" if rec.status == "missing" else rec.status,  # config but no run.json: unfinished
        "message": rec.message,
        "final_epoch": int(last["epoch"]) if last is not None else 0,
        "final_test_acc": float(last["test_acc"]) if last is not None else math.nan,
        "final_train_acc": float(last["train_acc"]) if last is not None else math.nan,
        "final_test_loss": float(last["test_loss"]) if last is not None else math.nan,
        "final_train_loss": float(last["train_loss"]) if last is not None else math.nan,
        "profile": cfg.get("profile", rec.profile),
        "data_description": rec.data.get("description", "未知"),
        "data_kind": rec.data.get("kind", "未知"),
        "epochs": cfg.get("epochs"),
        "epochs_done": len(m) if rec.epochs_done is None else rec.epochs_done,
        "batch_size": cfg.get("batch_size"),
        "train_size": cfg.get("train_size") if rec.train_size is None else rec.train_size,
        "test_size": cfg.get("test_size") if rec.test_size is None else rec.test_size,
        "params": rec.params,
        "device": rec.environment.get("device"),
        "train_seconds": rec.train_seconds if rec.train_seconds is not None else
        (float(m["seconds"].sum()) if len(m) else math.nan),
        "images_per_s": float(m["images_per_s"].mean()) if len(m) else math.nan,
        "seconds_per_epoch": float(m["seconds"].mean()) if len(m) else math.nan,
        "in_study": exp in STUDY_TABLE,
        "study_acc": STUDY_TABLE[exp][3] if exp in STUDY_TABLE else math.nan,
        "dir": str(run["dir"]),
        "data_path": rec.data.get("path"), "data_fingerprint": rec.data.get("fingerprint"),
        **{k: rec.environment.get(k) for k in ("python", "torch", "torchvision", "platform", "cpu_count", "git_commit")},
        "started": rec.started, "finished": rec.finished,
        **_precision(rec.precision or {}),
        "cpu_model": _cpu_model(rec.environment),
        "budget": cfg.get("budget", "model"),
    }


def _precision(p: dict[str, Any]) -> dict[str, Any]:
    """The amp / channels_last a run trained in and how it was chosen (runs from before the
    choice was recorded trained in fp32, NCHW)."""
    source = p.get("source") or ("explicit" if p.get("reason") == "set explicitly"
                                 else "measured" if str(p.get("reason", "")).startswith("fastest")
                                 else "rule" if p else "unrecorded")
    return {"amp": p.get("amp", "off"), "channels_last": p.get("channels_last", "off"),
            "precision_source": source, "precision_timings": p.get("timings_s")}


def _cpu_model(env: dict[str, Any]) -> str | None:
    """The CPU's model line; older runs recorded only the architecture (e.g. x86_64)."""
    cpu = env.get("processor")
    return cpu if cpu and cpu not in ("x86_64", "aarch64", "arm64", "i386", "AMD64") else None


def load_runs(run_dirs: Iterable[str | Path]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """runs, epochs, grads, confusion tables of the given run directories."""
    rows, epochs, grads, conf = [], [], [], []
    for d in run_dirs:
        run = runio.read_run(d)
        row = _run_row(run)
        rows.append(row)
        key = {"exp_name": row["exp_name"], "seed": row["seed"], "model": row["model"]}
        if len(run["metrics"]):
            epochs.append(run["metrics"].assign(**key))
        if run["grad_norms"] is not None and len(run["grad_norms"]):
            grads.append(run["grad_norms"].assign(**key))
        c = run["confusion"]
        if c is not None and len(c):
            long = c.melt(id_vars="true", var_name="pred", value_name="count").assign(**key)
            conf.append(long)
    runs = pd.DataFrame(rows, columns=list(RUN_COLUMNS))
    if len(runs):
        runs = runs.sort_values(["exp_name", "seed"]).reset_index(drop=True)
    cat = lambda parts, cols: pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=cols)  # noqa
    return (runs,
            cat(epochs, [*runio.METRIC_COLUMNS, "exp_name", "seed", "model"]),
            cat(grads, ["epoch", "step", "layer_index", "layer", "grad_norm", "exp_name", "seed", "model"]),
            cat(conf, ["true", "pred", "count", "exp_name", "seed", "model"]))


def load_results(reports_dir: str | Path, reference_dir: str | Path | None = None) -> Results:
    """Every run below ``reports_dir/runs`` and ``reports_dir/cost.csv``, with the project's
    reference runs beside them (``reference_dir``, default ``reports/reference``; see
    ``load_reference``)."""
    res = _load_folder(reports_dir)
    res.reference, res.reference_note = load_reference(reference_dir)
    return res


def _load_folder(reports_dir: str | Path) -> Results:
    reports_dir = Path(reports_dir)
    runs, epochs, grads, conf = load_runs(runio.find_runs(reports_dir / "runs"))
    cost_path = reports_dir / "cost.csv"
    cost = pd.read_csv(cost_path) if cost_path.exists() else None
    present = set(runs["exp_name"])
    missing = [v for v in VARIANT_ORDER if v not in present]
    return Results(reports_dir, runs, epochs, grads, conf, cost, missing)


REFERENCE_DIR = "reports/reference"  # the reference runs shipped with the project, relative to its root


def load_reference(reference_dir: str | Path | None = None) -> tuple[Results | None, str]:
    """(the reference runs, "") or (None, why not): the first of ``study.REFERENCE_PROFILES``
    (largest scale first) that has completed runs below ``reference_dir/<profile>/runs``."""
    root = Path(reference_dir) if reference_dir is not None else project_root() / REFERENCE_DIR
    for profile in REFERENCE_PROFILES:
        folder = root / profile
        if not folder.is_dir():
            continue
        ref = _load_folder(folder)
        if len(ref.runs) and (ref.runs["status"] == "completed").any():
            return ref, ""
    where = REFERENCE_DIR if reference_dir is None else str(reference_dir)
    return None, f"没有找到参考运行（{where}），下文只用本次运行的结果。"

