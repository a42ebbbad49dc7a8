"""The study's 2.1 table: each variant's final accuracy against ours, and the orderings between
them (an entry per accuracy or ordering, discussed in the 2.3.x subsection of its model)."""
from __future__ import annotations

import math

import pandas as pd

from ...study import STUDY_TABLE
from ..claim_text import _name, _pct, _pts, _pv, _signed, comparison_text
from ..labels import STATUS_ZH, model_label, shown
from ..load import Results
from ..stats import compare, order_flip, study_scale
from .evidence import _missing, _scale_words, one_seed
from .verdicts import FAILS, HOLDS, REFERENCE, SCALE, WITHIN


STUDY_TEST_IMAGES = 10_000  # the study's accuracies: on CIFAR-10's whole test set
STUDY_ROUNDING = 0.01  # its table gives whole per cents: a gap read off it may be a point off either way


def smallest_study_gap(a: str, b: str) -> float:
    """The smallest gap between ``a`` and ``b`` that the study's table is consistent with: its
    gap, less a point of rounding and its own sampling error (two accuracies on 10,000 images,
    95%). Only an interval of ours wholly below this refutes the study's lead."""
    qa, qb = STUDY_TABLE[a][3], STUDY_TABLE[b][3]
    noise = 1.96 * math.sqrt((qa * (1 - qa) + qb * (1 - qb)) / STUDY_TEST_IMAGES)
    return qa - qb - STUDY_ROUNDING - noise


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
    tag, caveat = one_seed(c, st)
    tag = f"（{tag}）" if tag else ""
    flip = order_flip(res, a, b) if c.verdict in ("a", "b") else None
    if flip is not None:
        return SCALE, measured, (f"两者的排序在第 {flip['epoch']} 个 epoch 时还是反的（{_pct(flip['a'])} 对 {_pct(flip['b'])}）："
                                 "训练早期的排序还在变，不能代表原报告中训练完成的模型。")
    if c.verdict == "a":
        return HOLDS + tag, measured, f"{la}的准确率高于{lb}，差异在 5% 水平上显著，方向与原报告一致{budget}。{caveat}"
    if c.verdict == "b":
        return FAILS + tag, measured, f"方向与原报告相反：{lb}的准确率显著高于{la}。{caveat}"
    floor = smallest_study_gap(a, b)
    if c.high == c.high and c.high < floor:
        return FAILS, measured, (f"两者之差不显著，且 95% 区间的上限（{_signed(c.high)} 个百分点）低于原报告的差距"
                                 f"（{gap * 100:.0f} 个百分点，计入取整和原报告自身的抽样误差后至少 {floor * 100:.1f} 个）："
                                 "原报告的优势在本实验中没有复现。")
    return WITHIN, measured, (f"差异不显著（{_pv(c.p)}），但 95% 区间仍包含原报告所说大小的差距（计入取整和原报告自身的"
                              f"抽样误差，至少 {floor * 100:.1f} 个百分点），本实验的精度不足以判断。")


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


def _q(exp: str) -> str:
    m, o, lr, acc = STUDY_TABLE[exp]
    return f"{model_label(m)}，{'SGD' if o == 'sgd' else 'Adam'}，学习率 {lr:g}，最终准确率 {acc * 100:.0f}%"


def _abs_entry(exp: str, topic: str) -> tuple:
    return (f"acc_{exp.removeprefix('cnn_')}", "2.1", topic, _q(exp), lambda res, st: _absolute(res, st, exp))


def _order_entry(cid: str, topic: str, study: str, a: str, b: str) -> tuple:
    gap = STUDY_TABLE[a][3] - STUDY_TABLE[b][3]
    return (cid, "2.1", topic, study, lambda res, st: _order(res, st, a, b, gap))
