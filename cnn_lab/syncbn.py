"""BatchNorm over the global batch under DDP, without a host synchronisation.

``torch.nn.SyncBatchNorm`` gathers every rank's batch statistics and then drops those of
ranks whose input was empty with a boolean mask (``count_all[mask]``): the result's shape
depends on the counts' values, so the host waits for the GPU once per BatchNorm layer per
training step (PyTorch's own comment there says so; pytorch#78549). ``SyncBatchNorm`` here
is the same computation with the same collectives (one all-gather forward, one all-reduce
backward) less that mask: cnn_lab never hands a rank an empty batch (``train.build`` and
``batches.batch_starts`` give every rank at least two images of every batch), and an empty
one is refused from its shape, which the host knows without asking the device.

On CUDA it calls the fused kernels ``nn.SyncBatchNorm`` calls; elsewhere (the CPU, where
those kernels do not exist and ``nn.SyncBatchNorm`` refuses to run) ``_PlainOps`` does their
arithmetic with plain tensor operations, so DDP on CPUs (gloo) normalises over the global
batch too. Outside training under an initialised process group of more than one rank (one
process, evaluation) it is ordinary BatchNorm.
"""
from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm


def _reduce_dims(x: torch.Tensor) -> list[int]:
    return [0, *range(2, x.dim())]


def _per_channel(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return t.view(1, -1, *([1] * (x.dim() - 2)))


class _PlainOps:
    """The arithmetic of CUDA's ``batch_norm_*`` kernels (same signatures) in plain tensor
    operations, in the accumulation precision (float32, float64 for float64 input)."""

    @staticmethod
    def _acc(x: torch.Tensor) -> torch.Tensor:
        return x.double() if x.dtype == torch.float64 else x.float()

    @staticmethod
    def stats(x, eps):
        var, mean = torch.var_mean(_PlainOps._acc(x), dim=_reduce_dims(x), correction=0)
        return mean, torch.rsqrt(var + eps)

    @staticmethod
    def gather_stats_with_counts(x, mean_all, invstd_all, running_mean, running_var, momentum, eps, counts):
        counts = counts.to(mean_all.dtype).view(-1, 1)
        n = counts.sum()
        mean = (counts * mean_all).sum(0) / n
        var_all = invstd_all.pow(-2) - eps  # each rank's biased variance
        var = (counts * (var_all + (mean_all - mean).pow(2))).sum(0) / n
        if running_mean is not None:
            running_mean.mul_(1 - momentum).add_(momentum * mean.to(running_mean.dtype))
        if running_var is not None:
            running_var.mul_(1 - momentum).add_(momentum * (var * n / (n - 1)).to(running_var.dtype))
        return mean, torch.rsqrt(var + eps)

    @staticmethod
    def elemt(x, weight, bias, mean, invstd, eps):
        out = (_PlainOps._acc(x) - _per_channel(mean, x)) * _per_channel(invstd, x)
        if weight is not None:
            out = out * _per_channel(weight, x) + _per_channel(bias, x)
        return out.to(x.dtype)

    @staticmethod
    def backward_reduce(dy, x, mean, invstd, weight, input_g, weight_g, bias_g):
        dims = _reduce_dims(x)
        dy = _PlainOps._acc(dy)
        sum_dy = dy.sum(dims)
        sum_dy_xmu = (dy * (_PlainOps._acc(x) - _per_channel(mean, x))).sum(dims)
        grad_weight = (sum_dy_xmu * invstd).to(weight.dtype) if weight is not None and weight_g else None
        grad_bias = sum_dy.to(weight.dtype) if weight is not None and bias_g else None
        return sum_dy, sum_dy_xmu, grad_weight, grad_bias

    @staticmethod
    def backward_elemt(dy, x, mean, invstd, weight, sum_dy, sum_dy_xmu, count):
        n = count.sum().to(mean.dtype)
        xmu = _PlainOps._acc(x) - _per_channel(mean, x)
        scale = invstd if weight is None else invstd * weight
        grad = (_PlainOps._acc(dy) - _per_channel(sum_dy / n, x)
                - xmu * _per_channel(invstd.pow(2) * sum_dy_xmu / n, x)) * _per_channel(scale, x)
        return grad.to(dy.dtype)


class _FusedOps:
    """CUDA's fused kernels, as ``nn.SyncBatchNorm`` calls them."""

    stats = staticmethod(lambda x, eps: torch.batch_norm_stats(x, eps))
    gather_stats_with_counts = staticmethod(lambda *a: torch.batch_norm_gather_stats_with_counts(*a))
    elemt = staticmethod(lambda *a: torch.batch_norm_elemt(*a))
    backward_reduce = staticmethod(lambda *a: torch.batch_norm_backward_reduce(*a))
    backward_elemt = staticmethod(lambda *a: torch.batch_norm_backward_elemt(*a))


def _ops(x: torch.Tensor):
    return _FusedOps if x.is_cuda else _PlainOps


def _layout(x: torch.Tensor) -> torch.Tensor:
    """Contiguous in NCHW or channels_last, whichever it is closer to (as nn.SyncBatchNorm)."""
    if x.is_contiguous(memory_format=torch.channels_last) or x.is_contiguous(memory_format=torch.channels_last_3d):
        return x
    return x.contiguous()


def _all_gather(t: torch.Tensor, group, world: int) -> torch.Tensor:
    """Every rank's ``t`` as the rows of one (world, len(t)) tensor."""
    if dist.get_backend(group) == "gloo":  # gloo has no all_gather_into_tensor
        parts = [torch.empty_like(t) for _ in range(world)]
        dist.all_gather(parts, t, group)
        return torch.stack(parts)
    out = t.new_empty(world, t.numel())
    dist.all_gather_into_tensor(out, t, group)
    return out


class _SyncBatchNormFunction(torch.autograd.Function):
    """``torch.nn.modules._functions.SyncBatchNorm`` without the empty-input mask."""

    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, eps, momentum, group, world):
        x = _layout(x)
        if x.numel() == 0:  # its shape: known on the host, no synchronisation
            raise ValueError("SyncBatchNorm: this rank's batch is empty; every rank needs at least one image "
                             "(batches.batch_starts gives each two)")
        ops, channels = _ops(x), x.shape[1]
        mean, invstd = ops.stats(x, eps)
        count = torch.full((1,), x.numel() // channels, dtype=mean.dtype, device=mean.device)
        gathered = _all_gather(torch.cat([mean, invstd, count]), group, world)
        mean_all, invstd_all, count_all = torch.split(gathered, channels, dim=1)
        counts = count_all.view(-1)
        if running_mean is not None and counts.dtype != running_mean.dtype:
            counts = counts.to(running_mean.dtype)
        mean, invstd = ops.gather_stats_with_counts(x, mean_all, invstd_all, running_mean, running_var, momentum,
                                                    eps, counts)
        ctx.save_for_backward(x, weight, mean, invstd, count_all.to(torch.int32))
        ctx.group = group
        return ops.elemt(x, weight, bias, mean, invstd, eps)

    @staticmethod
    def backward(ctx, dy):
        dy = _layout(dy)
        x, weight, mean, invstd, counts = ctx.saved_tensors
        ops = _ops(x)
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        sum_dy, sum_dy_xmu, grad_weight, grad_bias = ops.backward_reduce(dy, x, mean, invstd, weight,
                                                                         need_x, need_w, need_b)
        grad_x = None
        if need_x:  # the input's gradient needs the sums over the global batch
            channels = sum_dy.shape[0]
            combined = torch.cat([sum_dy, sum_dy_xmu])
            dist.all_reduce(combined, dist.ReduceOp.SUM, ctx.group)
            sum_dy, sum_dy_xmu = torch.split(combined, channels)
            w = weight.to(mean.dtype) if weight is not None and weight.dtype != mean.dtype else weight
            grad_x = ops.backward_elemt(dy, x, mean, invstd, w, sum_dy, sum_dy_xmu, counts)
        # weight and bias: this rank's share; DDP's gradient all-reduce sums the shares
        if weight is None or not need_w:
            grad_weight = None
        if weight is None or not need_b:
            grad_bias = None
        return grad_x, grad_weight, grad_bias, None, None, None, None, None, None


class SyncBatchNorm(_BatchNorm):
    """A BatchNorm layer that, while training under a process group of several ranks,
    normalises over the global batch (``nn.SyncBatchNorm``'s arithmetic) at no host
    synchronisation; otherwise (one process, evaluation) it is the BatchNorm it was.

    Not a subclass of ``nn.SyncBatchNorm``: DDP refuses that class on CPU modules, and this
    one runs on the CPU too."""

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {x.dim()}D input)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        syncing = self.training and dist.is_available() and dist.is_initialized()
        world = dist.get_world_size() if syncing else 1
        if world == 1:
            return super().forward(x)
        self._check_input_dim(x)
        momentum = self.momentum
        if self.track_running_stats:
            self.num_batches_tracked.add_(1)
            if momentum is None:  # a cumulative average reads the count (never so in cnn_lab's models)
                momentum = 1.0 / float(self.num_batches_tracked)
        stats = (self.running_mean, self.running_var) if self.track_running_stats else (None, None)
        return _SyncBatchNormFunction.apply(x, self.weight, self.bias, *stats, self.eps, momentum or 0.0,
                                            dist.group.WORLD, world)


def convert(model: nn.Module) -> nn.Module:
    """``model`` with each of its BatchNorm layers made a ``SyncBatchNorm``, in place: the same
    modules, Parameter objects (an optimizer built on the model stays valid), buffers and
    state-dict names."""
    for m in model.modules():
        if type(m) in (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm):
            m.__class__ = SyncBatchNorm
    return model
