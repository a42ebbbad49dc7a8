"""One optimizer step, and the optimizer and schedule it steps with: what training, the
benchmark, the autotuner and the memory measurement all take."""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import RunConfig
from .precision import autocast


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


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, xb: torch.Tensor, yb: torch.Tensor,
               amp: str = "off", before_step: Callable[[], None] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimizer step on the batch (xb, yb): forward in ``amp`` (``_autocast``), cross-entropy
    in fp32, backward, ``before_step`` (the gradients are there, the weights not yet changed),
    step. Returns the logits and the loss, detached. Training, the benchmark, the autotuner and
    the memory measurement all take this step."""
    with autocast(xb.device, amp):
        out = model(xb)
        loss = F.cross_entropy(out.float(), yb)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if before_step is not None:
        before_step()
    optimizer.step()
    return out.detach(), loss.detach()

