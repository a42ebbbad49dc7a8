"""Display names and number formats shared by the tables, figures and text."""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Iterable

from ..config import ConfigError
from ..data import CLASSES, CLASSES_ZH, project_root
from ..study import MODEL_LABELS, OPTIMIZER_LABELS, PARAMETERS_DIR, STUDY_TABLE
from ..variant import load_config

STATUS_ZH = {"completed": "完成", "diverged": "发散", "failed": "失败", "running": "未完成",
             "interrupted": "已中断", "missing": "缺失", "damaged": "文件损坏"}

PROFILE_ZH = {"smoke": "冒烟测试（smoke 配置）", "cpu": "CPU 缩减规模（cpu 配置）", "cpu_all_data": "CPU 上的完整数据集（cpu_all_data 配置）",
              "full": "原研究规模（full 配置）"}


def device_zh(device: str) -> str:
    """A device as the text names it: CPU, or the CUDA device in capitals."""
    return str(device).upper() if str(device).lower() in ("cpu", "cuda") else str(device).replace("cuda", "CUDA")

CLASS_LABELS = [f"{zh} ({en})" for zh, en in zip(CLASSES_ZH, CLASSES)]
CLASS_ZH = dict(zip(CLASSES, CLASSES_ZH))
SCHEDULE_ZH = {"cosine": "余弦", "step": "阶梯", "constant": "恒定"}


def mode_label(amp: str, channels_last: str) -> str:
    """A training mode, compact: number format / memory layout (NHWC is channels_last)."""
    return f"{'bf16' if amp == 'bf16' else 'fp32'}/{'NHWC' if channels_last == 'on' else 'NCHW'}"


def modes_of(runs) -> str:
    """The numeric formats/layouts the given runs (rows of ``Results.runs``) trained in, e.g. 'bf16/NHWC'."""
    return "、".join(sorted({mode_label(a, c) for a, c in zip(runs["amp"], runs["channels_last"])}))


def shown(x: float, digits: int = 2) -> float:
    """A fraction as the percentage the report prints, rounded once in one way: the mean of
    two seeds computed in two orders (0.62185 and 0.6218500000000001) prints the same."""
    return round(round(float(x) * 100, digits + 4), digits)  # Python's round: numpy's rounds 62.185 down


def pct(x: float, digits: int = 1) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{shown(x, digits):.{digits}f}%"


def layer_kind(parameter: str) -> str:
    """A weight layer named in words, not by its parameter name: conv1.weight → 卷积层."""
    name = parameter.lower()
    if "conv" in name:
        return "卷积层"
    if any(k in name for k in ("linear", "classifier", "fc")):
        return "全连接层"
    return "权重层"


def model_label(name: str) -> str:
    return MODEL_LABELS.get(name, name)


def class_zh(name: str) -> str:
    return CLASS_ZH.get(name, name)


def _settings(res, exp: str) -> dict[str, Any] | None:
    """The first run's model and optimizer settings of a variant (the study's table without runs)."""
    sub = res.runs[res.runs["exp_name"] == exp] if len(res.runs) else res.runs
    if len(sub):
        return sub.iloc[0].to_dict()
    if exp in STUDY_TABLE:
        m, o, lr, _ = STUDY_TABLE[exp]
        return {"model": m, "optimizer": o, "lr": lr, "schedule": "constant", "augment": False}
    return _variant_file_settings(exp)


def _variant_file_settings(exp: str) -> dict[str, Any] | None:
    """A variant without runs, named from its file in parameters/ (e.g. an extension not yet trained)."""
    path = project_root() / PARAMETERS_DIR / f"{exp}.yaml"
    try:
        return dataclasses.asdict(load_config(path)) if path.exists() else None
    except ConfigError:
        return None


def variant_short(res, exp: str) -> str:
    """A compact readable name for tables and legends, e.g. "ResNet-18 · SGD 0.1 余弦+增强"."""
    s = _settings(res, exp)
    if s is None or not isinstance(s.get("model"), str):
        return exp
    extra = [SCHEDULE_ZH.get(s.get("schedule"), s.get("schedule"))] if s.get("schedule") not in (None, "constant") else []
    extra += ["增强"] if s.get("augment") is True else []
    extra += ["对照"] if s.get("budget") == "deep" and s["model"] == "baseline" else []  # at the deep budget
    opt = OPTIMIZER_LABELS.get(s.get("optimizer"), s.get("optimizer"))
    return f"{model_label(s['model'])} · {opt} {s['lr']:g}" + (f" {'+'.join(extra)}" if extra else "")


def _fmt_int(n: Any) -> str:
    return "全部" if n in (0, None) else f"{int(n):,}"


def _uniform(values: Iterable[Any]) -> list[Any]:
    return sorted(set(values), key=str)

