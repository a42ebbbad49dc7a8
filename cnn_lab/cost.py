"""What a model costs, measured rather than quoted: multiply-accumulates, feature-map sizes
per stage, and peak memory of one training step.

MACs come from ``torch.utils.flop_counter.FlopCounterMode`` (FLOPs / 2). Peak memory is
the CUDA allocator's peak on a GPU; on the CPU it is the growth of the peak resident set
of a fresh process across one training step (model, data and imports already loaded), so
every model is measured the same way and nothing else in this process muddies it.
"""
from __future__ import annotations

import json
import resource
import subprocess
import sys
from typing import Any

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

from . import precision
from .models import count_parameters, create_model
from .step import train_step


def stage_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The model's stages, input to output: the children of ``features`` (DenseNet) or of the model."""
    root = model.features if isinstance(getattr(model, "features", None), nn.Sequential) else model
    prefix = "features." if root is not model else ""
    stages = [(prefix + n, m) for n, m in root.named_children()]
    if root is not model:
        stages += [(n, m) for n, m in model.named_children() if n != "features"]
    return stages


@torch.no_grad()
def stage_costs(model: nn.Module, image_size: int = 32) -> list[dict[str, Any]]:
    """Per stage: output shape (C×H×W or features) and MACs per image, in forward order."""
    model.eval()
    calls: list[tuple[str, tuple[int, ...]]] = []
    hooks = [m.register_forward_hook(lambda mod, inp, out, n=n: calls.append((n, tuple(out.shape[1:]))))
             for n, m in stage_modules(model)]
    try:
        with FlopCounterMode(display=False, depth=None) as counter:
            model(torch.zeros(1, 3, image_size, image_size))
    finally:
        for h in hooks:
            h.remove()
    flops = counter.get_flop_counts()
    top = type(model).__name__
    rows = []
    for name, shape in calls:
        macs = sum(flops.get(f"{top}.{name}", {}).values()) // 2
        rows.append({"stage": name, "shape": "×".join(map(str, shape)),
                     "resolution": shape[-1] if len(shape) == 3 else 1, "macs": int(macs)})
    return rows


@torch.no_grad()
def macs_per_image(model: nn.Module, image_size: int = 32) -> int:
    model.eval()
    with FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 3, image_size, image_size))
    return counter.get_total_flops() // 2


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def _reset_peak_rss() -> None:
    """Start the peak resident set (VmHWM) afresh from the current one, where Linux allows it."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _peak_rss_bytes() -> int:
    """This process's own peak resident set: VmHWM, which an exec starts anew. Not ru_maxrss,
    which Linux carries across exec from the parent (a pipeline that has loaded the data set
    and timed models would otherwise be charged to the first step measured)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def _train_step(model: nn.Module, batch_size: int, device: torch.device, amp: str = "off",
                channels_last: str = "off") -> None:
    """One Adam step in the run's mode (bf16 autocast, channels_last) on random inputs."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(batch_size, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (batch_size,), device=device)
    if channels_last == "on":
        model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    model.train()
    train_step(model, opt, x, y, amp)


def step_memory_here(name: str, batch_size: int, device: str = "cpu", amp: str = "off",
                     channels_last: str = "off") -> dict[str, Any]:
    """Peak memory of one training step in this process (use a fresh process on the CPU)."""
    dev = torch.device(device)
    precision.configure_backend(dev)  # the backend training runs under (cuDNN's algorithm search, no TF32)
    torch.manual_seed(0)
    model = create_model(name).to(dev)
    mode = {"amp": amp, "channels_last": channels_last}
    if dev.type == "cuda":
        # a warm-up step on a copy first: the per-process cuBLAS workspace is then already
        # allocated and not charged to whichever model happens to be measured first
        _train_step(create_model(name).to(dev), batch_size, dev, **mode)
        torch.cuda.synchronize(dev)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(dev)
        before = torch.cuda.memory_allocated(dev)
        _train_step(model, batch_size, dev, **mode)
        torch.cuda.synchronize(dev)
        peak = torch.cuda.max_memory_allocated(dev)
        return {"model": name, "batch_size": batch_size, "device": "cuda", "method": "cuda max_memory_allocated",
                "peak_bytes": int(peak), "step_bytes": int(peak - before), **mode}
    before = _rss_bytes()
    _reset_peak_rss()
    _train_step(model, batch_size, dev, **mode)
    peak = max(_peak_rss_bytes(), _rss_bytes())
    return {"model": name, "batch_size": batch_size, "device": "cpu", "method": "peak RSS growth, fresh process",
            "peak_bytes": int(peak), "step_bytes": int(max(peak - before, 0)), **mode}


def step_memory(name: str, batch_size: int, device: str = "cpu", amp: str = "off",
                channels_last: str = "off") -> dict[str, Any]:
    if device.startswith("cuda"):
        return step_memory_here(name, batch_size, device, amp, channels_last)
    out = subprocess.run([sys.executable, "-m", "cnn_lab.cost", name, str(batch_size), amp, channels_last],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def cost_table(models: list[str], batch_size: int = 64, device: str = "cpu",
               modes: dict[str, dict[str, str]] | None = None) -> list[dict[str, Any]]:
    """Parameters, MACs per image and peak step memory for each model (no training data needed),
    the step in the mode its runs trained in (``modes[model]``: amp, channels_last; default fp32 NCHW)."""
    rows = []
    for name in models:
        model = create_model(name)
        mode = {"amp": "off", "channels_last": "off", **(modes or {}).get(name, {})}
        mem = step_memory(name, batch_size, device, mode["amp"], mode["channels_last"])
        rows.append({"model": name, "params": count_parameters(model), "macs": macs_per_image(model),
                     "memory_batch_size": batch_size, "memory_device": mem["device"],
                     "memory_amp": mode["amp"], "memory_channels_last": mode["channels_last"],
                     "memory_method": mem["method"], "step_memory_mb": round(mem["step_bytes"] / 2**20, 1)})
    return rows


if __name__ == "__main__":  # a fresh process for one CPU memory measurement
    print(json.dumps(step_memory_here(sys.argv[1], int(sys.argv[2]), "cpu", *sys.argv[3:5])))
