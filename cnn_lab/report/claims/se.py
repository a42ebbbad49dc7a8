"""2.3.4 SE-ResNet-18: attention, parity with ResNet-18, saturation, harder data."""
from __future__ import annotations

from typing import Callable

import pandas as pd

from ..claim_text import _pv, comparison_text
from ..load import Results
from ..measures import model_facts
from ..stats import PARITY_MARGIN, compare, late_trend
from .evidence import _missing, _trend_text
from .s2_1 import _abs_entry
from .verdicts import FAILS, HOLDS, OUT_OF_SCOPE, PARTIAL, SCALE, WITHIN


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
    if c.equivalent:  # "持平" shown, not merely not refuted
        return HOLDS, measured, (f"两者之差不显著（{_pv(c.p)}），且 95% 区间整个落在 ±{PARITY_MARGIN * 100:.0f} 个百分点之内，"
                                 "可以认为持平。")
    return (WITHIN, measured, f"没有检出差异（{_pv(c.p)}），但 95% 区间超出 ±{PARITY_MARGIN * 100:.0f} 个百分点，"
            "不显著不等于持平，本实验的精度还证明不了两者相当。")


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


def _se_attention(res: Results, st: pd.DataFrame) -> tuple[str, str, str]:
    """2.3.4 "它学会了'关注'信息量大的特征,抑制噪声或冗余特征"."""
    f = model_facts("se_resnet18")
    return (OUT_OF_SCOPE, f"本实验没有记录 SE 模块的激励权重（每个残差块一组，压缩比 {f['se_reduction']}）",
            "要检验它，需要在测试图上记录每个 SE 模块输出的通道权重，比较它们在不同类别、不同层之间是否有明显差异，"
            "并检验压低权重的通道是否确实对预测贡献小；只看准确率（与 ResNet-18 相当）说明不了 SE 学到了什么。")


def _harder_data(res: Results, st: pd.DataFrame) -> tuple[str, str, str]:
    return (OUT_OF_SCOPE, "本实验只用 CIFAR-10",
            "这是对其他数据集的预测，本实验只在 CIFAR-10 上训练，无法检验；它应写成有待验证的推测，而不是结论。")


# (id, section, topic, the study's words, builder): the claims 2.3.4 discusses, in the study's order
ENTRIES: tuple[tuple[str, str, str, str, Callable], ...] = (
    _abs_entry("cnn_se_resnet18_adam", "2.3.4"),
    ("se_attention", "2.3.4", "2.3.4", "它学会了\"关注\"信息量大的特征,抑制噪声或冗余特征。", _se_attention),
    ("se_parity", "2.3.4", "2.3.4", "虽然在CIFAR-10这个相对简单的任务上,其最终性能与ResNet-18持平", _se_parity),
    ("se_saturation", "2.3.4", "2.3.4", "更可能的原因是,ResNet-18的特征提取能力已接近饱和,通道间的复杂依赖并非性能瓶颈。",
     _saturation),
    ("se_harder_data", "2.3.4", "2.3.4", "在更具挑战性的数据集上,这种动态调整资源分配的能力通常会带来显著的性能提升。",
     _harder_data),
)
