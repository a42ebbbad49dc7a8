"""Throughput benchmark: how much of the machine each way of training turns into training.

For every model, at one batch size, in one process and interleaved (so that a noisy
machine slows every method alike), it measures training images per second of:

1. ``raw``: forward, backward and optimizer step on one fixed batch already in memory,
   already normalised: the ceiling for this model on this machine;
2. ``loop``: cnn_lab's own ``train_epoch`` on the real data, augmentation on, progress bar
   on, gradient norms recorded at ``grad_points`` steps, its train metrics written after the epoch;
3. ``loop_nograd``: the same with gradient recording off (``grad_points=0``), for the
   cost of recording gradient norms;
4. ``conventional``: ``torchvision.datasets.CIFAR10`` (or, for the JPEG copy, a data set
   with the same ``__getitem__``) + per-image PIL transforms (crop, flip, ToTensor,
   Normalize) + ``DataLoader(num_workers=2)`` feeding the same model and optimizer.

Each method runs ``reps`` timed windows of ``steps`` steps after a warm-up, in an order
that rotates from one repetition to the next. Throughputs are the median window; each
ratio is the median over repetitions of the two methods' windows of the same repetition. The conventional
recipe's workers start at the beginning of each of its windows, as at the start of an
epoch, and stop at its end. Ratios: loop/raw, loop/conventional, loop/loop_nograd. Results go to
``<out>/bench.json`` and ``<out>/bench.md``.
"""
from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import torch

from . import autotune, precision, runio
from . import data as data_mod
from .autotune import sync
from .batches import MEAN, STD, normalize
from .config import RunConfig, parse_overrides, select_device
from .models import create_model
from .study import STUDY_MODELS
from .precision import backend_settings, channels_last_on, fp32_head, mode_name
from .step import make_optimizer, make_scheduler, train_step
from .train import progress_bar, record_grad_norms, train_epoch, weight_layers
from .variant import build_config

TRAIN_COLUMNS = tuple(c for c in runio.METRIC_COLUMNS if not c.startswith("test_"))
MODELS = STUDY_MODELS  # the study's four models, in study.py's order
# Timed steps per window on a CPU, sized so each window takes a few seconds on 2 cores.
# Many short windows rather than a few long ones: on a shared machine slow-downs come in
# bursts of seconds, and the median of many paired windows shrugs them off.
CPU_STEPS = {"baseline": 300, "resnet18": 3, "se_resnet18": 3, "densenet121": 10, "densenet121_cifar": 2}
GPU_STEPS = 50
# Windows per method (default): more where they are cheap, fewer for the slow deep models.
CPU_REPS = {"baseline": 7}
DEFAULT_CPU_REPS = 9


class _ArrayCIFAR(torch.utils.data.Dataset):
    """torchvision's ``CIFAR10.__getitem__`` over HWC uint8 arrays (for the JPEG copy).

    torchvision's class only reads the official pickled batches and checks their MD5s;
    this serves the same images the same way: ``Image.fromarray`` then the transform.
    """

    def __init__(self, data, targets, transform):
        self.data, self.targets, self.transform = data, targets, transform

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int):
        from PIL import Image

        img, target = self.data[index], self.targets[index]
        return self.transform(Image.fromarray(img)), target


def conventional_dataset(data: data_mod.CifarData):
    """The usual recipe's training set: per-image PIL transforms, as in the PyTorch tutorials."""
    import torchvision.transforms as T
    from torchvision.datasets import CIFAR10

    transform = T.Compose([
        T.RandomCrop(32, padding=4),
        T.RandomHorizontalFlip(),
        T.ToTensor(),
        T.Normalize(MEAN, STD),
    ])
    if data.source.kind == "official":
        return CIFAR10(str(Path(data.source.path).parent), train=True, transform=transform, download=False)
    hwc = data.x_train.permute(0, 2, 3, 1).contiguous().numpy()
    return _ArrayCIFAR(hwc, data.y_train.tolist(), transform)


class _Bench:
    """One model's three training set-ups, each with its own model and optimizer."""

    def __init__(self, name: str, cfg: RunConfig, data: data_mod.CifarData, device: torch.device,
                 steps: int, workdir: Path, modes: tuple[tuple[str, str], ...] = ()):
        self.name, self.cfg, self.device, self.steps, self.workdir = name, cfg, device, steps, workdir
        self.cl = channels_last_on(device, cfg.channels_last)
        n = steps * cfg.batch_size
        x, y = data_mod.balanced_subset(data.x_train, data.y_train, n, seed=0)
        if device.type == "cuda":  # as train_run does: the uint8 set lives on the GPU
            x, y = x.to(device), y.to(device)
        self.x, self.y = x, y
        self.epoch = 0
        # the raw step's batch: one fixed, normalised batch already in place
        self.raw_x = normalize(x[: cfg.batch_size].to(device))
        if self.cl:
            self.raw_x = self.raw_x.contiguous(memory_format=torch.channels_last)
        self.raw_y = y[: cfg.batch_size].to(device)
        self.models = {k: self._model() for k in ("raw", "loop", "loop_nograd", "conventional")}
        # the raw step in the other modes (amp, channels_last): what each would give this model
        nchw = normalize(x[: cfg.batch_size].to(device))
        self.mode_raw = {}
        for amp, cl in modes:
            model, opt = self._model(cl == "on")
            xb = nchw.contiguous(memory_format=torch.channels_last) if cl == "on" else nchw
            self.mode_raw[mode_method(amp, cl)] = (model, opt, xb, amp)
        # Workers start with each timed window (as at the start of every epoch) and stop at
        # its end, so they never take CPU from the other methods' windows.
        self.loader = torch.utils.data.DataLoader(
            conventional_dataset(data), batch_size=cfg.batch_size, shuffle=True, num_workers=2,
            drop_last=True, pin_memory=device.type == "cuda",
        )

    def _model(self, channels_last: bool | None = None):
        torch.manual_seed(0)
        model = fp32_head(create_model(self.name, num_classes=10)).to(self.device)
        if self.cl if channels_last is None else channels_last:
            model.to(memory_format=torch.channels_last)
        opt = make_optimizer(self.cfg, model)
        return (torch.compile(model) if self.cfg.compile else model), opt

    def raw(self, steps: int) -> int:
        model, opt = self.models["raw"]
        model.train()
        for _ in range(steps):
            train_step(model, opt, self.raw_x, self.raw_y, self.cfg.amp)
        return steps * self.cfg.batch_size

    def raw_in(self, method: str, steps: int) -> int:
        model, opt, xb, amp = self.mode_raw[method]
        model.train()
        for _ in range(steps):
            train_step(model, opt, xb, self.raw_y, amp)
        return steps * self.cfg.batch_size

    def method(self, name: str) -> Callable[[int], int]:
        return getattr(self, name) if name in METHODS else (lambda steps: self.raw_in(name, steps))

    def _loop(self, key: str, grad_points: int, steps: int) -> int:
        model, opt = self.models[key]
        cfg = dataclasses.replace(self.cfg, grad_points=grad_points)
        n = min(steps * cfg.batch_size, len(self.x))
        sched = make_scheduler(cfg, opt, 10**9)
        self.epoch += 1
        bar = progress_bar(f"bench {self.name} {key}", steps)
        rows: list[dict[str, Any]] = []
        layers = weight_layers(model)
        grad_rows: list[dict[str, Any]] = []

        def on_grads(step: int) -> None:  # exactly what train_run records at each grad point
            record_grad_norms(layers, grad_rows, self.epoch, step)

        t0 = time.perf_counter()
        try:
            tr = train_epoch(model, opt, sched, self.x[:n], self.y[:n], cfg, seed=0, epoch=self.epoch,
                             device=self.device, progress=bar, on_grads=on_grads if grad_points else None)
        finally:
            bar.close()
        sync(self.device)
        seconds = time.perf_counter() - t0
        # the loop's own metrics write, with what a window measures (it evaluates nothing)
        rows.append({"epoch": self.epoch, "train_loss": tr["train_loss"], "train_acc": tr["train_acc"],
                     "lr": tr["lr"], "seconds": round(seconds, 3), "images_per_s": round(tr["images"] / seconds, 1)})
        runio.write_csv(self.workdir / f"{self.name}_{key}.csv", rows, TRAIN_COLUMNS)
        return tr["images"]

    def data_path_ms(self, batches: int = 100) -> float:
        """Milliseconds per batch of the loop's own data work on this model's images, timed
        alone: a low-noise estimate of what the loop adds to the raw step."""
        return autotune.data_path_seconds(self.cfg.batch_size, self.cfg.augment, self.cl, batches,
                                          x=self.x, y=self.y, device=self.device) * 1e3

    def grad_record_ms(self, calls: int = 20) -> float:
        """Milliseconds of one gradient-norm recording (all weight layers), timed alone after a
        real backward pass: the low-noise estimate of what grad recording adds to an epoch."""
        model, opt = self.models["loop"]
        train_step(model, opt, self.raw_x, self.raw_y, self.cfg.amp)  # leaves this step's gradients in place
        layers, rows = weight_layers(model), []
        sync(self.device)
        t0 = time.perf_counter()
        for step in range(calls):
            record_grad_norms(layers, rows, 0, step)
        sync(self.device)
        return (time.perf_counter() - t0) / calls * 1e3

    def loop(self, steps: int) -> int:
        return self._loop("loop", self.cfg.grad_points, steps)

    def loop_nograd(self, steps: int) -> int:
        return self._loop("loop_nograd", 0, steps)

    def conventional(self, steps: int) -> int:
        model, opt = self.models["conventional"]
        model.train()
        seen = 0
        it = iter(self.loader)
        try:
            for _ in range(steps):
                try:
                    xb, yb = next(it)
                except StopIteration:
                    it = iter(self.loader)
                    xb, yb = next(it)
                xb = xb.to(self.device, non_blocking=True)
                if self.cl:
                    xb = xb.contiguous(memory_format=torch.channels_last)
                train_step(model, opt, xb, yb.to(self.device, non_blocking=True), self.cfg.amp)
                seen += len(yb)
        finally:
            del it  # stops the workers
        return seen

    def close(self) -> None:
        self.models.clear()
        self.mode_raw.clear()


def _timed(fn: Callable[[int], int], steps: int, device: torch.device) -> float:
    sync(device)
    t0 = time.perf_counter()
    images = fn(steps)
    sync(device)
    return images / (time.perf_counter() - t0)


METHODS = ("raw", "loop", "loop_nograd", "conventional")


def mode_method(amp: str, channels_last: str) -> str:
    return "raw " + mode_name(amp, channels_last)


def _window_order(rep: int, extra: tuple[str, ...] = ()) -> list[str]:
    """This repetition's order: the two loop variants always side by side (their ratio is the
    grad-recording cost, a few percent at most), the units rotated so drift hits all alike."""
    pair = ["loop", "loop_nograd"] if rep % 2 == 0 else ["loop_nograd", "loop"]
    units = [["raw"], pair, ["conventional"], *[[m] for m in extra]]
    units = units[rep % len(units):] + units[: rep % len(units)]
    return [m for u in units for m in u]


def _median_ratio(rates: dict[str, list[float]], a: str, b: str) -> float:
    """Median over repetitions of a/b measured in the same repetition (paired: less noise)."""
    return statistics.median(x / y for x, y in zip(rates[a], rates[b]))


def _fp32_method(cfg: RunConfig, rates: dict[str, list[float]]) -> str | None:
    """The window of the raw step in fp32, NCHW: the loop's own raw step when that is its mode."""
    if (cfg.amp, cfg.channels_last) == ("off", "off"):
        return "raw"
    return mode_method("off", "off") if mode_method("off", "off") in rates else None


def _sig(x: float) -> float:
    """Six significant digits: a fast GPU step (0.3 ms) or a small ratio (0.6% of a peak) keeps its
    precision, unlike round(x, 2); what bench.md shows is formatted there."""
    return float(f"{x:.6g}")


def bench_model(name: str, cfg: RunConfig, data: data_mod.CifarData, device: torch.device, steps: int,
                reps: int, workdir: Path, log: Callable[[str], None] = print,
                other_modes: tuple[tuple[str, str], ...] = ()) -> dict[str, Any]:
    """``cfg`` holds the mode of the raw step and the loops (resolved); ``other_modes``: the raw
    step also in these (amp, channels_last) modes."""
    b = _Bench(name, cfg, data, device, steps, workdir, other_modes)
    extra = tuple(b.mode_raw)
    try:
        warm = max(2, steps // 10)
        for m in (*METHODS, *extra):  # warm-up: allocator, autotuning, worker start-up
            b.method(m)(warm)
        rates: dict[str, list[float]] = {m: [] for m in (*METHODS, *extra)}
        for rep in range(reps):
            for m in _window_order(rep, extra):
                rates[m].append(_timed(b.method(m), steps, device))
            log(f"  {name} rep {rep + 1}/{reps}: " + ", ".join(f"{m} {rates[m][-1]:.0f}" for m in rates) + " img/s")
        data_ms = b.data_path_ms(300)
        grad_ms = statistics.median(b.grad_record_ms() for _ in range(5))
    finally:
        b.close()
    med = {m: statistics.median(v) for m, v in rates.items()}
    raw_ms = cfg.batch_size / med["raw"] * 1e3
    return {
        "model": name,
        "steps": steps,
        "reps": reps,
        "images_per_s": {m: round(v, 1) for m, v in med.items()},
        "windows": {m: [round(r, 1) for r in v] for m, v in rates.items()},
        "loop_over_raw": _sig(_median_ratio(rates, "loop", "raw")),
        "loop_over_conventional": _sig(_median_ratio(rates, "loop", "conventional")),
        # the loop against the plain fp32 step (what training ran at before autotune), paired
        **({"fp32_raw_method": fp32, "loop_over_fp32_raw": _sig(_median_ratio(rates, "loop", fp32))}
           if (fp32 := _fp32_method(cfg, rates)) else {}),
        "grad_on_over_off": _sig(_median_ratio(rates, "loop", "loop_nograd")),
        "data_path_ms": round(data_ms, 3),
        "raw_step_ms": _sig(raw_ms),
        "loop_over_raw_from_parts": _sig(raw_ms / (raw_ms + data_ms)),
        "grad_record_ms": _sig(grad_ms),
        # one recording as a share of one raw step; grad_points of them per epoch of S steps
        # cost grad_points * this / S of the epoch
        "grad_record_over_step": _sig(grad_ms / raw_ms),
        "mode": {"amp": cfg.amp, "channels_last": cfg.channels_last},
        "raw_modes": {mode_method(cfg.amp, cfg.channels_last): round(med["raw"], 1),
                      **{m: round(med[m], 1) for m in extra}},
    }


def machine_peaks(device: torch.device, log: Callable[[str], None] = print) -> dict[str, float]:
    """The machine's matrix-multiply FLOP/s (2048², best of a short loop) in fp32 and bf16."""
    if device.type != "cpu":
        return {}
    peaks = {"fp32": autotune.matmul_peak(torch.float32), "bf16": autotune.matmul_peak(torch.bfloat16)}
    log("  matmul peak (2048²): " + ", ".join(f"{k} {v / 1e9:.0f} GFLOP/s" for k, v in peaks.items()))
    return {k: round(v) for k, v in peaks.items()}


def hardware_use(r: dict[str, Any], name: str, peaks: dict[str, float]) -> dict[str, Any]:
    """Achieved FLOP/s (3 × forward MACs × 2 per image × images/s), as a share of the matmul
    peak in the loop's precision, and the loop against the fastest raw mode."""
    from .cost import macs_per_image

    flops_per_image = 3 * 2 * macs_per_image(create_model(name))
    fastest = max(r["raw_modes"], key=r["raw_modes"].get)
    loop_flops = r["images_per_s"]["loop"] * flops_per_image
    peak = peaks.get("bf16" if r["mode"]["amp"] == "bf16" else "fp32")
    return {
        "flops_per_image": int(flops_per_image),
        "loop_flops": round(loop_flops),
        "loop_share_of_peak": _sig(loop_flops / peak) if peak else None,
        "fastest_raw_mode": fastest,
        "loop_over_fastest_raw": _sig(r["images_per_s"]["loop"] / r["raw_modes"][fastest]),
    }


def time_data(data_arg: str | None, decode: bool,
              log: Callable[[str], None] = print) -> tuple[dict[str, Any], data_mod.CifarData]:
    """Seconds to load the cached data set (and, with ``decode``, to decode it from scratch),
    and the data set loaded."""
    out: dict[str, Any] = {}
    if decode:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            data_mod.load_cifar10(data_arg, cache_dir=Path(tmp))
            out["first_decode_s"] = round(time.perf_counter() - t0, 2)
            log(f"  first decode (empty cache): {out['first_decode_s']} s")
    data_mod.load_cifar10(data_arg)  # makes sure the project cache exists
    t0 = time.perf_counter()
    data = data_mod.load_cifar10(data_arg)
    out["cached_load_s"] = round(time.perf_counter() - t0, 3)
    out["dtype"] = str(data.x_train.dtype).replace("torch.", "")
    out["bytes_at_rest"] = int(sum(t.numel() * t.element_size() for t in (data.x_train, data.x_test)))
    out["source"] = data.source.describe()
    log(f"  cached load: {out['cached_load_s']} s; images held as {out['dtype']}, "
        f"{out['bytes_at_rest'] / 2**20:.0f} MiB")
    return out, data


def markdown(result: dict[str, Any]) -> str:
    """bench.md: the machine and settings, the loop against the raw step and the conventional
    recipe, the modes against the hardware's peak, and what each column means."""
    lines = [*_header(result), "", *_loop_table(result), "", *_hardware_table(result), "", *_notes(result)]
    return "\n".join(lines) + "\n"


def _header(result: dict[str, Any]) -> list[str]:
    s, env = result["settings"], result["environment"]
    return [
        f"Machine: {env['processor']}, {env['cpu_count']} CPUs, torch threads {env['torch_threads']}, "
        f"device {env['device']}{' (' + env['device_name'] + ')' if env.get('device_name') else ''}; "
        f"Python {env['python']}, torch {env['torch']}, torchvision {env['torchvision']}.",
        f"Settings: batch size {s['batch_size']}, optimizer {s['optimizer']}, amp {s['amp']}, "
        f"channels_last {s['channels_last']}, compile {str(s['compile']).lower()}, grad_points {s['grad_points']}; "
        "windows per method: " + ", ".join(f"{m} {n}" for m, n in s["reps"].items())
        + f" (throughput: median window; ratio: median of same-repetition ratios); data {result['data']['source']}.",
    ]


def _ratio_range(windows: dict[str, list[float]], a: str, b: str, fmt: str) -> str:
    """The lowest and highest of the same-repetition ratios a/b: the machine's noise."""
    v = [x / y for x, y in zip(windows[a], windows[b])]
    return f"{min(v):{fmt}}–{max(v):{fmt}}"


def _loop_table(result: dict[str, Any]) -> list[str]:
    lines = [
        "| model | steps/window | raw img/s | loop img/s | loop, no grad rec. | conventional img/s "
        "| loop / raw | loop / conventional | grad rec. on / off | data path ms/batch | loop / raw from parts "
        "| one grad rec. (ms, % of a step) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["models"]:
        ips, w = r["images_per_s"], r["windows"]
        lines.append(
            f"| {r['model']} | {r['steps']} | {ips['raw']:.0f} | {ips['loop']:.0f} | {ips['loop_nograd']:.0f} "
            f"| {ips['conventional']:.0f} | {r['loop_over_raw']:.1%} ({_ratio_range(w, 'loop', 'raw', '.0%')}) "
            f"| {r['loop_over_conventional']:.2f}x ({_ratio_range(w, 'loop', 'conventional', '.2f')}) "
            f"| {r['grad_on_over_off']:.1%} ({_ratio_range(w, 'loop', 'loop_nograd', '.0%')}) "
            f"| {r['data_path_ms']:.2f} | {r['loop_over_raw_from_parts']:.1%} "
            f"| {r['grad_record_ms']:.3f} ({r['grad_record_over_step']:.2%}) |"
        )
    return lines


def _hardware_table(result: dict[str, Any]) -> list[str]:
    peaks = result.get("peak_flops") or {}
    modes = [mode_name(a, c) for a, c in autotune.CANDIDATES]
    lines = ["Against the hardware" + (": matmul peak (2048²) " + ", ".join(
        f"{k} {v / 1e9:.0f} GFLOP/s" for k, v in peaks.items()) if peaks else "") + ".", "",
        "| model | loop mode (auto) | " + " | ".join(f"raw {m} img/s" for m in modes)
        + " | loop img/s | loop / fastest raw | loop / raw fp32 | loop GFLOP/s | share of peak |",
        "|---|---|" + "---|" * (len(modes) + 5)]
    for r in result["models"]:
        share = f"{r['loop_share_of_peak']:.1%}" if r.get("loop_share_of_peak") is not None else "–"
        fp32 = (f"{r['loop_over_fp32_raw']:.2f}x ({_ratio_range(r['windows'], 'loop', r['fp32_raw_method'], '.2f')})"
                if r.get("loop_over_fp32_raw") else "–")
        lines.append(
            f"| {r['model']} | {mode_name(r['mode']['amp'], r['mode']['channels_last'])} | "
            + " | ".join(f"{r['raw_modes'].get('raw ' + m, float('nan')):.0f}" for m in modes)
            + f" | {r['images_per_s']['loop']:.0f} | {r['loop_over_fastest_raw']:.2f} ({r['fastest_raw_mode']}) "
            f"| {fp32} | {r['loop_flops'] / 1e9:.1f} | {share} |")
    return lines


def _notes(result: dict[str, Any]) -> list[str]:
    s, d = result["settings"], result["data"]
    return [
        "Achieved FLOP/s: 3 × forward MACs × 2 per image × images/s (forward, and backward "
        "at twice the forward); share of peak: against the matmul peak in the loop's precision.",
        "", "Data path: the loop's own per-batch work (index_select gather, crop+flip, normalise) "
        "timed alone (median batch); loop / raw from parts = raw step time / (raw step time + data path), "
        "the ratio without the machine's noise. One grad rec.: one recording of every weight layer's "
        f"gradient norm timed alone; with grad_points {s['grad_points']} an epoch of S steps pays "
        f"{s['grad_points']} × that share / S (e.g. S = 391, a full epoch at batch 128).",
        "", "Loop / raw fp32: the loop in its mode against the raw step in fp32 (NCHW), the speed-up "
        "over training in fp32.",
        "", "Ratios: median over repetitions of the two methods' windows in the same repetition "
        "(in brackets: the lowest and highest of those per-repetition ratios, i.e. the machine's noise).",
        "", f"Data: cached load {d['cached_load_s']} s"
        + (f", first decode {d['first_decode_s']} s" if "first_decode_s" in d else "")
        + f"; images held as {d['dtype']} ({d['bytes_at_rest'] / 2**20:.0f} MiB).",
    ]


def bench_config(batch_size: int, overrides: dict[str, Any] | None = None) -> RunConfig:
    """The settings every method shares: Adam 1e-3 with augmentation, plus ``--set`` overrides."""
    base = {"exp_name": "bench", "optimizer": "adam", "lr": 1e-3, "augment": True, "batch_size": batch_size,
            "epochs": 1, "train_size": 0, "test_size": 0, "seeds": 1}
    return build_config([("bench", base), ("--set", dict(overrides or {}))])


def run(models, batch_size: int, steps: int | None, device_name: str, out: Path, reps: int | None = None,
        decode: bool = False, data_arg: str | None = None, overrides: dict[str, Any] | None = None,
        log: Callable[[str], None] = print) -> dict[str, Any]:
    device = select_device(device_name)
    precision.configure_backend(device)
    cfg = bench_config(batch_size, overrides)
    log(f"cnn_lab bench on {device}, batch size {batch_size}")
    data_times, data = time_data(data_arg, decode, log)
    peaks = machine_peaks(device, log)
    results = []
    with tempfile.TemporaryDirectory() as work:
        for name in models:
            n = steps or (GPU_STEPS if device.type == "cuda" else CPU_STEPS.get(name, 10))
            r = reps or (CPU_REPS.get(name, DEFAULT_CPU_REPS) if device.type == "cpu" else 5)
            mode = autotune.resolve(dataclasses.replace(cfg, model=name), device, batch_size, log)
            mcfg = dataclasses.replace(cfg, amp=mode["amp"], channels_last=mode["channels_last"])
            log(f"{name}: {r} windows of {n} steps per method; loop in {mode_name(mcfg.amp, mcfg.channels_last)} "
                f"({mode['reason']})")
            others = tuple(m for m in autotune.CANDIDATES if m != (mcfg.amp, mcfg.channels_last))
            res = bench_model(name, mcfg, data, device, n, r, Path(work), log, others)
            res["mode"]["reason"] = mode["reason"]
            results.append({**res, **hardware_use(res, name, peaks)})
    result = {
        "settings": {"batch_size": batch_size, "optimizer": cfg.optimizer, "lr": cfg.lr, "augment": cfg.augment,
                     "amp": cfg.amp, "channels_last": cfg.channels_last, "compile": cfg.compile,
                     "grad_points": cfg.grad_points,
                     "reps": {r["model"]: r["reps"] for r in results}, "num_workers_conventional": 2},
        "peak_flops": peaks,
        "environment": runio.environment(device),
        **({"backend": backend_settings()} if device.type == "cuda" else {}),
        "data": data_times,
        "models": results,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    out.mkdir(parents=True, exist_ok=True)
    runio.write_json(out / "bench.json", result)
    md = markdown(result)
    runio.atomic_write_text(out / "bench.md", md)
    log("\n" + md)
    log(f"wrote {out / 'bench.json'} and {out / 'bench.md'}")
    return result


def main(args: argparse.Namespace) -> int:
    """``python -m cnn_lab bench``; bad arguments: one line on stderr, exit status 2."""
    import sys

    from .models import list_models

    models = args.models or list(MODELS)
    problem = None
    unknown = [m for m in models if m not in list_models()]
    if unknown:
        problem = f"--models: unknown model {unknown[0]!r}; known: {', '.join(list_models())}"
    elif args.batch_size <= 1:
        problem = f"--batch-size must be an integer above 1, got {args.batch_size}"
    elif (args.steps is not None and args.steps <= 0) or (args.reps is not None and args.reps <= 0):
        problem = "--steps and --reps must be positive integers"
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    overrides = parse_overrides(getattr(args, "overrides", []) or [])
    bench_config(args.batch_size, overrides)  # a bad --set fails here, before any measuring
    run(models, args.batch_size, args.steps, args.device, Path(args.out), reps=args.reps, decode=args.decode,
        data_arg=args.data or None, overrides=overrides)
    return 0


__all__ = ["run", "bench_model", "time_data", "conventional_dataset", "markdown", "main"]
