"""2.3.1 BaselineNet: its accuracies, the plateau, capacity, vanishing gradients and the locked ceiling."""
from __future__ import annotations

from typing import Callable

import pandas as pd

from ...study import BASELINE_VARIANTS
from ..claim_text import _name, _pct, _pts, comparison_text, level_range
from ..gradients import ORDER_OF_MAGNITUDE, flow_reading
from ..load import Results
from ..measures import dynamics
from ..stats import ALPHA, PLATEAU_PP, PLATEAU_SLOPE, TREND_EPOCHS, compare, late_trend
from .evidence import TREND_ZH, _flow_text, _missing, _params, _rows, _trend_text
from .s2_1 import _abs_entry, _order_entry
from .verdicts import FAILS, HOLDS, PARTIAL, SCALE, UNTESTABLE, WITHIN


def _baseline_trends(res: Results, st: pd.DataFrame) -> dict[str, dict]:
    done = [e for e in BASELINE_VARIANTS if e in st.index and st.loc[e, "state"] == "completed"]
    return {e: t for e in done if (t := late_trend(res, e))["kind"] != "short"}


def _plateau(res: Results, st: pd.DataFrame) -> tuple[str, str, str]:
    """2.3.1 "很早就到达了平台期", judged per variant: a curve has reached a plateau only when its
    late slope is no longer significantly above 0; one whose slope fell under the line but is still
    significantly positive is slowing down, not on a plateau."""
    trends = _baseline_trends(res, st)
    if not trends:
        return SCALE, "BaselineNet 训练的 epoch 太少", f"少于 {TREND_EPOCHS} 个 epoch，看不出曲线是否进入平台期。"
    measured = "；".join(_trend_text(st, e, t) for e, t in trends.items())
    by = {k: [e for e, t in trends.items() if t["kind"] == k] for k in ("flat", "slowing", "rising", "unclear")}
    names = lambda xs: "、".join(_name(st, e) for e in xs)  # noqa: E731
    close = [e for e in by["slowing"] if near_plateau(trends[e])]
    far = [e for e in by["slowing"] if e not in close and _rises(trends[e])]
    undecided = [e for e in by["slowing"] if e not in close and e not in far]
    rule = (f"按每个种子自己最后 {TREND_EPOCHS} 个 epoch 的斜率判断（不把同一种子的各 epoch 当作独立样本）：平均斜率低于 "
            f"{PLATEAU_PP * 100:g} 个百分点/epoch、且与 0 无显著差别，才算到达平台；低于 {PLATEAU_SLOPE * 100:g} 个百分点/epoch "
            "而未到平台的，是增速放缓。")
    parts = ([f"{names(by['flat'])}已趋平"] if by["flat"] else []) \
        + ([f"{names(close)}增速放缓（每 epoch 不到 {PLATEAU_PP * 100:g} 个百分点），接近平台"] if close else []) \
        + ([f"{names(far)}增速放缓，但每 epoch 仍涨 {PLATEAU_PP * 100:g} 个百分点以上，尚未接近平台"] if far else []) \
        + [f"{_name(st, e)}平均每 epoch 涨 {_pts(trends[e]['slope'], False)}，种子间不一致（"
           + "、".join(f"{x * 100:.2f}" for x in trends[e]["slopes"]) + "），既不能确认已接近平台，也不能肯定仍在上升"
           for e in undecided] \
        + ([f"{names(by['rising'])}仍在明显上升，只是学得慢"] if by["rising"] else []) \
        + ([f"{names(by['unclear'])}的走势在种子间波动之内"] if by["unclear"] else [])
    reason = rule + "；".join(parts) + "。"
    if len(by["flat"]) == len(trends):
        return HOLDS, measured, reason
    # near a plateau: level, or still gaining but by less than PLATEAU_PP a epoch
    near = by["flat"] + close
    if not near and (by["rising"] or by["slowing"]):
        return FAILS, measured, reason + f"在这 {max(t['epochs'] for t in trends.values())} 个 epoch 内，没有哪个设置可以确认已到达或接近平台。"
    if not near:
        return WITHIN, measured, reason
    return (f"{PARTIAL}（{names(near)}{'已趋平' if not close else '接近平台'}）", measured, reason)


def near_plateau(t: dict) -> bool:
    """A late trend at or near a plateau: level, or slowing and gaining under PLATEAU_PP a epoch
    (the plateau row's rule, which the ceiling rows and §3 share)."""
    return t["kind"] == "flat" or (t["kind"] == "slowing" and t["slope"] < PLATEAU_PP)


def _rises(t: dict) -> bool:
    """A late trend that is still rising beyond doubt: its slope significant, or every seed up by
    more than the test set's sampling noise."""
    return t["slope"] > 0 and (t["p"] < ALPHA or t.get("every_seed_rose", False))


def levelled(res: Results, st: pd.DataFrame) -> tuple[list[str], object]:
    """The BaselineNet variants at or near a plateau, and the comparison of the best two of them."""
    trends = _baseline_trends(res, st)
    level = sorted((e for e, t in trends.items() if near_plateau(t)), key=lambda e: -st.loc[e, "mean"])
    return level, (compare(res, level[0], level[1]) if len(level) >= 2 else None)


def _locked(res: Results, st: pd.DataFrame) -> tuple[str, str, str]:
    level, c = levelled(res, st)
    vanish = _vanishing(res, st)[0]
    trends = _baseline_trends(res, st)
    whole = trends and all(st.loc[e, "train_size"] in (0, 50_000) for e in trends)
    if c is None and whole:  # the whole training set, and still too few settings have levelled off
        rising = [e for e, t in trends.items() if e not in level]
        measured = "；".join(_trend_text(st, e, t) for e, t in trends.items())
        open_ = (f"{'、'.join(_name(st, e) for e in rising)}到最后都不能确认已接近平台，接近平台的设置不足两种："
                 "看不出各种设置最终是否停在同一水平。")
        if vanish == FAILS:  # the claim blames the ceiling on vanishing gradients, which the row above refutes
            return (f"{FAILS}（梯度并未消失）", measured,
                    open_ + "但原报告把上限归于梯度消失，而按上一行首层的梯度并没有消失，“被这个结构性缺陷牢牢锁死”没有依据。")
        return f"{UNTESTABLE}（训练尚未到头）", measured, open_ + "上限是否被锁死还判断不了。"
    if c is None or c.reason in ("missing", "scale", "subset"):
        return SCALE, ("接近平台的 BaselineNet 设置不足两个" if c is None else comparison_text(st, c, _name(st, c.a), _name(st, c.b))), \
            "需要至少两种接近平台的优化设置才能看出上限是否随优化设置而变。"
    measured = comparison_text(st, c, _name(st, c.a), _name(st, c.b))
    slow = [e for e in BASELINE_VARIANTS if e in st.index and late_trend(res, e)["kind"] == "rising"]
    faster = (f"学习率更小的{'、'.join(_name(st, e) for e in slow)}到最后仍在上升，它的低准确率是训练得慢，不是上限更低。"
              if slow else "")
    if c.significant:
        return FAILS, measured, f"两种接近平台的优化设置停在显著不同的水平，上限随优化设置而变，并没有被结构锁死。{faster}"
    cause = ("按上一行，首层的梯度并没有消失，所以这个上限不能归因于梯度消失，更可能是 5 层、6 万参数的网络本身容量有限。"
             if vanish == FAILS else "")
    flat = all(late_trend(res, e)["kind"] == "flat" for e in (c.a, c.b))
    near = "两种已趋平的优化设置" if flat else "两种接近平台（已趋平或增速放缓）的优化设置"
    ceiling = "上限存在" if flat else "接近同一上限"
    return (f"{PARTIAL}（{ceiling}，但不是梯度消失所致）" if cause else HOLDS, measured,
            f"{near}停在误差之内的同一水平（{level_range(st, (c.a, c.b))}），与容量上限相符。{faster}{cause}")



def _not_capacity(res: Results, st: pd.DataFrame) -> tuple[str, str, str]:
    """'Not simply too few parameters': does the best BaselineNet near its plateau fit its own
    training set? Below UNDERFIT_ACC it underfits. If its curve has levelled off, that is a
    capacity limit and the claim fails; if it is still rising, too few parameters and too few
    epochs cannot be told apart, and the claim's own explanation is judged in the next row."""
    level, _ = levelled(res, st)
    trends = _baseline_trends(res, st)
    if not level and not (trends and all(st.loc[e, "train_size"] in (0, 50_000) for e in trends)):
        return SCALE, "没有接近平台的 BaselineNet 设置", "BaselineNet 还在明显上升，看不出它停在哪里、为什么停。"
    e = level[0] if level else max(trends, key=lambda x: st.loc[x, "mean"])  # else the best, still rising
    d = dynamics(res, e)
    measured = (f"{_name(st, e)}最后一个 epoch 训练准确率 {_pct(d['train_acc'])}，测试准确率 {_pct(d['test_acc'])}，"
                f"参数 {_params(res, 'baseline'):,} 个")
    if d["train_acc"] >= UNDERFIT_ACC:
        return HOLDS, measured, "模型能拟合训练集（训练准确率高），测试准确率却停住了，问题不在参数量。"
    gap = "与测试准确率相差无几" if d["gap"] < SMALL_GAP else f"比测试准确率高 {_pts(d['gap'], False)}"
    underfit = f"训练准确率只有 {_pct(d['train_acc'])}，{gap}：模型连训练集都没有拟合，是欠拟合。"
    t = late_trend(res, e)
    if level and t["kind"] == "flat":
        return FAILS, measured, (underfit + f"测试曲线已接近平台（最后 {TREND_EPOCHS} 个 epoch 平均每个 epoch 只涨 "
                                 f"{_pts(t['slope'], False)}，与 0 无显著差别）：这是容量（参数少、层窄）"
                                 "不足的表现，与“并非参数不足”相反。")
    return (f"{UNTESTABLE}（训练尚未到头）", measured,
            underfit + f"但曲线仍在{'缓慢' if level else ''}上升（最后 {TREND_EPOCHS} 个 epoch 平均每个 epoch "
            f"{_pts(t['slope'])}），{d['epochs']} 个 epoch 分不开“参数不足”与训练不够长。"
            "原报告给出的另一种解释（梯度消失）在下一行单独检验。")


UNDERFIT_ACC = 0.8  # a levelled-off model below this training accuracy has not fit its own training set
SMALL_GAP = 0.05  # a train−test gap under 5 points is "about equal"


def _vanishing(res: Results, st: pd.DataFrame) -> tuple[str, str, str]:
    rows = _rows(res, BASELINE_VARIANTS)
    if not rows:
        return SCALE, "没有 BaselineNet 的梯度记录", "没有梯度记录，无法检验。"
    measured = "；".join(_flow_text(r, _name(st, e)) for e, r in rows.items())
    reads = {e: flow_reading(r)["first"] for e, r in rows.items()}
    line = 1 / ORDER_OF_MAGNITUDE
    if all(v == "none" for v in reads.values()):
        return FAILS, measured, (f"按两种与层大小无关的度量，首层的梯度都与末层在同一数量级（比值不低于 {line:g}）；"
                                 "这个只有 5 个权重层的网络没有出现梯度消失，准确率的差距应另找原因。")
    if all(v == "vanishing" for v in reads.values()):
        return HOLDS, measured, "按两种度量，首层的梯度都比末层小一个数量级以上，显示出梯度消失。"
    which = "、".join(_name(st, e) for e, v in reads.items() if v != "none")
    return (f"{PARTIAL}（取决于度量或设置）", measured,
            f"{which}的首层梯度在某一种度量下低于末层的 1/{ORDER_OF_MAGNITUDE:g}，其余情形不低于；结论随度量而变，不能说梯度消失是确定的。")


def _training_lead(res: Results, st: pd.DataFrame) -> tuple[str, str, str]:
    """2.3's lead: "训练过程中的表现更能反映架构设计的优劣"."""
    lo, hi = "cnn_baseline", "cnn_baseline_sgd_high_lr"
    c = compare(res, hi, lo)
    if c.reason in ("missing", "scale"):
        return SCALE, f"缺少可比的 BaselineNet 结果：{_missing(st, lo, hi)}", "缺少只改学习率的同一架构对照，无法检验。"
    measured = ("同一个 BaselineNet 只改 SGD 学习率（0.001 → 0.01）：" + comparison_text(st, c, "学习率 0.01", "学习率 0.001")
                + (f"；学习率 0.001 的曲线{TREND_ZH[k]}" if (k := late_trend(res, lo)["kind"]) in TREND_ZH else ""))
    untestable = (f"{UNTESTABLE}（没有衡量架构优劣的独立标准）", measured)
    criterion = ("“更能反映架构设计的优劣”是一种方法上的主张：要检验它，需要一个独立于曲线和最终准确率、衡量架构优劣的标准，"
                 "本实验没有。")
    if not c.significant:
        return (*untestable, criterion + "本实验只能说：只改学习率时，两条曲线的差别没有超出误差。")
    return (*untestable, criterion + f"本实验能说的是：架构不变、只改学习率，同样的 epoch 数下准确率就相差 "
            f"{_pts(abs(c.diff), False)}，训练过程首先反映的是优化设置（优化器、学习率、训练长度）。只有在相同的训练配方下比较，"
            "曲线的差别才能归于架构，本项目的 Plain-18 与 ResNet-18 就是这样比较的；原报告的比较混用了不同的优化器和学习率，"
            "做不到这一点。")


# (id, section, topic, the study's words, builder): the claims 2.3.1 discusses, in the study's order
ENTRIES: tuple[tuple[str, str, str, str, Callable], ...] = (
    _abs_entry("cnn_baseline", "2.3.1"),
    _abs_entry("cnn_baseline_adam", "2.3.1"),
    _abs_entry("cnn_baseline_sgd_high_lr", "2.3.1"),
    _order_entry("baseline_adam_vs_sgd", "2.3.1", "BaselineNet 用 Adam（学习率 0.001）得到 62%，高于 SGD（学习率 0.001）的 43%",
                 "cnn_baseline_adam", "cnn_baseline"),
    _order_entry("baseline_highlr_best", "2.3.1", "SGD 把学习率提高到 0.01 后得到 65%，是 BaselineNet 中最好的，高于 Adam 的 62%",
                 "cnn_baseline_sgd_high_lr", "cnn_baseline_adam"),
    ("training_lead", "2.3", "2.3.1", "模型的最终性能仅仅是结果,而其训练过程中的表现更能反映架构设计的优劣。", _training_lead),
    ("plateau", "2.3.1", "2.3.1", "从性能曲线上看,其准确率的提升缓慢且很早就到达了平台期。", _plateau),
    ("not_capacity", "2.3.1", "2.3.1", "这并非简单的参数不足", _not_capacity),
    ("vanishing", "2.3.1", "2.3.1", "而是其串联结构的原罪——梯度消失。……靠近输入的底层网络几乎接收不到有效的梯度信号",
     _vanishing),
    ("ceiling_locked", "2.3.1", "2.3.1", "无论如何调整优化器与学习率,其性能上限都被这个结构性缺陷牢牢锁死。", _locked),
)
