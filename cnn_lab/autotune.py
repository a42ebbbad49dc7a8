"""What ``amp: auto`` and ``channels_last: auto`` mean on the machine at hand, and why
(the modes themselves are ``precision``'s).

On CUDA: bf16 autocast from compute capability 8 (Ampere) on, where it has tensor cores
(below that it is emulated and slower than fp32), and channels_last on. On a CPU the answer
depends on the chip (bf16 pays where AVX-512 BF16 or AMX does the arithmetic, channels_last
on some chips and not others), so it is measured: a few training steps of each candidate
(fp32, bf16, channels_last, bf16 + channels_last) on the real model and per-process batch,
interleaved, the fastest kept. On a CPU that /proc/cpuinfo shows without native bf16 (no
AVX-512 BF16, no AMX-BF16, no Arm BF16) bf16 is emulated and always slower, so ``auto`` times
only fp32 there, unless bf16 is asked for explicitly. The result is cached in ``data/cache/autotune.json``, keyed on
the CPU model, torch version, thread count, model, optimizer and batch size, so the same
config on the same machine always trains in the same mode (and its metrics stay identical).
An explicit setting always wins. The measurement runs on a fresh model with random inputs
under a forked RNG, so it never changes the training's random stream.
"""
from __future__ import annotations

import json
import math
import os
import statistics
import time
from pathlib import Path
from typing import Any, Callable

import torch

from . import runio
from .batches import load_batch
from .config import RunConfig
from .data import project_root
from .distributed import dist_info
from .models import create_model
from .precision import backend_settings, fp32_head, mode_name
from .runio import cpu_model
from .step import make_optimizer, train_step

CANDIDATES = (("off", "off"), ("bf16", "off"), ("off", "on"), ("bf16", "on"))
CACHE_VERSION = 1
_BUSY_SAID: set[Path] = set()
# What this process has timed, per (model, batch, device): a second variant of the model (another
# optimizer) takes these timings rather than timing again; the optimizer's update is the same
# in every mode, so it does not change which mode is fastest.
_TIMED: dict[tuple[str, int, str], dict[str, Any]] = {}


def cache_file() -> Path:
    return project_root() / "data" / "cache" / "autotune.json"


def _read_cache(path: Path, log: Callable[[str], None]) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or data.get("version") != CACHE_VERSION or not isinstance(data.get("entries"), dict):
            raise ValueError("not an autotune cache of this version")
        return data["entries"]
    except (OSError, ValueError) as err:
        log(f"note: ignoring the damaged autotune cache {path} ({err}); measuring again")
        return {}


def _write_cache(path: Path, entries: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    runio.atomic_write_text(path, json.dumps({"version": CACHE_VERSION, "entries": entries}, indent=1) + "\n")


def device_key() -> str:
    """This CPU as its timings depend on it: the chip, the torch version and the thread count."""
    return f"{cpu_model()} | torch {torch.__version__} | {torch.get_num_threads()} threads"


def cache_key(model: str, optimizer: str, batch_size: int) -> str:
    return f"{device_key()} | {model} | {optimizer} | batch {batch_size}"


FP32_ONLY = tuple(m for m in CANDIDATES if m[0] == "off")
BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")  # x86 AVX-512 BF16 and AMX; the Arm BF16 feature


def native_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool | None:
    """Whether this CPU does bf16 arithmetic in hardware: from /proc/cpuinfo's flags (x86) or
    features (Arm); None where the file or those lines are missing (then bf16 is timed)."""
    try:
        lines = cpuinfo.read_text().splitlines()
    except OSError:
        return None
    flags = next((line.split(":", 1)[1].split() for line in lines
                  if line.split(":", 1)[0].strip() in ("flags", "Features") and ":" in line), None)
    return None if flags is None else any(f in flags for f in BF16_FLAGS)


def candidates_for(amp: str) -> tuple[tuple[str, str], ...]:
    """The modes worth timing for ``amp``: all of them, except bf16 on a CPU known to emulate it
    (unless bf16 is what was asked for)."""
    return FP32_ONLY if amp != "bf16" and native_bf16() is False else CANDIDATES


def measure_modes(model_name: str, optimizer: str, batch_size: int, rounds: int | None = None,
                  candidates=CANDIDATES) -> dict[str, float]:
    """Seconds per training step of each candidate on the CPU (min over interleaved rounds,
    after one warm-up step each); the global RNG is left as it was. Rounds (default): 3
    where a step is cheap, fewer for slow models, so the measurement stays within seconds."""
    with torch.random.fork_rng(devices=[]):
        gen = torch.Generator().manual_seed(12345)
        x = torch.randn(batch_size, 3, 32, 32, generator=gen)
        y = torch.randint(0, 10, (batch_size,), generator=gen)
        setups = {}
        t_warm = time.perf_counter()
        for amp, cl in candidates:
            torch.manual_seed(0)
            model = fp32_head(create_model(model_name, num_classes=10))
            xb = x
            if cl == "on":
                model.to(memory_format=torch.channels_last)
                xb = x.contiguous(memory_format=torch.channels_last)
            model.train()
            opt = make_optimizer(RunConfig(optimizer=optimizer), model)
            train_step(model, opt, xb, y, amp)  # warm-up: allocator, kernel selection
            setups[(amp, cl)] = (model, opt, xb)
        t_warm = time.perf_counter() - t_warm
        rounds = rounds or (3 if t_warm < 3 else 2 if t_warm < 15 else 1)
        times: dict[tuple[str, str], list[float]] = {c: [] for c in setups}
        for r in range(rounds):
            order = list(setups) if r % 2 == 0 else list(setups)[::-1]
            for c in order:
                model, opt, xb = setups[c]
                t0 = time.perf_counter()
                train_step(model, opt, xb, y, c[0])
                times[c].append(time.perf_counter() - t0)
    return {f"{a}/{c}": min(v) for (a, c), v in times.items()}


def cpu_choice(model_name: str, optimizer: str, batch_size: int, log: Callable[[str], None] = print,
               cache: Path | None = None, candidates=CANDIDATES) -> dict[str, Any]:
    """The step times of ``candidates`` for this model and batch: from the cache where it holds
    them all, else timed (once per process for each model, batch, device and set of candidates:
    ``_TIMED``) and cached."""
    path = cache or cache_file()
    key = cache_key(model_name, optimizer, batch_size)
    entries = _read_cache(path, log)
    entry = entries.get(key)
    if not (isinstance(entry, dict) and isinstance(entry.get("step_s"), dict)
            and all(f"{a}/{c}" in entry["step_s"] for a, c in candidates)):
        timed = (model_name, batch_size, device_key(), tuple(candidates))
        if timed not in _TIMED:
            _TIMED[timed] = _time_modes(model_name, optimizer, batch_size, path, log, candidates)
        entry = _TIMED[timed]
        entries = {**_read_cache(path, lambda s: None), key: entry}  # another process may have added some
        try:
            _write_cache(path, entries)
        except OSError as err:
            log(f"note: could not write the autotune cache {path} ({err})")
        entry = {**entry, "fresh": True}
    return entry


def _time_modes(model_name: str, optimizer: str, batch_size: int, path: Path, log: Callable[[str], None],
                candidates=CANDIDATES) -> dict[str, Any]:
    """A cache entry: each candidate's step timed now, when, and the load average it was timed under."""
    what = ("fp32, bf16 and channels_last" if any(a == "bf16" for a, _ in candidates)
            else "fp32 and channels_last (not bf16: this CPU has no native bf16)")
    log(f"autotune: timing {what} on {model_name} at batch {batch_size} ...")
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    if load > cores and path not in _BUSY_SAID:  # once per process and cache file
        _BUSY_SAID.add(path)
        log(f"autotune: note: the machine is busy (load average {load:.1f} on {cores} cores), so these timings, "
            f"and the mode and time estimates taken from them, may be off; delete {path} to measure again")
    return {"step_s": measure_modes(model_name, optimizer, batch_size, candidates=candidates), "measured": time.strftime("%Y-%m-%d %H:%M"),
            "load": round(load, 1)}


def resolve(cfg, device: torch.device, batch_size: int | None = None, log: Callable[[str], None] = print,
            cache: Path | None = None) -> dict[str, Any]:
    """``{"amp": "bf16"|"off", "channels_last": "on"|"off", "source": ..., "reason": ...}``.

    ``source`` is "explicit" (both set), "rule" (CUDA's compute capability, or fp32 on another
    device) or "measured" (a CPU: then also ``step_s``, the chosen mode's step, ``timings_s``,
    every candidate's, and ``cpu``, the model they were timed on)."""
    amp, cl = cfg.amp, cfg.channels_last
    if amp != "auto" and cl != "auto":
        return {"amp": amp, "channels_last": cl, "source": "explicit", "reason": "set explicitly"}
    if device.type == "cuda":
        out = {"amp": amp, "channels_last": cl, "source": "rule", "reason": []}
        if amp == "auto":
            major, minor = torch.cuda.get_device_capability(device)
            out["amp"] = "bf16" if major >= 8 else "off"
            out["reason"].append(f"bf16 {'on' if major >= 8 else 'off'}: compute capability {major}.{minor} "
                                 f"({'bf16 tensor cores' if major >= 8 else 'no bf16 tensor cores, fp32 is faster'})")
        if cl == "auto":
            out["channels_last"] = "on"
            out["reason"].append("channels_last on: cuDNN's tensor-core convolutions work in NHWC")
        out["reason"] = "; ".join(out["reason"])
        return out
    if device.type != "cpu":
        return {"amp": "off" if amp == "auto" else amp, "channels_last": "off" if cl == "auto" else cl,
                "source": "rule", "reason": f"auto is fp32 and NCHW on {device.type}"}
    bs = batch_size or cfg.batch_size
    modes = candidates_for(amp)
    entry = cpu_choice(cfg.model, cfg.optimizer, bs, log, cache, modes)
    step = entry["step_s"]
    allowed = [(a, c) for a, c in modes if amp in ("auto", a) and cl in ("auto", c)]
    best = min(allowed, key=lambda m: step[f"{m[0]}/{m[1]}"])
    timings = ", ".join(f"{mode_name(a, c)} {step[f'{a}/{c}'] * 1e3:.0f} ms" for a, c in modes)
    fixed = " (the other setting explicit)" if amp != "auto" or cl != "auto" else ""
    untimed = "; bf16 not timed: this CPU has no native bf16" if modes == FP32_ONLY else ""
    reason = (f"fastest{fixed} of the training steps timed on {cpu_model()} at batch {bs} "
              f"({'measured now' if entry.get('fresh') else 'cached ' + entry.get('measured', '')}): {timings}{untimed}")
    return {"amp": best[0], "channels_last": best[1], "source": "measured", "reason": reason,
            "step_s": round(step[f"{best[0]}/{best[1]}"], 5), "cpu": cpu_model(),
            "timings_s": {mode_name(a, c): round(step[f"{a}/{c}"], 5) for a, c in modes}}


def step_seconds(model_name: str, optimizer: str, batch_size: int, amp: str, channels_last: str,
                 log: Callable[[str], None] = print) -> float:
    """One training step's seconds on this CPU in this mode (the cached measurement)."""
    entry = cpu_choice(model_name, optimizer, batch_size, log, candidates=candidates_for(amp))
    return entry["step_s"][f"{amp}/{channels_last}"]


# What a training run costs besides its steps, for the estimate: the forward pass of an
# evaluation batch against a training step of the same size, and a notebook's fixed start
# (kernel, imports, the cached data set) on a 2-core CPU.
FORWARD_SHARE = 0.4
START_S = 5.0


def data_path_seconds(batch_size: int, augment: bool, channels_last: bool, batches: int = 20, *,
                      x: torch.Tensor | None = None, y: torch.Tensor | None = None,
                      device: torch.device | None = None) -> float:
    """Seconds per batch of the loop's own data work (gather, crop + flip, normalise): what the
    loop adds to the raw step, for the uint8 set (x, y) batched onto ``device``, or, without a
    set, for random uint8 images on the CPU (the estimate's case: the data need not be loaded
    yet). On the CPU the median batch; on a GPU the mean over all batches between two syncs,
    as the loop queues them. The estimate and the bench both time it here."""
    device = torch.device("cpu") if x is None else (device or x.device)
    with torch.random.fork_rng(devices=[]):
        gen = torch.Generator(device=device).manual_seed(0)
        if x is None:
            x = torch.randint(0, 256, (4 * batch_size, 3, 32, 32), dtype=torch.uint8, generator=gen)
            y = torch.randint(0, 10, (4 * batch_size,), generator=gen)
        # on x's device once, as the loop moves each epoch's order: no copy per batch
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0)).to(x.device)
        spans = max(len(x) // batch_size, 1)

        def load(i: int) -> None:
            start = (i % spans) * batch_size
            load_batch(x, y, order[start : start + batch_size], device=device,
                       augment_with=gen if augment else None, channels_last=channels_last)

        if device.type == "cuda":
            sync(device)
            t0 = time.perf_counter()
            for i in range(batches):
                load(i)
            sync(device)
            return (time.perf_counter() - t0) / batches
        times = []
        for i in range(batches):
            t0 = time.perf_counter()
            load(i)
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (a no-op on the CPU): timings end here."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def estimate_seconds(cfg, mode: dict[str, str], steps_per_epoch: int, log: Callable[[str], None] = print) -> float:
    """Wall time of every seed of a variant on this CPU in ``mode``: measured training step and
    data path per batch, the evaluation's forward passes, and the notebook's start."""
    step = step_seconds(cfg.model, cfg.optimizer, cfg.batch_size, mode["amp"], mode["channels_last"], log)
    data = data_path_seconds(cfg.batch_size, cfg.augment, mode["channels_last"] == "on")
    evaluation = (cfg.test_size or 10_000) / cfg.batch_size * step * FORWARD_SHARE
    per_seed = (steps_per_epoch * (step + data) + evaluation) * cfg.epochs
    return START_S + per_seed * len(cfg.seed_list())


def matmul_peak(dtype: torch.dtype, n: int = 2048, seconds: float = 0.5) -> float:
    """FLOP/s of an n×n matrix product on the CPU in ``dtype`` (best of a short loop)."""
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=gen).to(dtype)
    b = torch.randn(n, n, generator=gen).to(dtype)
    torch.mm(a, b)
    best, t_end = math.inf, time.perf_counter() + seconds
    while time.perf_counter() < t_end or best == math.inf:
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


def for_run(cfg, device: torch.device, recorded: dict[str, Any] | None, run_dir, world: int,
            log: Callable[[str], None] = print) -> dict[str, Any]:
    """The mode a run trains in. A resumed run keeps the mode it started in (``auto`` may
    resolve otherwise on another machine or device; config.yaml already pins explicit
    settings). Under torchrun, rank 0 decides and every rank takes its answer."""
    if recorded:
        out = {**recorded}
        if "kept from" not in out["reason"]:
            out["reason"] += "; kept from the run's start when resuming"
    else:
        out = None
        if world <= 1 or dist_info()[0] == 0:
            out = resolve(cfg, device, batch_size=cfg.batch_size // max(world, 1), log=log)
        if world > 1:
            import torch.distributed as dist

            box = [out]
            dist.broadcast_object_list(box, src=0)
            out = box[0]
    if device.type == "cuda":  # what fp32 means here (TF32 or not) and cuDNN's algorithm choice
        out = {**out, "backend": backend_settings()}
    log(f"{cfg.exp_name}: amp {out['amp']}, channels_last {out['channels_last']} ({out['reason']})")
    return out
