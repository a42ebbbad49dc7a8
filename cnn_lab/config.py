"""One typed run configuration, the profiles that scale it, and its validation.

A setting comes from, lowest to highest precedence: the dataclass default, the profile,
the variant file (``parameters/<exp_name>.yaml``), explicit overrides (``--set k=v`` or
papermill ``-p``). Fields whose default is ``None`` are the ones a profile decides;
``variant`` merges these layers and fills them at the budget of the model's family.
Validation happens before anything runs: the first problem raises ``ConfigError`` with
one line naming the source, the field and what is allowed.
"""
from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping

import yaml

from .models import FAMILIES


class ConfigError(ValueError):
    """A bad setting; ``str(err)`` is the one line shown to the user."""


@dataclass(frozen=True)
class RunConfig:
    # --- what is trained (the study's variant) ---
    exp_name: str = "cnn_baseline_adam"  # names the run directory and the report row
    model: str = "baseline"  # a name from cnn_lab.models.list_models()
    optimizer: str = "adam"  # "sgd" (with momentum) or "adam"; Adam learns visibly within smoke's few steps
    lr: float = 0.001  # peak learning rate
    momentum: float = 0.9  # SGD only; the PyTorch CIFAR-10 tutorial's value, the study's likely source
    weight_decay: float = 0.0  # L2 penalty through the optimizer; the study used none
    schedule: str = "constant"  # "constant" or "cosine" (per step, down to 0 at the last epoch)
    augment: bool = False  # random crop with 4-pixel padding + horizontal flip, on whole batches
    budget: str = "model"  # the profile's budget it trains at: model (its model's family), small or deep; deep gives BaselineNet the deep models' scale, a matched control
    # --- how much of it (None: the profile decides) ---
    epochs: int | None = None  # passes over the training subset
    batch_size: int | None = None  # images per optimizer step, in all (torchrun ranks share it evenly)
    train_size: int | None = None  # class-balanced training subset; 0 = all 50,000
    test_size: int | None = None  # class-balanced test subset; 0 = all 10,000
    seeds: int | list[int] | None = None  # a count (seed, seed+1, ...) or an explicit list
    seed: int = 0  # first seed; seeds everything (init, shuffling, augmentation)
    # --- where and how it runs ---
    profile: str = "smoke"  # smoke | cpu | full | auto; smoke keeps a bare config fast, the CLI defaults to auto
    device: str = "auto"  # auto (cuda, then mps, then cpu) | cpu | cuda | cuda:N | mps
    amp: str = "auto"  # bf16 autocast: auto (CUDA: on from compute capability 8; CPU: whichever is measured faster) | bf16 or on | off
    channels_last: str = "auto"  # NHWC memory format: auto (CUDA: on; CPU: whichever is measured faster) | on | off
    compile: bool = False  # torch.compile the model (pays a compile delay once per run)
    nproc: int = 1  # processes per variant; >1 hands the variant to torchrun (DDP)
    grad_points: int = 4  # steps per epoch at which every weight layer's gradient norm is recorded; 0 = off
    data: str = ""  # CIFAR-10 location; "" = CNN_LAB_DATA, then data/, then ../shared/datasets/
    download: bool = False  # allow torchvision to download the official release when nothing is found
    out_dir: str = "runs"  # runs are written to <out_dir>/<exp_name>/seed<seed>/

    def seed_list(self) -> list[int]:
        if isinstance(self.seeds, list):
            return list(self.seeds)
        return [self.seed + i for i in range(self.seeds or 1)]

    def run_dir(self, seed: int | None = None) -> Path:
        return Path(self.out_dir) / self.exp_name / f"seed{self.seed if seed is None else seed}"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


FIELD_NAMES = tuple(f.name for f in fields(RunConfig))
# Settings that do not change what a run computes: a run may be resumed with other values.
NON_RESULT_FIELDS = ("profile", "device", "compile", "nproc", "data", "download", "out_dir", "seeds")

# YAML 1.1 reads on/off/yes/no/true/false as booleans; these switches mean the words.
# papermill -p passes them on as text, so the words count the same as the booleans.
SWITCH_WORDS = {"amp": {True: "bf16", False: "off"}, "channels_last": {True: "on", False: "off"}}
YAML_BOOLS = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}

# Profiles, per model family (see models.register_model; docs/reference-runs.md and docs/cpu-cost.md have the measurements behind them).
# BaselineNet: 8 epochs at batch 128 on all 50,000 images puts its three study variants
# within a few points of the study's table (measured here: SGD 0.001 → 44.8%, Adam → 62.1%,
# SGD 0.01 → 61.3%; the study: 43%, 62%, 65%). The deep models train at 20-110 images/s on
# 2 CPU cores, so the cpu profile gives them a 1,000-image subset: a check of the
# pipeline and of early training dynamics, not of final accuracy. full is the study's
# scale for a GPU.
PROFILES: dict[str, dict[str, dict[str, Any]]] = {
    "smoke": {
        "small": dict(epochs=3, batch_size=64, train_size=4000, test_size=1000, seeds=1),
        "deep": dict(epochs=1, batch_size=50, train_size=100, test_size=100, seeds=1),
    },
    # Two seeds of every deep variant, so that a comparison at subset scale can be set
    # against the seed-to-seed spread and not only against the sampling of test images.
    "cpu": {
        "small": dict(epochs=8, batch_size=128, train_size=0, test_size=0, seeds=2),
        "deep": dict(epochs=3, batch_size=64, train_size=1000, test_size=1000, seeds=2),
    },
    # Every image on a CPU, for an afternoon: the deep models at 50-60 images/s (ResNet-18
    # at batch 64 on 2 cores) take 14-15 min an epoch each, so the study's four deep
    # models and the plain network get 2 epochs of all 50,000 images (docs/reference-runs.md).
    "cpu_all_data": {
        "small": dict(epochs=8, batch_size=128, train_size=0, test_size=0, seeds=2),
        "deep": dict(epochs=2, batch_size=64, train_size=0, test_size=0, seeds=1),
    },
    "full": {
        "small": dict(epochs=8, batch_size=128, train_size=0, test_size=0, seeds=3),
        "deep": dict(epochs=10, batch_size=128, train_size=0, test_size=0, seeds=2),
    },
}
# The profiles a run may name: those above, and auto (full with a GPU, cpu without: pick_profile).
PROFILE_CHOICES = (*PROFILES, "auto")

CHOICES = {
    "optimizer": ("sgd", "adam"),
    "schedule": ("constant", "cosine"),
    "profile": PROFILE_CHOICES,
    "budget": ("model", *FAMILIES),
    "amp": ("auto", "bf16", "off"),
    "channels_last": ("auto", "on", "off"),
}


def has_gpu() -> bool:
    """Whether this machine has a CUDA GPU: the one place that asks."""
    import torch

    return torch.cuda.is_available()


def uses_cuda(device: str) -> bool:
    """Whether the field ``device`` trains on a CUDA GPU here (``auto`` does where there is one)."""
    return has_gpu() and (device == "auto" or device.startswith("cuda"))


def select_device(name: str):
    """The torch device the field ``device`` names on this machine: ``auto`` is CUDA, else
    Apple's MPS, else the CPU; a CUDA device asked for where there is none is a ``ConfigError``."""
    import torch

    if name.startswith("cuda") and not has_gpu():
        raise ConfigError(f"field 'device' is {name!r} but no CUDA device is available; use auto or cpu")
    if name != "auto":
        return torch.device(name)
    if uses_cuda(name):
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    return torch.device("mps" if mps is not None and mps.is_available() else "cpu")


def pick_profile(profile: str, device: str = "auto") -> str:
    """``auto`` is ``full`` where the run's device is a GPU (present) and ``cpu`` elsewhere."""
    if profile == "auto":
        return "full" if uses_cuda(device) else "cpu"
    return profile


# ---------------------------------------------------------------- validation


def _type_name(tp: Any) -> str:
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false", type(None): "null"}
    args = typing.get_args(tp)
    if args and typing.get_origin(tp) in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args)
    if typing.get_origin(tp) is list:
        return "a list of integers"
    return names.get(tp, str(tp))


def _matches(value: Any, tp: Any) -> bool:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in typing.get_args(tp))
    if origin is list:
        (item,) = typing.get_args(tp)
        return isinstance(value, list) and len(value) > 0 and all(_matches(v, item) for v in value)
    if tp is type(None):
        return value is None
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, tp)


_HINTS = typing.get_type_hints(RunConfig)


def check_fields(values: Mapping[str, Any], source: str) -> dict[str, Any]:
    """Unknown keys and wrong types, reported as ``source: field 'x': ...``."""
    out = {}
    for key, value in values.items():
        if key not in _HINTS:
            raise ConfigError(f"{source}: unknown field {key!r}; known fields: {', '.join(FIELD_NAMES)}")
        tp = _HINTS[key]
        if key in SWITCH_WORDS and isinstance(value, (bool, str)):
            as_bool = YAML_BOOLS.get(value.lower()) if isinstance(value, str) else value
            value = value if as_bool is None else SWITCH_WORDS[key][as_bool]  # ``amp: off`` / ``--set channels_last=on``
        accepts_float = tp is float or float in typing.get_args(tp)
        if accepts_float and isinstance(value, str):
            # YAML 1.1 reads ``1e-3`` (no dot) as a string; it is plainly meant as a number
            try:
                value = float(value)
            except ValueError:
                pass
        if not _matches(value, tp):
            raise ConfigError(f"{source}: field {key!r} must be {_type_name(tp)}, got {value!r}")
        if accepts_float and isinstance(value, int):
            value = float(value)
        out[key] = value
    return out


def check_values(cfg: RunConfig, source_of: Mapping[str, str], default: str) -> None:
    """``source_of`` names the layer that set each field, so an error points at it."""
    from .models import list_models

    def bad(name: str, allowed: str) -> ConfigError:
        source = source_of.get(name, default)
        return ConfigError(f"{source}: field {name!r} must be {allowed}, got {getattr(cfg, name)!r}")

    if cfg.model not in list_models():
        raise bad("model", "one of " + ", ".join(list_models()))
    for name, allowed in CHOICES.items():
        if getattr(cfg, name) not in allowed:
            raise bad(name, "one of " + ", ".join(allowed))
    if not cfg.exp_name or not all(c.isalnum() or c in "._-" for c in cfg.exp_name):
        raise bad("exp_name", "a non-empty name of letters, digits, '.', '_' and '-'")
    if not (cfg.lr > 0 and cfg.lr == cfg.lr and cfg.lr != float("inf")):
        raise bad("lr", "a positive number")
    for name in ("momentum", "weight_decay"):
        if getattr(cfg, name) < 0:
            raise bad(name, "zero or positive")
    for name in ("epochs", "batch_size", "nproc"):
        value = getattr(cfg, name)
        if value is not None and value <= 0:
            raise bad(name, "a positive integer")
    for name in ("train_size", "test_size", "grad_points"):
        value = getattr(cfg, name)
        if value is not None and value < 0:
            raise bad(name, "zero (all) or a positive integer")
    if isinstance(cfg.seeds, int) and cfg.seeds <= 0:
        raise bad("seeds", "a positive count or a list of seeds")
    if isinstance(cfg.seeds, list) and len(set(cfg.seeds)) != len(cfg.seeds):
        raise bad("seeds", "a list without repeats")
    dev = cfg.device
    if not (dev in ("auto", "cpu", "cuda", "mps") or (dev.startswith("cuda:") and dev[5:].isdigit())):
        raise bad("device", "auto, cpu, cuda, cuda:N or mps")


# ---------------------------------------------------------------- building


def read_yaml(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot read it ({err.__class__.__name__}: {err})") from None
    try:
        values = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}:{where} not valid YAML ({getattr(err, 'problem', err)})") from None
    if values is None or values == {}:
        raise ConfigError(f"{path}: holds no settings (the file is empty or only comments); "
                          f"give at least exp_name and model, as parameters/cnn_baseline.yaml does")
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: must hold a mapping of field: value, got {type(values).__name__}")
    return values


def parse_overrides(items: list[str], source: str = "--set") -> dict[str, Any]:
    """``["epochs=3", "lr=0.01"]`` → typed values (YAML scalars: 3, 0.01, true, null)."""
    out = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"{source} {item!r}: expected field=value")
        try:
            # an empty value is the empty string (``data=``), not YAML's null
            out[key.strip()] = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            out[key.strip()] = raw
    return out


def result_fields(cfg: RunConfig | Mapping[str, Any]) -> dict[str, Any]:
    """The settings that determine a run's numbers (compared before resuming)."""
    d = cfg.to_dict() if isinstance(cfg, RunConfig) else dict(cfg)
    # a field added after a run was recorded counts at its default, which it then had
    return {k: d.get(k, _DEFAULTS.get(k)) for k in FIELD_NAMES if k not in NON_RESULT_FIELDS}


_DEFAULTS = {f.name: f.default for f in fields(RunConfig)}


def dump_yaml(cfg: RunConfig) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False, allow_unicode=True)


__all__ = [
    "RunConfig",
    "ConfigError",
    "FIELD_NAMES",
    "PROFILES",
    "PROFILE_CHOICES",
    "parse_overrides",
    "pick_profile",
    "check_values",
    "result_fields",
    "dump_yaml",
    "read_yaml",
]
