"""The model's inputs, batch by batch: each epoch's order, where each step's batch starts,
and the batch itself, gathered from the uint8 set, augmented and normalised.

Augmentation and normalisation work on whole uint8 batches on whatever device they live
on, so a GPU run can keep the whole data set resident (184 MB as uint8) and never go
through PIL or a per-image Python loop while training. Training, evaluation, the autotuner,
the bench and the cost measurement all batch through here.
"""
from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

MEAN: tuple[float, float, float] = (0.4914, 0.4822, 0.4465)
STD: tuple[float, float, float] = (0.2470, 0.2435, 0.2616)


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
        xb = augment(xb, augment_with, channels_last=channels_last)
    if world > 1:  # this rank's share of the global batch
        xb, yb = xb[rank::world], yb[rank::world]
    if channels_last:  # on the uint8 batch (a no-op after the crops): a quarter of the bytes of float32
        xb = xb.contiguous(memory_format=torch.channels_last)
    return normalize(xb), yb  # keeps the layout


@functools.lru_cache(maxsize=8)
def _norm_constants(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, shift) with (x/255 - mean)/std == x*scale + shift, built once per device."""
    mean = torch.tensor(MEAN, dtype=torch.float32)
    std = torch.tensor(STD, dtype=torch.float32)
    scale = (1.0 / (255.0 * std)).view(3, 1, 1)
    shift = (-mean / std).view(3, 1, 1)
    return scale.to(device), shift.to(device)


def normalize(x: torch.Tensor) -> torch.Tensor:
    """uint8 images (…×3×H×W, any device) -> float32 normalised with MEAN/STD, same device and
    layout: a channels_last batch stays channels_last (no separate conversion pass)."""
    scale, shift = _norm_constants(x.device)
    if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        # In memory the batch is N×H×W×C: normalise its rows of W×C values against the
        # constants tiled to one row, where a (3,1,1) broadcast over that layout would step
        # through 3 values at a time (~4x slower on a CPU).
        n, c, h, w = x.shape
        row_scale, row_shift = _row_constants(x.device, c, w)
        rows = x.permute(0, 2, 3, 1).reshape(n * h, w * c)  # a view
        return rows.to(torch.float32).mul_(row_scale).add_(row_shift).view(n, h, w, c).permute(0, 3, 1, 2)
    # to(float32) first: torch.mul(uint8, float32) takes a mixed-type path ~10x slower on a CPU
    return x.to(torch.float32).mul_(scale).add_(shift)


@functools.lru_cache(maxsize=8)
def _row_constants(device: torch.device, c: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, shift) of ``_norm_constants`` repeated along one channels_last image row (W×C)."""
    scale, shift = _norm_constants(device)
    return scale.view(1, c).repeat(w, 1).view(-1), shift.view(1, c).repeat(w, 1).view(-1)


def augment(x: torch.Tensor, generator: torch.Generator, pad: int = 4,
            channels_last: bool = False) -> torch.Tensor:
    """Random crop (``pad`` px zero padding) + random horizontal flip of a uint8 N×C×H×W batch.

    One gather over the whole batch, on x's device: no PIL and no per-image loop, so it
    costs next to nothing on a GPU. Draws (dx, dy, flip) from ``generator``, which must
    live on x's device, so a generator state gives the same batch every time.
    ``channels_last``: the gather writes the crops in that layout (same values), so the
    batch needs no conversion pass afterwards.
    """
    if generator.device.type != x.device.type:
        raise ValueError(f"generator is on {generator.device}, images on {x.device}; they must match")
    n, c, h, w = x.shape
    dev = x.device
    padded = F.pad(x, (pad, pad, pad, pad))
    dx = torch.randint(0, 2 * pad + 1, (n, 1), generator=generator, device=dev)
    dy = torch.randint(0, 2 * pad + 1, (n, 1), generator=generator, device=dev)
    flip = torch.rand((n, 1), generator=generator, device=dev) < 0.5
    # One gather over each padded image's flattened pixels, with the pixel order of its
    # (dy, dx, flip) looked up in a table of all (2*pad+1)^2 * 2 of them: about 3x faster
    # on a CPU than advanced indexing, which builds a broadcast index per element.
    combo = (dy * (2 * pad + 1) + dx) * 2 + flip.long()
    flat = _crop_flip_table(h, w, pad, dev).index_select(0, combo.view(-1))
    if channels_last:  # the output's N×C×(H·W) strides put each pixel's C values side by side
        out = torch.empty_strided((n, c, h * w), (c * h * w, 1, c), dtype=x.dtype, device=dev)
    else:
        out = torch.empty((n, c, h * w), dtype=x.dtype, device=dev)
    torch.gather(padded.reshape(n, c, -1), 2, flat.view(n, 1, h * w).expand(n, c, h * w), out=out)
    return out.as_strided((n, c, h, w), (c * h * w, 1, w * c, c)) if channels_last else out.view(n, c, h, w)


@functools.lru_cache(maxsize=16)
def _crop_flip_table(h: int, w: int, pad: int, device: torch.device) -> torch.Tensor:
    """Row (dy*(2*pad+1) + dx)*2 + flip: the flat pixel indices, in a (h+2*pad)×(w+2*pad)
    padded image, of the h×w crop at offset (dy, dx), mirrored left-right when flip is 1."""
    k = 2 * pad + 1
    dy, dx, flip = (t.reshape(-1, 1, 1) for t in torch.meshgrid(
        torch.arange(k), torch.arange(k), torch.arange(2), indexing="ij"))
    cols = torch.arange(w).view(1, 1, w)
    cols = torch.where(flip.bool(), w - 1 - cols, cols) + dx
    rows = torch.arange(h).view(1, h, 1) + dy
    return (rows * (w + 2 * pad) + cols).reshape(k * k * 2, h * w).to(device)

