"""2.3.2 ResNet-18: the degradation problem, identity mappings, its curves and the gradient highway."""
from __future__ import annotations

from functools import lru_cache
from typing import Callable

import pandas as pd

from ...models import create_model
from ...study import PLAIN_CONTROL
from ..claim_text import _name, _r, comparison_text
from ..gradients import ORDER_OF_MAGNITUDE, flow_reading, ratio_row
from ..load import Results
from ..measures import model_facts
from ..stats import compare, completed_runs
from .evidence import _curves, _flow_text, _has_rms, _missing, _rows, one_seed
from .s2_1 import _abs_entry, _order_entry
from .verdicts import CONCEPT, FAILS, HOLDS, OUT_OF_SCOPE, PARTIAL, SCALE, UNTESTABLE, WITHIN


MEASURE_ZH = {"rms": "每参数 RMS", "rel": "‖g‖/‖w‖"}


def _weak_by(reading: dict, part: str) -> str:
    """The measure(s) by which ``part`` ('first' or 'weakest') is below the order-of-magnitude line."""
    line = 1 / ORDER_OF_MAGNITUDE
    return "、".join(MEASURE_ZH[m] for m in MEASURE_ZH if reading[f"{part}_{m}"] < line)


def _weakest_text(reads: list[dict], plain: dict | None) -> str:
    """The input half's weakest layer of the ResNet-18 runs, against Plain-18's where it was
    recorded: a dip both networks share comes from the layers' shape, not from the shortcuts."""
    if not any(x["weakest"] != "none" for x in reads):
        return ""
    text = ("；同一规则下，前半段最弱的一层只有末层的 " + "、".join(_r(x["weakest_rms"]) for x in reads)
            + " 倍（每参数 RMS），中间层并非都得到同一数量级的梯度")
    if plain is None:
        return text
    ratios = [x["weakest_rms"] for x in reads] + [plain["weakest_rms"]]
    if max(ratios) / min(ratios) <= SAME_DIP:
        return text + f"，而 Plain-18 的这一比值也是 {_r(plain['weakest_rms'])}：这个低谷有无跳跃连接都一样，来自层的形状，不是跳跃连接的作用"
    return text + f"，Plain-18 为 {_r(plain['weakest_rms'])}"


SAME_DIP = 2.0  # weakest-layer ratios within a factor of 2 are "the same dip" (the ratios swing that much between steps)
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
    p = ratio_row(res, "plain18")
    weakest = _weakest_text(reads, flow_reading(p) if _has_rms(p) else None)
    if not _has_rms(p):
        return (f"{PARTIAL}（首层有梯度，未与无跳跃连接的网络对照）", measured,
                f"首层得到与末层同一数量级的梯度{depends}{weakest}；没有同深度、去掉跳跃连接的对照，"
                "梯度是否因跳跃连接才得以保留没有得到检验。")
    measured += "；" + _flow_text(p, "去掉跳跃连接的 Plain-18 ")
    fp = flow_reading(p)
    if fp["first"] == "vanishing":
        return (HOLDS, measured, f"同深度、去掉跳跃连接后，Plain-18 首层的梯度按两种度量都降到末层的 1/10 以下，"
                                 f"而 ResNet-18 没有：浅层的梯度确实靠跳跃连接保留{weakest}。")
    if fp["first"] == "none":  # the control without any shortcut gets its gradient too: nothing is owed to the shortcuts
        return (f"{FAILS}（在 18 层上）", measured,
                f"ResNet-18 首层得到与末层同一数量级的梯度{depends}；但去掉全部跳跃连接的 Plain-18 首层也是如此："
                f"18 层、带批归一化的网络没有跳跃连接也没有梯度消失，浅层的梯度并不是靠跳跃连接才得到的{weakest}。"
                "“即使网络非常深”的部分要 34 层以上的一对才能检验。")
    return (f"{PARTIAL}（首层有梯度，对照只在一种度量下低于 1/10）", measured,
            f"ResNet-18 首层得到与末层同一数量级的梯度{depends}；去掉全部跳跃连接的 Plain-18 首层只在一种度量下低于 1/10："
            f"跳跃连接的作用随度量而变{weakest}。")


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
    return (f"He 等（2016）在 ImageNet 上也只在更深时看到退化：18 层时普通网络与残差网络的错误率（按最可能的一类计）为 "
            f"{h['plain18']:.2f}% 对 {h['resnet18']:.2f}%，34 层时为 {h['plain34']:.2f}% 对 {h['resnet34']:.2f}%")


def _degradation(res: Results, st: pd.DataFrame) -> tuple[str, str, str]:
    c, measured = _skip_test(res, st)
    if c.reason == "missing":
        return SCALE, measured, "缺少同深度去掉跳跃连接的对照（Plain-18），无法检验。"
    if c.reason in ("scale", "subset"):
        return SCALE, measured, ("训练子集上的比较只反映训练初期；退化问题说的是训练充分后更深的普通网络"
                                 "反而误差更高，训练初期的快慢不能回答。")
    tag, caveat = one_seed(c, st)
    # "退化" is a deeper plain network doing worse than a shallower one: one depth cannot show it, whatever
    # the pair at that depth does; what the pair does show is said
    seen = ("同深度、同数据、同训练量下，去掉跳跃连接后准确率显著降低，说明 18 层时跳跃连接已让训练更快"
            if c.verdict == "a" else "去掉跳跃连接的 Plain-18 反而显著高于 ResNet-18" if c.verdict == "b"
            else "18 层时去掉全部跳跃连接，两者之差在误差内")
    return (f"{UNTESTABLE}（只有一种深度）", measured,
            f"“退化”指更深的普通网络比浅的更差，检验它需要比较不同深度，本实验只有 18 层一种。{seen}。{caveat}"
            f"{_he_words()}；要检验原报告的说法需要 34 层以上的一对。")


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
            "只有把激活移到分支内部的预激活设计（He 等 2016 年的后续工作）才让捷径成为干净的恒等路径。"
            "正确的说法是：捷径让梯度不必逐层连乘，衰减大大减轻，而不是无损。")


@lru_cache(maxsize=None)
def _projections(model: str) -> int:
    return sum(1 for m in create_model(model).modules()
               if type(m).__name__ == "BasicBlock" and m.shortcut is not None and len(m.shortcut) > 0)


# (id, section, topic, the study's words, builder): the claims 2.3.2 discusses, in the study's order
ENTRIES: tuple[tuple[str, str, str, str, Callable], ...] = (
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
)
