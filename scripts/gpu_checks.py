"""The GPU checks of BENCHMARKS.md ("GPU"), prepared to run in one go on a machine with one CUDA GPU.

From the project root of a copy that holds the CIFAR-10 archive (here ``.gpu/``, ignored by git)::

    mkdir -p .gpu && cp ../shared/datasets/cifar10-jpeg.tar.gz .gpu/ && echo /.gpu/ >> .git/info/exclude
    # then on the GPU machine (its python3 holds PyTorch; no papermill is needed), with the
    # device tool: carry [".gpu"], timeout_s 600, command
    CNN_LAB_DATA=.gpu PYTHONPATH=. PYTHONUNBUFFERED=1 python3 scripts/gpu_checks.py --out "$OUT" --budget 540

Stages, in this order; each writes its files under ``--out`` as soon as it ends, and every
stage and subprocess is held to the budget (``--budget`` seconds in all, with
``--bench-reserve`` of them kept for the bench). Training cut off by the budget stops as
Ctrl-C stops it, recorded ``interrupted``; the same command resumes it from its checkpoint
only on the same machine (a device machine handed back starts bare):

* ``checks``: host syncs per training step (one per 25 steps is the divergence check), where
  Adam's step counters live after a resume (the CPU: no syncs in ``optimizer.step``), and the
  first model's step memory in a fresh process against the same model measured again;
* ``study``: the full profile of the study's six variants, training only
  (``python -m cnn_lab train``), timed, final accuracy against the study's table; the run
  files without checkpoints go to ``study-runs.tar.gz`` (the reference folder's content);
* ``bench``: ``python -m cnn_lab bench`` on the GPU in ``auto``, then with amp and
  channels_last off.

``--dry-run`` runs every stage on the CPU at smoke scale (two variants, BaselineNet's bench):
what ``make test`` runs, so the script keeps up with the code where no GPU is.
"""
from __future__ import annotations

import argparse
import io
import json
import signal
import statistics
import subprocess
import sys
import tarfile
import time
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cnn_lab import runio  # noqa: E402
from cnn_lab import train as T  # noqa: E402
from cnn_lab.autotune import channels_last_on  # noqa: E402
from cnn_lab.config import load_config  # noqa: E402
from cnn_lab.study import PARAMETERS_DIR, STUDY_TABLE, STUDY_VARIANTS  # noqa: E402

STAGES = ("checks", "study", "bench")


def count_syncs(device: torch.device, fn) -> int | None:
    """Host-device synchronisations while ``fn()`` runs (CUDA's sync debug mode); None on a CPU."""
    if device.type != "cuda":
        fn()
        return None
    torch.cuda.synchronize(device)
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fn()
    finally:
        torch.cuda.set_sync_debug_mode(0)
    return sum("synchroniz" in str(w.message) for w in caught)


def checks(device: torch.device, work: Path) -> dict:
    """Syncs per training step, Adam's step counters after a resume, the first model's memory."""
    steps = 20 if device.type == "cuda" else 3  # on a CPU (the dry run) only that it runs
    cfg = load_config(ROOT / PARAMETERS_DIR / "cnn_resnet18_adam.yaml", profile="smoke",
                      overrides={"device": device.type, "batch_size": 64, "grad_points": 0, "seeds": 1,
                                 "out_dir": str(work / "checks")})
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (steps * 64, 3, 32, 32), dtype=torch.uint8, generator=gen).to(device)
    y = torch.randint(0, 10, (steps * 64,), generator=gen).to(device)
    parts = T.build(cfg, device, 1, len(x))

    def epoch(k: int) -> None:
        T.train_epoch(parts.model, parts.optimizer, parts.scheduler, x, y, cfg, seed=0, epoch=k,
                      device=device, progress=T.progress_bar("", steps, False))

    epoch(1)  # warm-up: cuDNN's algorithm search, the allocator
    epoch_syncs = count_syncs(device, lambda: epoch(2))
    # a resume as train_run does it: the checkpoint written, then restored into fresh parts
    run_dir = cfg.run_dir(0)
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.save(parts.checkpoint([{"epoch": 1}], []), run_dir / runio.CHECKPOINT)
    resumed = T.build(cfg, device, 1, len(x))
    T.restore(resumed, run_dir)
    step_devices = sorted({str(s["step"].device) for s in resumed.optimizer.state.values()})
    xb, yb = T.load_batch(x, y, torch.arange(64, device=x.device), device=device,
                          channels_last=channels_last_on(device, cfg.channels_last))  # the run's layout
    step_syncs = count_syncs(device, lambda: T.train_step(resumed.model, resumed.optimizer, xb, yb, cfg.amp))
    return {"steps_per_epoch": steps, "syncs_per_epoch": epoch_syncs, "adam_step_device_after_resume": step_devices,
            "syncs_in_one_resumed_step": step_syncs, "channels_last_batch_matches": same_batch_in_both_layouts(x, y, device),
            "step_memory_mib": first_model_memory(device)}


def same_batch_in_both_layouts(x: torch.Tensor, y: torch.Tensor, device: torch.device) -> bool:
    """The channels_last data path (crops gathered into that layout, normalised in it) gives the
    NCHW path's values on this device."""
    idx = torch.arange(64, device=x.device)
    a, _ = T.load_batch(x, y, idx, device=device, augment_with=torch.Generator(device=device).manual_seed(1))
    b, _ = T.load_batch(x, y, idx, device=device, augment_with=torch.Generator(device=device).manual_seed(1),
                        channels_last=True)
    return bool(b.is_contiguous(memory_format=torch.channels_last) and torch.equal(a, b))


def first_model_memory(device: torch.device) -> dict:
    """Step memory of BaselineNet twice, then ResNet-18 twice, in one fresh process: the first
    measurement of a process must not carry one-time allocations (cuBLAS's workspace)."""
    code = ("import json, sys; from cnn_lab.cost import step_memory; "
            f"print(json.dumps([round(step_memory(m, 64, {device.type!r})['step_bytes'] / 2**20, 1) "
            "for m in ('baseline', 'baseline', 'resnet18', 'resnet18')]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    mib = json.loads(out.stdout.strip().splitlines()[-1])
    return {"baseline": mib[:2], "resnet18": mib[2:]}


def train_variant(exp: str, profile: str, device: torch.device, runs: Path, seconds_left: float) -> dict:
    """``python -m cnn_lab train`` for one variant; stopped with SIGINT (recorded as interrupted,
    resumable) when the budget runs out."""
    cmd = [sys.executable, "-m", "cnn_lab", "train", str(ROOT / PARAMETERS_DIR / f"{exp}.yaml"),
           "--profile", profile, "--out", str(runs), "--no-progress", "--set", f"device={device.type}"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT)
    rc = stop_in_time(proc, seconds_left)
    return {"exp_name": exp, "rc": rc, "seconds": round(time.perf_counter() - t0, 1), **accuracy(runs / exp)}


def stop_in_time(proc: subprocess.Popen, seconds: float, grace: float = 30) -> int:
    """The process's exit status; past ``seconds`` it gets SIGINT (a run records ``interrupted``
    and keeps its last checkpoint), and past ``grace`` more it is killed."""
    try:
        return proc.wait(timeout=max(seconds, 1))
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
    try:
        return proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def accuracy(exp_dir: Path) -> dict:
    """Seeds completed, their final test accuracies, mean and SD (points), from each run.json."""
    accs, status = [], {}
    for run_json in sorted(exp_dir.glob(f"seed*/{runio.RUN}")):
        rec = runio.read_json(run_json)
        status[run_json.parent.name] = rec.get("status")
        if rec.get("status") == "completed":
            accs.append(100 * rec["final"]["test_acc"])
    return {"status": status, "test_acc": [round(a, 2) for a in accs],
            "mean": round(statistics.mean(accs), 2) if accs else None,
            "sd": round(statistics.stdev(accs), 2) if len(accs) > 1 else None}


def pack_runs(runs: Path, dest: Path) -> None:
    """The run files (metrics, run.json, predictions, …) without checkpoints, as one archive."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for f in sorted(runs.rglob("*")):
            if f.is_file() and f.name not in (runio.CHECKPOINT, runio.LOCK):
                tar.add(f, arcname=str(f.relative_to(runs.parent)))
    dest.write_bytes(buf.getvalue())


def study(variants, profile: str, device: torch.device, work: Path, out: Path, deadline: float) -> dict:
    runs, rows = work / "runs", []
    t0 = time.perf_counter()
    for exp in variants:
        left = deadline - time.perf_counter()
        if left < 10:
            rows.append({"exp_name": exp, "rc": None, "note": "not started: budget spent"})
            continue
        row = train_variant(exp, profile, device, runs, left)
        study_acc = 100 * STUDY_TABLE[exp][3] if exp in STUDY_TABLE else None
        row["study_acc"] = study_acc
        row["diff"] = round(row["mean"] - study_acc, 2) if row.get("mean") is not None and study_acc else None
        rows.append(row)
        pack_runs(runs, out / "study-runs.tar.gz")
        print(f"{exp}: rc {row['rc']}, {row['seconds']} s, test acc {row['test_acc']} (study {study_acc})", flush=True)
    return {"profile": profile, "seconds": round(time.perf_counter() - t0, 1), "variants": rows}


def bench(device: torch.device, work: Path, out: Path, dry_run: bool, deadline: float) -> dict:
    extra = ["--models", "baseline", "--steps", "2", "--reps", "1"] if dry_run else []
    done = {}
    for name, sets in (("auto", []), ("fp32", ["--set", "amp=off", "--set", "channels_last=off"])):
        if deadline - time.perf_counter() < 30:
            done[name] = "not started: budget spent"
            continue
        folder = work / f"bench-{name}"
        cmd = [sys.executable, "-m", "cnn_lab", "bench", "--device", device.type, "--out", str(folder), *extra, *sets]
        rc = stop_in_time(subprocess.Popen(cmd, cwd=ROOT), deadline - time.perf_counter())
        for f in ("bench.json", "bench.md"):
            if (folder / f).exists():
                (out / f"bench-{name}.{f.split('.')[1]}").write_bytes((folder / f).read_bytes())
        done[name] = rc
    return done


def summary(result: dict) -> str:
    lines = [f"# GPU checks: {result['device']}", "", f"torch {torch.__version__}; budget {result['budget_s']} s", ""]
    if "checks" in result:
        lines += ["## checks", "", "```json", json.dumps(result["checks"], indent=1), "```", ""]
    if "study" in result:
        st = result["study"]
        lines += [f"## study ({st['profile']} profile, {st['seconds']} s of training)", "",
                  "| variant | rc | seconds | test acc. per seed (%) | mean ± SD | study | diff (points) |",
                  "|---|---|---|---|---|---|---|"]
        for r in st["variants"]:
            ms = (f"{r['mean']}" + (f" ± {r['sd']}" if r.get("sd") is not None else "")) if r.get("mean") is not None else "–"
            lines.append(f"| {r['exp_name']} | {r.get('rc')} | {r.get('seconds', '–')} | {r.get('test_acc', '–')} "
                         f"| {ms} | {r.get('study_acc')} | {r.get('diff')} |")
        lines.append("")
    if "bench" in result:
        lines += ["## bench", "", json.dumps(result["bench"]), "", "See bench-auto.md and bench-fp32.md.", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="folder for the results (the device tool's $OUT)")
    p.add_argument("--budget", type=float, default=540, help="seconds for all stages together")
    p.add_argument("--bench-reserve", type=float, default=150, help="seconds of the budget the study leaves to the bench")
    p.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES))
    p.add_argument("--only", nargs="+", default=None, help="study variants (default: the study's six)")
    p.add_argument("--work", default=None, help="working folder (default: reports/gpu-checks)")
    p.add_argument("--dry-run", action="store_true", help="every stage on the CPU at smoke scale")
    args = p.parse_args(argv)
    deadline = time.perf_counter() + args.budget
    if not args.dry_run and not torch.cuda.is_available():
        print("error: no CUDA GPU here; run on the GPU machine, or use --dry-run to try the script on the CPU",
              file=sys.stderr)
        return 2
    device = torch.device("cpu" if args.dry_run else "cuda")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(args.work or ROOT / "reports" / "gpu-checks")
    work.mkdir(parents=True, exist_ok=True)
    name = "CPU (dry run)" if args.dry_run else torch.cuda.get_device_name(device)
    result: dict = {"device": name, "budget_s": args.budget}
    variants = args.only or (list(STUDY_VARIANTS[:1]) + ["cnn_resnet18_adam"] if args.dry_run else list(STUDY_VARIANTS))
    for stage in args.stages:
        if stage == "checks":
            result["checks"] = checks(device, work)
        elif stage == "study":
            reserve = args.bench_reserve if "bench" in args.stages else 0
            result["study"] = study(variants, "smoke" if args.dry_run else "full", device, work, out, deadline - reserve)
        elif stage == "bench":
            result["bench"] = bench(device, work, out, args.dry_run, deadline)
        (out / "gpu-checks.json").write_text(json.dumps(result, indent=1))
        (out / "summary.md").write_text(summary(result))
        print(f"stage {stage} done", flush=True)
    print(summary(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
