"""A variant's resolved settings: its file, the profile and explicit overrides merged over
the defaults, and the profile's fields filled at the budget its model's family gets. A model
registered without a family is classified here by its measured cost (``cost.macs_per_image``).
"""
from __future__ import annotations

import dataclasses
import functools
import os
from typing import Any, Mapping

from .config import (FIELD_NAMES, PROFILES, RunConfig, check_fields, check_values, pick_profile,
                     read_yaml)
from .cost import macs_per_image
from .models import create_model, registered_family


# A model registered without a family is "small" below this many forward multiply-accumulates
# per 32x32 image, else "deep". BaselineNet (0.65 M) trains its cpu budget (8 epochs x 50,000
# images x 2 seeds) in about 2 minutes on 2 CPU cores; CPU time grows about with MACs, so a
# model at 10 M (15x) would already take half an hour per variant on that budget. The
# smallest deep built-in, DenseNet-121 with its ImageNet stem, counts 58 M.
SMALL_MACS_LIMIT = 10_000_000


@functools.lru_cache(maxsize=None)
def model_family(model: str) -> tuple[str, str]:
    """(family, why): the family the model was registered with, or the one its cost implies."""
    family = registered_family(model)
    if family is not None:
        return family, "registered"
    macs = macs_per_image(create_model(model))
    family = "small" if macs < SMALL_MACS_LIMIT else "deep"
    return family, f"{macs / 1e6:,.1f} M MACs/image {'<' if family == 'small' else '>='} {SMALL_MACS_LIMIT / 1e6:g} M"


def budget_family(model: str, budget: str = "model") -> tuple[str, str]:
    """(family, why): the budget a variant trains at, its own ``budget`` field first."""
    return (budget, "set by the variant") if budget != "model" else model_family(model)


def profile_settings(profile: str, model: str, device: str = "auto", budget: str = "model") -> dict[str, Any]:
    return dict(PROFILES[pick_profile(profile, device)][budget_family(model, budget)[0]])


def budget_line(cfg: RunConfig) -> str:
    """One line: which family budget a resolved config got and what it amounts to."""
    family, why = budget_family(cfg.model, cfg.budget)
    why = "" if why == "registered" else f", {why}"
    train = f"{cfg.train_size:,}" if cfg.train_size else "all"
    test = f"{cfg.test_size:,}" if cfg.test_size else "all"
    seeds = len(cfg.seed_list())
    return (f"{cfg.exp_name}: {family} budget ({cfg.profile}{why}): {_count(cfg.epochs, 'epoch')}, "
            f"batch {cfg.batch_size}, {train}/{test} images, {_count(seeds, 'seed')}")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def build_config(
    layers: list[tuple[str, Mapping[str, Any]]], profile: str | None = None
) -> RunConfig:
    """Merge ``(source, values)`` layers over the defaults, fill the profile's fields, validate.

    ``profile`` (e.g. from ``--profile``) counts as the most explicit setting.
    """
    merged: dict[str, Any] = {}
    source_of: dict[str, str] = {}
    if profile is not None:
        layers = [*layers, ("--profile", {"profile": profile})]
    for source, values in layers:
        checked = check_fields(values, source)
        merged.update(checked)
        source_of.update(dict.fromkeys(checked, source))
    cfg = RunConfig(**merged)
    check_values(cfg, source_of, "defaults")
    prof = pick_profile(cfg.profile, cfg.device)
    filled = {k: v for k, v in profile_settings(prof, cfg.model, budget=cfg.budget).items() if getattr(cfg, k) is None}
    cfg = dataclasses.replace(cfg, profile=prof, **filled)
    check_values(cfg, {**source_of, **dict.fromkeys(filled, f"profile {prof!r}")}, "defaults")
    return cfg


def load_config(
    path: str | os.PathLike | None = None,
    *,
    profile: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> RunConfig:
    """The resolved config of a variant file, a profile and explicit overrides."""
    layers: list[tuple[str, Mapping[str, Any]]] = []
    if path is not None:
        layers.append((str(path), read_yaml(path)))
    if overrides:
        layers.append(("--set", dict(overrides)))
    return build_config(layers, profile)


def from_params(params: Mapping[str, Any], source: str = "notebook parameters") -> RunConfig:
    """The config a papermill-executed notebook was given (its parameter variables)."""
    return build_config([(source, {k: params[k] for k in FIELD_NAMES if k in params})])

