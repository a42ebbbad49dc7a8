"""A portable copy of a profile's runs, for shipping as the project's reference runs.

``publish(src, dst)`` copies every completed run below ``src/runs`` (a reports folder of one
profile, e.g. ``~/ref/cpu_all_data``) to ``dst/runs`` with only the small run files the
report reads (no checkpoint, no notebook), and without the absolute paths of the machine
they ran on: ``config.yaml``'s ``out_dir`` becomes the copy's own place relative to the
project, and ``run.json`` keeps what identifies the data (its kind, description and
fingerprint) but not where the archive or its cache lay. ``dst/README.md`` is written from the
runs themselves: the CPU, the commit, the dates, the wall time and the command that
reproduces them.

``python scripts/publish_reference.py SRC`` runs it into ``reports/reference/<profile>/``.
"""
from __future__ import annotations

import os
import re
from datetime import datetime
from pathlib import Path
from typing import Iterable

import yaml

from . import runio
from .data import project_root
from .study import VARIANT_ORDER, profile_set

# The run files the report reads; everything else (checkpoints, notebooks, locks) stays behind.
RUN_FILES = (runio.CONFIG, runio.RUN, runio.METRICS, runio.GRAD_NORMS, runio.CONFUSION, runio.PREDICTIONS,
             runio.LABELS)
# Keys of run.json's "data" that name places on the machine the runs came from.
MACHINE_PATHS = ("path", "cache_file")


class PublishError(ValueError):
    """Nothing fit to publish; ``str(err)`` is one line for the user."""


def portable_config(cfg: dict, out_dir: str) -> dict:
    """config.yaml's settings with ``out_dir`` set to the copy's place (relative, not the machine's)."""
    return {**cfg, "out_dir": out_dir}


def portable_record(record: dict) -> dict:
    """run.json without the data's paths on the machine that ran it (kind and fingerprint stay)."""
    data = {k: v for k, v in (record.get("data") or {}).items() if k not in MACHINE_PATHS}
    if isinstance(data.get("description"), str):  # "CIFAR-10 JPEG archive (/abs/path.tar.gz)": the kind alone
        data["description"] = re.sub(r"\s*\([^)]*[/\\][^)]*\)", "", data["description"])
    return {**record, "data": data}


def completed_runs(src: Path) -> list[Path]:
    return [d for d in runio.find_runs(src / "runs") if runio.read_record(d).status == "completed"]


def publish(src: str | os.PathLike, dst: str | os.PathLike, command: str) -> list[Path]:
    """Copy the completed runs of ``src`` to ``dst`` (see the module docstring); the copies."""
    src, dst = Path(src), Path(dst)
    runs = completed_runs(src)
    if not runs:
        raise PublishError(f"{src}: no completed runs below {src / 'runs'}; train them first")
    out_dir = _relative(dst / "runs")
    copies = []
    for run in runs:
        target = dst / "runs" / run.relative_to(src / "runs")
        target.mkdir(parents=True, exist_ok=True)
        for name in RUN_FILES:
            _copy(run / name, target / name, out_dir)
        copies.append(target)
    # The README covers every run now in ``dst``: runs published before (e.g. from another
    # machine) stay, and the ones trained since join them.
    runio.atomic_write_text(dst / "README.md", readme(completed_runs(dst), command, profile_set(src.name, VARIANT_ORDER)))
    return copies


def _copy(path: Path, target: Path, out_dir: str) -> None:
    if not path.exists():
        return
    if path.name == runio.CONFIG:
        runio.atomic_write_text(target, yaml.safe_dump(portable_config(runio.read_config(path.parent), out_dir),
                                                       sort_keys=False, allow_unicode=True))
    elif path.name == runio.RUN:
        runio.write_json(target, portable_record(runio.read_json(path)))
    else:
        runio.atomic_write_bytes(target, path.read_bytes())


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(project_root()))
    except ValueError:
        return path.name


def _chosen(cfg: dict) -> bool:
    """Whether the numeric mode was left to ``auto`` (measured) rather than set by hand."""
    return all(str(cfg.get(k, "auto")) == "auto" for k in ("amp", "channels_last"))


def _mode(record: dict) -> str:
    p = record.get("precision") or {}  # runs recorded before the mode was: fp32, NCHW
    return f"{'bf16' if p.get('amp') == 'bf16' else 'fp32'}/{'NHWC' if p.get('channels_last') == 'on' else 'NCHW'}"


def _cpu(record: dict) -> str:
    return record.get("environment", {}).get("processor") or "unrecorded"


def _machine_line(cpu: str, recs: list[dict]) -> str:
    """Where and when one machine's runs ran: its CPU, cores, torch, and the wall time from its
    first run's start to its last one's end."""
    env = recs[0].get("environment", {})
    started, finished = min(r["started"] for r in recs), max(r["finished"] for r in recs)
    wall_h = (datetime.fromisoformat(finished) - datetime.fromisoformat(started)).total_seconds() / 3600
    return (f"- CPU (`lscpu` model line): {cpu}; {env.get('cpu_count')} cores, torch {env.get('torch')} with "
            f"{env.get('torch_threads')} threads; ran {started} to {finished} (UTC): {wall_h:.2f} h of wall time "
            f"from its first run's start to its last one's end ({len(recs)} run{'s' if len(recs) > 1 else ''})")


def readme(runs: Iterable[Path], command: str, expected: Iterable[str] = ()) -> str:
    """The provenance README of published runs, read from their run.json files; the variants of
    ``expected`` (the profile's set) without a published run are named, with how to add them.
    Runs from more than one machine get a line per machine and a CPU column."""
    runs = list(runs)
    recs = [runio.read_json(d / runio.RUN) for d in runs]
    cfgs = [runio.read_config(d) for d in runs]
    cpus = sorted({_cpu(r) for r in recs})
    commits = sorted({str(r.get("environment", {}).get("git_commit")) for r in recs})
    train_h = sum(float(r.get("train_seconds") or 0) for r in recs) / 3600
    machines = "\n".join(_machine_line(cpu, [r for r in recs if _cpu(r) == cpu]) for cpu in cpus)
    several = len(cpus) > 1
    rows = "\n".join(
        f"| {c['exp_name']} | {c['seed']} | {c['model']} | {r.get('train_size') or 50000:,} / {r.get('test_size') or 10000:,} "
        f"| {c['epochs']} | {c['batch_size']} | {_mode(r)}{'' if _chosen(c) else ' (set)'} "
        f"| {r['final']['test_acc'] * 100:.2f}% | {float(r.get('train_seconds') or 0) / 60:.1f} |"
        + (f" {_cpu(r)} |" if several else "")
        for c, r in zip(cfgs, recs))
    return f"""# Reference runs: profile `{cfgs[0]['profile']}`

The report sets a user's own runs beside these (`cnn_lab.report.load_reference`) where its
own scale cannot decide a claim, always marked 参考运行. They are the run files the report
reads (no checkpoints, no notebooks), made portable by `scripts/publish_reference.py`: no
absolute path of the machine they ran on is kept; the data is identified by its kind and
fingerprint.

{machines}
- commit: {', '.join(commits)}
- training time, all runs: {train_h:.2f} h (the runs' own training loops; the rest is evaluation, data loading and start-up)
- data: {recs[0].get('data', {}).get('description')}, fingerprint `{recs[0].get('data', {}).get('fingerprint')}`

Reproduce them (on any machine; `auto` picks the numeric mode by measuring it there; a mode
marked "(set)" was fixed with `--set amp=... --set channels_last=...` instead, to match the run
it is compared with):

```sh
{command}
```

| variant | seed | model | train / test images | epochs | batch | mode | test accuracy | minutes |{' CPU |' if several else ''}
|---|---|---|---|---|---|---|---|---|{'---|' if several else ''}
{rows}
""" + _pending(cfgs, expected, command)


def _pending(cfgs: list[dict], expected: Iterable[str], command: str) -> str:
    missing = [e for e in expected if e not in {c["exp_name"] for c in cfgs}]
    if not missing:
        return ""
    return f"""
Not yet here: {', '.join(missing)} (the profile trains it; it had not finished when these
were published). The same command trains only what is missing when its reports folder holds
these runs, e.g. with `--reports reports/reference` run from the project root; then publish
again.
"""
