"""What the verdicts of several sections read: missing runs and the scale they trained at, the
trend of a curve, gradient-flow rows, the measured cost."""
from __future__ import annotations

import math

import pandas as pd

from ..claim_text import _name, _pts, _r
from ..gradients import flow_reading, gradient_ratios
from ..labels import STATUS_ZH
from ..load import Results
from ..stats import ALPHA, TREND_EPOCHS, curve_shape
from .verdicts import FAILS, HOLDS, PARTIAL, SCALE


def _missing(st: pd.DataFrame, *exps: str) -> str:
    bad = [f"{_name(st, e)}{STATUS_ZH[st.loc[e, 'state']] if e in st.index else '缺失'}"
           for e in exps if e not in st.index or st.loc[e, "state"] != "completed"]
    return "、".join(bad)


def _scale_words(st: pd.DataFrame, exp: str) -> str:
    n, e = int(st.loc[exp, "train_size"]), int(st.loc[exp, "epochs"])
    return f"{n or 50_000:,} 张训练图、{e} 个 epoch"


def one_seed(c, st: pd.DataFrame) -> tuple[str, str]:
    """A comparison where a side has one seed: the verdict's tag and the caveat sentence for its
    reason, naming the side(s) with one seed (both '' with more seeds). Such a test covers the
    sampling of test images only."""
    if not c.single_seed:
        return "", ""
    alone = [e for e in (c.a, c.b) if e in st.index and int(st.loc[e, "n"]) == 1]
    who = "每方只有一个种子" if len(alone) != 1 else f"{_name(st, alone[0])}只有一个种子"
    return "单个种子", f"{who}，{ONE_SEED_CAVEAT}"


ONE_SEED_CAVEAT = "检验只排除了测试图的抽样误差，没有计入种子间的波动。"  # the 2.8 table says it in full once


TREND_ZH = {"rising": "仍在上升", "slowing": "增速放缓（仍在缓慢上升）", "flat": "已趋平", "unclear": "看不清"}


def _trend_text(st: pd.DataFrame, exp: str, t: dict) -> str:
    gains = "/".join(f"{g * 100:+.2f}" for g in t["gains"])
    seeds = f"，{len(t['slopes'])} 个种子各自拟合" if len(t["slopes"]) > 1 else ""
    return (f"{_name(st, exp)}：最后 {TREND_EPOCHS} 个 epoch 的逐 epoch 变化 {gains} 个百分点，"
            f"斜率 {t['slope'] * 100:+.2f} 个百分点/epoch{seeds}，{_trend_zh(t)}")


def _trend_zh(t: dict) -> str:
    """The trend in words; a slowing slope whose seeds disagree is not said to be still rising."""
    if t["kind"] == "slowing" and not (t["p"] < ALPHA or t.get("every_seed_rose")):
        return "种子间不一致，看不出是否仍在上升"
    return TREND_ZH[t["kind"]]


def _flow_text(row: pd.Series, name: str) -> str:
    """A variant's gradient flow by both measures: first/last, and the input half's weakest
    main-path layer against the last."""
    f = flow_reading(row)
    both = lambda part: (f"每参数 RMS {_r(f[part + '_rms'])}"  # noqa: E731
                         + (f"、‖g‖/‖w‖ {_r(f[part + '_rel'])}" if f[part + "_rel"] == f[part + "_rel"] else ""))
    return f"{name}首层/末层 {both('first')}，前半段最弱一层/末层 {both('weakest')}"


def _has_rms(row: pd.Series | None) -> bool:
    return row is not None and pd.notna(row.get("early_rms", math.nan))


def _rows(res: Results, exps) -> dict[str, pd.Series]:
    return {e: row for e in exps if (row := _ratio_of(res, e)) is not None}


def _ratio_of(res: Results, exp: str) -> pd.Series | None:
    gr = gradient_ratios(res)
    if not len(gr) or exp not in set(gr["exp_name"]):
        return None
    row = gr.set_index("exp_name").loc[exp]
    return row if _has_rms(row) else None


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
