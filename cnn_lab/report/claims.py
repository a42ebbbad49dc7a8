"""The study's claims, each checked once against the runs: one entry per claim with the study's
words, our measurement, a verdict and its reason.

The comparison table (``claims_table``), the 2.3 text (``section_claims``) and the summary
(``tally``, ``claim``) all read these entries, so they cannot disagree. ``claim_text.method_text``
is the paragraph that says, once, how a difference is decided.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import pandas as pd

from ..study import BASELINE_VARIANTS, PLAIN_CONTROL, STUDY_TABLE
from .gradients import ORDER_OF_MAGNITUDE, flow_reading, ratio_row
from .labels import STATUS_ZH, model_label, shown
from .load import Results
from .measures import dynamics, model_facts
from .claim_text import INTERVAL_METHOD, _name, _pct, _pts, _pv, _r, _signed, comparison_text, method_text  # noqa: F401
from .stats import (PLATEAU_SLOPE, TREND_EPOCHS, _last_block_resolution, cached, compare, completed_runs,
                    curve_shape, late_trend,
                    stage_rows, stage_summary, study_scale, summary_stats)

HOLDS, FAILS, PARTIAL = "成立", "不成立", "部分成立"
SCALE, WITHIN, REFERENCE = "规模不足无法判断", "差异在误差内", "参考（设置由本项目选定）"
UNTESTABLE, CONCEPT, FACT = "无法检验", "概念有误", "事实核对"
CONFOUNDED, OUT_OF_SCOPE = f"{UNTESTABLE}（对比有混杂）", f"{UNTESTABLE}（超出本实验范围）"
KINDS = (HOLDS, FAILS, PARTIAL, SCALE, WITHIN, UNTESTABLE, CONCEPT, "参考", FACT)
NOT_COUNTED = ("参考", FACT)  # rows that are not verdicts on a claim: left out of the tally

@dataclass(frozen=True)
class Claim:
    id: str
    section: str  # where the study says it (e.g. "2.3.1")
    topic: str  # the subsection of this report that discusses it ("2.3.1" … "2.3.4", "3")
    study: str  # the study's words
    measured: str  # our numbers
    verdict: str  # one of KINDS, 部分成立 with its part in brackets
    reason: str

    @property
    def kind(self) -> str:
        return next(k for k in (PARTIAL, FAILS, SCALE, WITHIN, UNTESTABLE, CONCEPT, "参考", FACT, HOLDS)
                    if self.verdict.startswith(k))


# ----------------------------------------------------------------- claim builders


def _missing(st: pd.DataFrame, *exps: str) -> str:
    bad = [f"{_name(st, e)}{STATUS_ZH[st.loc[e, 'state']] if e in st.index else '缺失'}"
           for e in exps if e not in st.index or st.loc[e, "state"] != "completed"]
    return "、".join(bad)


def _scale_words(st: pd.DataFrame, exp: str) -> str:
    n, e = int(st.loc[exp, "train_size"]), int(st.loc[exp, "epochs"])
    return f"{n or 50_000:,} 张训练图、{e} 个 epoch"


def _order(res: Results, st: pd.DataFrame, a: str, b: str, gap: float) -> tuple[str, str, str]:
    """(verdict, measurement, reason) of the study's 'a is higher than b by gap'."""
    la, lb = _name(st, a), _name(st, b)
    c = compare(res, a, b)
    if c.reason == "missing":
        return SCALE, f"缺少结果：{_missing(st, a, b)}", "缺少完成的运行，无法检验。"
    measured = comparison_text(st, c, la, lb)
    if c.reason == "scale":
        return SCALE, measured, (f"两者的训练规模不同（{_scale_words(st, a)}，对 {_scale_words(st, b)}），"
                                 "准确率不能直接比较。")
    if c.reason == "subset":
        return SCALE, measured, "训练子集上的比较只反映训练初期的快慢，不能代表原报告中训练完成的模型。"
    if c.winner_trained_longer:
        return SCALE, measured, (f"两者用同样的数据，但训练的 epoch 数不同（{c.epochs[0]} 对 {c.epochs[1]}），"
                                 "领先的一方训练得更久，差距不能归于架构。")
    budget = (f"（{la}只训练了 {c.epochs[0]} 个 epoch，{lb} {c.epochs[1]} 个，结论对前者偏保守）"
              if c.epochs and c.epochs[0] < c.epochs[1] else "")
    if c.verdict == "a":
        return HOLDS, measured, f"{la}的准确率高于{lb}，差异在 5% 水平上显著，方向与原报告一致{budget}。"
    if c.verdict == "b":
        return FAILS, measured, f"方向与原报告相反：{lb}的准确率显著高于{la}。"
    if c.high == c.high and c.high < gap:
        return FAILS, measured, (f"两者之差在误差内，且 95% 区间的上限（{_signed(c.high)} 个百分点）低于原报告的差距"
                                 f"（{gap * 100:.0f} 个百分点）：原报告的优势在本实验中没有复现。")
    return WITHIN, measured, f"差异不显著（{_pv(c.p)}），区间仍包含原报告的差距，本实验的精度不足以区分两者。"


def _absolute(res: Results, st: pd.DataFrame, exp: str) -> tuple[str, str, str]:
    r, q = st.loc[exp], STUDY_TABLE[exp][3]
    if r["state"] != "completed":
        return SCALE, STATUS_ZH[r["state"]], "没有完成的运行，无法比较。"
    measured = (f"{_pct(r['mean'])}（95% 区间 {_pct(r['low'])}–{_pct(r['high'])}，{int(r['n'])} 个种子，"
                f"{int(r['n_test']):,} 张测试图）；原报告 {q * 100:.0f}%，差 {_pts(shown(r['mean']) / 100 - q)}")
    if r["model"] == "baseline" and r["train_size"] in (0, 50_000):
        return REFERENCE, measured, ("原研究没有给出 epoch 数，BaselineNet 的 epoch 数是本项目参照原报告的准确率选定的，"
                                     "这一行只作对照，不计入判定。")
    if not study_scale(st, exp):
        return SCALE, measured, ("只在训练子集上训练，绝对准确率无法与原报告比较。" if 0 < st.loc[exp, "train_size"] < 50_000
                                 else f"只训练了 {int(st.loc[exp, 'epochs'])} 个 epoch，原报告的数字来自训练完成的模型，无法比较。")
    tol = 1.96 * math.sqrt(q * (1 - q) / 10_000)  # the study's own sampling error on 10,000 images
    inside = r["low"] - tol <= q <= r["high"] + tol
    return (HOLDS if inside else FAILS), measured, (
        f"原报告的数字{'落在' if inside else '不在'}本实验的 95% 区间内（已计入原报告自身约 ±{tol * 100:.2f} 个百分点的抽样误差）。")


TREND_ZH = {"rising": "仍在上升", "slowing": "已趋平（仍在缓慢上升）", "flat": "已趋平", "unclear": "看不清"}


def _trend_text(st: pd.DataFrame, exp: str, t: dict) -> str:
    gains = "/".join(f"{g * 100:+.2f}" for g in t["gains"])
    seeds = f"，{len(t['slopes'])} 个种子各自拟合" if len(t["slopes"]) > 1 else ""
    return (f"{_name(st, exp)}：最后 {TREND_EPOCHS} 个 epoch 的逐 epoch 变化 {gains} 个百分点，"
            f"斜率 {t['slope'] * 100:+.2f} 个百分点/epoch{seeds}，{TREND_ZH[t['kind']]}")


def _baseline_trends(res: Results, st: pd.DataFrame) -> dict[str, dict]:
    done = [e for e in BASELINE_VARIANTS if e in st.index and st.loc[e, "state"] == "completed"]
    return {e: t for e in done if (t := late_trend(res, e))["kind"] != "short"}


def _plateau(res: Results, st: pd.DataFrame) -> tuple[str, str, str]:
    trends = _baseline_trends(res, st)
    if not trends:
        return SCALE, "BaselineNet 训练的 epoch 太少", f"少于 {TREND_EPOCHS} 个 epoch，看不出曲线是否进入平台期。"
    measured = "；".join(_trend_text(st, e, t) for e, t in trends.items())
    level = [e for e, t in trends.items() if t["kind"] in ("flat", "slowing")]
    rising = [e for e, t in trends.items() if t["kind"] == "rising"]
    rule = (f"按每个种子自己的曲线判断（不把同一种子的各 epoch 当作独立样本）：斜率低于 {PLATEAU_SLOPE * 100:g} 个百分点/epoch "
            "记为趋平，各种子的上升都超过测试集抽样误差才记为仍在上升。")
    if level and not rising and len(level) == len(trends):
        return HOLDS, measured, rule + "各设置都已趋平。"
    if rising and not level:
        return FAILS, measured, rule + "各设置到最后仍在明显上升，并没有很早进入平台期。"
    if not level:
        return WITHIN, measured, rule + "曲线的走势在种子间波动之内，看不清是否已趋平。"
    names = lambda xs: "、".join(_name(st, e) for e in xs)  # noqa: E731
    return (f"{PARTIAL}（{names(level)}已趋平）", measured,
            rule + f"{names(level)}已趋平" + (f"，{names(rising)}仍在上升，说明它只是学得慢，还没有到达平台。" if rising else "。"))


def _ceiling(res: Results, st: pd.DataFrame) -> tuple[list[str], object]:
    """The BaselineNet variants that levelled off, and the comparison of the best two of them."""
    trends = _baseline_trends(res, st)
    level = sorted((e for e, t in trends.items() if t["kind"] in ("flat", "slowing")), key=lambda e: -st.loc[e, "mean"])
    return level, (compare(res, level[0], level[1]) if len(level) >= 2 else None)


def _locked(res: Results, st: pd.DataFrame) -> tuple[str, str, str]:
    level, c = _ceiling(res, st)
    vanish = _vanishing(res, st)[0]
    if c is None or c.reason in ("missing", "scale", "subset"):
        return SCALE, ("趋平的 BaselineNet 设置不足两个" if c is None else comparison_text(st, c, _name(st, c.a), _name(st, c.b))), \
            "需要至少两种已趋平的优化设置才能看出上限是否随优化设置而变。"
    measured = comparison_text(st, c, _name(st, c.a), _name(st, c.b))
    slow = [e for e in BASELINE_VARIANTS if e in st.index and late_trend(res, e)["kind"] == "rising"]
    faster = (f"学习率更小的{'、'.join(_name(st, e) for e in slow)}到最后仍在上升，它的低准确率是训练得慢，不是上限更低。"
              if slow else "")
    if c.significant:
        return FAILS, measured, f"两种已趋平的优化设置停在显著不同的水平，上限随优化设置而变，并没有被结构锁死。{faster}"
    cause = ("按上一行，首层的梯度并没有消失，所以这个上限不能归因于梯度消失，更可能是 5 层、6 万参数的网络本身容量有限。"
             if vanish == FAILS else "")
    return (f"{PARTIAL}（上限存在，但不是梯度消失所致）" if cause else HOLDS, measured,
            f"两种已趋平的优化设置停在误差之内的同一水平（约 {_pct(st.loc[c.a, 'mean'])}），上限确实存在。{faster}{cause}")


def _not_capacity(res: Results, st: pd.DataFrame) -> tuple[str, str, str]:
    """'Not simply too few parameters': does the levelled-off BaselineNet fit its own training set?"""
    level, _ = _ceiling(res, st)
    if not level:
        return SCALE, "没有已趋平的 BaselineNet 设置", "BaselineNet 还在上升，看不出它停在哪里、为什么停。"
    e = level[0]
    d = dynamics(res, e)
    measured = (f"{_name(st, e)}最后一个 epoch 训练准确率 {_pct(d['train_acc'])}，测试准确率 {_pct(d['test_acc'])}，"
                f"参数 {_params(res, 'baseline'):,} 个")
    if d["train_acc"] < UNDERFIT_ACC:
        return FAILS, measured, (f"已趋平的模型在训练集上也只有 {_pct(d['train_acc'])}，连训练数据都拟合不好：这正是容量"
                                 "（参数少、层窄）不足的表现；而梯度并没有消失（见上文）。证据指向参数不足，而不是梯度消失。")
    return HOLDS, measured, "模型能拟合训练集（训练准确率高），测试准确率却停住了，问题不在参数量。"


UNDERFIT_ACC = 0.8  # a levelled-off model below this training accuracy has not fit its own training set


def _flow_text(row: pd.Series, name: str) -> str:
    """A variant's gradient flow by both measures: first/last and weakest/last main-path layer."""
    f = flow_reading(row)
    both = lambda part: (f"每参数 RMS {_r(f[part + '_rms'])}"  # noqa: E731
                         + (f"、‖g‖/‖w‖ {_r(f[part + '_rel'])}" if f[part + "_rel"] == f[part + "_rel"] else ""))
    return f"{name}首层/末层 {both('first')}，最弱一层/末层 {both('weakest')}"


def _has_rms(row: pd.Series | None) -> bool:
    return row is not None and pd.notna(row.get("early_rms", math.nan))


def _rows(res: Results, exps) -> dict[str, pd.Series]:
    return {e: row for e in exps if (row := _ratio_of(res, e)) is not None}


MEASURE_ZH = {"rms": "每参数 RMS", "rel": "‖g‖/‖w‖"}


def _weak_by(reading: dict, part: str) -> str:
    """The measure(s) by which ``part`` ('first' or 'weakest') is below the order-of-magnitude line."""
    line = 1 / ORDER_OF_MAGNITUDE
    return "、".join(MEASURE_ZH[m] for m in MEASURE_ZH if reading[f"{part}_{m}"] < line)


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


def _ratio_of(res: Results, exp: str) -> pd.Series | None:
    from .gradients import gradient_ratios

    gr = gradient_ratios(res)
    if not len(gr) or exp not in set(gr["exp_name"]):
        return None
    row = gr.set_index("exp_name").loc[exp]
    return row if _has_rms(row) else None


RESNET_RUNS = ("cnn_resnet18_adam", "cnn_resnet18_sgd_cosine_aug")  # both recipes of ResNet-18


def _highway(res: Results, st: pd.DataFrame) -> tuple[str, str, str]:
    rows = _rows(res, RESNET_RUNS)
    if not rows:
        return SCALE, "没有 ResNet-18 的梯度记录", "没有梯度记录，无法检验。"
    measured = "；".join(_flow_text(r, _name(st, e)) for e, r in rows.items())
    reads = [flow_reading(r) for r in rows.values()]
    if any(x["first"] == "vanishing" for x in reads):
        return FAILS, measured, "按两种度量，ResNet-18 首层的梯度都比末层小一个数量级以上，看不出“高速公路”的作用。"
    split = [x for x in reads if x["first"] == "depends"]
    depends = (f"；但两种度量的结论不一致：按{_weak_by(split[0], 'first')}，首层低于末层的 1/10" if split else "")
    weakest = ("；同一规则下，主干上最弱的一层只有末层的 "
               + "、".join(_r(x["weakest_rms"]) for x in reads) + " 倍（每参数 RMS），中间层并非都得到同一数量级的梯度"
               if any(x["weakest"] != "none" for x in reads) else "")
    p = ratio_row(res, "plain18")
    if not _has_rms(p):
        return (f"{PARTIAL}（首层有梯度，未与无跳跃连接的网络对照）", measured,
                f"首层得到与末层同一数量级的梯度{depends}{weakest}；没有同深度、去掉跳跃连接的对照，"
                "梯度是否因跳跃连接才得以保留没有得到检验。")
    measured += "；" + _flow_text(p, "去掉跳跃连接的 Plain-18 ")
    fp = flow_reading(p)
    if fp["first"] == "vanishing":
        return (HOLDS, measured, f"同深度、去掉跳跃连接后，Plain-18 首层的梯度按两种度量都降到末层的 1/10 以下，"
                                 f"而 ResNet-18 没有：浅层的梯度确实靠跳跃连接保留{weakest}。")
    return (f"{PARTIAL}（首层有梯度，但不靠跳跃连接）", measured,
            f"ResNet-18 首层得到与末层同一数量级的梯度{depends}；但去掉全部跳跃连接的 Plain-18 首层"
            f"{'也是如此' if fp['first'] == 'none' else '只在一种度量下低于 1/10'}：18 层、带批归一化的网络没有跳跃连接"
            f"也没有明显的梯度消失，“高速公路”在这个深度上不是必需的{weakest}。")


def _deep_supervision(res: Results, st: pd.DataFrame) -> tuple[str, str, str]:
    d, r = ratio_row(res, "densenet121"), ratio_row(res, "resnet18")
    if not _has_rms(d):
        return SCALE, "没有 DenseNet-121 的梯度记录", "没有梯度记录，无法检验。"
    fd = flow_reading(d)
    measured = _flow_text(d, "DenseNet-121 ") + f"（最弱一层在深度 {d['rms_min_depth']:.2f}，0 为输入、1 为输出）"
    if _has_rms(r):
        measured += "；" + _flow_text(r, "ResNet-18 ")
    if fd["first"] == "vanishing":
        return FAILS, measured, "按两种度量，DenseNet-121 首层的梯度都比末层小一个数量级以上。"
    same_rule = ("ResNet-18 按同一规则也有这样的弱层，" if _has_rms(r) and flow_reading(r)["weakest"] != "none" else "")
    if fd["weakest"] == "none":
        return (f"{PARTIAL}（各层都有同一数量级的梯度）", measured,
                "各层得到的梯度都与末层在同一数量级，与“每一层都受到更直接的监督”相符；"
                "但梯度范数只说明梯度到达了各层，不能证明这是“深度监督”的作用。")
    return (f"{PARTIAL}（首层没有梯度消失，但并非每一层）", measured,
            f"首层的梯度与末层在同一数量级，但主干上最弱的一层{'按两种度量都' if fd['weakest'] == 'vanishing' else '在一种度量下'}"
            f"不到末层的 1/10，与“每一层都受到更直接的监督”不符；{same_rule}这不是 DenseNet 特有的现象。"
            "梯度范数也不能证明“深度监督”的作用。")


MIN_CURVE_EPOCHS = 5  # a curve's shape (smooth, still rising, overfitting) needs more than a few points


def _curves(res: Results, st: pd.DataFrame, exp: str) -> tuple[str, str, str]:
    if exp not in st.index or st.loc[exp, "state"] != "completed":
        return SCALE, f"缺少结果：{_missing(st, exp)}", "缺少完成的运行，无法检验。"
    cs = curve_shape(res, exp)
    if cs["epochs"] < MIN_CURVE_EPOCHS:
        return SCALE, f"只训练了 {cs['epochs']} 个 epoch", "epoch 太少，看不出曲线的形状。"
    measured = (f"{_scale_words(st, exp)}：测试准确率下降 {cs['acc_drops']} 次，测试损失上升 {cs['loss_rises']} 次，"
                f"第 1 个 epoch 的测试损失为最终值的 {cs['loss_spike']:.2f} 倍；最终训练与测试准确率相差 {_pts(cs['gap'], False)}")
    scope = f"在 {_scale_words(st, exp)} 的训练中，"
    if cs["acc_drops"]:
        return FAILS, measured, scope + f"测试准确率有 {cs['acc_drops']} 个 epoch 下降，曲线并不平稳。"
    if cs["loss_rises"]:
        return (f"{PARTIAL}（准确率持续上升）", measured,
                scope + f"测试准确率逐个 epoch 上升，但测试损失有 {cs['loss_rises']} 个 epoch 回升"
                + ("（只有一次，不足以认定为过拟合）。" if cs["loss_rises"] <= 1 else "，已出现过拟合的迹象。"))
    return HOLDS, measured, scope + "测试准确率逐个 epoch 上升，测试损失逐个 epoch 下降。"


def _cost(res: Results) -> pd.DataFrame | None:
    return res.cost.set_index("model") if res.cost is not None else None


def _params(res: Results, model: str) -> int | None:
    c = _cost(res)
    if c is not None and model in c.index:
        return int(c.loc[model, "params"])
    sub = res.runs[res.runs["model"] == model] if len(res.runs) else res.runs
    return int(sub["params"].iloc[0]) if len(sub) and sub["params"].iloc[0] == sub["params"].iloc[0] else None


def _memory_parts(res: Results) -> dict | None:
    c = _cost(res)
    if c is None or not {"densenet121", "resnet18"} <= set(c.index):
        return None
    d, r = c.loc["densenet121"], c.loc["resnet18"]
    out = {"cuda": str(d["memory_device"]).startswith("cuda"), "batch": int(d["memory_batch_size"]),
           "d": float(d["step_memory_mb"]), "r": float(r["step_memory_mb"]), "k": math.nan}
    if "densenet121_cifar" in c.index:
        out["k"] = float(c.loc["densenet121_cifar", "step_memory_mb"])
    out["method"] = ("CUDA 分配器峰值（max_memory_allocated）" if out["cuda"]
                     else "CPU 上新进程的峰值 RSS 增量，作为显存的代理指标")
    return out


def _memory(res: Results, st: pd.DataFrame) -> tuple[str, str, str]:
    m = _memory_parts(res)
    if m is None:
        return SCALE, "没有 DenseNet-121 与 ResNet-18 的内存测量", "缺少 cost.csv 的测量，无法检验。"
    rd, rk = m["d"] / m["r"], m["k"] / m["r"]
    measured = (f"单步训练峰值内存（{m['method']}，batch {m['batch']}）：原报告所用的 DenseNet-121（ImageNet 输入层）"
                f"{m['d']:.1f} MB，ResNet-18 {m['r']:.1f} MB（{rd:.2f} 倍）")
    first = next((x for x in stage_rows("densenet121") if "block" in x["stage"]), None)
    shrink = f"第一个稠密块之前特征图已缩小到 {first['resolution']}×{first['resolution']}，" if first else ""
    where = "" if m["cuda"] else "测量的是 CPU 内存，作为显存的代理。"
    if pd.notna(rk):
        measured += f"；同分辨率的 DenseNet-121（CIFAR 输入层）{m['k']:.1f} MB（{rk:.2f} 倍）"
    if rd > 1.1:
        return HOLDS, measured, f"原报告所用的 DenseNet-121 训练内存高于 ResNet-18。{where}"
    equal = (f"只有在同等分辨率下（CIFAR 输入层），特征拼接才使内存达到 ResNet-18 的 {rk:.2f} 倍。" if pd.notna(rk) and rk > 1.1
             else "同等分辨率下也没有更高。" if pd.notna(rk) else "")
    return (f"{FAILS}（对原报告的模型）", measured,
            f"对原报告所用的模型不成立：它在 32×32 图像上{shrink}训练内存只有 ResNet-18 的 {rd:.2f} 倍。{equal}{where}")


def _efficiency(res: Results, st: pd.DataFrame) -> tuple[object, str, str]:
    """DenseNet-121 against ResNet-18 at equal training: the comparison, the measurement with the
    parameter counts (the architecture's fact, stated here and nowhere else), and the verdict word."""
    pd_, pr = _params(res, "densenet121"), _params(res, "resnet18")
    c = compare(res, "cnn_densenet121_adam", "cnn_resnet18_adam")
    params = f"参数量 DenseNet-121 {pd_:,}，ResNet-18 {pr:,}（少 {(1 - pd_ / pr) * 100:.1f}%）" if pd_ and pr else "缺少参数量"
    if c.reason == "missing":
        return c, params, SCALE
    measured = params + "；" + comparison_text(st, c, "DenseNet-121", "ResNet-18")
    if c.reason in ("scale", "subset"):
        return c, measured, SCALE
    if c.verdict == "b":
        return c, measured, FAILS
    return c, measured, (HOLDS if pd_ and pr and pd_ < pr else FAILS)


def _param_efficiency(res: Results, st: pd.DataFrame) -> tuple[str, str, str]:
    c, measured, kind = _efficiency(res, st)
    if kind == SCALE:
        return SCALE, measured, ("参数少是结构本身的事实，不是检验；参数效率指同样训练下每个参数换来的准确率，"
                                 "要比较训练程度相同的准确率，本规模无法判断。")
    if kind == FAILS:
        return FAILS, measured, ("参数虽少，但同样训练下准确率显著低于 ResNet-18，没有做到“用更少的参数达到相当甚至更好的性能”。"
                                 if c.verdict == "b" else "DenseNet-121 的参数并不比 ResNet-18 少。")
    return HOLDS, measured, "同样训练下，DenseNet-121 用更少的参数达到了不低于 ResNet-18 的准确率。"


@lru_cache(maxsize=None)
def _stem_of(model: str) -> tuple[int, int, bool]:
    from ..models import create_model

    f = create_model(model).features
    return f.conv0.kernel_size[0], f.conv0.stride[0], hasattr(f, "pool0")


def _stem(res: Results, st: pd.DataFrame) -> tuple[str, str, str]:
    k, s, pool = _stem_of("densenet121")
    ss = stage_summary(["densenet121", "resnet18"])
    r1 = _last_block_resolution("densenet121")[1]
    measured = (f"本项目的 DenseNet-121 的 conv0 为 {k}×{k}、步长 {s}{'，其后接最大池化' if pool else ''}；"
                f"在 32×32 输入上最后一个稠密块只有 {r1}×{r1}，每图 {ss.loc['densenet121', 'macs'] / 1e6:.1f} M MACs"
                f"（ResNet-18 为 {ss.loc['resnet18', 'macs'] / 1e6:.1f} M）")
    if (k, s) == (7, 2):
        return (f"{FACT}：conv0 一致", measured,
                "原报告的打印只列出 conv0（7×7、步长 2，与 torchvision 版相同），省略了其后的 norm0、relu0、pool0 几行；"
                "因此只能说原研究的输入层以同样的 7×7、步长 2 卷积开头，很可能就是这一版本，本报告对输入层的分析"
                "大概率也适用于原报告的模型。")
    return f"{FACT}：conv0 不同", measured, "本项目的 DenseNet-121 与原报告打印的 conv0 不同，输入层的分析不能直接套用到原报告。"


def _se_parity(res: Results, st: pd.DataFrame) -> tuple[str, str, str]:
    a, b = "cnn_se_resnet18_adam", "cnn_resnet18_adam"
    c = compare(res, a, b)
    if c.reason == "missing":
        return SCALE, f"缺少结果：{_missing(st, a, b)}", "缺少完成的运行，无法检验。"
    measured = comparison_text(st, c, "SE-ResNet-18", "ResNet-18")
    if c.reason in ("scale", "subset"):
        return SCALE, measured, "训练子集上的比较只反映训练初期，不能代表训练完成的模型。"
    if c.significant:
        return FAILS, measured, f"两者差异显著（{_pv(c.p)}），并不持平。"
    return HOLDS, measured, f"两者之差不显著（{_pv(c.p)}），与“持平”一致。"


def _saturation(res: Results, st: pd.DataFrame) -> tuple[str, str, str]:
    exp = "cnn_resnet18_adam"
    if exp not in st.index or st.loc[exp, "state"] != "completed":
        return SCALE, f"缺少结果：{_missing(st, exp)}", "缺少完成的运行，无法检验。"
    t = late_trend(res, exp)
    if t["kind"] == "short" or 0 < st.loc[exp, "train_size"] < 50_000:
        return SCALE, f"ResNet-18 训练了 {int(st.loc[exp, 'epochs'])} 个 epoch", "训练太短，看不出 ResNet-18 是否接近饱和。"
    measured = _trend_text(st, exp, t)
    if t["kind"] == "rising":
        return FAILS, measured, "ResNet-18 的测试准确率到最后仍在明显上升，尚未饱和。"
    return (f"{PARTIAL}（准确率已趋平）", measured,
            "ResNet-18 的测试准确率已趋平；但“通道依赖不是瓶颈”本身没有得到检验。")


def _skip_key(res: Results, st: pd.DataFrame) -> tuple[str, str, str]:
    """§3: the baseline contrast is confounded; the plain network isolates the skip connection."""
    verdict, measured, why = _skip_confounded(res, st)
    c, skip = _skip_test(res, st)
    if c.reason in ("missing", "scale", "subset"):
        if c.reason == "subset":
            measured += f"；同深度对照（训练子集）：{skip}"
        return verdict, measured, why
    measured += f"；同深度对照：{skip}"
    if c.verdict == "a":
        return (f"{PARTIAL}（同深度下跳跃连接带来 {_pts(c.diff, False)}）", measured,
                "与 BaselineNet 的对比有混杂，不能证明什么；但同深度、只去掉跳跃连接的 Plain-18 显著低于 ResNet-18，"
                "这部分差距可以归于跳跃连接。“基石”是对整个领域的判断，超出了一组 18 层网络所能说明的范围。")
    return (FAILS, measured,
            "原报告用来“证明”的对比（BaselineNet 对 ResNet/DenseNet）同时改变了深度、宽度、参数量与 BatchNorm，证明不了；"
            "而同深度、只去掉跳跃连接的 Plain-18 与 ResNet-18 "
            + ("之差在误差内" if c.verdict == "tie" else "相比反而更高")
            + "，ResNet-18 对 BaselineNet 的优势在这里来自深度、宽度与 BatchNorm，而不是跳跃连接。"
            "跳跃连接的价值在更深的网络上才显现（He 等 2016 的 34 层对照），本实验没有覆盖。")


def _skip_confounded(res: Results, st: pd.DataFrame) -> tuple[str, str, str]:
    pb, pr = _params(res, "baseline"), _params(res, "resnet18")
    if not pb or not pr:
        return SCALE, "缺少参数量", "缺少参数量，无法检验。"
    g = res.grads
    layers = {m: int(g[g["model"] == m]["layer_index"].max()) + 1 for m in ("baseline", "resnet18")
              if len(g) and (g["model"] == m).any()}
    depth = (f"，权重层 {layers['resnet18']} 对 {layers['baseline']} 个" if len(layers) == 2 else "")
    measured = f"参数量 ResNet-18 {pr:,}，BaselineNet {pb:,}（{pr / pb:.1f} 倍）{depth}；ResNet-18 另有 BatchNorm"
    why = (f"ResNet-18 与 BaselineNet 同时在参数量（{pr / pb:.1f} 倍）、深度、宽度和 BatchNorm 上不同，"
           "这组对比无法把准确率的差距归于跳跃连接；要检验它，需要同深度、只去掉跳跃连接的对照网络。")
    c = compare(res, "cnn_resnet18_adam", "cnn_baseline_sgd_high_lr")
    if c.reason is None and c.verdict == "a":
        return (f"{PARTIAL}（ResNet-18 确实更高，归因无法检验）", measured + "；" +
                comparison_text(st, c, "ResNet-18", _name(st, "cnn_baseline_sgd_high_lr")),
                "ResNet-18 的准确率显著高于最好的基线；但" + why)
    return CONFOUNDED, measured, why


def _dichotomy(res: Results, st: pd.DataFrame) -> tuple[str, str, str]:
    m = _memory_parts(res)
    if m is None:
        return SCALE, "缺少内存的测量", "缺少测量，无法检验。"
    mem_ok = m["r"] < m["d"] / 1.1  # ResNet-18 cheaper than the study's DenseNet-121
    measured = (f"单步峰值内存 ResNet-18 {m['r']:.1f} MB，原报告所用的 DenseNet-121 {m['d']:.1f} MB"
                + (f"，同分辨率的 DenseNet-121 {m['k']:.1f} MB" if m["k"] == m["k"] else ""))
    _, _, eff = _efficiency(res, st)
    eff_words = {HOLDS: "参数效率一半成立", FAILS: "参数效率一半不成立", SCALE: "参数效率一半本规模无法判断"}[eff]
    half = f"“后者在参数效率上更胜一筹”与 2.3.3 节参数效率一行是同一个检验，{eff_words}，不再重复计入。"
    if mem_ok:
        return (HOLDS if eff == HOLDS else f"{PARTIAL}（显存一半成立）"), measured, "ResNet-18 的训练内存更低。" + half
    same = ("只有在同等分辨率下（CIFAR 输入层）ResNet-18 才更省内存" if pd.notna(m["k"]) and m["k"] > 1.1 * m["r"]
            else "ResNet-18 并不更省内存")
    return (f"{FAILS}（对原报告的模型）" if eff != HOLDS else f"{PARTIAL}（参数效率一半成立）", measured,
            f"显存一半：对原报告所用的模型不成立，{same}。" + half)


RESNET, PLAIN = "cnn_resnet18_adam", PLAIN_CONTROL  # the skip connection's controlled pair
# He et al. 2016, Table 2 (ImageNet, top-1 error): the plain and residual networks at 18 and 34 layers
HE_2016 = {"plain18": 27.94, "resnet18": 27.88, "plain34": 28.54, "resnet34": 25.03}


def _train_fit(res: Results, exp: str) -> float:
    """The last epoch's training loss (mean over completed seeds): how well the network fits its data."""
    return float(completed_runs(res, exp)["final_train_loss"].astype(float).mean())


def _skip_test(res: Results, st: pd.DataFrame) -> tuple[object, str]:
    """ResNet-18 against Plain-18 (the same network without its shortcuts): the comparison and
    its measurement, test accuracy and the final training loss of each."""
    c = compare(res, RESNET, PLAIN)
    if c.reason == "missing":
        return c, f"缺少结果：{_missing(st, RESNET, PLAIN)}"
    return c, (comparison_text(st, c, "ResNet-18", "Plain-18")
               + f"；最终训练损失 ResNet-18 {_train_fit(res, RESNET):.3f}，Plain-18 {_train_fit(res, PLAIN):.3f}")


def _he_words() -> str:
    h = HE_2016
    return (f"He 等（2016）在 ImageNet 上也只在更深时看到退化：18 层时普通网络与残差网络的 top-1 错误率为 "
            f"{h['plain18']:.2f}% 对 {h['resnet18']:.2f}%，34 层时为 {h['plain34']:.2f}% 对 {h['resnet34']:.2f}%")


def _degradation(res: Results, st: pd.DataFrame) -> tuple[str, str, str]:
    c, measured = _skip_test(res, st)
    if c.reason == "missing":
        return SCALE, measured, "缺少同深度去掉跳跃连接的对照（Plain-18），无法检验。"
    if c.reason in ("scale", "subset"):
        return SCALE, measured, ("训练子集上的比较只反映训练初期；退化问题说的是训练充分后更深的普通网络"
                                 "反而误差更高，训练初期的快慢不能回答。")
    if c.verdict == "a":
        return (f"{PARTIAL}（18 层时跳跃连接已有帮助）", measured,
                "同深度、同数据、同训练量下，去掉跳跃连接后准确率显著降低；但“退化”指更深的普通网络比浅的更差，"
                f"这需要比较不同深度，本实验只有 18 层一种。{_he_words()}。")
    if c.verdict == "b":
        return FAILS, measured, f"去掉跳跃连接的 Plain-18 反而显著高于 ResNet-18，18 层时看不到跳跃连接的作用。{_he_words()}。"
    return (WITHIN, measured, "18 层时去掉全部跳跃连接并没有让网络更难训练，两者之差在误差内，"
            f"这个深度上没有可供跳跃连接“解决”的退化。{_he_words()}；要检验原报告的说法需要 34 层以上的对照。")


def _identity(res: Results, st: pd.DataFrame) -> tuple[str, str, str]:
    return (OUT_OF_SCOPE, "本实验只训练了一种深度的 ResNet，没有记录残差分支的权重是否趋近于零",
            "这是残差结构的设计动机，本身合理；但“从深度中获益”要比较不同深度的残差网络，"
            "本实验没有这样的变体，也没有测量残差分支的大小，所以无法检验。")


def _lossless(res: Results, st: pd.DataFrame) -> tuple[str, str, str]:
    """2.3.2 "梯度可以通过这条恒等映射的路径无损地向前传播": the direction and "lossless", from the built network."""
    f = model_facts("resnet18")
    blocks, proj = sum(f["blocks"]), _projections("resnet18")
    return (CONCEPT, f"ResNet-18 的 {blocks} 个残差块在相加之后都接一个 ReLU；{proj} 处捷径是 1×1 卷积加批归一化的投影，"
                     "不是恒等映射",
            "有两处不准确。其一，梯度是沿反向（从损失到输入）传播的，向前传播的是激活值。其二，“无损”不成立："
            f"本网络（He 等 2016 的原始设计）每次相加后都经过 ReLU，和为负的位置梯度被置零；{proj} 处投影捷径也会改变梯度。"
            "只有把激活移到分支内部的“预激活”设计（He 等 2016 年的后续工作）才让捷径成为干净的恒等路径。"
            "正确的说法是：捷径让梯度不必逐层连乘，衰减大大减轻，而不是无损。")


@lru_cache(maxsize=None)
def _projections(model: str) -> int:
    from ..models import create_model

    return sum(1 for m in create_model(model).modules()
               if type(m).__name__ == "BasicBlock" and m.shortcut is not None and len(m.shortcut) > 0)


def _every_layer(res: Results, st: pd.DataFrame) -> tuple[str, str, str]:
    """2.3.3 "任何一层都能直接接收到来自损失函数以及所有其前序层级的梯度信号"."""
    f = model_facts("densenet121")
    n_blocks = len(f["dense_layers"])
    return (CONCEPT, f"DenseNet-121 有 {n_blocks} 个稠密块（各 {'、'.join(map(str, f['dense_layers']))} 层），"
                     f"块之间由 {n_blocks - 1} 个过渡层相连；直接连接只在块内",
            "方向说反了：一层的梯度来自它后面的层（它的输出被块内所有后续层读取），而不是“前序层级”；前序层从它这里接收梯度。"
            "“任何一层都能直接接收来自损失函数的梯度”也不准确：稠密连接只在一个块之内，前几个块的层要经过过渡层、"
            "再经过后面的块才到达分类层，并没有到损失函数的直接路径。")


def _se_attention(res: Results, st: pd.DataFrame) -> tuple[str, str, str]:
    """2.3.4 "它学会了'关注'信息量大的特征,抑制噪声或冗余特征"."""
    f = model_facts("se_resnet18")
    return (OUT_OF_SCOPE, f"本实验没有记录 SE 模块的激励权重（每个残差块一组，压缩比 {f['se_reduction']}）",
            "要检验它，需要在测试图上记录每个 SE 模块输出的通道权重，比较它们在不同类别、不同层之间是否有明显差异，"
            "并检验压低权重的通道是否确实对预测贡献小；只看准确率（与 ResNet-18 相当）说明不了 SE 学到了什么。")


def _training_lead(res: Results, st: pd.DataFrame) -> tuple[str, str, str]:
    """2.3's lead: "训练过程中的表现更能反映架构设计的优劣"."""
    lo, hi = "cnn_baseline", "cnn_baseline_sgd_high_lr"
    c = compare(res, hi, lo)
    if c.reason in ("missing", "scale"):
        return SCALE, f"缺少可比的 BaselineNet 结果：{_missing(st, lo, hi)}", "缺少只改学习率的同一架构对照，无法检验。"
    measured = ("同一个 BaselineNet 只改 SGD 学习率（0.001 → 0.01）：" + comparison_text(st, c, "lr=0.01", "lr=0.001")
                + (f"；lr=0.001 的曲线{TREND_ZH[k]}" if (k := late_trend(res, lo)["kind"]) in TREND_ZH else ""))
    if not c.significant:
        return WITHIN, measured, "只改学习率时曲线相差在误差内，本实验不能说明训练过程受优化设置多大影响。"
    return (FAILS, measured,
            f"架构不变、只改学习率，同样的 epoch 数下准确率就相差 {_pts(abs(c.diff), False)}：训练过程首先反映的是优化设置"
            "（优化器、学习率、训练长度），并不专属于架构。要用训练过程比较架构，必须在相同的训练配方下比较，"
            "本项目的 Plain-18 对照就是这样做的。")


def _se_efficiency(res: Results, st: pd.DataFrame) -> tuple[str, str, str]:
    """§3 "在训练中教会模型'应该关注什么',是提升模型智能和效率的重要方向"."""
    f, r = model_facts("se_resnet18"), model_facts("resnet18")
    c = compare(res, "cnn_se_resnet18_adam", "cnn_resnet18_adam")
    ss, sr = (_seconds(res, e) for e in ("cnn_se_resnet18_adam", "cnn_resnet18_adam"))
    cost = f"SE 多出 {(f['params'] - r['params']) / r['params'] * 100:.1f}% 的参数" + (
        f"，每 epoch 用时为 ResNet-18 的 {ss / sr:.2f} 倍" if ss == ss and sr == sr else "")
    if c.reason in ("missing", "scale", "subset"):
        return SCALE, cost, "效率要看同样代价下准确率是否更高，需要训练完成的 SE-ResNet-18 与 ResNet-18 对比。"
    measured = cost + "；" + comparison_text(st, c, "SE-ResNet-18", "ResNet-18")
    if c.verdict == "a":
        return (f"{PARTIAL}（准确率更高）", measured, "SE-ResNet-18 用很少的额外参数换来了显著更高的准确率；"
                "“提升智能”与“重要方向”是展望，本实验无法检验。")
    return (FAILS, measured, "在本实验中，SE 模块多花了参数和时间，准确率却没有显著提高，没有提升效率；"
            "它在别的任务上是否有益是另一个问题，不能用本实验支持。")


def _seconds(res: Results, exp: str) -> float:
    sub = res.runs[(res.runs["exp_name"] == exp) & (res.runs["status"] == "completed")] if len(res.runs) else res.runs
    return float(sub["seconds_per_epoch"].mean()) if len(sub) else math.nan


def _novelty(res: Results, st: pd.DataFrame) -> tuple[str, str, str]:
    return (OUT_OF_SCOPE, "本实验没有测量各层特征之间的冗余程度",
            "“学习补充性而非冗余的特征”描述的是设计意图（模型并不“知道”什么，拼接只是让后面的层能直接读到前面的特征）；"
            "要检验它，需要分析各层新增特征的相关性或冗余度，本实验的记录不支持这种分析。")


def _harder_data(res: Results, st: pd.DataFrame) -> tuple[str, str, str]:
    return (OUT_OF_SCOPE, "本实验只用 CIFAR-10",
            "这是对其他数据集的预测，本实验只在 CIFAR-10 上训练，无法检验；它应写成有待验证的推测，而不是结论。")


def _meta_learning(res: Results, st: pd.DataFrame) -> tuple[str, str, str]:
    return (CONCEPT, "SE 模块按每张图的特征计算通道权重，其参数与网络其余部分一起由同一个优化器在同一任务上训练",
            "SE 是一种依赖输入的特征重标定（通道注意力），并不学习“如何学习”（如学习初始化、学习率或更新规则），"
            "把它称为“元学习”并不准确；“必经之路”是展望，不是本实验能检验的。")


def _struggle(res: Results, st: pd.DataFrame) -> tuple[str, str, str]:
    (v, vm, _), (cv, cm, _) = _vanishing(res, st), _curves(res, st, "cnn_resnet18_adam")
    measured = f"{vm}；ResNet-18 {cm}"
    if SCALE in (v, cv):
        return SCALE, measured, ("ResNet-18 的训练曲线太短，看不出训练是否“稳定、可控”。" if cv == SCALE
                                 else "没有 BaselineNet 的梯度记录，无法检验。")
    smooth = cv == HOLDS or cv.startswith(PARTIAL)
    if not smooth:
        return FAILS, measured, "ResNet-18 的测试准确率曲线本身并不平稳，谈不上“稳定、可控”。"
    if v == HOLDS:
        return (f"{PARTIAL}（两点都观察到，归因有混杂）", measured,
                "BaselineNet 出现了梯度消失、ResNet-18 训练平稳；但两者在深度、宽度与批归一化上也不同。")
    return (f"{PARTIAL}（ResNet-18 训练平稳）", measured,
            "ResNet-18 的训练确实平稳；但作为对照的 BaselineNet 并没有出现梯度消失，本实验里没有可“搏斗”的梯度消失，"
            "“转变”一说没有得到检验。")


# ----------------------------------------------------------------- the list


def _q(exp: str) -> str:
    m, o, lr, acc = STUDY_TABLE[exp]
    return f"{model_label(m)}，{'SGD' if o == 'sgd' else 'Adam'}，学习率 {lr:g}，最终准确率 {acc * 100:.0f}%"


def _abs_entry(exp: str, topic: str) -> tuple:
    return (f"acc_{exp.removeprefix('cnn_')}", "2.1", topic, _q(exp), lambda res, st: _absolute(res, st, exp))


def _order_entry(cid: str, topic: str, study: str, a: str, b: str) -> tuple:
    gap = STUDY_TABLE[a][3] - STUDY_TABLE[b][3]
    return (cid, "2.1", topic, study, lambda res, st: _order(res, st, a, b, gap))


# (id, section, topic, the study's words, builder)
ENTRIES: tuple[tuple[str, str, str, str, Callable], ...] = (
    _abs_entry("cnn_baseline", "2.3.1"),
    _abs_entry("cnn_baseline_adam", "2.3.1"),
    _abs_entry("cnn_baseline_sgd_high_lr", "2.3.1"),
    _order_entry("baseline_adam_vs_sgd", "2.3.1", "BaselineNet 用 Adam（lr=0.001）得到 62%，高于 SGD（lr=0.001）的 43%",
                 "cnn_baseline_adam", "cnn_baseline"),
    _order_entry("baseline_highlr_best", "2.3.1", "SGD 把学习率提高到 0.01 后得到 65%，是 BaselineNet 中最好的，高于 Adam 的 62%",
                 "cnn_baseline_sgd_high_lr", "cnn_baseline_adam"),
    ("training_lead", "2.3", "2.3.1", "模型的最终性能仅仅是结果,而其训练过程中的表现更能反映架构设计的优劣。", _training_lead),
    ("plateau", "2.3.1", "2.3.1", "从性能曲线上看,其准确率的提升缓慢且很早就到达了平台期。", _plateau),
    ("not_capacity", "2.3.1", "2.3.1", "这并非简单的参数不足", _not_capacity),
    ("vanishing", "2.3.1", "2.3.1", "而是其串联结构的原罪——梯度消失。……靠近输入的底层网络几乎接收不到有效的梯度信号",
     _vanishing),
    ("ceiling_locked", "2.3.1", "2.3.1", "无论如何调整优化器与学习率,其性能上限都被这个结构性缺陷牢牢锁死。", _locked),
    _abs_entry("cnn_resnet18_adam", "2.3.2"),
    _order_entry("resnet_vs_baseline", "2.3.2", "ResNet-18 得到 82%，远高于 BaselineNet 的最好成绩 65%",
                 "cnn_resnet18_adam", "cnn_baseline_sgd_high_lr"),
    ("degradation", "1.2.2", "2.3.2", "经典的残差网络,通过跳跃连接解决了深度网络的退化问题。", _degradation),
    ("identity_easy", "2.3.2", "2.3.2", "如果恒等映射就是最优解,模型只需将残差部分的权重学习为零即可……"
     "网络可以轻松地从\"深度\"中获益,而不是受其所困。", _identity),
    ("resnet_smooth", "2.3.2", "2.3.2", "ResNet的性能曲线展现了完全不同的训练动态:稳定、快速且持续的性能提升。",
     lambda res, st: _curves(res, st, "cnn_resnet18_adam")),
    ("gradient_highway", "2.3.2", "2.3.2", "它为梯度提供了一条从高层直达低层的\"高速公路\"……确保了即使网络非常深,"
     "底层网络也能接收到有效的梯度信号", _highway),
    ("lossless_identity", "2.3.2", "2.3.2", "在训练过程中,梯度可以通过这条恒等映射的路径无损地向前传播,有效绕开了中间权重层的连乘衰减。",
     _lossless),
    ("densenet_stem", "1.2.3", "2.3.3",
     "(conv0): Conv2d(3, 64, kernel_size=(7, 7), stride=(2, 2), padding=(3, 3), bias=False)", _stem),
    _abs_entry("cnn_densenet121_adam", "2.3.3"),
    _order_entry("densenet_vs_resnet", "2.3.3", "DenseNet-121 得到 77%，低于 ResNet-18 的 82%",
                 "cnn_resnet18_adam", "cnn_densenet121_adam"),
    ("densenet_every_layer", "2.3.3", "2.3.3", "在训练时,任何一层都能直接接收到来自损失函数以及所有其前序层级的梯度信号",
     _every_layer),
    ("densenet_deep_supervision", "2.3.3", "2.3.3", "隐式的深度监督:由于梯度路径极短,网络中的每一层都受到了更直接的监督,"
     "极大地缓解了梯度消失问题。", _deep_supervision),
    ("densenet_param_efficiency", "2.3.3", "2.3.3", "这使得DenseNet在参数效率上非常高,可以用更少的参数达到与ResNet相当甚至更好的性能。",
     _param_efficiency),
    ("densenet_novelty", "2.3.3", "2.3.3", "鼓励特征创新:由于模型知道旧的特征图谱会被一直保留和传递,它会倾向于学习新的、补充性的特征,"
     "而不是冗余的特征。", _novelty),
    ("densenet_curves", "2.3.3", "2.3.3", "从性能曲线上看,DenseNet同样表现出高效的训练过程。",
     lambda res, st: _curves(res, st, "cnn_densenet121_adam")),
    ("densenet_memory", "2.3.3", "2.3.3", "但其代价是巨大的显存消耗,因为每一层都需要拼接前面所有层的特征图", _memory),
    _abs_entry("cnn_se_resnet18_adam", "2.3.4"),
    ("se_attention", "2.3.4", "2.3.4", "它学会了\"关注\"信息量大的特征,抑制噪声或冗余特征。", _se_attention),
    ("se_parity", "2.3.4", "2.3.4", "虽然在CIFAR-10这个相对简单的任务上,其最终性能与ResNet-18持平", _se_parity),
    ("se_saturation", "2.3.4", "2.3.4", "更可能的原因是,ResNet-18的特征提取能力已接近饱和,通道间的复杂依赖并非性能瓶颈。",
     _saturation),
    ("se_harder_data", "2.3.4", "2.3.4", "在更具挑战性的数据集上,这种动态调整资源分配的能力通常会带来显著的性能提升。",
     _harder_data),
    ("skip_connections_key", "3", "3", "基线CNN与ResNet/DenseNet的对比雄辩地证明,跳跃连接是现代深度学习的基石。",
     _skip_key),
    ("add_vs_concat", "3", "3", "前者在实现和显存上更具优势,后者则在参数效率上更胜一筹。", _dichotomy),
    ("no_more_struggle", "3", "3", "它将深度网络的训练从与梯度消失的\"搏斗\",转变为一个稳定、可控的优化过程", _struggle),
    ("se_efficiency", "3", "3", "在训练中教会模型\"应该关注什么\",是提升模型智能和效率的重要方向。", _se_efficiency),
    ("se_meta_learning", "3", "3", "但它所代表的\"元学习\"(学习如何学习)思想,是通往更强大人工智能模型的必经之路。",
     _meta_learning),
)


def claims(res: Results) -> list[Claim]:
    """Every claim of the study, checked once per loaded report."""
    def make():
        st = summary_stats(res)
        out = []
        for cid, section, topic, study, build in ENTRIES:
            verdict, measured, reason = build(res, st)
            out.append(Claim(cid, section, topic, study, measured, verdict, reason))
        return out
    return list(cached(res, "claims", make))


def claim(res: Results, cid: str) -> Claim:
    return next(c for c in claims(res) if c.id == cid)


def reference_claim(res: Results, c: Claim) -> Claim | None:
    """The reference runs' verdict on ``c``, where the user's own scale leaves it at 规模不足 and
    the reference decides it (None otherwise: the user's verdict stands alone)."""
    if res.reference is None or c.kind != SCALE:
        return None
    ref = claim(res.reference, c.id)
    return ref if ref.kind != SCALE else None


def effective_kind(res: Results, c: Claim) -> str:
    """The verdict a claim is counted under: the user's own, or the reference's where it decides."""
    ref = reference_claim(res, c)
    return ref.kind if ref is not None else c.kind


def section_claims(res: Results, topic: str) -> list[Claim]:
    """The claims this report discusses in subsection ``topic`` ("2.3.1" … "2.3.4", "3")."""
    return [c for c in claims(res) if c.topic == topic]


REFERENCE_COLUMN = "参考运行的结论"


def claims_table(res: Results) -> pd.DataFrame:
    """与原报告对比: 原报告观点 / 本实验测量 / 结论 / 理由, one row per claim (no index to show), and
    where the user's own runs are too small to decide, the reference runs' verdict in a column of
    its own (its measurement and reason marked 参考运行 in theirs)."""
    rows = []
    for i, c in enumerate(claims(res), 1):
        ref = reference_claim(res, c)
        rows.append({"#": str(i), "原报告观点": f"（{c.section}）{c.study}",
                     "本实验测量": c.measured + (f"。参考运行：{ref.measured}" if ref else ""),
                     "结论": c.verdict, REFERENCE_COLUMN: ref.verdict if ref else "—",
                     "理由": c.reason + (f"参考运行：{ref.reason}" if ref else "")})
    return pd.DataFrame(rows, columns=["#", "原报告观点", "本实验测量", "结论", REFERENCE_COLUMN, "理由"])


def row_numbers(res: Results, ids) -> str:
    """Where claims stand in the 2.8 table, e.g. "表 5 第 6–9、14 行" (runs of consecutive rows joined)."""
    index = {c.id: i for i, c in enumerate(claims(res), 1)}
    nums = sorted(index[i] for i in ids if i in index)
    runs: list[list[int]] = []
    for n in nums:
        if runs and n == runs[-1][-1] + 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    return "表 5 第 " + "、".join(f"{r[0]}–{r[-1]}" if len(r) > 1 else f"{r[0]}" for r in runs) + " 行" if runs else ""


def tally(res: Results) -> dict[str, int]:
    """Claims per kind of verdict (the reference's where it decides what the user's runs cannot),
    rows that are not verdicts (参考, 事实核对) left out."""
    counts = {k: 0 for k in KINDS if k not in NOT_COUNTED}
    for c in claims(res):
        kind = effective_kind(res, c)
        if kind not in NOT_COUNTED:
            counts[kind] += 1
    return counts


def tally_text(res: Results) -> str:
    t = tally(res)
    n_ref = sum(c.kind == "参考" for c in claims(res))
    n_fact = sum(c.kind == FACT for c in claims(res))
    n_by_ref = sum(reference_claim(res, c) is not None for c in claims(res))
    left = "、".join(x for x in (f"{n_ref} 项参考" if n_ref else "", f"{n_fact} 项事实核对" if n_fact else "") if x)
    by_ref = f"，其中 {n_by_ref} 项由参考运行判定" if n_by_ref else ""
    return ("、".join(f"{k} {n} 项" for k, n in t.items() if n) + by_ref
            + (f"（另有 {left}，不计入）" if left else ""))


def claim_sentence(c: Claim) -> str:
    """How the text quotes a claim: the study's words, the verdict, the reason."""
    return f"原报告（{c.section}）：“{c.study}” —— **{c.verdict}**。{c.reason}"
