"""The whole study in one command: every variant through the training notebook, then the report.

``run_pipeline`` (``python -m cnn_lab pipeline``) runs, for a profile P and reports folder R,
these steps (one function each):

1. ``preflight``: reads and validates every variant file in ``parameters/`` (study variants
   first, then the extensions, then any other file, sorted), the ``--only`` names, the
   notebooks and the data, before anything runs: a bad or empty file, an unknown ``--only``
   name, a run directory holding another config or a damaged run.json or config.yaml, or
   missing or damaged data prints one error line and returns 2 with nothing written (or
   deleted); so does another pipeline using the
   reports folder (``R/P/.lock``; training-only pipelines, ``--no-report``, may share it)
   or another process training one of the runs (``check_runs_free``);
2. ``train``: per variant, skips it ("up to date") when every seed's run under ``R/P/runs``
   is completed with the same config, and otherwise executes ``notebooks/train_variant.ipynb``
   with papermill into ``R/P/runs/<exp_name>/<exp_name>.ipynb``; a failing variant is
   recorded and the others still run;
3. ``cost``: writes ``R/P/cost.csv`` (``cost.cost_table`` of the models present; recomputed
   only when missing or when the model set changed);
4. ``build_report``: executes ``notebooks/analysis.ipynb`` into ``R/P/report.ipynb``;
5. ``export_report``: exports it to ``report.html`` and ``report.pdf`` (``cnn_lab.export``).

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
from .config import PROFILE_CHOICES, ConfigError, RunConfig, pick_profile, read_yaml
from .data import DataNotFoundError, load_cifar10, project_root
from .runcheck import DamagedRunFile
from .study import MODEL_ORDER, PARAMETERS_DIR, in_order, profile_set
from .variant import budget_line, load_config

TRAIN_NOTEBOOK = "notebooks/train_variant.ipynb"
ANALYSIS_NOTEBOOK = "notebooks/analysis.ipynb"


# ===================================================================== variants


def variant_files(params_dir: str | Path) -> list[Path]:
    """Variant files: study order, then extensions, then any other ``*.yaml`` (sorted by name)."""
    params_dir = Path(params_dir)
    files = {p.stem: p for p in sorted(params_dir.glob("*.yaml")) + sorted(params_dir.glob("*.yml"))}
    return [files[n] for n in in_order(files)]


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
    from .rundir import check_run_dir

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
    """Wall time of every seed of a variant on this CPU, from a measured training step in the
    mode it will train in (``autotune``'s cached timing; measured now if missing)."""
    import torch

    from . import autotune
    from .config import select_device
    from .batches import batch_starts

    try:
        if select_device(cfg.device).type != "cpu" or cfg.nproc > 1:
            return None
    except ConfigError:  # e.g. device cuda without one: the training notebook reports it
        return None
    mode = autotune.resolve(cfg, torch.device("cpu"), log=log)
    return autotune.estimate_seconds(cfg, mode, len(batch_starts(cfg.train_size or 50_000, cfg.batch_size)), log)


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


def _models_of_runs(runs_dir: Path) -> tuple[list[str], dict[str, dict[str, str]]]:
    """The models of the runs below ``runs_dir`` (``study.MODEL_ORDER``, then others sorted), and
    the mode (amp, channels_last) each model's runs trained in."""
    present, modes = set(), {}
    for d in runio.find_runs(runs_dir):
        try:
            cfg, prec = runio.read_config(d), runio.read_record(d).precision
        except DamagedRunFile:  # the report names it; its model is measured only if other runs have it
            continue
        if cfg.get("model"):
            present.add(cfg["model"])
            if prec and cfg["model"] not in modes:  # the step in the mode the model's runs trained in
                modes[cfg["model"]] = {k: prec[k] for k in ("amp", "channels_last")}
    return in_order(present, MODEL_ORDER), modes


def _cost_is_current(path: Path, models: list[str], modes: Mapping[str, Mapping[str, str]]) -> bool:
    import pandas as pd

    if not path.exists():
        return False
    try:
        old = pd.read_csv(path)
        amps = [modes.get(m, {}).get("amp", "off") for m in models]
        return list(old["model"]) == models and "memory_amp" in old and list(old["memory_amp"]) == amps
    except Exception:  # an unreadable file is simply recomputed
        return False


def write_cost(out: Path, runs_dir: Path, log: Callable[[str], None] = print) -> Path | None:
    """``out/cost.csv`` for the models of the runs below ``runs_dir`` (kept when the set is unchanged)."""
    import pandas as pd

    from .config import has_gpu
    from .cost import cost_table

    models, modes = _models_of_runs(runs_dir)
    path = out / "cost.csv"
    if not models:
        return None
    if _cost_is_current(path, models, modes):
        return path
    t0 = time.perf_counter()
    rows = cost_table(models, batch_size=64, device="cuda" if has_gpu() else "cpu", modes=modes)
    runio.atomic_write_text(path, pd.DataFrame(rows).to_csv(index=False))
    log(f"cost.csv: {', '.join(models)} ({_fmt_s(time.perf_counter() - t0)})")
    return path


# ===================================================================== its steps


@dataclasses.dataclass
class Plan:
    """A pipeline run as pre-flight settled it: every input read and checked."""
    profile: str
    out: Path  # reports/<profile>
    variants: list[Variant]
    states: dict[str, str]  # exp_name -> variant_state
    train_nb: Path
    analysis_nb: Path
    log: Callable[[str], None] = print
    started: float = dataclasses.field(default_factory=time.perf_counter)  # reset when training starts

    @property
    def runs_dir(self) -> Path:
        return self.out / "runs"

    def todo(self) -> list[Variant]:
        return [v for v in self.variants if self.states[v.name] != "completed"]

    def elapsed(self) -> str:
        return _fmt_s(time.perf_counter() - self.started)


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
    try:
        plan = preflight(profile, only, reports_dir, overrides, params_dir=params_dir, train_notebook=train_notebook,
                         analysis_notebook=analysis_notebook, log=log)
    except (ConfigError, DataNotFoundError) as e:
        return _refuse(str(e))
    try:  # one pipeline at a time writes a reports folder; training-only ones may share it
        with runio.file_lock(plan.out / runio.LOCK, shared=not report):
            check_runs_free(plan)
            failed = train(plan)
            if not report:
                return finish(plan, failed, "trained only (no report)", 0)
            status = cost(plan)
            report_nb = build_report(plan)
            if report_nb is None:
                return 1
            status = max(status, export_report(plan, report_nb) if export else 0)
            return finish(plan, failed, "finished", status)
    except ConfigError as e:
        return _refuse(str(e))
    except runio.Busy as e:
        return _refuse(f"{plan.out}: another pipeline is using this reports folder ({e.holders}); wait for it "
                       f"to finish, or give this one another --reports folder")
    except KeyboardInterrupt as e:
        print(f"interrupted: {str(e) or 'stopped with Ctrl-C; run the same command again to resume'}",
              file=sys.stderr)
        return 130


def _refuse(message: str) -> int:
    """Bad input or a busy folder: one line, exit status 2, nothing written."""
    print(f"error: {message}", file=sys.stderr)
    return 2


def preflight(profile: str, only: Sequence[str] | None, reports_dir: str | Path | None,
              overrides: Mapping[str, Any] | None, *, params_dir: str | Path | None = None,
              train_notebook: str | Path | None = None, analysis_notebook: str | Path | None = None,
              log: Callable[[str], None] = print) -> Plan:
    """Step 1: the profile, the variants (``--only``), their states, the notebooks and the data,
    all checked before anything runs (``ConfigError`` / ``DataNotFoundError`` otherwise)."""
    root = project_root()
    if profile not in PROFILE_CHOICES:
        raise ConfigError(f"--profile must be one of {', '.join(PROFILE_CHOICES)}, got {profile!r}")
    profile = pick_profile(profile, str((overrides or {}).get("device", "auto")))
    out = Path(reports_dir or root / "reports").resolve() / profile
    variants = load_variants(Path(params_dir or root / PARAMETERS_DIR), profile, out / "runs", overrides)
    variants = select(variants, only or profile_variants(profile, variants))
    plan = Plan(profile, out, variants, {v.name: variant_state(v.cfg) for v in variants},
                Path(train_notebook or root / TRAIN_NOTEBOOK).resolve(),
                Path(analysis_notebook or root / ANALYSIS_NOTEBOOK).resolve(), log)
    for nb in (plan.train_nb, plan.analysis_nb):
        if not nb.exists():
            raise ConfigError(f"{nb}: no such notebook")
    # the data must be there and readable before the first notebook starts (a download
    # comes later); this also decodes it into the cache that every notebook then reads
    for data_setting in {v.cfg.data for v in plan.todo() if not v.cfg.download}:
        load_cifar10(data_setting or None)
    return plan


def select(variants: list[Variant], only: Sequence[str] | None) -> list[Variant]:
    """The variants named by ``--only`` (all without it); an unknown name is a ``ConfigError``."""
    if not only:
        return variants
    known = [v.name for v in variants]
    unknown = [n for n in only if n not in known]
    if unknown:
        raise ConfigError(f"unknown variant(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return [v for v in variants if v.name in set(only)]


def profile_variants(profile: str, variants: list[Variant]) -> list[str]:
    """The variants a profile trains when ``--only`` names none: every variant file but those
    the profile leaves out (``study.PROFILE_LEAVES_OUT``)."""
    return profile_set(profile, [v.name for v in variants])


def check_runs_free(plan: Plan) -> None:
    """A run directory that another process is training is refused (``RunBusy``)."""
    from .rundir import check_not_busy

    for v in plan.todo():
        for seed in v.cfg.seed_list():
            check_not_busy(v.cfg.run_dir(seed))


def train(plan: Plan) -> list[str]:
    """Step 2: each variant not up to date through the training notebook; the failed ones' names."""
    log, n = plan.log, len(plan.variants)
    plan.started = time.perf_counter()
    log(f"pipeline: profile {plan.profile}, {n} variant(s), reports in {plan.out}")
    for v in plan.variants:
        log(f"  {budget_line(v.cfg)}")
    estimates = {v.name: estimate_seconds(v.cfg, log) for v in plan.todo()}
    if estimates and None not in estimates.values():
        log(f"{plan.profile} profile, {len(estimates)} variant(s) to train: about {_fmt_s(sum(estimates.values()))} "
            f"of training on this machine (from a measured step of each)")
    failed = []
    for i, v in enumerate(plan.variants, 1):
        if plan.states[v.name] == "completed":
            log(f"[{i}/{n}] {v.name}: up to date ({len(v.cfg.seed_list())} seed(s) completed)")
        elif not train_variant_notebook(plan, v, f"[{i}/{n}] {v.name}", estimates[v.name]):
            failed.append(v.name)
    return failed


def train_variant_notebook(plan: Plan, v: Variant, head: str, estimate: float | None) -> bool:
    """One variant's training notebook into ``runs/<exp_name>/<exp_name>.ipynb``; False if it failed."""
    log = plan.log
    about = f", about {_fmt_s(estimate)}" if estimate is not None else ""
    log(f"{head}: training ({v.cfg.model}, {len(v.cfg.seed_list())} seed(s){about}) ...")
    t0 = time.perf_counter()
    dst = plan.runs_dir / v.name / f"{v.name}.ipynb"
    try:
        execute_notebook(plan.train_nb, dst, v.params())
    except Exception as e:  # PapermillExecutionError and kernel deaths alike
        if getattr(e, "ename", None) in ("KeyboardInterrupt", "RunInterrupted"):  # Ctrl-C reached the kernel
            raise KeyboardInterrupt(_interrupted_line([e], dst)) from None
        log(f"{head}: FAILED after {_fmt_s(time.perf_counter() - t0)}: {_error_line(e)} (see {dst})")
        return False
    estimated = f", estimated {_fmt_s(estimate)}" if estimate is not None else ""
    log(f"{head}: done in {_fmt_s(time.perf_counter() - t0)}{estimated} (total {plan.elapsed()})")
    return True


def cost(plan: Plan) -> int:
    """Step 3: ``cost.csv``; 1 if it could not be measured."""
    try:
        write_cost(plan.out, plan.runs_dir, plan.log)
    except Exception as e:
        plan.log(f"cost.csv: FAILED: {_error_line(e)}")
        return 1
    return 0


def build_report(plan: Plan) -> Path | None:
    """Step 4: the analysis notebook into ``report.ipynb``; None if it failed."""
    report_nb = plan.out / "report.ipynb"
    plan.log(f"report: executing {plan.analysis_nb.name} ...")
    t0 = time.perf_counter()
    try:
        execute_notebook(plan.analysis_nb, report_nb, {"reports_dir": str(plan.out)})
    except Exception as e:
        plan.log(f"report: FAILED: {_error_line(e)} (see {report_nb})")
        return None
    plan.log(f"report: {report_nb} ({_fmt_s(time.perf_counter() - t0)})")
    return report_nb


def export_report(plan: Plan, report_nb: Path) -> int:
    """Step 5: ``report.html`` and ``report.pdf``; 1 if the PDF failed."""
    from .export import export_html, export_pdf

    html = export_html(report_nb, plan.out / "report.html")
    plan.log(f"report: {html}")
    try:
        pdf = export_pdf(html, plan.out / "report.pdf")
    except Exception as e:
        plan.log(f"report: PDF export FAILED: {_error_line(e)}")
        return 1
    if pdf is not None:
        plan.log(f"report: {pdf}")
    return 0


def finish(plan: Plan, failed: list[str], done: str, status: int) -> int:
    """The closing lines; the exit status (1 when a variant failed)."""
    if failed:
        plan.log(f"pipeline: {len(failed)} variant(s) failed: {', '.join(failed)}")
    plan.log(f"pipeline: {done} in {plan.elapsed()}")
    return 1 if failed else status
