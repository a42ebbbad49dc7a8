"""How the claims registry words numbers and tests: number formats, a variant's name, one
comparison's sentence, and ``method_text``, the paragraph that says once how a difference
is decided (the tests it names are the ones these runs allowed).
"""
from __future__ import annotations

import pandas as pd

from ..study import SHORT_NAMES, STUDY_TABLE
from .gradients import ORDER_OF_MAGNITUDE
from .labels import _variant_file_settings as _settings_of_file, model_label, shown
from .load import Results
from .stats import Comparison, correctness, summary_stats


INTERVAL_METHOD = ("准确率的 95% 区间：有多个种子时取 均值 ± t·√(s²/k + p(1−p)/n)，其中 s 为种子间标准差，k 为种子数，"
                   "p 为平均准确率，n 为测试图像数，t 取 Welch–Satterthwaite 自由度下的 97.5% 分位数；只有一个种子时取二项分布的 "
                   "Wilson 区间，只含测试集的抽样误差。")


# ----------------------------------------------------------------- number formats


def _pct(x: float) -> str:
    return f"{shown(x):.2f}%"


def level_range(st: pd.DataFrame, exps) -> str:
    """Where several variants stop, as the range of their mean accuracies ("61.77%–62.08%")."""
    accs = sorted(st.loc[e, "mean"] for e in exps)
    return f"{_pct(accs[0])}–{_pct(accs[-1])}" if len(accs) > 1 else _pct(accs[0])


def _pts(x: float, sign: bool = True) -> str:
    v = shown(x)
    if not sign:
        return f"{abs(v):.2f} 个百分点"
    return f"{'+' if v >= 0 else '−'}{abs(v):.2f} 个百分点"


def _signed(x: float) -> str:
    return f"{'+' if x >= 0 else '−'}{shown(abs(x)):.2f}"


def _pv(p: float) -> str:
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


def _r(x: float) -> str:
    return f"{x:.3f}" if x < 10 else f"{x:.1f}"


def _name(st: pd.DataFrame, exp: str) -> str:
    if exp in SHORT_NAMES:  # defined once, in 2.1
        return SHORT_NAMES[exp]
    if exp in st.index and isinstance(st.loc[exp, "model"], str):
        r = st.loc[exp]
        matched = "，深层规模" if r.get("budget") == "deep" and r["model"] == "baseline" else ""
        return f"{model_label(r['model'])}（{'SGD' if r['optimizer'] == 'sgd' else 'Adam'}，学习率 {r['lr']:g}{matched}）"
    if exp not in STUDY_TABLE:  # a control or extension without runs: named from its variant file
        s = _settings_of_file(exp)
        if s is None:
            return exp
        m, o, lr = s["model"], s["optimizer"], s["lr"]
    else:
        m, o, lr, _ = STUDY_TABLE[exp]
    return f"{model_label(m)}（{'SGD' if o == 'sgd' else 'Adam'}，学习率 {lr:g}）"


def _tests(c: Comparison) -> str:
    parts = []
    if c.paired is not None:
        k = len(c.paired.per_seed)
        parts.append(("McNemar 精确检验" if k == 1 else f"{k} 对种子的配对符号检验") + f" {_pv(c.paired.p)}")
    if c.tests and "fisher" in c.tests:
        parts.append(f"Fisher 精确检验 {_pv(c.unpaired_p)}")
    if c.seeds is not None:
        parts.append(f"Welch t 检验 {_pv(c.seeds.p)}")
    return "，".join(parts)


def comparison_text(st: pd.DataFrame, c: Comparison, la: str, lb: str) -> str:
    """'A x% 对 B y%，差 d（95% 区间 …；tests）': the displayed numbers subtract exactly."""
    ma, mb = shown(st.loc[c.a, "mean"]), shown(st.loc[c.b, "mean"])
    sep = lambda name: name if name.endswith("）") else name + " "  # noqa: E731
    text = f"{sep(la)}{ma:.2f}% 对 {sep(lb)}{mb:.2f}%，差 {_pts((ma - mb) / 100)}"
    if c.reason == "scale":
        return text
    if c.low == c.low:
        text += f"（95% 区间 {_signed(c.low)} 至 {_signed(c.high)} 个百分点）"
    return text + (f"；{_tests(c)}" if _tests(c) else "")


def method_text(res: Results) -> str:
    """How a difference is decided, naming only the tests these runs allowed: McNemar's exact test
    where both variants saved per-image predictions, Fisher's exact test only as the fallback."""
    st = summary_stats(res)
    done = [e for e in st.index if st.loc[e, "state"] == "completed"]
    no_pred = [e for e in done if not correctness(res, e)]
    multi = bool(len(st) and (st.loc[done, "n"] > 1).any()) if done else False
    parts = ["两个变体之间的差异用同一批测试图像上的配对检验判断："
             "每对种子做 McNemar 精确检验（只看两者一对一错的图像）"
             + ("，有多对种子时把每张图在各对种子上的胜负相加，再对各图的胜负方向做精确符号检验" if multi else "")
             + "。" if len(no_pred) < len(done) else ""]
    if no_pred:
        who = "所有变体都" if len(no_pred) == len(done) else "、".join(_name(st, e) for e in no_pred) + "的运行"
        parts.append(f"{who}没有保存逐图预测，无法配对，{'这些' if len(no_pred) < len(done) else ''}比较改用两个比例的 "
                     "Fisher 精确检验（不配对，较保守）。")
    if multi:
        parts.append("两个变体都有多个种子时，另对各种子准确率之差做 Welch t 检验，并给出均值之差的 95% 区间；"
                     "只有一个种子时给出按图像配对的正态近似区间。")
    else:
        parts.append("每个变体只有一个种子，给出的是按图像配对的正态近似区间；种子间的波动没有计入任何区间与检验，"
                     "下文不再逐处重复这一点。")
    parts.append("只有所有可用的检验都在 5% 水平上显著（p<0.05）时才称两者有差异，否则记为「差异在误差内」；"
                 "若差异不显著而原报告所说的差距落在 95% 区间之外，则记为原报告的说法不成立（未复现）。")
    parts.append(INTERVAL_METHOD if multi else
                 "准确率的 95% 区间取二项分布的 Wilson 区间，只含测试集的抽样误差。")
    parts.append(f"梯度比较按每个参数的均方根梯度 ‖g‖/√(参数个数) 进行，首层与末层之比小于 1/{ORDER_OF_MAGNITUDE:g}"
                 "（相差一个数量级以上）才视为梯度消失。只在训练子集上得到的比较记为「规模不足无法判断」；"
                 "对照的两者在深度、宽度等多处同时不同时记为「无法检验（对比有混杂）」；"
                 "设置由本项目选定的行记为「参考」、核对原报告所用模型的行记为「事实核对」，两者都不计入汇总。"
                 "本报告中的双引号“”只用来引原报告的原话，本报告自己的结论类别与术语用「」标出。")
    return "".join(parts)
