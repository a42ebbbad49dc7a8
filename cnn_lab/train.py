"""One training loop for every model.

``train_variant(cfg)`` trains a variant once per seed; ``train_run(cfg, seed)`` trains one
seed into its run directory (see ``runio``), resuming where an earlier attempt stopped:
``claim`` the directory (``rundir``), ``build`` model, optimizer and schedule, ``resume`` from its
checkpoint, ``wrap`` for DDP / compile, then save and log each epoch ``fit`` yields, with
``settle`` marking how the run ended. Every random draw comes from generators seeded by
(seed, epoch), so an epoch computes the same thing whether the run went straight through or
was resumed before it.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import math
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterator, NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm  # plain tqdm: tqdm.auto misbehaves under papermill

from . import autotune, distributed, precision, runio
from . import data as data_mod
from .batches import batch_starts, epoch_generator, epoch_order, load_batch
from .config import ConfigError, RunConfig, dump_yaml, select_device
from .distributed import all_reduce, dist_info
from .models import count_parameters, create_model
from .precision import autocast, channels_last_on, fp32_head
from .rundir import claim
from .step import make_optimizer, make_scheduler, train_step

NUM_CLASSES = 10
SUBSET_SEED = 0  # every variant and seed trains on the same subset, so runs compare like for like


class Diverged(RuntimeError):
    def __init__(self, epoch: int, step: int, loss: float):
        super().__init__(f"loss became {loss} at epoch {epoch}, step {step}")
        self.epoch, self.step, self.loss = epoch, step, loss


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) stopped a run; ``str(err)`` names the run directory and how to resume."""


# ---------------------------------------------------------------- pieces of the loop


def weight_layers(model: nn.Module) -> list[tuple[str, torch.nn.Parameter]]:
    """Weights of convolutions and linear layers, input to output (registration order)."""
    return [(n, p) for n, p in model.named_parameters() if p.dim() > 1 and n.endswith("weight")]


def record_grad_norms(layers: list[tuple[str, torch.nn.Parameter]], rows: list[dict[str, Any]],
                      epoch: int, step: int) -> None:
    """Append one row per weight layer: its gradient norm now, its size and its weight norm
    (one fused kernel each), so that a per-parameter measure can be formed: the RMS
    gradient grad_norm / sqrt(numel), or the relative gradient grad_norm / weight_norm."""
    params = [p for _, p in layers]
    norms = torch._foreach_norm([p.grad for p in params])
    wnorms = torch._foreach_norm([p.detach() for p in params])
    values = torch.stack([*norms, *wnorms]).tolist()  # one read from the device, not one per norm
    for i, (name, p) in enumerate(layers):
        rows.append({"epoch": epoch, "step": step, "layer_index": i, "layer": name, "grad_norm": values[i],
                     "numel": p.numel(), "weight_norm": values[len(layers) + i]})


def grad_record_steps(steps: int, points: int) -> set[int]:
    if points <= 0 or steps <= 0:
        return set()
    return {round(i * (steps - 1) / max(points - 1, 1)) for i in range(min(points, steps))}


# Makes an epoch's step bar from (the run's config, the epoch, its steps): an object with
# update(1) after each step and close() when the epoch's training ends (the notebook's live view).
ProgressHook = Callable[[RunConfig, int, int], Any]


def progress_bar(desc: str, total: int, enabled: bool = True) -> tqdm:
    """A step bar in a terminal only (``disable=None``: off where stderr is no TTY, e.g.
    papermill, CI, log files, which get the one line per epoch instead)."""
    return tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True, disable=None if enabled else True)


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
    cl = channels_last_on(device, cfg.channels_last)
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
        out, loss = train_step(model, optimizer, xb, yb, cfg.amp,
                               before_step=(lambda: on_grads(step)) if on_grads and step in record else None)
        scheduler.step()
        n = len(yb)
        loss_sum += loss.double() * n
        correct += (out.argmax(1) == yb).sum()
        seen += n
        pending.append(loss)
        if len(pending) >= check_every or step == len(starts) - 1:
            _check_finite(pending, epoch, step - len(pending) + 1)
            pending.clear()
        progress.update(1)
    totals = torch.stack([loss_sum, correct.double(), torch.tensor(float(seen), device=device, dtype=torch.float64)])
    totals = all_reduce(totals)
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
    bad = all_reduce((~torch.isfinite(values)).to(torch.int32))
    if bool(bad.any()):
        i = int(bad.nonzero()[0])
        loss = float(values[i])
        raise Diverged(epoch, first_step + i, loss if not math.isfinite(loss) else float("nan"))


def add_to_confusion(confusion: torch.Tensor, labels: torch.Tensor, preds: torch.Tensor) -> None:
    """Add one to ``confusion`` (flat, NUM_CLASSES² counts, row-major: true class, predicted)
    for each (label, prediction) pair. Not ``torch.bincount``, whose output size is read from
    the device (two host syncs per batch on a GPU)."""
    confusion.index_add_(0, labels * NUM_CLASSES + preds, torch.ones_like(preds, dtype=confusion.dtype))


@torch.no_grad()
def evaluate(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_size: int, device: torch.device,
    amp: str = "off", channels_last: str = "off",
) -> dict[str, Any]:
    """Loss, accuracy, the confusion matrix (rows: true class, columns: predicted) and every
    image's predicted class in test-set order (uint8 tensor on the CPU, gathered from all ranks)."""
    rank, world = dist_info()
    model.eval()
    cl = channels_last_on(device, channels_last)
    loss_sum = torch.zeros((), device=device, dtype=torch.float64)
    confusion = torch.zeros(NUM_CLASSES * NUM_CLASSES, device=device, dtype=torch.int64)
    idx_all = torch.arange(rank, len(x), world, device=x.device)  # each rank scores its own shard
    preds = []
    for start in range(0, len(idx_all), batch_size):
        idx = idx_all[start : start + batch_size]
        xb, yb = load_batch(x, y, idx, device=device, channels_last=cl)  # no crops: the images as they are
        with autocast(device, amp):
            out = model(xb).float()
        loss_sum += F.cross_entropy(out, yb, reduction="sum").double()
        pred = out.argmax(1)
        preds.append(pred)
        add_to_confusion(confusion, yb, pred)
    predictions = distributed.gather_shards(torch.cat(preds) if preds else confusion.new_zeros(0), len(x))
    confusion = all_reduce(confusion)
    loss_sum = all_reduce(loss_sum)
    n = int(confusion.sum())
    return {
        "test_loss": float(loss_sum) / max(n, 1),
        "test_acc": float(confusion.view(NUM_CLASSES, NUM_CLASSES).diag().sum()) / max(n, 1),
        "confusion": confusion.view(NUM_CLASSES, NUM_CLASSES).cpu(),
        "predictions": predictions.to(torch.uint8).cpu(),
    }


# ---------------------------------------------------------------- one run: the pieces


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _seed_everything(seed: int) -> None:
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def load_data(cfg: RunConfig) -> data_mod.CifarData:
    """The data set ``cfg`` names; under torchrun the first process on each machine decodes it
    into the cache while the others wait, then read that."""
    return distributed.local_rank0_first(lambda: data_mod.load_cifar10(cfg.data or None, download=cfg.download))


def prepare_data(cfg: RunConfig, data: data_mod.CifarData | None = None, device: torch.device | None = None,
                 ) -> tuple[data_mod.CifarData, dict[str, torch.Tensor], float]:
    """The (cached) data set, the class-balanced subsets this config asks for (on ``device``
    where it is a GPU: the whole uint8 set stays resident there), and the seconds it took."""
    t0 = time.perf_counter()
    if data is None:
        data = load_data(cfg)
    x_tr, y_tr = data_mod.balanced_subset(data.x_train, data.y_train, cfg.train_size or 0, seed=SUBSET_SEED)
    x_te, y_te = data_mod.balanced_subset(data.x_test, data.y_test, cfg.test_size or 0, seed=SUBSET_SEED)
    seconds = time.perf_counter() - t0
    sets = {"x_train": x_tr, "y_train": y_tr, "x_test": x_te, "y_test": y_te}
    if device is not None and device.type == "cuda":
        sets = {k: v.to(device) for k, v in sets.items()}
    return data, sets, seconds


def rank_device(name: str, world: int) -> torch.device:
    """This process's device (``select_device``; under torchrun on GPUs, its own GPU), set up."""
    device = select_device(name)
    if world > 1 and device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    precision.configure_backend(device)
    return device


@dataclasses.dataclass
class Parts:
    """What one run trains: the bare model (state dict, evaluation), optimizer and scheduler."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    steps_per_epoch: int
    params: int
    layers: list[tuple[str, torch.nn.Parameter]]  # weight_layers(model): whose gradient norms are recorded

    def checkpoint(self, rows: list[dict[str, Any]], grad_rows: list[dict[str, Any]]) -> dict[str, Any]:
        return {"epoch": len(rows), "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "rows": rows, "grad_rows": grad_rows}


def build(cfg: RunConfig, device: torch.device, world: int, n_train: int) -> Parts:
    """A fresh model seeded by ``cfg.seed`` (in ``cfg``'s resolved channels_last), its optimizer,
    and a scheduler over every step of the run (``n_train`` images an epoch, ``world`` ranks)."""
    if cfg.batch_size % world or (world > 1 and cfg.batch_size < 2 * world):
        raise ConfigError(f"field 'batch_size' ({cfg.batch_size}) must be a multiple of the world size ({world}), "
                          f"at least twice it: it is the global batch, shared evenly by the ranks, and BatchNorm "
                          f"needs two images on each")
    _seed_everything(cfg.seed)
    model = fp32_head(create_model(cfg.model, num_classes=NUM_CLASSES))
    params = count_parameters(model)
    model.to(device)
    if channels_last_on(device, cfg.channels_last):
        model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(cfg, model)
    steps = len(batch_starts(n_train, cfg.batch_size, world))
    return Parts(model, optimizer, make_scheduler(cfg, optimizer, cfg.epochs * steps), steps, params,
                 weight_layers(model))


def restore(parts: Parts, run_dir: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The checkpoint in ``run_dir`` applied to ``parts``; its metric and gradient rows. Raises if
    it is missing, truncated, garbage or does not fit them."""
    # on the CPU: load_state_dict moves every tensor to its parameter's device and keeps
    # Adam's step counters on the CPU (loaded onto a GPU they cost two syncs per parameter per step)
    ckpt = runio.read_checkpoint(run_dir / runio.CHECKPOINT, "cpu")
    parts.model.load_state_dict(ckpt["model"])
    parts.optimizer.load_state_dict(ckpt["optimizer"])
    parts.scheduler.load_state_dict(ckpt["scheduler"])
    return ckpt["rows"], ckpt["grad_rows"]


def resume(parts: Parts, cfg: RunConfig, state: str, rebuild: Callable[[], Parts], writer: bool,
           log: Callable[[str], None]) -> tuple[Parts, list[dict[str, Any]], list[dict[str, Any]]]:
    """(parts, rows, grad rows) to go on from: restored where the run has epochs to resume, else
    as built. A checkpoint that cannot be restored is set aside with the epoch files written
    with it, and the run restarts from epoch 1 on ``rebuild()``'s parts."""
    run_dir = cfg.run_dir(cfg.seed)
    ckpt = run_dir / runio.CHECKPOINT
    if state != "resume" or not (ckpt.exists() or (run_dir / runio.METRICS).exists()):
        return parts, [], []
    try:
        rows, grad_rows = restore(parts, run_dir)
    except Exception as err:  # noqa: BLE001 - any unreadable checkpoint is set aside, not fatal
        if writer:
            aside = runio.set_aside(run_dir)
            log(f"warning: {ckpt} is {runio.unusable_reason(err)}; moved it and the epoch files written with it "
                f"to {aside}/ and restarting {cfg.exp_name} seed {cfg.seed} from epoch 1")
        return rebuild(), [], []  # the model may hold part of the checkpoint
    if writer:  # the checkpoint is written first, so its rows are the truth
        runio.write_csv(run_dir / runio.METRICS, rows, runio.METRIC_COLUMNS)
    log(f"{cfg.exp_name} seed {cfg.seed}: resuming after epoch {len(rows)} from {run_dir}")
    return parts, rows, grad_rows


def moved_device(cfg: RunConfig, before: runio.RunRecord, device: torch.device, log: Callable[[str], None]) -> bool:
    """Whether a run resumes on another type of device than it ran on (``before``: its
    run.json so far). Its numeric mode is then chosen again for this device (bf16 kept from a
    GPU would be emulated on a CPU without it). With augmentation on, a warning: the crops and
    flips are drawn by a generator on the device, and CUDA's and the CPU's draw differently,
    so the resumed epochs are not those an uninterrupted run would have trained."""
    old = before.environment.get("device")
    if not old or torch.device(old).type == device.type:
        return False
    note = f"{cfg.exp_name} seed {cfg.seed}: resumed on {device.type}, started on {torch.device(old).type}"
    if cfg.augment:
        log(f"warning: {note}: the resumed epochs draw other crops and flips than the first device would have "
            f"(each device type has its own random generator), so this run is not the one an uninterrupted "
            f"run gives; resume on {torch.device(old).type} (--set device=...) to keep it exact")
    log(f"{note}: its amp / channels_last are chosen again for {device.type}")
    return True


def wrap(model: nn.Module, device: torch.device, world: int, compile_: bool) -> nn.Module:
    """The model as trained: DistributedDataParallel over the ranks, then ``torch.compile`` if asked."""
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        model = DDP(distributed.sync_batchnorm(model), device_ids=[device.index] if device.type == "cuda" else None)
    return torch.compile(model) if compile_ else model


class Epoch(NamedTuple):
    row: dict[str, Any]  # its metrics.csv row
    confusion: torch.Tensor  # of the evaluation (10x10, rows: true class)
    predictions: torch.Tensor  # every test image's predicted class (uint8, test-set order)


def fit(parts: Parts, train_model: nn.Module, sets: dict[str, torch.Tensor], cfg: RunConfig, *, start_epoch: int,
        device: torch.device, grad_rows: list[dict[str, Any]], progress: bool | ProgressHook = False) -> Iterator[Epoch]:
    """Train epochs ``start_epoch`` .. ``cfg.epochs`` of ``train_model`` (``parts.model`` as wrapped),
    evaluating ``parts.model`` after each; yields each epoch as it finishes. Gradient norms are
    appended to ``grad_rows``; ``cfg`` holds the resolved amp and channels_last. ``progress``: the
    terminal step bar (True), none (False), or a ``ProgressHook`` that makes each epoch's bar."""
    world = dist_info()[1]
    for epoch in range(start_epoch, cfg.epochs + 1):
        bar = (progress(cfg, epoch, parts.steps_per_epoch) if callable(progress) else
               progress_bar(f"{cfg.exp_name} s{cfg.seed} {epoch}/{cfg.epochs}", parts.steps_per_epoch, progress))
        on_grads = (lambda step, e=epoch: record_grad_norms(parts.layers, grad_rows, e, step)) if cfg.grad_points else None
        t0 = time.perf_counter()
        try:
            tr = train_epoch(train_model, parts.optimizer, parts.scheduler, sets["x_train"], sets["y_train"], cfg,
                             seed=cfg.seed, epoch=epoch, device=device, progress=bar, on_grads=on_grads)
        finally:
            bar.close()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t_train = time.perf_counter() - t0
        distributed.sync_buffers(parts.model, world)  # every rank scores with rank 0's BatchNorm statistics
        ev = evaluate(parts.model, sets["x_test"], sets["y_test"], batch_size=max(cfg.batch_size, 256),
                      device=device, amp=cfg.amp, channels_last=cfg.channels_last)
        row = {"epoch": epoch, "train_loss": tr["train_loss"], "train_acc": tr["train_acc"],
               "test_loss": ev["test_loss"], "test_acc": ev["test_acc"], "lr": tr["lr"],
               "seconds": round(time.perf_counter() - t0, 3), "images_per_s": round(tr["images"] / t_train, 1)}
        yield Epoch(row, ev["confusion"], ev["predictions"])


def epoch_line(cfg: RunConfig, row: dict[str, Any]) -> str:
    return (f"{cfg.exp_name} seed {cfg.seed} epoch {row['epoch']}/{cfg.epochs}: "
            f"train loss {row['train_loss']:.4f} acc {row['train_acc']:.2%} | "
            f"test loss {row['test_loss']:.4f} acc {row['test_acc']:.2%} | "
            f"{row['seconds']:.1f} s, {row['images_per_s']:.0f} img/s")


def start_record(cfg: RunConfig, parts: Parts, data: data_mod.CifarData, sets: dict[str, torch.Tensor], *,
                 device: torch.device, world: int, precision: dict[str, Any], data_seconds: float,
                 epochs_done: int, before: runio.RunRecord) -> runio.RunRecord:
    """run.json as a run (or its resumption, ``before`` being the record so far) starts."""
    return runio.RunRecord(
        exp_name=cfg.exp_name, seed=cfg.seed, model=cfg.model, profile=cfg.profile, status="running", message="",
        epochs=cfg.epochs, epochs_done=epochs_done, params=parts.params, train_size=len(sets["x_train"]),
        test_size=len(sets["x_test"]), world_size=world, data=data.info(), environment=runio.environment(device),
        started=_now(), data_seconds=round(data_seconds, 3), precision=precision,
        compile_epochs=before.compile_epochs + ([epochs_done + 1] if cfg.compile else []))


def _final(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in ("epoch", "train_loss", "train_acc", "test_loss", "test_acc")}


@contextlib.contextmanager
def settle(record: runio.RunRecord, rows: list[dict[str, Any]], run_dir: Path, writer: bool,
           log: Callable[[str], None]) -> Iterator[None]:
    """Mark run.json with how the epochs in the block ended: completed; diverged (kept, not
    raised: the caller returns the record); Ctrl-C: interrupted, raising ``RunInterrupted``;
    anything else: failed, raised again."""
    name = f"{record.exp_name} seed {record.seed}"
    try:
        yield
    except Diverged as err:
        record.status, record.message, record.finished = "diverged", f"diverged: {err}", _now()
        record.diverged_at = {"epoch": err.epoch, "step": err.step}
        if writer:
            runio.write_record(run_dir, record)
        log(f"{name}: {record.message}; the run directory keeps epochs 1-{len(rows)}")
        return
    except KeyboardInterrupt:
        done = record.epochs_done
        record.status, record.finished = "interrupted", _now()
        record.message = f"interrupted after epoch {done} of {record.epochs}; run it again to resume"
        _write_failed(run_dir, record, writer)
        raise RunInterrupted(f"{run_dir}: stopped after epoch {done} of {record.epochs}; "
                             f"run the same command again to resume") from None
    except BaseException as err:
        record.status, record.message, record.finished = "failed", f"{type(err).__name__}: {err}", _now()
        _write_failed(run_dir, record, writer)
        raise
    record.status, record.finished = "completed", _now()
    if rows:
        record.final = _final(rows[-1])
        record.train_seconds = round(sum(r["seconds"] for r in rows), 3)
        timed = [r for r in rows if r["epoch"] not in record.compile_epochs] or rows
        record.images_per_s = round(sum(r["images_per_s"] for r in timed) / len(timed), 1)
    if writer:
        runio.write_record(run_dir, record)


def _write_failed(run_dir: Path, record: runio.RunRecord, writer: bool) -> None:
    """run.json after a failure; a failure to write it (the disk is full) must not hide the first."""
    if writer:
        with contextlib.suppress(OSError):
            runio.write_record(run_dir, record)


# ---------------------------------------------------------------- one run, and every seed of a variant


def train_run(cfg: RunConfig, seed: int | None = None, *, data: data_mod.CifarData | None = None,
              progress: bool | ProgressHook = True, log: Callable[[str], None] = print, state: str | None = None,
              ) -> dict[str, Any]:
    """Train one seed of ``cfg`` into ``cfg.run_dir(seed)``, resuming where an earlier attempt
    stopped; returns its run.json record. The run directory is held (``claim``) while it is
    written, so two processes never write one run; ``state``: given by a caller that holds it."""
    cfg = dataclasses.replace(cfg, seed=cfg.seed if seed is None else seed)
    if state is None:
        with claim(cfg, [cfg.seed]) as (state,):
            return train_run(cfg, data=data, progress=progress, log=log, state=state)
    run_dir, (rank, world) = cfg.run_dir(cfg.seed), dist_info()
    writer = rank == 0  # only rank 0 writes, and logs one line per epoch
    log = log if writer else (lambda s: None)
    if state in ("completed", "diverged"):
        log(f"{cfg.exp_name} seed {cfg.seed}: already {state} in {run_dir}; nothing to train")
        return runio.read_json(run_dir / runio.RUN)

    device = rank_device(cfg.device, world)
    before = runio.read_record(run_dir) if state == "resume" else runio.RunRecord()
    moved = moved_device(cfg, before, device, log)
    mode = autotune.for_run(cfg, device, None if moved else before.precision, run_dir, world, log)
    run_cfg = dataclasses.replace(cfg, amp=mode["amp"], channels_last=mode["channels_last"])
    data, sets, data_seconds = prepare_data(cfg, data, device)
    rebuild = lambda: build(run_cfg, device, world, len(sets["x_train"]))  # noqa: E731
    parts, rows, grad_rows = resume(rebuild(), cfg, state, rebuild, writer, log)
    train_model = wrap(parts.model, device, world, cfg.compile)
    record = start_record(cfg, parts, data, sets, device=device, world=world, precision=mode,
                          data_seconds=data_seconds, epochs_done=len(rows), before=before)
    if writer:
        if state == "new":
            runio.atomic_write_text(run_dir / runio.CONFIG, dump_yaml(cfg))
        runio.write_record(run_dir, record)

    with settle(record, rows, run_dir, writer, log):
        for epoch in fit(parts, train_model, sets, run_cfg, start_epoch=len(rows) + 1, device=device,
                         grad_rows=grad_rows, progress=progress if writer else False):
            rows.append(epoch.row)
            record.epochs_done, record.final = len(rows), _final(epoch.row)
            if writer:
                runio.save_epoch(run_dir, parts.checkpoint(rows, grad_rows), epoch.confusion, epoch.predictions,
                                 sets["y_test"])
                runio.write_record(run_dir, record)
            log(epoch_line(cfg, epoch.row))
    return record.to_dict()


def train_variant(cfg: RunConfig, *, data: data_mod.CifarData | None = None, progress: bool | ProgressHook = True,
                  log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Every seed of a variant, sharing one loaded data set; returns their run.json records.
    Every seed's directory is claimed first, so a busy, conflicting or damaged one is refused before any training."""
    if data is None:
        data = load_data(cfg)
    seeds = cfg.seed_list()
    with claim(cfg, seeds) as states:
        return [train_run(cfg, s, data=data, progress=progress, log=log, state=st) for s, st in zip(seeds, states)]
