"""Loading a reports folder ``R`` (``R/runs/<exp_name>/seed<N>/`` and ``R/cost.csv``) into tidy tables.

Accuracy is always the test accuracy of the LAST epoch (never the best epoch): the test
set is not used to pick anything.

Every run file is checked as it is loaded (``runio.read_run`` reads each strictly; the checks
here hold it against the run's record: rows against the epochs done, arrays against the test
size, finite values where a run can only write finite ones). A file that fails is left out of
the tables, and so of every statistic that needs it, and only those: a damaged run.json or
config.yaml leaves the whole run out (neither its state nor its settings are known), a damaged
metrics.csv its accuracy and curves, grad_norms.csv its gradients, confusion.csv its per-class
counts, predictions.npy or labels.npy its per-image predictions (the paired tests fall back as
for a run without them). ``Results.damaged`` lists each such file.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import pandas as pd

from .. import runio
from ..data import CLASSES, project_root
from ..runcheck import DamagedRunFile
from ..study import REFERENCE_PROFILES, STUDY_TABLE, VARIANT_ORDER, in_order, profile_set

FULL_TRAIN = 50_000  # CIFAR-10's training set; a smaller train_size is a subset

FULL_TEST = 10_000


@dataclass(frozen=True)
class Damage:
    """A run file that failed its check on load, and the run it belongs to."""

    exp_name: str
    seed: int | None
    dir: Path  # the run directory
    file: str  # runio's name of the file, e.g. runio.METRICS
    error: DamagedRunFile  # what is wrong (``error.kind``, ``error.details``)

    @property
    def whole_run(self) -> bool:
        """Whether the run is left out altogether (its run.json or config.yaml is damaged)."""
        return self.file in (runio.RUN, runio.CONFIG)


@dataclass
class RunTables:
    """What the run directories hold, checked: the tidy tables, the per-image predictions of
    each run that has them (run dir -> (labels, predictions)) and the damaged files."""

    runs: pd.DataFrame
    epochs: pd.DataFrame
    grads: pd.DataFrame
    confusion: pd.DataFrame
    predictions: dict[str, tuple[np.ndarray, np.ndarray]]
    damaged: list[Damage]


@dataclass
class Results:
    """Tidy tables of one reports folder."""

    reports_dir: Path
    runs: pd.DataFrame  # one row per run
    epochs: pd.DataFrame  # every metrics.csv row, with exp_name and seed
    grads: pd.DataFrame  # every grad_norms.csv row, with exp_name, seed, model
    confusion: pd.DataFrame  # long: exp_name, seed, true, pred, count
    cost: pd.DataFrame | None  # cost.csv, or None
    missing: list[str] = field(default_factory=list)  # variants the runs' profile trains, with no run
    damaged: list[Damage] = field(default_factory=list)  # run files that failed their check
    # run dir -> (labels, predictions) of each run whose per-image predictions passed their check
    predictions: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)
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
    cfg = run["config"] or {}
    m = run["metrics"] if run["metrics"] is not None else pd.DataFrame(columns=runio.METRIC_COLUMNS)
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
    """runs, epochs, grads, confusion tables of the given run directories (``read_runs``)."""
    t = read_runs(run_dirs)
    return t.runs, t.epochs, t.grads, t.confusion


def read_runs(run_dirs: Iterable[str | Path]) -> RunTables:
    """The given run directories, every file checked; a damaged file adds nothing to the tables."""
    rows, epochs, grads, conf, predictions, damaged = [], [], [], [], {}, []
    for d in run_dirs:
        run = check_run(runio.read_run(d))
        damaged += [Damage(*_identity(run), Path(d), name, err) for name, err in run["damaged"].items()]
        if runio.RUN in run["damaged"] or runio.CONFIG in run["damaged"]:
            continue  # neither its state nor its settings are known: the run counts nowhere
        row = _run_row(run)
        rows.append(row)
        key = {"exp_name": row["exp_name"], "seed": row["seed"], "model": row["model"]}
        if run["metrics"] is not None and len(run["metrics"]):
            epochs.append(run["metrics"].assign(**key))
        if run["grad_norms"] is not None and len(run["grad_norms"]):
            grads.append(run["grad_norms"].assign(**key))
        c = run["confusion"]
        if c is not None and len(c):
            long = c.melt(id_vars="true", var_name="pred", value_name="count").assign(**key)
            conf.append(long)
        if run["predictions"] is not None and run["labels"] is not None:
            predictions[row["dir"]] = (run["labels"], run["predictions"])
    runs = pd.DataFrame(rows, columns=list(RUN_COLUMNS))
    if len(runs):
        runs = runs.sort_values(["exp_name", "seed"]).reset_index(drop=True)
    cat = lambda parts, cols: pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=cols)  # noqa
    return RunTables(runs,
                     cat(epochs, [*runio.METRIC_COLUMNS, "exp_name", "seed", "model"]),
                     cat(grads, ["epoch", "step", "layer_index", "layer", "grad_norm", "exp_name", "seed", "model"]),
                     cat(conf, ["true", "pred", "count", "exp_name", "seed", "model"]),
                     predictions, sorted(damaged, key=lambda x: (x.exp_name, x.seed or 0, x.file)))


def _identity(run: dict[str, Any]) -> tuple[str, int | None]:
    """A run's variant and seed, from its config, else its run.json, else its folder's names."""
    cfg, rec, d = run["config"] or {}, run["run"] or {}, run["dir"]
    seed = cfg.get("seed", rec.get("seed"))
    if seed is None and d.name.startswith("seed") and d.name[4:].isdigit():
        seed = int(d.name[4:])
    return str(cfg.get("exp_name") or rec.get("exp_name") or d.parent.name), seed


# ------------------------------------------------------------------ each file against the run's record


def check_run(run: dict[str, Any]) -> dict[str, Any]:
    """``runio.read_run``'s run with every file held against the run's record: a file that
    fails is set to None and named in ``run["damaged"]`` (predictions and labels as a pair)."""
    if runio.RUN in run["damaged"] or runio.CONFIG in run["damaged"]:
        return run
    rec = runio.RunRecord.from_dict(run["run"])
    n_test = rec.test_size if rec.test_size is not None else (run["config"]["test_size"] or FULL_TEST)
    for name, key, check, args in ((runio.METRICS, "metrics", _check_metrics, (rec,)),
                                   (runio.GRAD_NORMS, "grad_norms", _check_grads, (rec,)),
                                   (runio.CONFUSION, "confusion", _check_confusion, (n_test,)),
                                   (runio.PREDICTIONS, "predictions", _check_classes, (n_test,)),
                                   (runio.LABELS, "labels", _check_classes, (n_test,))):
        if run[key] is not None and name not in run["damaged"]:
            try:
                check(run["dir"] / name, run[key], *args)
            except DamagedRunFile as err:
                run["damaged"][name] = err
        if name in run["damaged"]:
            run[key] = None
    if run["predictions"] is None or run["labels"] is None:
        run["predictions"] = run["labels"] = None  # one without the other is no use
    return run


def _finished(rec: runio.RunRecord) -> set[int] | None:
    """How many epoch rows the run's files may hold: the epochs run.json records, or one more
    while it trains or after it stopped (the files of an epoch are written before run.json)."""
    if rec.epochs_done is None:
        return None
    done = rec.epochs_done
    return {done} if rec.status in ("completed", "diverged") else {done, done + 1}


def _check_range(path: Path, df: pd.DataFrame, column: str, ok: Callable[[pd.Series], pd.Series], allowed: str) -> None:
    bad = ~ok(df[column].astype(float))
    if bad.any():
        i = int(bad.to_numpy().nonzero()[0][0])
        raise DamagedRunFile(path, "out_of_range", line=i + 2, column=column, value=df[column].iloc[i], allowed=allowed)


def _in_unit(x: pd.Series) -> pd.Series:
    return (x >= 0) & (x <= 1)


def _finite_nonnegative(x: pd.Series) -> pd.Series:
    return np.isfinite(x) & (x >= 0)


def _nonnegative(x: pd.Series) -> pd.Series:  # inf allowed, NaN not
    return x >= 0


def _check_metrics(path: Path, m: pd.DataFrame, rec: runio.RunRecord) -> None:
    """Epochs 1..n in order, as many as run.json records; accuracies in [0, 1], the train loss,
    learning rate and timings finite (training stops at a non-finite loss), the test loss ≥ 0."""
    if rec.epochs_done and not path.exists():
        raise DamagedRunFile(path, "missing")
    finished = _finished(rec)
    if list(m["epoch"]) != list(range(1, len(m) + 1)):
        raise DamagedRunFile(path, "epoch_order", epochs=", ".join(map(str, m["epoch"][:6])))
    if finished is not None and len(m) not in finished:
        raise DamagedRunFile(path, "epoch_rows", rows=len(m), done=rec.epochs_done)
    for col in ("train_acc", "test_acc"):
        _check_range(path, m, col, _in_unit, "[0, 1]")
    for col in ("train_loss", "lr", "seconds", "images_per_s"):
        _check_range(path, m, col, _finite_nonnegative, "[0, ∞)")
    _check_range(path, m, "test_loss", _nonnegative, "[0, ∞]")


def _check_grads(path: Path, g: pd.DataFrame, rec: runio.RunRecord) -> None:
    """Whole epochs 1..n (the same rows in each), n no more than run.json records (all of them
    for a completed run); norms ≥ 0, finite for a completed run."""
    epochs = g.groupby("epoch").size()
    if list(epochs.index) != list(range(1, len(epochs) + 1)):
        raise DamagedRunFile(path, "epoch_order", epochs=", ".join(map(str, epochs.index[:6])))
    for epoch, n in epochs.items():
        if n != epochs.iloc[0]:
            raise DamagedRunFile(path, "uneven_epochs", n=int(n), epoch=int(epoch), first=1, m=int(epochs.iloc[0]))
    finished = _finished(rec)
    if finished is not None:
        whole = len(epochs) in finished if rec.status == "completed" else len(epochs) <= max(finished)
        if not whole:
            raise DamagedRunFile(path, "grad_epochs", last=len(epochs), done=rec.epochs_done)
    _check_range(path, g, "layer_index", _finite_nonnegative, "[0, ∞)")
    _check_range(path, g, "grad_norm", _finite_nonnegative if rec.status == "completed" else _nonnegative,
                 "[0, ∞)" if rec.status == "completed" else "[0, ∞]")


def _check_confusion(path: Path, c: pd.DataFrame, n_test: int) -> None:
    """The ten classes as rows in order; counts whole numbers ≥ 0 adding up to the test size."""
    if list(c["true"]) != list(CLASSES):
        raise DamagedRunFile(path, "classes", rows=", ".join(map(str, c["true"])))
    for col in CLASSES:
        _check_range(path, c, col, lambda x: np.isfinite(x) & (x >= 0) & (x == np.round(x)), "{0, 1, 2, …}")
    total = int(c[list(CLASSES)].to_numpy().sum())
    if total != n_test:
        raise DamagedRunFile(path, "total", total=total, n=n_test)


def _check_classes(path: Path, a: np.ndarray, n_test: int) -> None:
    """One class index (uint8, 0–9) per test image."""
    if a.ndim != 1 or a.dtype != np.uint8 or len(a) != n_test:
        raise DamagedRunFile(path, "shape", shape=tuple(a.shape), dtype=str(a.dtype), n=n_test)
    if len(a) and int(a.max()) >= len(CLASSES):
        raise DamagedRunFile(path, "not_class", value=int(a.max()))


def load_results(reports_dir: str | Path, reference_dir: str | Path | None = None) -> Results:
    """Every run below ``reports_dir/runs`` (each file checked) and ``reports_dir/cost.csv``, with
    the project's reference runs beside them (``reference_dir``, default ``reports/reference``;
    see ``load_reference``)."""
    res = _load_folder(reports_dir)
    res.reference, res.reference_note = load_reference(reference_dir)
    return res


def _load_folder(reports_dir: str | Path) -> Results:
    reports_dir = Path(reports_dir)
    t = read_runs(runio.find_runs(reports_dir / "runs"))
    cost_path = reports_dir / "cost.csv"
    cost = pd.read_csv(cost_path) if cost_path.exists() else None
    present = set(t.runs["exp_name"]) | {d.exp_name for d in t.damaged}  # a damaged run is not a missing one
    profiles = set(t.runs["profile"].dropna()) if len(t.runs) else set()
    expected = profile_set(profiles.pop(), VARIANT_ORDER) if len(profiles) == 1 else VARIANT_ORDER  # what its profile trains
    missing = [v for v in expected if v not in present]
    return Results(reports_dir, t.runs, t.epochs, t.grads, t.confusion, cost, missing, t.damaged, t.predictions)


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

