"""The GPU checks of BENCHMARKS.md ("GPU"), prepared to run in one go on a machine with one CUDA GPU.

It needs a Python there with torch, torchvision, numpy, PyYAML, tqdm and Pillow (``NEEDS``):
what cnn_lab's training, bench and memory measurement import. The device machines' image
has them all. Nothing else is imported (no pandas, seaborn, matplotlib, papermill or
Jupyter): the test of its dry run runs it in a virtual environment that holds only those.

Once, from the project root of a copy that holds the CIFAR-10 archive (in ``.gpu/``, which
git ignores)::

    mkdir -p .gpu .git/info && cp ../shared/datasets/cifar10-jpeg.tar.gz .gpu/ && echo /.gpu/ >> .git/info/exclude

then on the GPU machine, with the device tool: carry [".gpu"], timeout_s 420, command::

    CNN_LAB_DATA=.gpu PYTHONPATH=. PYTHONUNBUFFERED=1 python3 scripts/gpu_checks.py --out "$OUT"

The plan: ``--budget`` seconds in all (default 360 s, 6 minutes), shared by the stages in
this order (``SHARES``); each stage ends by its deadline, and time a stage leaves unused
passes on to the next:

* ``checks`` (60 s): host syncs per training step (one per 25 steps is the divergence
  check), where Adam's step counters live after a resume (the CPU: no syncs in
  ``optimizer.step``), cnn_lab's SyncBatchNorm against PyTorch's (its outputs, gradients and
  host syncs, in a one-rank NCCL group), and the first model's step memory in a fresh
  process (a subprocess, held to the stage's deadline);
* ``data`` (30 s): the archive decoded into the cache once (about 20 s), for the stages after it;
* ``bench`` (90 s): ``python -m cnn_lab bench`` for ResNet-18, then BaselineNet (about 35 s
  each), each model's results written as soon as it ends (the fp32 step is among the modes
  every bench times);
* ``study`` (180 s): the study's six variants, one seed each, on the full profile, training
  only (``python -m cnn_lab train``), the cheapest model first; each is timed and its final
  accuracy set against the study's table, and the one the deadline reaches is stopped as
  Ctrl-C stops it (recorded ``interrupted``); the run files without checkpoints go to
  ``study-runs.tar.gz`` (the reference folder's content).

With the machine's start (1-2 minutes) and the command's 60 s of margin over the budget
(imports, the last writes), a run takes about 9 of the 15 minutes a task is lent, which
leaves room for a second try of a stage that failed (``--stages``, with a smaller ``--budget``).

Every stage runs inside a guard: one that fails is recorded with its error and the others
still run. ``gpu-checks.json`` and ``summary.md`` are written after every stage, so they
always hold what ran; the exit status is 1 when a stage or check raised. At most 7 files come back:
those two, ``study-runs.tar.gz`` and ``bench-<model>.json`` / ``.md`` for the two models.

``--dry-run`` runs every stage on the CPU at smoke scale (BaselineNet's bench, a variant or
two): what ``make test`` runs, so the script keeps up with the code where no GPU is.
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
import traceback
import warnings
from pathlib import Path
from typing import Callable

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cnn_lab import precision, runio  # noqa: E402
from cnn_lab import train as T  # noqa: E402
from cnn_lab.batches import load_batch  # noqa: E402
from cnn_lab.data import load_cifar10  # noqa: E402
from cnn_lab.precision import channels_last_on  # noqa: E402
from cnn_lab.step import train_step  # noqa: E402
from cnn_lab.study import PARAMETERS_DIR, STUDY_MODELS, STUDY_TABLE, STUDY_VARIANTS  # noqa: E402
from cnn_lab.variant import load_config  # noqa: E402

# The distributions this script needs on the GPU machine, with what they depend on (the docstring names them).
NEEDS = ("torch", "torchvision", "numpy", "pyyaml", "tqdm", "pillow")
# Each stage's seconds at the default budget of 360 s (scaled with --budget and --stages).
SHARES = {"checks": 60, "data": 30, "bench": 90, "study": 180}
STAGES = tuple(SHARES)
BENCH_MODELS = ("resnet18", "baseline")


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


def guarded(fn: Callable[[], object]) -> object:
    """``fn()``, or, where it raises, its error as ``{"error": ...}`` (so the rest still runs)."""
    try:
        return fn()
    except Exception as err:  # noqa: BLE001 - recorded, and the next check or stage runs
        return {"error": f"{type(err).__name__}: {err}", "where": traceback.format_exc().splitlines()[-3:]}


def errors(result: object) -> list[str]:
    """Every error recorded in ``result`` (a stage's, or one of its checks')."""
    if isinstance(result, dict):
        own = [result["error"]] if isinstance(result.get("error"), str) else []
        return own + [e for v in result.values() for e in errors(v)]
    return []


# ---------------------------------------------------------------- checks


def checks(device: torch.device, work: Path, deadline: float) -> dict:
    """Syncs per training step, Adam's step counters after a resume, SyncBatchNorm, the first model's memory."""
    steps = 20 if device.type == "cuda" else 3  # on a CPU (the dry run) only that it runs
    cfg = load_config(ROOT / PARAMETERS_DIR / "cnn_resnet18_adam.yaml", profile="smoke",
                      overrides={"device": device.type, "batch_size": 64, "grad_points": 0, "seeds": 1,
                                 "out_dir": str(work / "checks")})
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (steps * 64, 3, 32, 32), dtype=torch.uint8, generator=gen).to(device)
    y = torch.randint(0, 10, (steps * 64,), generator=gen).to(device)
    return {"steps_per_epoch": steps,
            "training": guarded(lambda: training_syncs(cfg, device, x, y, steps)),
            "channels_last_batch_matches": guarded(lambda: same_batch_in_both_layouts(x, y, device)),
            "syncbn": guarded(lambda: syncbn_against_torch(device)),
            "step_memory_mib": guarded(lambda: first_model_memory(device, deadline - time.perf_counter()))}


def training_syncs(cfg, device: torch.device, x: torch.Tensor, y: torch.Tensor, steps: int) -> dict:
    """Syncs in an epoch of ResNet-18 (after a warm-up epoch), and in one step after a resume."""
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
    xb, yb = load_batch(x, y, torch.arange(64, device=x.device), device=device,
                          channels_last=channels_last_on(device, cfg.channels_last))  # the run's layout
    step_syncs = count_syncs(device, lambda: train_step(resumed.model, resumed.optimizer, xb, yb, cfg.amp))
    return {"syncs_per_epoch": epoch_syncs, "adam_step_device_after_resume": step_devices,
            "syncs_in_one_resumed_step": step_syncs}


def same_batch_in_both_layouts(x: torch.Tensor, y: torch.Tensor, device: torch.device) -> bool:
    """The channels_last data path (crops gathered into that layout, normalised in it) gives the
    NCHW path's values on this device."""
    idx = torch.arange(64, device=x.device)
    a, _ = load_batch(x, y, idx, device=device, augment_with=torch.Generator(device=device).manual_seed(1))
    b, _ = load_batch(x, y, idx, device=device, augment_with=torch.Generator(device=device).manual_seed(1),
                        channels_last=True)
    return bool(b.is_contiguous(memory_format=torch.channels_last) and torch.equal(a, b))


def syncbn_against_torch(device: torch.device) -> dict:
    """One training step of cnn_lab's SyncBatchNorm and of PyTorch's (on a CPU, which PyTorch's
    refuses: plain BatchNorm), in a process group of one rank: the largest differences in
    output, input gradient and running statistics, and the host syncs of each."""
    import tempfile

    import torch.distributed as dist
    import torch.nn.functional as F
    from torch.nn.modules._functions import SyncBatchNorm as TorchFunction

    from cnn_lab.syncbn import _SyncBatchNormFunction as OurFunction

    gen = torch.Generator().manual_seed(0)
    x0 = (torch.randn(32, 16, 8, 8, generator=gen) * 3 + 1).to(device).contiguous(memory_format=torch.channels_last)
    dy = torch.randn(32, 16, 8, 8, generator=gen).to(device)
    weight, bias = torch.rand(16, generator=gen).to(device) + 0.5, torch.randn(16, generator=gen).to(device)
    with tempfile.TemporaryDirectory() as tmp:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", init_method=f"file://{tmp}/init",
                                rank=0, world_size=1)
        try:
            def step(fn):
                x = x0.clone().requires_grad_()
                stats = [torch.zeros(16, device=device), torch.ones(16, device=device)]
                out = fn(x, stats)
                out.backward(dy)
                return out.detach(), x.grad, stats

            ours_fn = lambda x, s: OurFunction.apply(x, weight, bias, *s, 1e-5, 0.1, dist.group.WORLD, 1)  # noqa: E731
            if device.type == "cuda":
                ref_fn = lambda x, s: TorchFunction.apply(x, weight, bias, *s, 1e-5, 0.1, dist.group.WORLD, 1)  # noqa: E731
            else:
                ref_fn = lambda x, s: F.batch_norm(x, *s, weight, bias, True, 0.1, 1e-5)  # noqa: E731
            step(ours_fn), step(ref_fn)  # warm-up: the communicator, the kernels
            box = {}
            syncs = {"ours": count_syncs(device, lambda: box.setdefault("ours", step(ours_fn))),
                     "reference": count_syncs(device, lambda: box.setdefault("ref", step(ref_fn)))}
        finally:
            dist.destroy_process_group()
    (out, grad, stats), (rout, rgrad, rstats) = box["ours"], box["ref"]
    diff = lambda a, b: float((a.float() - b.float()).abs().max())  # noqa: E731
    return {"reference": "torch.nn.SyncBatchNorm's function" if device.type == "cuda" else "F.batch_norm",
            "max_abs_diff": {"output": diff(out, rout), "input_grad": diff(grad, rgrad),
                             "running_mean": diff(stats[0], rstats[0]), "running_var": diff(stats[1], rstats[1])},
            "host_syncs": syncs}


def first_model_memory(device: torch.device, seconds: float) -> dict:
    """Step memory of BaselineNet twice, then ResNet-18 twice, in one fresh process: the first
    measurement of a process must not carry one-time allocations (cuBLAS's workspace)."""
    code = ("import json, sys; from cnn_lab.cost import step_memory; "
            f"print(json.dumps([round(step_memory(m, 64, {device.type!r})['step_bytes'] / 2**20, 1) "
            "for m in ('baseline', 'baseline', 'resnet18', 'resnet18')]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True,
                         timeout=max(seconds, 5))
    mib = json.loads(out.stdout.strip().splitlines()[-1])
    return {"baseline": mib[:2], "resnet18": mib[2:]}


# ---------------------------------------------------------------- data, bench, study


def data() -> dict:
    """The data set decoded into the cache (once), so that the bench and the study read it."""
    t0 = time.perf_counter()
    d = load_cifar10()
    return {"source": d.source.describe(), "cache_file": d.cache_file, "seconds": round(time.perf_counter() - t0, 1)}


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


def bench(device: torch.device, work: Path, out: Path, dry_run: bool, deadline: float) -> dict:
    """``python -m cnn_lab bench`` per model (ResNet-18, then BaselineNet), each model's
    bench.json and bench.md copied to ``out`` as it ends."""
    models, extra = (("baseline",), ["--steps", "2", "--reps", "1"]) if dry_run else (BENCH_MODELS, [])
    done = {}
    for model in models:
        if deadline - time.perf_counter() < 20:
            done[model] = "not started: budget spent"
            continue
        folder = work / f"bench-{model}"
        cmd = [sys.executable, "-m", "cnn_lab", "bench", "--device", device.type, "--models", model,
               "--out", str(folder), *extra]
        done[model] = stop_in_time(subprocess.Popen(cmd, cwd=ROOT), deadline - time.perf_counter(), grace=10)
        for f in ("bench.json", "bench.md"):
            if (folder / f).exists():
                (out / f"bench-{model}.{f.split('.')[1]}").write_bytes((folder / f).read_bytes())
    return done


def study_order(variants) -> list[str]:
    """The cheapest model first (the study's model order: BaselineNet, the ResNets, DenseNet),
    so what the deadline cuts is the dearest."""
    rank = {exp: STUDY_MODELS.index(row[0]) for exp, row in STUDY_TABLE.items()}
    return sorted(variants, key=lambda v: rank.get(v, len(STUDY_MODELS)))


def train_variant(exp: str, profile: str, device: torch.device, runs: Path, seconds_left: float) -> dict:
    """``python -m cnn_lab train`` for one seed of one variant; stopped with SIGINT (recorded as
    interrupted, resumable) when the budget runs out."""
    cmd = [sys.executable, "-m", "cnn_lab", "train", str(ROOT / PARAMETERS_DIR / f"{exp}.yaml"),
           "--profile", profile, "--out", str(runs), "--no-progress", "--set", f"device={device.type}",
           "--set", "seeds=1"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT)
    rc = stop_in_time(proc, seconds_left)
    return {"exp_name": exp, "rc": rc, "seconds": round(time.perf_counter() - t0, 1), **accuracy(runs / exp)}


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
    for exp in study_order(variants):
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


# ---------------------------------------------------------------- the plan


def deadlines(stages: list[str], budget: float, start: float) -> dict[str, float]:
    """When each chosen stage must end: the budget split in ``SHARES``' proportions, each stage's
    deadline the sum of its share and those before it (time left over passes on)."""
    total = sum(SHARES[s] for s in stages)
    out, used = {}, 0.0
    for s in stages:
        used += SHARES[s]
        out[s] = start + budget * used / total
    return out


def summary(result: dict) -> str:
    lines = [f"# GPU checks: {result['device']}", "", f"torch {torch.__version__}; budget {result['budget_s']} s", ""]
    for stage in STAGES:
        if stage not in result:
            continue
        r = result[stage]
        if isinstance(r, dict) and "error" in r:
            lines += [f"## {stage}: FAILED", "", f"`{r['error']}`", ""]
        elif stage == "study":
            lines += [f"## study ({r['profile']} profile, one seed each, {r['seconds']} s of training)", "",
                      "| variant | rc | seconds | test acc. (%) | study | diff (points) |", "|---|---|---|---|---|---|"]
            for v in r["variants"]:
                lines.append(f"| {v['exp_name']} | {v.get('rc')} | {v.get('seconds', '–')} | {v.get('mean', '–')} "
                             f"| {v.get('study_acc')} | {v.get('diff')} |")
            lines.append("")
        elif stage == "bench":
            lines += ["## bench", "", json.dumps(r), "",
                      "See " + " and ".join(f"bench-{m}.md" for m in r) + ".", ""]
        else:
            lines += [f"## {stage}", "", "```json", json.dumps(r, indent=1), "```", ""]
    return "\n".join(lines)


def run_stages(stages: list[str], result: dict, out: Path, run: Callable[[str], dict]) -> bool:
    """Each stage through ``run(stage)`` inside a guard, the result files written after each;
    whether every stage and check ran without an error."""
    ok = True
    for stage in stages:
        result[stage] = guarded(lambda: run(stage))
        failed = errors(result[stage])
        ok = ok and not failed
        (out / "gpu-checks.json").write_text(json.dumps(result, indent=1))
        (out / "summary.md").write_text(summary(result))
        print(f"stage {stage}: " + (f"FAILED: {'; '.join(failed)}" if failed else "done"), flush=True)
    return ok


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="folder for the results (the device tool's $OUT)")
    p.add_argument("--budget", type=float, default=None,
                   help=f"seconds for all stages together (default {sum(SHARES.values())}; 1800 in a dry run, on a CPU)")
    p.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES))
    p.add_argument("--only", nargs="+", default=None, help="study variants (default: the study's six)")
    p.add_argument("--work", default=None, help="working folder (default: reports/gpu-checks)")
    p.add_argument("--dry-run", action="store_true", help="every stage on the CPU at smoke scale")
    args = p.parse_args(argv)
    budget = args.budget if args.budget is not None else 1800 if args.dry_run else sum(SHARES.values())
    ends = deadlines(args.stages, budget, time.perf_counter())
    if not args.dry_run and not torch.cuda.is_available():
        print("error: no CUDA GPU here; run on the GPU machine, or use --dry-run to try the script on the CPU",
              file=sys.stderr)
        return 2
    device = torch.device("cpu" if args.dry_run else "cuda")
    precision.configure_backend(device)  # what training and the bench run under, for the checks in this process
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(args.work or ROOT / "reports" / "gpu-checks")
    work.mkdir(parents=True, exist_ok=True)
    name = "CPU (dry run)" if args.dry_run else torch.cuda.get_device_name(device)
    result: dict = {"device": name, "budget_s": budget, "backend": precision.backend_settings()}
    variants = args.only or (list(STUDY_VARIANTS[:1]) + ["cnn_resnet18_adam"] if args.dry_run else list(STUDY_VARIANTS))
    run = {
        "checks": lambda: checks(device, work, ends["checks"]),
        "data": data,
        "bench": lambda: bench(device, work, out, args.dry_run, ends["bench"]),
        "study": lambda: study(variants, "smoke" if args.dry_run else "full", device, work, out, ends["study"]),
    }
    ok = run_stages(args.stages, result, out, lambda stage: run[stage]())
    print(summary(result))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
