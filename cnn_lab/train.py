"""One training loop for every model.

``train_variant(cfg)`` trains a variant once per seed; ``train_run(cfg, seed)`` trains one
seed into its run directory (see ``runio``), resuming where an earlier attempt stopped.
Every random draw comes from generators seeded by (seed, epoch), so an epoch computes the
same thing whether the run went straight through or was resumed before it.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import math
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
import yaml
from tqdm import tqdm  # plain tqdm: tqdm.auto misbehaves under papermill

from . import autotune, distributed, runio
from . import data as data_mod
from .config import ConfigError, RunConfig, dump_yaml, result_fields
from .models import count_parameters, create_model

NUM_CLASSES = 10
SUBSET_SEED = 0  # every variant and seed trains on the same subset, so runs compare like for like


class Diverged(RuntimeError):
    def __init__(self, epoch: int, step: int, loss: float):
        super().__init__(f"loss became {loss} at epoch {epoch}, step {step}")
        self.epoch, self.step, self.loss = epoch, step, loss


class RunConflict(ConfigError):
    """An existing run directory holds a run of another config."""


class RunBusy(ConfigError):
    """Another live process is training into the run directory."""


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) stopped a run; ``str(err)`` names the run directory and how to resume."""


# ---------------------------------------------------------------- environment


def select_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"field 'device' is {name!r} but no CUDA device is available; use auto or cpu")
    return torch.device(name)


def configure_backend(device: torch.device) -> None:
    """GPU runs let cuDNN time its convolution algorithms for these fixed-shape batches
    (faster; reproducible to rounding rather than bit for bit, as README says)."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True


def dist_info() -> tuple[int, int]:
    """(rank, world size); (0, 1) outside torchrun."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def git_commit() -> str | None:
    root = data_mod.project_root()
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    if sha.returncode != 0:
        return None
    return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def environment(device: torch.device) -> dict[str, Any]:
    import torchvision

    env = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "platform": platform.platform(),
        "processor": autotune.cpu_model(),  # the model line lscpu shows
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
        "git_commit": git_commit(),
    }
    if device.type == "cuda":
        env["device_name"] = torch.cuda.get_device_name(device)
        env["cuda"] = torch.version.cuda
        env["cudnn"] = torch.backends.cudnn.version()
    return env


# ---------------------------------------------------------------- pieces of the loop


def make_optimizer(cfg: RunConfig, model: nn.Module) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    return torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)


def make_scheduler(cfg: RunConfig, optimizer: torch.optim.Optimizer, total_steps: int):
    if cfg.schedule == "cosine":
        lam = lambda step: 0.5 * (1.0 + math.cos(math.pi * min(step, total_steps) / total_steps))  # noqa: E731
    else:
        lam = lambda step: 1.0  # noqa: E731
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lam)


def weight_layers(model: nn.Module) -> list[tuple[str, torch.nn.Parameter]]:
    """Weights of convolutions and linear layers, input to output (registration order)."""
    return [(n, p) for n, p in model.named_parameters() if p.dim() > 1 and n.endswith("weight")]


GRAD_COLUMNS = ("epoch", "step", "layer_index", "layer", "grad_norm", "numel", "weight_norm")


def record_grad_norms(layers: list[tuple[str, torch.nn.Parameter]], rows: list[dict[str, Any]],
                      epoch: int, step: int) -> None:
    """Append one row per weight layer: its gradient norm now, its size and its weight norm
    (one fused kernel each), so that a per-parameter measure can be formed: the RMS
    gradient grad_norm / sqrt(numel), or the relative gradient grad_norm / weight_norm."""
    params = [p for _, p in layers]
    norms = torch._foreach_norm([p.grad for p in params])
    wnorms = torch._foreach_norm([p.detach() for p in params])
    for i, ((name, p), nrm, wn) in enumerate(zip(layers, norms, wnorms)):
        rows.append({"epoch": epoch, "step": step, "layer_index": i, "layer": name, "grad_norm": float(nrm),
                     "numel": p.numel(), "weight_norm": float(wn)})


def epoch_generator(seed: int, epoch: int, device: torch.device | str = "cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed * 1_000_003 + epoch)


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The epoch's shuffled indices (the same under every world size)."""
    return torch.randperm(n, generator=epoch_generator(seed, epoch))


def batch_starts(n: int, batch_size: int, world: int = 1) -> list[int]:
    """Where each optimizer step's batch starts in the epoch order.

    ``batch_size`` is the global batch: under torchrun each of the ``world`` ranks takes an
    interleaved share of it, so a config computes the same steps under any world size.
    A last batch too small to give every rank two images is dropped (BatchNorm needs two).
    """
    return [i for i in range(0, n, batch_size) if n - i >= 2 * world]


def grad_record_steps(steps: int, points: int) -> set[int]:
    if points <= 0 or steps <= 0:
        return set()
    return {round(i * (steps - 1) / max(points - 1, 1)) for i in range(min(points, steps))}


def _autocast(device: torch.device, amp: str):
    """bf16 autocast for ``amp`` as resolved (``autotune.resolve``); ``auto`` here means CUDA
    from compute capability 8 (below it bf16 has no tensor cores and is slower than fp32)."""
    on = amp == "bf16" or (amp == "auto" and device.type == "cuda" and torch.cuda.get_device_capability(device)[0] >= 8)
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=on)


class FP32Head(nn.Linear):
    """The classifier head in fp32 under autocast, so the logits (and argmax ties) are not bf16."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, enabled=False):
            return F.linear(x.float(), self.weight, self.bias)


def fp32_head(model: nn.Module) -> nn.Module:
    """Make the model's last Linear an ``FP32Head`` (same parameters and state-dict names)."""
    head = [m for m in model.modules() if type(m) is nn.Linear][-1]
    head.__class__ = FP32Head
    return model


def _channels_last(device: torch.device, setting: str) -> bool:
    return setting == "on" or (setting == "auto" and device.type == "cuda")


def progress_bar(desc: str, total: int, enabled: bool = True) -> tqdm:
    """A step bar in a terminal only (``disable=None``: off where stderr is no TTY, e.g.
    papermill, CI, log files, which get the one line per epoch instead)."""
    return tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True, disable=None if enabled else True)


def load_batch(x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor, *, device: torch.device,
               augment_with: torch.Generator | None = None, rank: int = 0, world: int = 1,
               channels_last: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """The model's inputs for the global batch ``idx`` of the uint8 set (x, y): gathered,
    augmented (when given a generator), this rank's share, normalised."""
    idx = idx.to(x.device)
    # index_select, not x[idx]: ~5x faster on a CPU for whole-image rows
    xb = x.index_select(0, idx).to(device, non_blocking=True)
    yb = y.index_select(0, idx.to(y.device)).to(device, non_blocking=True)
    if augment_with is not None:  # drawn for the global batch, so every world size sees the same crops
        xb = data_mod.augment(xb, augment_with)
    if world > 1:  # this rank's share of the global batch
        xb, yb = xb[rank::world], yb[rank::world]
    xb = data_mod.normalize(xb)
    if channels_last:
        xb = xb.contiguous(memory_format=torch.channels_last)
    return xb, yb


def train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler,
    x: torch.Tensor,
    y: torch.Tensor,
    cfg: RunConfig,
    *,
    seed: int,
    epoch: int,
    device: torch.device,
    progress: tqdm,
    on_grads: Callable[[int], None] | None = None,
) -> dict[str, float]:
    """One pass over (x, y); returns train_loss, train_acc, lr and images seen (all ranks)."""
    rank, world = dist_info()
    order = epoch_order(len(x), seed, epoch).to(x.device)  # once per epoch: no per-step copy (and sync)
    aug_gen = epoch_generator(seed, epoch + 500_009, device)
    cl = _channels_last(device, cfg.channels_last)
    # Check for divergence every step on the CPU (free) and every 25 on a GPU (a sync).
    check_every = 1 if device.type == "cpu" else 25
    starts = batch_starts(len(order), cfg.batch_size, world)
    record = grad_record_steps(len(starts), cfg.grad_points)
    loss_sum = torch.zeros((), device=device, dtype=torch.float64)
    correct = torch.zeros((), device=device, dtype=torch.int64)
    seen = 0
    pending: list[torch.Tensor] = []
    lr = optimizer.param_groups[0]["lr"]
    model.train()
    for step, start in enumerate(starts):
        xb, yb = load_batch(x, y, order[start : start + cfg.batch_size], device=device,
                            augment_with=aug_gen if cfg.augment else None, rank=rank, world=world,
                            channels_last=cl)
        with _autocast(device, cfg.amp):
            out = model(xb)
            loss = F.cross_entropy(out.float(), yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if on_grads is not None and step in record:
            on_grads(step)
        optimizer.step()
        scheduler.step()
        n = len(yb)
        loss_sum += loss.detach().double() * n
        correct += (out.detach().argmax(1) == yb).sum()
        seen += n
        pending.append(loss.detach())
        if len(pending) >= check_every or step == len(starts) - 1:
            _check_finite(pending, epoch, step - len(pending) + 1)
            pending.clear()
        progress.update(1)
    totals = torch.stack([loss_sum, correct.double(), torch.tensor(float(seen), device=device, dtype=torch.float64)])
    totals = _all_reduce(totals)
    return {
        "train_loss": float(totals[0] / totals[2]),
        "train_acc": float(totals[1] / totals[2]),
        "lr": lr,
        "images": int(totals[2]),
    }


def _check_finite(losses: list[torch.Tensor], epoch: int, first_step: int) -> None:
    values = torch.stack(losses)
    # Under DDP every rank must stop at the same step: a rank that stopped alone would leave
    # the others waiting forever in the next gradient all-reduce. So the flags are summed.
    bad = _all_reduce((~torch.isfinite(values)).to(torch.int32))
    if bool(bad.any()):
        i = int(bad.nonzero()[0])
        loss = float(values[i])
        raise Diverged(epoch, first_step + i, loss if not math.isfinite(loss) else float("nan"))


def _all_reduce(t: torch.Tensor) -> torch.Tensor:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        t = t.clone()
        dist.all_reduce(t)
    return t


@torch.no_grad()
def evaluate(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_size: int, device: torch.device,
    amp: str = "off", channels_last: str = "off",
) -> dict[str, Any]:
    """Loss, accuracy, the confusion matrix (rows: true class, columns: predicted) and every
    image's predicted class in test-set order (uint8 tensor on the CPU, gathered from all ranks)."""
    rank, world = dist_info()
    model.eval()
    cl = _channels_last(device, channels_last)
    loss_sum = torch.zeros((), device=device, dtype=torch.float64)
    confusion = torch.zeros(NUM_CLASSES * NUM_CLASSES, device=device, dtype=torch.int64)
    idx_all = torch.arange(rank, len(x), world, device=x.device)  # each rank scores its own shard
    preds = []
    for start in range(0, len(idx_all), batch_size):
        idx = idx_all[start : start + batch_size]
        xb = data_mod.normalize(x[idx.to(x.device)].to(device, non_blocking=True))
        yb = y[idx.to(y.device)].to(device, non_blocking=True)
        if cl:
            xb = xb.contiguous(memory_format=torch.channels_last)
        with _autocast(device, amp):
            out = model(xb).float()
        loss_sum += F.cross_entropy(out, yb, reduction="sum").double()
        pred = out.argmax(1)
        preds.append(pred)
        confusion += torch.bincount(yb * NUM_CLASSES + pred, minlength=NUM_CLASSES**2)
    predictions = _gather_shards(torch.cat(preds) if preds else confusion.new_zeros(0), len(x))
    confusion = _all_reduce(confusion)
    loss_sum = _all_reduce(loss_sum)
    n = int(confusion.sum())
    return {
        "test_loss": float(loss_sum) / max(n, 1),
        "test_acc": float(confusion.view(NUM_CLASSES, NUM_CLASSES).diag().sum()) / max(n, 1),
        "confusion": confusion.view(NUM_CLASSES, NUM_CLASSES).cpu(),
        "predictions": predictions.to(torch.uint8).cpu(),
    }


def _gather_shards(local: torch.Tensor, n: int) -> torch.Tensor:
    """Every rank's predictions for its interleaved shard (rank r holds images r, r+world, ...)
    put back into test-set order (on every rank; rank 0 is the one that writes them)."""
    import torch.distributed as dist

    rank, world = dist_info()
    if world == 1:
        return local
    size = -(-n // world)  # the largest shard; shorter ones are padded for all_gather
    padded = local.new_zeros(size, dtype=torch.int64)
    padded[: len(local)] = local
    parts = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded)
    out = local.new_empty(n, dtype=torch.int64)
    for r, part in enumerate(parts):
        out[r::world] = part[: len(range(r, n, world))]
    return out


# ---------------------------------------------------------------- one run


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _seed_everything(seed: int) -> None:
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def prepare_data(cfg: RunConfig, data: data_mod.CifarData | None = None) -> tuple[data_mod.CifarData, dict]:
    """The (cached) data set and the class-balanced subsets this config asks for."""
    if data is None:
        data = data_mod.load_cifar10(cfg.data or None, download=cfg.download)
    x_tr, y_tr = data_mod.balanced_subset(data.x_train, data.y_train, cfg.train_size or 0, seed=SUBSET_SEED)
    x_te, y_te = data_mod.balanced_subset(data.x_test, data.y_test, cfg.test_size or 0, seed=SUBSET_SEED)
    return data, {"x_train": x_tr, "y_train": y_tr, "x_test": x_te, "y_test": y_te}


def check_run_dir(cfg: RunConfig, seed: int) -> str:
    """'new', 'resume', 'completed' or 'diverged'; a different config there is refused."""
    run_dir = cfg.run_dir(seed)
    cfg_path = run_dir / runio.CONFIG
    if not cfg_path.exists():
        return "new"
    old = yaml.safe_load(cfg_path.read_text(encoding="utf-8")) or {}
    new = result_fields(dataclasses.replace(cfg, seed=seed))
    old_r = result_fields(old)
    if old_r != new:
        diff = ", ".join(f"{k}: {old_r.get(k)!r} -> {new[k]!r}" for k in new if old_r.get(k) != new[k])
        raise RunConflict(
            f"{run_dir}: holds a run of another config ({diff}); choose another out_dir or exp_name, "
            f"or delete that directory to start over"
        )
    status = (runio.read_json(run_dir / runio.RUN) if (run_dir / runio.RUN).exists() else {}).get("status")
    return status if status in ("completed", "diverged") else "resume"


def check_not_busy(run_dir: Path) -> None:
    """Refuse a run directory that another live process is writing (its lock is held)."""
    holder = runio.busy_holder(run_dir / runio.LOCK)
    if holder is not None:
        raise RunBusy(f"{run_dir}: another process is training this run ({holder}); "
                      f"wait for it to finish, or choose another out_dir")


def train_run(
    cfg: RunConfig,
    seed: int | None = None,
    *,
    data: data_mod.CifarData | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train one seed of ``cfg`` into ``cfg.run_dir(seed)``; returns its run.json record.

    The run directory is locked while it is written (``runio.file_lock``), so two
    processes never write one run; the second gets ``RunBusy``.
    """
    seed = cfg.seed if seed is None else seed
    run_dir = cfg.run_dir(seed)
    if dist_info()[0] != 0:  # only rank 0 writes
        return _train_run(cfg, seed, data=data, progress=progress, log=log)
    try:
        with runio.file_lock(run_dir / runio.LOCK):
            return _train_run(cfg, seed, data=data, progress=progress, log=log)
    except runio.Busy as err:
        raise RunBusy(f"{run_dir}: another process is training this run ({err.holders}); "
                      f"wait for it to finish, or choose another out_dir") from None


def _train_run(
    cfg: RunConfig,
    seed: int,
    *,
    data: data_mod.CifarData | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
    fresh: bool = False,
) -> dict[str, Any]:
    cfg = dataclasses.replace(cfg, seed=seed)
    run_dir = cfg.run_dir(seed)
    rank, world = dist_info()
    writer = rank == 0
    if not writer:  # one line per epoch, not one per rank
        log = lambda s: None  # noqa: E731
    state = check_run_dir(cfg, seed)
    if state in ("completed", "diverged"):
        record = runio.read_json(run_dir / runio.RUN)
        log(f"{cfg.exp_name} seed {seed}: already {state} in {run_dir}; nothing to train")
        return record

    device = select_device(cfg.device)
    if world > 1 and device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    configure_backend(device)
    before = runio.read_json(run_dir / runio.RUN) if state == "resume" and (run_dir / runio.RUN).exists() else {}
    precision = autotune.for_run(cfg, device, before.get("precision"), run_dir, world, log)
    run_cfg = dataclasses.replace(cfg, amp=precision["amp"], channels_last=precision["channels_last"])
    t_data = time.perf_counter()
    data, sets = prepare_data(cfg, data)
    t_data = time.perf_counter() - t_data
    on_device = device.type == "cuda"  # keep the whole uint8 data set resident on the GPU
    for k in sets:
        sets[k] = sets[k].to(device) if on_device else sets[k]

    _seed_everything(seed)
    model = fp32_head(create_model(cfg.model, num_classes=NUM_CLASSES))
    n_params = count_parameters(model)
    model.to(device)
    if _channels_last(device, run_cfg.channels_last):
        model.to(memory_format=torch.channels_last)
    layers = weight_layers(model)
    optimizer = make_optimizer(cfg, model)
    if cfg.batch_size % world:
        raise ConfigError(f"field 'batch_size' ({cfg.batch_size}) must be a multiple of the world size ({world}): "
                          f"it is the global batch, shared evenly by the ranks")
    steps_per_epoch = len(batch_starts(len(sets["x_train"]), cfg.batch_size, world))
    scheduler = make_scheduler(cfg, optimizer, cfg.epochs * steps_per_epoch)
    rows: list[dict[str, Any]] = []
    grad_rows: list[dict[str, Any]] = []
    start_epoch = 1
    ckpt_path = run_dir / runio.CHECKPOINT
    if state == "resume" and not fresh and (ckpt_path.exists() or (run_dir / runio.METRICS).exists()):
        try:
            ckpt = _restore(ckpt_path, device, model, optimizer, scheduler)
        except Exception as err:  # noqa: BLE001 - any unreadable checkpoint is set aside, not fatal
            if writer:
                aside = runio.set_aside(run_dir)
                log(f"warning: {ckpt_path} is {runio.unusable_reason(err)}; moved it and the epoch files written with it "
                    f"to {aside}/ and restarting {cfg.exp_name} seed {seed} from epoch 1")
            # the model may hold part of the checkpoint: build everything afresh
            return _train_run(cfg, seed, data=data, progress=progress, log=log, fresh=True)
        rows, grad_rows = ckpt["rows"], ckpt["grad_rows"]
        start_epoch = ckpt["epoch"] + 1
        if writer:  # the checkpoint is written first, so its rows are the truth
            runio.write_csv(run_dir / runio.METRICS, rows, runio.METRIC_COLUMNS)
        log(f"{cfg.exp_name} seed {seed}: resuming after epoch {ckpt['epoch']} from {run_dir}")
    ddp_model = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        ddp_model = DDP(distributed.sync_batchnorm(model, device), device_ids=[device.index] if device.type == "cuda" else None)
    train_model = torch.compile(ddp_model) if cfg.compile else ddp_model

    record: dict[str, Any] = {
        "exp_name": cfg.exp_name,
        "seed": seed,
        "model": cfg.model,
        "profile": cfg.profile,
        "status": "running",
        "message": "",
        "epochs": cfg.epochs,
        "epochs_done": len(rows),
        "params": n_params,
        "train_size": len(sets["x_train"]),
        "test_size": len(sets["x_test"]),
        "world_size": world,
        "data": data.info(),
        "environment": environment(device),
        "started": _now(),
        "data_seconds": round(t_data, 3),
        "precision": precision,  # the amp / channels_last this run trains in, and why
        # epochs that include torch.compile's delay (the first of each process), left out of images_per_s
        "compile_epochs": before.get("compile_epochs", []) + ([start_epoch] if cfg.compile else []),
    }
    if writer:
        if state == "new":
            runio.atomic_write_text(run_dir / runio.CONFIG, dump_yaml(cfg))
        runio.write_json(run_dir / runio.RUN, record)

    def on_grads(step: int) -> None:
        record_grad_norms(layers, grad_rows, epoch, step)

    confusion = None
    epoch = start_epoch
    try:
        for epoch in range(start_epoch, cfg.epochs + 1):
            bar = progress_bar(f"{cfg.exp_name} s{seed} {epoch}/{cfg.epochs}", steps_per_epoch, progress and writer)
            t0 = time.perf_counter()
            try:
                tr = train_epoch(train_model, optimizer, scheduler, sets["x_train"], sets["y_train"], run_cfg,
                                 seed=seed, epoch=epoch, device=device, progress=bar,
                                 on_grads=on_grads if cfg.grad_points else None)
            finally:
                bar.close()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            t_train = time.perf_counter() - t0
            distributed.sync_buffers(model, world)  # every rank scores with rank 0's BatchNorm statistics
            ev = evaluate(model, sets["x_test"], sets["y_test"], batch_size=max(cfg.batch_size, 256),
                          device=device, amp=run_cfg.amp, channels_last=run_cfg.channels_last)
            confusion, predictions = ev.pop("confusion"), ev.pop("predictions")
            row = {"epoch": epoch, "train_loss": tr["train_loss"], "train_acc": tr["train_acc"],
                   "test_loss": ev["test_loss"], "test_acc": ev["test_acc"], "lr": tr["lr"],
                   "seconds": round(time.perf_counter() - t0, 3),
                   "images_per_s": round(tr["images"] / t_train, 1)}
            rows.append(row)
            if writer:
                _save_epoch(run_dir, model, optimizer, scheduler, epoch, rows, grad_rows, confusion,
                            predictions, sets["y_test"])
                record.update(epochs_done=epoch, final=_final(row))
                runio.write_json(run_dir / runio.RUN, record)
            log(f"{cfg.exp_name} seed {seed} epoch {epoch}/{cfg.epochs}: "
                f"train loss {row['train_loss']:.4f} acc {row['train_acc']:.2%} | "
                f"test loss {row['test_loss']:.4f} acc {row['test_acc']:.2%} | "
                f"{row['seconds']:.1f} s, {row['images_per_s']:.0f} img/s")
    except Diverged as err:
        record.update(status="diverged", message=f"diverged: {err}", diverged_at={"epoch": err.epoch, "step": err.step},
                      finished=_now())
        if writer:
            runio.write_json(run_dir / runio.RUN, record)
        log(f"{cfg.exp_name} seed {seed}: {record['message']}; the run directory keeps epochs 1-{len(rows)}")
        return record
    except KeyboardInterrupt:
        done = record["epochs_done"]
        record.update(status="interrupted", finished=_now(),
                      message=f"interrupted after epoch {done} of {cfg.epochs}; run it again to resume")
        _write_record(run_dir, record, writer)
        raise RunInterrupted(f"{run_dir}: stopped after epoch {done} of {cfg.epochs}; "
                             f"run the same command again to resume") from None
    except BaseException as err:
        record.update(status="failed", message=f"{type(err).__name__}: {err}", finished=_now())
        _write_record(run_dir, record, writer)
        raise

    record.update(status="completed", finished=_now())
    if rows:
        record["final"] = _final(rows[-1])
        record["train_seconds"] = round(sum(r["seconds"] for r in rows), 3)
        timed = [r for r in rows if r["epoch"] not in record["compile_epochs"]] or rows
        record["images_per_s"] = round(sum(r["images_per_s"] for r in timed) / len(timed), 1)
    if writer:
        runio.write_json(run_dir / runio.RUN, record)
    return record


def _write_record(run_dir: Path, record: dict[str, Any], writer: bool) -> None:
    """run.json after a failure; a failure to write it (the disk is full) must not hide the first."""
    if writer:
        try:
            runio.write_json(run_dir / runio.RUN, record)
        except OSError:
            pass


def _restore(path: Path, device: torch.device, model, optimizer, scheduler) -> dict[str, Any]:
    """The checkpoint at ``path`` applied to the model, optimizer and scheduler; raises if it
    is missing, truncated, garbage or does not fit them."""
    # on the CPU: load_state_dict moves every tensor to its parameter's device and keeps
    # Adam's step counters on the CPU (loaded onto a GPU they cost two syncs per parameter per step)
    ckpt = runio.read_checkpoint(path, "cpu")
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    scheduler.load_state_dict(ckpt["scheduler"])
    return ckpt


def _final(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in ("epoch", "train_loss", "train_acc", "test_loss", "test_acc")}


def _save_epoch(run_dir: Path, model, optimizer, scheduler, epoch, rows, grad_rows, confusion,
                predictions=None, labels=None) -> None:
    # The epoch's predictions before its checkpoint: a kill between the two leaves the
    # checkpoint of the epoch before, so the resumed run recomputes (and rewrites) them.
    if predictions is not None:
        runio.write_npy(run_dir / runio.PREDICTIONS, predictions.numpy())
        runio.write_npy(run_dir / runio.LABELS, labels.cpu().to(torch.uint8).numpy())
    # Checkpoint next: it carries the metric rows, so a kill between the writes below
    # is repaired on resume by rewriting them from the checkpoint.
    runio.atomic_torch_save(run_dir / runio.CHECKPOINT, {
        "epoch": epoch, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(), "rows": rows, "grad_rows": grad_rows,
    })
    runio.write_csv(run_dir / runio.METRICS, rows, runio.METRIC_COLUMNS)
    if grad_rows:
        runio.write_csv(run_dir / runio.GRAD_NORMS, grad_rows, GRAD_COLUMNS)
    if confusion is not None:
        header = ["true"] + list(data_mod.CLASSES)
        table = [[data_mod.CLASSES[i]] + confusion[i].tolist() for i in range(NUM_CLASSES)]
        runio.atomic_write_text(run_dir / runio.CONFUSION,
                                ",".join(header) + "\n" + "".join(",".join(map(str, r)) + "\n" for r in table))


def train_variant(cfg: RunConfig, *, data: data_mod.CifarData | None = None, progress: bool = True,
                  log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Every seed of a variant, sharing one loaded data set; returns their run.json records."""
    for seed in cfg.seed_list():  # refuse a conflicting or busy directory before any training
        check_run_dir(cfg, seed)
        if dist_info()[0] == 0:  # the other ranks would see rank 0's own lock
            check_not_busy(cfg.run_dir(seed))
    if data is None:
        data = data_mod.load_cifar10(cfg.data or None, download=cfg.download)
    return [train_run(cfg, seed, data=data, progress=progress, log=log) for seed in cfg.seed_list()]
