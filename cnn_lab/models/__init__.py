"""Model registry: ``create_model(name, num_classes=10)`` builds any network by name.

Variants are arguments of one builder (SE-ResNet-18 is ResNet-18 with ``se=True``),
registered under their own names so that run configs can refer to them. A model may
declare its family ("small" or "deep"), which picks its budget in each profile; one that
does not is classified by its measured cost (``variant.model_family``).

Every module in this folder is imported below (``pkgutil``), so a new file here that uses
``@register_model`` is all it takes to add a model.
"""
from __future__ import annotations

import importlib
import pkgutil
from typing import Callable

import torch.nn as nn

FAMILIES = ("small", "deep")

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}
_FAMILY: dict[str, str | None] = {}


def register_model(
    name: str, family: str | None = None
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Register a builder ``fn(num_classes=10) -> nn.Module`` under ``name``.

    ``family`` ("small" or "deep") chooses the model's budget in every profile; leave it out
    to have it derived from the model's measured cost.
    """
    if family is not None and family not in FAMILIES:
        raise ValueError(f"model {name!r}: family must be one of {', '.join(FAMILIES)} or None, got {family!r}")

    def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        _REGISTRY[name] = fn
        _FAMILY[name] = family
        return fn

    return wrap


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def registered_family(name: str) -> str | None:
    """The family ``name`` was registered with, or None when it declared none."""
    return _FAMILY.get(name)


def create_model(name: str, num_classes: int = 10, **kwargs) -> nn.Module:
    try:
        builder = _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(list_models())}") from None
    return builder(num_classes=num_classes, **kwargs)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# Importing the modules of this folder registers their models.
for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["create_model", "list_models", "register_model", "registered_family", "count_parameters", "FAMILIES"]
