"""The whole study in one command: every variant through the training notebook, then the report.

``run_pipeline`` (``python -m cnn_lab pipeline``) does, for a profile P and reports folder R:

1. reads and validates every variant file in ``parameters/`` (study variants first, then the
   extensions, then any other file, sorted) and reads the data before anything runs: a bad
   or empty file, an unknown ``--only`` name, a run directory holding another config, or
   missing or damaged data prints one error line and returns 2 with nothing written; so
   does another pipeline using the reports folder (``R/P/.lock``; training-only pipelines,
   ``--no-report``, may share it) or another process training one of the runs;
2. per variant, skips it ("up to date") when every seed's run under ``R/P/runs`` is
   completed with the same config, and otherwise executes ``notebooks/train_variant.ipynb``
   with papermill into ``R/P/runs/<exp_name>/<exp_name>.ipynb``; a failing variant is
   recorded and the others still run;
3. writes ``R/P/cost.csv`` (``cost.cost_table`` of the models present; recomputed only when
   missing or when the model set changed);
4. executes ``notebooks/analysis.ipynb`` into ``R/P/report.ipynb`` and exports it to
   ``report.html`` and ``report.pdf`` (``cnn_lab.export``).

Exit status: 0 all done, 1 a variant (or the report) failed, 2 bad input or a busy folder,
130 interrupted with Ctrl-C (the running variant records itself as interrupted; rerun to resume).
"""
from __future__ import annotations

import dataclasses
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from . import runio
from .config import ConfigError, RunConfig, load_config, pick_profile, read_yaml
from .config import budget_line
from .data import DataNotFoundError, load_cifar10, project_root
from .study import EXTENSION_VARIANTS, STUDY_VARIANTS

TRAIN_NOTEBOOK = "notebooks/train_variant.ipynb"
ANALYSIS_NOTEBOOK = "notebooks/analysis.ipynb"
PARAMETERS_DIR = "parameters"


# ===================================================================== variants


def variant_files(params_dir: str | Path) -> list[Path]:
    """Variant files: study order, then extensions, then any other ``*.yaml`` (sorted by name)."""
    params_dir = Path(params_dir)
    files = {p.stem: p for p in sorted(params_dir.glob("*.yaml")) + sorted(params_dir.glob("*.yml"))}
    order = [n for n in (*STUDY_VARIANTS, *EXTENSION_VARIANTS) if n in files]
    order += sorted(n for n in files if n not in order)
    return [files[n] for n in order]


@dataclasses.dataclass
class Variant:
    path: Path
    values: dict[str, Any]  # the file's own settings
    cfg: RunConfig  # resolved (profile, out_dir and overrides applied)

    @property
    def name(self) -> str:
        return self.cfg.exp_name

    def params(self) -> dict[str, Any]:
        """The papermill parameters of its training notebook."""
        out = dict(self.values)
        out.update(profile=self.cfg.profile, out_dir=self.cfg.out_dir)
        return out


def load_variants(params_dir: str | Path, profile: str, runs_dir: Path,
                  overrides: Mapping[str, Any] | None = None) -> list[Variant]:
    """Every variant file, resolved and validated (raises ConfigError on the first problem)."""
    files = variant_files(params_dir)
    if not files:
        raise ConfigError(f"{params_dir}: no variant files (*.yaml)")
    variants: list[Variant] = []
    seen: dict[str, Path] = {}
    for path in files:
        values = read_yaml(path)
        load_config(path, profile=profile)  # the file alone first, so its errors name the file
        cfg = load_config(path, profile=profile, overrides={**dict(overrides or {}), "out_dir": str(runs_dir)})
        if cfg.exp_name in seen:
            raise ConfigError(f"{path}: exp_name {cfg.exp_name!r} is also used by {seen[cfg.exp_name]}")
        seen[cfg.exp_name] = path
        values = {**values, **dict(overrides or {})}
        variants.append(Variant(path, values, cfg))
    return variants


def variant_state(cfg: RunConfig) -> str:
    """'completed' when every seed is completed with this config, else the first other state.

    Raises ``RunConflict`` when a run directory holds another config.
    """
    from .train import check_run_dir

    states = [check_run_dir(cfg, s) for s in cfg.seed_list()]
    for s in ("diverged", "resume", "new"):
        if s in states:
            return s
    return "completed"


# ===================================================================== the pipeline


def _fmt_s(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _error_line(err: BaseException) -> str:
    ename = getattr(err, "ename", type(err).__name__)
    evalue = str(getattr(err, "evalue", err)).strip().splitlines()
    return f"{ename}: {evalue[-1] if evalue else ''}".strip()


def estimate_seconds(cfg: RunConfig, log: Callable[[str], None] = print) -> float | None:
    """Training time of every seed of a variant on this CPU, from a measured training step in
    the mode it will train in (``autotune``'s cached timing; measured now if missing)."""
    import torch

    from . import autotune
    from .train import batch_starts, select_device

    try:
        if select_device(cfg.device).type != "cpu" or cfg.nproc > 1:
            return None
    except ConfigError:  # e.g. device cuda without one: the training notebook reports it
        return None
    mode = autotune.resolve(cfg, torch.device("cpu"), log=log)
    step = autotune.step_seconds(cfg.model, cfg.optimizer, cfg.batch_size, mode["amp"], mode["channels_last"], log)
    steps = len(batch_starts(cfg.train_size or 50_000, cfg.batch_size))
    evaluation = (cfg.test_size or 10_000) / cfg.batch_size * step / 3  # a forward pass: about a third of a step
    return (steps * step + evaluation) * cfg.epochs * len(cfg.seed_list())


def execute_notebook(src: str | Path, dst: str | Path, parameters: Mapping[str, Any]) -> None:
    """papermill ``src`` into ``dst`` with the kernel's working directory at ``src``'s folder.

    papermill runs in a worker thread, so Ctrl-C reaches this (main) thread, which passes it
    on to the kernel: the running cell stops as it would in Jupyter (a run records itself as
    interrupted), papermill saves the notebook and shuts the kernel down, and the
    ``KeyboardInterrupt`` is raised here.
    """
    import threading

    import papermill as pm

    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    failure: list[BaseException] = []
    done = threading.Event()

    def run() -> None:
        try:
            pm.execute_notebook(str(src), str(dst), parameters=dict(parameters), cwd=str(Path(src).resolve().parent),
                                log_output=False, progress_bar=False, kernel_manager_class=_ipc_kernel_manager())
        except BaseException as e:  # noqa: BLE001 - handed to the main thread
            failure.append(e)
        finally:
            done.set()

    threading.Thread(target=run, name="papermill", daemon=True).start()
    try:
        while not done.wait(0.2):  # not Thread.join: a Ctrl-C inside join can leave it unusable
            pass
    except KeyboardInterrupt:
        _interrupt_kernels()
        done.wait(60)  # the cell stops, papermill saves the notebook and shuts the kernel down
        raise KeyboardInterrupt(_interrupted_line(failure, dst)) from None
    if failure:
        raise failure[0]


def _ipc_kernel_manager():
    """A kernel manager that talks to its kernel over Unix sockets (IPC) instead of TCP on
    localhost: the kernel is this machine's alone, and ipykernel no longer prints its
    warning about unencrypted TCP into every pipeline's output."""
    import traitlets
    from jupyter_client.manager import AsyncKernelManager

    class IPCKernelManager(AsyncKernelManager):
        transport = traitlets.CaselessStrEnum(["tcp", "ipc"], default_value="ipc", config=True)

    return IPCKernelManager


def _interrupted_line(failure: list[BaseException], dst: str | Path) -> str:
    ename = getattr(failure[0], "ename", "") if failure else ""
    if ename in ("RunInterrupted", "KeyboardInterrupt"):
        evalue = str(getattr(failure[0], "evalue", "")).strip()
        return f"{evalue or 'the notebook stopped'} (notebook: {dst})"
    return f"stopped with Ctrl-C (notebook: {dst}); run the same command again to resume"


def _interrupt_kernels() -> None:
    """SIGINT to this process's kernels (each leads its own process group, as Jupyter starts them)."""
    import signal

    try:
        import psutil  # ipykernel's own dependency
    except ImportError:
        return
    for child in psutil.Process().children():
        try:
            pgid = os.getpgid(child.pid)
            if pgid != os.getpgrp():
                os.killpg(pgid, signal.SIGINT)  # the kernel and what it started (torchrun)
            else:
                os.kill(child.pid, signal.SIGINT)
        except (ProcessLookupError, PermissionError):
            pass


def write_cost(out: Path, runs_dir: Path, log: Callable[[str], None] = print) -> Path | None:
    """``out/cost.csv`` for the models of the runs below ``runs_dir`` (kept when the set is unchanged)."""
    import pandas as pd
    import yaml

    from .models import list_models

    present, modes = set(), {}
    for d in runio.find_runs(runs_dir):
        cfg = yaml.safe_load((d / runio.CONFIG).read_text(encoding="utf-8")) or {}
        if cfg.get("model"):
            present.add(cfg["model"])
            prec = runio.read_json(d / runio.RUN).get("precision") if (d / runio.RUN).exists() else None
            if prec and cfg["model"] not in modes:  # the step in the mode the model's runs trained in
                modes[cfg["model"]] = {k: prec[k] for k in ("amp", "channels_last")}
    known = list(list_models())
    models = [m for m in known if m in present] + sorted(present - set(known))
    path = out / "cost.csv"
    if not models:
        return None
    if path.exists():
        try:
            old = pd.read_csv(path)
            amps = [modes.get(m, {}).get("amp", "off") for m in models]
            if list(old["model"]) == models and "memory_amp" in old and list(old["memory_amp"]) == amps:
                return path
        except Exception:  # an unreadable file is simply recomputed
            pass
    from .config import has_gpu
    from .cost import cost_table

    t0 = time.perf_counter()
    device = "cuda" if has_gpu() else "cpu"
    rows = cost_table(models, batch_size=64, device=device, modes=modes)
    runio.atomic_write_text(path, pd.DataFrame(rows).to_csv(index=False))
    log(f"cost.csv: {', '.join(models)} ({_fmt_s(time.perf_counter() - t0)})")
    return path


def run_pipeline(
    profile: str = "auto",
    only: Sequence[str] | None = None,
    reports_dir: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    export: bool = True,
    *,
    report: bool = True,
    params_dir: str | Path | None = None,
    train_notebook: str | Path | None = None,
    analysis_notebook: str | Path | None = None,
    log: Callable[[str], None] = print,
) -> int:
    """Train every (selected) variant through the training notebook, then build the report.

    ``report=False`` trains only (no cost.csv, report or export): for several pipelines
    sharing one reports folder, e.g. one per GPU, that must not write the same files at once.
    """
    root = project_root()
    params_dir = Path(params_dir or root / PARAMETERS_DIR)
    train_nb = Path(train_notebook or root / TRAIN_NOTEBOOK).resolve()
    analysis_nb = Path(analysis_notebook or root / ANALYSIS_NOTEBOOK).resolve()
    err = lambda msg: print(f"error: {msg}", file=sys.stderr)  # noqa: E731
    try:
        if profile not in ("smoke", "cpu", "full", "auto"):
            raise ConfigError(f"--profile must be one of smoke, cpu, full, auto, got {profile!r}")
        profile = pick_profile(profile, str((overrides or {}).get("device", "auto")))
        out = Path(reports_dir or root / "reports").resolve() / profile
        runs_dir = out / "runs"
        variants = load_variants(params_dir, profile, runs_dir, overrides)
        if only:
            known = [v.name for v in variants]
            unknown = [n for n in only if n not in known]
            if unknown:
                raise ConfigError(f"unknown variant(s) {', '.join(unknown)}; known: {', '.join(known)}")
            variants = [v for v in variants if v.name in set(only)]
        states = {v.name: variant_state(v.cfg) for v in variants}
        for nb in (train_nb, analysis_nb):
            if not nb.exists():
                raise ConfigError(f"{nb}: no such notebook")
        # the data must be there and readable before the first notebook starts (a download
        # comes later); this also decodes it into the cache that every notebook then reads
        for data_setting in {v.cfg.data for v in variants if states[v.name] != "completed" and not v.cfg.download}:
            load_cifar10(data_setting or None)
    except (ConfigError, DataNotFoundError) as e:
        err(str(e))
        return 2
    # One pipeline at a time writes a reports folder; training-only ones (--no-report) may
    # share it, each variant's run directories being locked by the process training them.
    from .train import check_not_busy

    try:
        with runio.file_lock(out / runio.LOCK, shared=not report):
            for v in variants:  # a run directory that another process is training is refused
                if states[v.name] != "completed":
                    for seed in v.cfg.seed_list():
                        check_not_busy(v.cfg.run_dir(seed))
            return _run_variants(variants, states, out, train_nb, analysis_nb, profile, export, report, log)
    except ConfigError as e:
        err(str(e))
        return 2
    except runio.Busy as e:
        err(f"{out}: another pipeline is using this reports folder ({e.holders}); wait for it to finish, "
            f"or give this one another --reports folder")
        return 2
    except KeyboardInterrupt as e:
        print(f"interrupted: {str(e) or 'stopped with Ctrl-C; run the same command again to resume'}",
              file=sys.stderr)
        return 130


def _run_variants(variants: list[Variant], states: Mapping[str, str], out: Path, train_nb: Path,
                  analysis_nb: Path, profile: str, export: bool, report: bool,
                  log: Callable[[str], None]) -> int:
    """Steps 2-4 of the module docstring, under the reports folder's lock."""
    runs_dir = out / "runs"
    t_all = time.perf_counter()
    n = len(variants)
    log(f"pipeline: profile {profile}, {n} variant(s), reports in {out}")
    for v in variants:
        log(f"  {budget_line(v.cfg)}")
    todo = [v for v in variants if states[v.name] != "completed"]
    estimates = {v.name: estimate_seconds(v.cfg, log) for v in todo}
    if todo and None not in estimates.values():
        log(f"{profile} profile, {len(todo)} variant(s) to train: about {_fmt_s(sum(estimates.values()))} "
            f"of training on this machine (from a measured step of each)")
    failed: list[str] = []
    for i, v in enumerate(variants, 1):
        head = f"[{i}/{n}] {v.name}"
        if states[v.name] == "completed":
            log(f"{head}: up to date ({len(v.cfg.seed_list())} seed(s) completed)")
            continue
        guess = f", about {_fmt_s(estimates[v.name])}" if estimates.get(v.name) is not None else ""
        log(f"{head}: training ({v.cfg.model}, {len(v.cfg.seed_list())} seed(s){guess}) ...")
        t0 = time.perf_counter()
        dst = runs_dir / v.name / f"{v.name}.ipynb"
        try:
            execute_notebook(train_nb, dst, v.params())
        except Exception as e:  # PapermillExecutionError and kernel deaths alike
            if getattr(e, "ename", None) in ("KeyboardInterrupt", "RunInterrupted"):  # Ctrl-C reached the kernel
                raise KeyboardInterrupt(_interrupted_line([e], dst)) from None
            failed.append(v.name)
            log(f"{head}: FAILED after {_fmt_s(time.perf_counter() - t0)}: {_error_line(e)} (see {dst})")
            continue
        guess = f", estimated {_fmt_s(estimates[v.name])}" if estimates.get(v.name) is not None else ""
        log(f"{head}: done in {_fmt_s(time.perf_counter() - t0)}{guess} (total {_fmt_s(time.perf_counter() - t_all)})")

    status = 1 if failed else 0
    if not report:
        if failed:
            log(f"pipeline: {len(failed)} variant(s) failed: {', '.join(failed)}")
        log(f"pipeline: trained only (no report) in {_fmt_s(time.perf_counter() - t_all)}")
        return status
    try:
        write_cost(out, runs_dir, log)
    except Exception as e:
        log(f"cost.csv: FAILED: {_error_line(e)}")
        status = 1
    report_nb = out / "report.ipynb"
    log(f"report: executing {analysis_nb.name} ...")
    t0 = time.perf_counter()
    try:
        execute_notebook(analysis_nb, report_nb, {"reports_dir": str(out), "profile": profile})
    except Exception as e:
        log(f"report: FAILED: {_error_line(e)} (see {report_nb})")
        return 1
    log(f"report: {report_nb} ({_fmt_s(time.perf_counter() - t0)})")
    if export:
        from .export import export_html, export_pdf

        html = export_html(report_nb, out / "report.html")
        log(f"report: {html}")
        try:
            pdf = export_pdf(html, out / "report.pdf")
        except Exception as e:
            log(f"report: PDF export FAILED: {_error_line(e)}")
            status = 1
        else:
            if pdf is not None:
                log(f"report: {pdf}")
    if failed:
        log(f"pipeline: {len(failed)} variant(s) failed: {', '.join(failed)}")
    log(f"pipeline: finished in {_fmt_s(time.perf_counter() - t_all)}")
    return status
