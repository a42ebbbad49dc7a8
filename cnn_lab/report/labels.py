"""Display names and number formats shared by the tables, figures and text."""
from __future__ import annotations

import math
from typing import Any, Iterable

import pandas as pd

from ..data import CLASSES, CLASSES_ZH
from ..study import MODEL_LABELS, OPTIMIZER_LABELS, STUDY_TABLE
from .load import FULL_TRAIN

STATUS_ZH = {"completed": "完成", "diverged": "发散", "failed": "失败", "running": "未完成",
             "missing": "缺失"}

PROFILE_ZH = {"smoke": "smoke（冒烟测试）", "cpu": "cpu（CPU 缩减规模）", "full": "full（原研究规模）"}

CLASS_LABELS = [f"{zh} ({en})" for zh, en in zip(CLASSES_ZH, CLASSES)]

METRIC_ZH = {"train_loss": "训练损失", "test_loss": "测试损失", "train_acc": "训练准确率", "test_acc": "测试准确率"}

ACC_NOTE = "准确率取最后一个 epoch，不在测试集上挑选。"

def pct(x: float, digits: int = 1) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x * 100:.{digits}f}%"


def pp(x: float, digits: int = 1, sign: bool = True) -> str:
    """A difference of fractions in percentage points."""
    if x is None or math.isnan(x):
        return "—"
    return f"{x * 100:+.{digits}f} 个百分点" if sign else f"{abs(x) * 100:.{digits}f} 个百分点"


def model_label(name: str) -> str:
    return MODEL_LABELS.get(name, name)


def variant_label(exp: str, stats: pd.DataFrame | None = None) -> str:
    if stats is not None and exp in stats.index:
        r = stats.loc[exp]
        return f"{model_label(r['model'])} + {OPTIMIZER_LABELS.get(r['optimizer'], r['optimizer'])} (lr={r['lr']:g})"
    if exp in STUDY_TABLE:
        m, o, lr, _ = STUDY_TABLE[exp]
        return f"{model_label(m)} + {OPTIMIZER_LABELS.get(o, o)} (lr={lr:g})"
    return exp


def _fmt_int(n: Any) -> str:
    return "全部" if n in (0, None) else f"{int(n):,}"


def _uniform(values: Iterable[Any]) -> list[Any]:
    return sorted(set(values), key=str)


def _scale_text(st: pd.DataFrame, e: str) -> str:
    n = int(st.loc[e, "train_size"])
    return f"{'全部 ' if n in (0, FULL_TRAIN) else ''}{n or FULL_TRAIN:,} 张训练图、{int(st.loc[e, 'epochs'])} 个 epoch"

