"""Phrases the report's paragraphs share: readable variant names, comparison sentences,
training-scale descriptions. Accuracies in prose carry two decimals, so that a difference
read off the page matches the one printed beside it.
"""
from __future__ import annotations

import functools
import math
import re

import pandas as pd

from ..study import OPTIMIZER_LABELS, SHORT_NAMES
from .labels import SCHEDULE_ZH, STATUS_ZH, _settings, model_label, pct, shown
from .load import FULL_TRAIN, Results
from .claim_text import comparison_text
from .stats import PARITY_MARGIN, _have, compare, summary_stats

DIGITS = 2  # decimals of accuracies and of their differences in prose
WIDE_INTERVAL = 0.10  # an interval of a difference at least this wide (10 points) cannot rank two variants

_CJK = "\u4e00-\u9fff"
_FULL_PUNCT = "，。；：、（）“”！？"


def tidy(text: str) -> str:
    """One space between Chinese and Latin letters or digits, none next to full-width punctuation;
    text in “quotes” (the study's own words) is left as it is."""
    parts = re.split(r"(“[^”]*”)", text)
    return "".join(p if p.startswith("“") else _tidy(p) for p in parts)


def _tidy(text: str) -> str:
    text = re.sub(f"([{_CJK}])([A-Za-z0-9+\\-−])", r"\1 \2", text)
    text = re.sub(f"([A-Za-z0-9%)])([{_CJK}])", r"\1 \2", text)
    return re.sub(f"[ \t]*([{_FULL_PUNCT}])[ \t]*", r"\1", text)


def prose(fn):
    """Decorator: the function's Markdown goes through ``tidy``."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return tidy(fn(*args, **kwargs))
    return wrapper


def acc(x: float) -> str:
    return pct(x, DIGITS)


def points(d: float) -> str:
    """An unsigned difference of fractions, in percentage points."""
    return "—" if d is None or math.isnan(d) else f"{shown(abs(d), DIGITS):.{DIGITS}f} 个百分点"


def prose_name(res: Results, exp: str) -> str:
    """A readable name for running text, e.g. "BaselineNet（SGD，学习率 0.01）", or the variant's short
    name (``study.SHORT_NAMES``, defined once in 2.1 by ``short_names_text``)."""
    if exp in SHORT_NAMES:
        return SHORT_NAMES[exp]
    return full_name(res, exp)


def full_name(res: Results, exp: str) -> str:
    """The variant's name with every setting that tells it apart, e.g. "ResNet-18（SGD，学习率 0.1，余弦学习率，数据增强）"."""
    s = _settings(res, exp)
    if s is None or not isinstance(s.get("model"), str):
        return exp
    label = model_label(s["model"])
    inner = []
    if label.endswith(")") and " (" in label:  # "DenseNet-121 (CIFAR 输入层)" -> "DenseNet-121（CIFAR 输入层；…）"
        label, extra = label[:-1].split(" (", 1)
        inner.append(extra)
    opt = f"{OPTIMIZER_LABELS.get(s.get('optimizer'), s.get('optimizer'))}，学习率 {s['lr']:g}"
    if s.get("schedule") not in (None, "constant"):
        opt += f"，{SCHEDULE_ZH.get(s['schedule'], s['schedule'])}学习率"
    if s.get("augment") is True:
        opt += "，数据增强"
    if s.get("budget") == "deep" and s["model"] == "baseline":
        opt += "，按深层模型的规模训练"
    return f"{label}（{'；'.join(inner + [opt])}）"


def short_names_text(res: Results) -> str:
    """The one place the short names are defined: each with its full settings."""
    used = [e for e in SHORT_NAMES if e in set(res.runs["exp_name"])] if len(res.runs) else []
    if not used:
        return ""
    # a model's study variant goes by the model's name: said once for all of them
    plain = [e for e in used if full_name(res, e).startswith(SHORT_NAMES[e] + "（")
             and full_name(res, e).endswith("（Adam，学习率 0.001）")]
    named = [e for e in used if e not in plain]
    text = ("下文的简称：" + "；".join(f"{SHORT_NAMES[e]}指 {full_name(res, e)}" for e in named) + "。") if named else ""
    if plain:
        names = [SHORT_NAMES[e] for e in plain]
        listed = "、".join(names[:-1]) + " 与 " + names[-1] if len(names) > 1 else names[0]
        text += (f"{listed}{'都' if len(names) > 1 else ''}按原报告深层模型的配方（Adam、学习率 0.001）训练，"
                 "下文直接用模型名称呼。")
    return text


def scale_text(st: pd.DataFrame, e: str) -> str:
    n = int(st.loc[e, "train_size"])
    return f"{n or FULL_TRAIN:,} 张训练图、{int(st.loc[e, 'epochs'])} 个 epoch"


def missing_names(res: Results, st: pd.DataFrame, *exps: str) -> str:
    bad = [f"{prose_name(res, e)}（{STATUS_ZH[st.loc[e, 'state']] if e in st.index else '缺失'}）"
           for e in exps if not _have(st, e)]
    return "、".join(bad)


def cmp_sentence(res: Results, st: pd.DataFrame, a: str, b: str, la: str, lb: str) -> str:
    """One sentence comparing two variants' final accuracy, decided by ``stats.compare`` (the tests
    of 2.8's method paragraph) and worded as the claims are. The training scale is described
    once, in 2.1; it is not repeated here."""
    c = compare(res, a, b)
    if c.reason == "missing":
        return f"{la}与{lb}无法比较：{missing_names(res, st, a, b)}没有可用结果。"
    if c.reason == "scale":
        return (f"{la}（{acc(st.loc[a, 'mean'])}，{scale_text(st, a)}）与{lb}（{acc(st.loc[b, 'mean'])}，"
                f"{scale_text(st, b)}）的训练规模不同，准确率不能直接比较。")
    nums = comparison_text(st, c, la, lb)
    if c.reason == "subset":  # a training-scale question, not a verdict (the claims say 规模不足无法判断)
        return f"{nums}：{early_words(c, la, lb)}。"
    if c.verdict not in ("a", "b"):
        return f"{nums}：{null_words(c)}。"
    hi, lo = (la, lb) if c.verdict == "a" else (lb, la)
    if c.epochs is not None:  # the same images, other budgets: say who trained longer
        longer = c.winner_trained_longer
        return (f"{nums}：{hi}显著高于{lo}，但{hi}训练了更多 epoch（{max(c.epochs)} 对 {min(c.epochs)}），差距不能全归于架构。"
                if longer else f"{nums}：{hi}只训练了 {min(c.epochs)} 个 epoch（{lo} {max(c.epochs)} 个），仍显著高于{lo}。")
    return f"{nums}：{hi}显著高于{lo}。"


def ref_sentence(res: Results, a: str, b: str, la: str, lb: str) -> str:
    """The same comparison in the reference runs, marked 参考运行: only where the user's own runs
    cannot decide it (a training subset, other data, or missing); their verdict stands otherwise."""
    ref = res.reference
    if ref is None or compare(res, a, b).reason not in ("subset", "scale", "missing"):
        return ""
    st = summary_stats(ref)
    if not _have(st, a, b):
        return ""
    return "参考运行中，" + cmp_sentence(ref, st, a, b, la, lb)


def early_words(c, la: str, lb: str) -> str:
    """A comparison on a training subset, worded without a verdict label: what a subset's
    accuracy can and cannot say is stated once, in 2.1, and not repeated here. One seed a side
    covers only the sampling of test images, so a lead is never stated from it."""
    if c.verdict not in ("a", "b"):
        return null_words(c)
    hi, lo = (la, lb) if c.verdict == "a" else (lb, la)
    if c.single_seed:
        return f"{hi}较高，但每个变体只有一个种子，检验只覆盖测试图的抽样，不足以说明谁领先"
    return f"训练初期{hi}领先于{lo}（配对检验与种子间检验都显著）"


def null_words(c) -> str:
    """A difference no test found, worded by what its interval says: equal within the study's
    precision, too wide to rank the two, or simply no larger than the noise the tests cover."""
    if c.equivalent:
        return f"两者相当，95% 区间整个落在 ±{PARITY_MARGIN * 100:.0f} 个百分点之内"
    if c.high - c.low >= WIDE_INTERVAL:
        return f"95% 区间宽达 {(c.high - c.low) * 100:.0f} 个百分点，这组数据排不出高低"
    noise = "测试图抽样" if c.single_seed else "种子与测试图抽样"
    return f"这点差别没有超出{noise}带来的波动"


def family_scale(res: Results, mask) -> dict | None:
    """Training scale of a group of runs: epochs, batch, train/test images, seeds per variant."""
    sub = res.runs[mask]
    if not len(sub):
        return None
    seeds = sub.groupby("exp_name")["seed"].nunique()
    return {"epochs": sorted({int(x) for x in sub["epochs"]}), "batch": sorted({int(x) for x in sub["batch_size"]}),
            "train": sorted({int(x or FULL_TRAIN) for x in sub["train_size"]}),
            "test": sorted({int(x or 10_000) for x in sub["test_size"]}),
            "seeds": (int(seeds.min()), int(seeds.max())), "variants": int(sub["exp_name"].nunique())}


def join_nums(values, fmt: str = "{:,}") -> str:
    return "/".join(fmt.format(v) for v in values)
