"""The numeric mode a model trains in: bf16 autocast, the channels_last layout, the fp32
classifier head, and the backend settings (cuDNN, TF32) every timed or trained model runs
under. What ``auto`` resolves to on the machine at hand is ``autotune``'s question.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F


def autocast(device: torch.device, amp: str):
    """bf16 autocast for ``amp`` as resolved (``resolve``); ``auto`` here means CUDA
    from compute capability 8 (below it bf16 has no tensor cores and is slower than fp32)."""
    on = amp == "bf16" or (amp == "auto" and device.type == "cuda" and torch.cuda.get_device_capability(device)[0] >= 8)
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=on)


# torch >= 2.9 sets TF32 per backend with fp32_precision; mixing that with allow_tf32 is an error
_NEW_TF32_API = hasattr(getattr(torch.backends.cudnn, "conv", None), "fp32_precision")


def configure_backend(device: torch.device) -> None:
    """The backend settings every timed or trained model runs under: training, the bench, the
    memory measurement and the GPU checks each call this once, so they measure one thing.
    On CUDA: cuDNN times its convolution algorithms for these fixed-shape batches and keeps
    the fastest (``cudnn.benchmark``: faster; reproducible to rounding rather than bit for
    bit), and TF32 is off for matrix products and convolutions alike, so ``amp: off`` is
    IEEE fp32 everywhere (cuDNN would otherwise run fp32 convolutions in TF32 on Ampere and
    later, while Linear layers stay fp32). ``backend_settings`` reads back what is in force."""
    if device.type != "cuda":
        return
    torch.backends.cudnn.benchmark = True
    if _NEW_TF32_API:
        torch.backends.cuda.matmul.fp32_precision = "ieee"
        torch.backends.cudnn.conv.fp32_precision = "ieee"
    else:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False


def backend_settings() -> dict[str, Any]:
    """What ``configure_backend`` sets, as in force now (for run.json and bench.json): the
    fp32 precision of CUDA matrix products and cuDNN convolutions ("ieee" or "tf32") and
    whether cuDNN benchmarks its algorithms."""
    if _NEW_TF32_API:  # "none" defers to the global setting, whose own "none" is IEEE
        default = torch.backends.fp32_precision if torch.backends.fp32_precision != "none" else "ieee"
        matmul, conv = (v if v != "none" else default for v in (torch.backends.cuda.matmul.fp32_precision,
                                                                   torch.backends.cudnn.conv.fp32_precision))
    else:
        matmul = "tf32" if torch.backends.cuda.matmul.allow_tf32 else "ieee"
        conv = "tf32" if torch.backends.cudnn.allow_tf32 else "ieee"
    return {"fp32_matmul": matmul, "fp32_conv": conv, "cudnn_benchmark": bool(torch.backends.cudnn.benchmark)}


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


def channels_last_on(device: torch.device, setting: str) -> bool:
    return setting == "on" or (setting == "auto" and device.type == "cuda")


def mode_name(amp: str, channels_last: str) -> str:
    parts = ["bf16" if amp == "bf16" else "fp32"] + (["channels_last"] if channels_last == "on" else [])
    return " + ".join(parts)

