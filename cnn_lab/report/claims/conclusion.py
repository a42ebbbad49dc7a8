"""§3 实验总结: skip connections, addition against concatenation, the end of the struggle with
vanishing gradients, and what SE teaches."""
from __future__ import annotations

import math
from typing import Callable

import pandas as pd

from ...study import MATCHED_BASELINE, PLAIN_CONTROL
from ..claim_text import _name, _pts, _pv, comparison_text
from ..load import Results
from ..measures import SPEED_NOISE, mode_clash, model_facts
from ..phrases import early_words
from ..stats import PARITY_MARGIN, compare
from .baseline import _vanishing
from .densenet import _memory, _memory_parts, _param_efficiency
from .evidence import _curves, _missing, _params, one_seed
from .resnet import _skip_test
from .verdicts import CONCEPT, CONFOUNDED, FAILS, HOLDS, PARTIAL, SCALE, SYNTHESIS, WITHIN


def _skip_key(res: Results, st: pd.DataFrame) -> tuple[str, str, str]:
    """§3: the baseline contrast is confounded; the plain network isolates the skip connection."""
    verdict, measured, why = _skip_confounded(res, st)
    c, skip = _skip_test(res, st)
    if c.reason == "missing":
        return verdict, measured, why
    if c.reason in ("scale", "subset"):  # the control is there, but too small to decide
        return (SCALE, measured + f"；同深度对照（训练子集）：{skip}",
                "与 BaselineNet 的对比有混杂；同深度、只去掉跳跃连接的 Plain-18 已经训练，但只在训练子集上，"
                "反映的是训练初期的快慢，还不能判断跳跃连接的作用。")
    measured += f"；同深度对照：{skip}"
    tag, caveat = one_seed(c, st)
    if c.verdict == "a":
        return (f"{PARTIAL}（同深度下跳跃连接带来 {_pts(c.diff, False)}{'；' + tag if tag else ''}）", measured,
                "与 BaselineNet 的对比有混杂，不能证明什么；但同深度、只去掉跳跃连接的 Plain-18 显著低于 ResNet-18，"
                f"这部分差距可以归于跳跃连接。{caveat}“基石”是对整个领域的判断，超出了一组 18 层网络所能说明的范围。")
    return (FAILS, measured,
            "原报告用来“证明”的对比（BaselineNet 对 ResNet/DenseNet）同时改变了深度、宽度、参数量与批归一化，证明不了；"
            "而同深度、只去掉跳跃连接的 Plain-18 与 ResNet-18 "
            + ("之差在误差内" if c.verdict == "tie" else "相比反而更高")
            + "，ResNet-18 对 BaselineNet 的优势在这里来自深度、宽度与批归一化，而不是跳跃连接。"
            "跳跃连接的价值在更深的网络上才显现（He 等 2016 的 34 层对照），本实验没有覆盖。")


def _skip_confounded(res: Results, st: pd.DataFrame) -> tuple[str, str, str]:
    pb, pr = _params(res, "baseline"), _params(res, "resnet18")
    if not pb or not pr:
        return SCALE, "缺少参数量", "缺少参数量，无法检验。"
    g = res.grads
    layers = {m: int(g[g["model"] == m]["layer_index"].max()) + 1 for m in ("baseline", "resnet18")
              if len(g) and (g["model"] == m).any()}
    depth = (f"，权重层 {layers['resnet18']} 对 {layers['baseline']} 个" if len(layers) == 2 else "")
    measured = f"参数量 ResNet-18 {pr:,}，BaselineNet {pb:,}（{pr / pb:.1f} 倍）{depth}；ResNet-18 另有批归一化"
    why = (f"ResNet-18 与 BaselineNet 同时在参数量（{pr / pb:.1f} 倍）、深度、宽度和批归一化上不同，"
           "这组对比无法把准确率的差距归于跳跃连接；要检验它，需要同深度、只去掉跳跃连接的对照网络。")
    c = compare(res, "cnn_resnet18_adam", "cnn_baseline_sgd_high_lr")
    if c.reason is None and c.verdict == "a":
        return (f"{PARTIAL}（ResNet-18 确实更高，归因无法检验）", measured + "；" +
                comparison_text(st, c, "ResNet-18", _name(st, "cnn_baseline_sgd_high_lr")),
                "ResNet-18 的准确率显著高于最好的基线；但" + why)
    return CONFOUNDED, measured, why


def _dichotomy(res: Results, st: pd.DataFrame) -> tuple[str, str, str]:
    """§3 "前者在实现和显存上更具优势,后者则在参数效率上更胜一筹": both halves are judged in 2.3.3 on
    the same measurements (memory, parameter efficiency), so this row sums them up and is not
    counted again."""
    m = _memory_parts(res)
    measured = ("缺少内存的测量" if m is None else
                f"单步峰值内存 ResNet-18 {m['r']:.1f} MB，原报告很可能使用的 DenseNet-121 {m['d']:.1f} MB"
                + (f"，同分辨率的 DenseNet-121 {m['k']:.1f} MB" if m["k"] == m["k"] else ""))
    mem, eff = _memory(res, st)[0], _param_efficiency(res, st)[0]  # the two 2.3.3 rows' verdicts, as printed
    return (SYNTHESIS, measured,
            f"两半都已在 2.3.3 节用同样的测量判定，这里只作汇总、不再计入：显存一半为「{mem}」，参数效率一半为「{eff}」。"
            "“前者在实现和显存上更具优势”里实现的一半是设计上的描述，不需要实验检验。")


def _depth_dividend(res: Results, st: pd.DataFrame) -> tuple[str, str, str]:
    """§3 "是实现'深度'带来'红利'的前提": does depth pay without any skip connection? Plain-18
    (ResNet-18 without its shortcuts) against BaselineNet at the same data and budget: the matched
    BaselineNet where the runs have it, else BaselineNet with Adam."""
    shallow = MATCHED_BASELINE if MATCHED_BASELINE in st.index else "cnn_baseline_adam"
    c = compare(res, PLAIN_CONTROL, shallow)
    if c.reason == "missing":
        return SCALE, f"缺少结果：{_missing(st, PLAIN_CONTROL, shallow)}", "缺少无跳跃连接的深层网络与浅层网络的对照，无法检验。"
    measured = comparison_text(st, c, "Plain-18", "BaselineNet")
    if c.reason == "scale" or c.winner_trained_longer:
        return SCALE, measured, "两者的训练数据或训练量不同，领先的一方可能只是训练得更多，差距不能归于深度。"
    if c.reason == "subset":  # early training: said as such, and left to a run at full scale
        return SCALE, measured, (f"同样的训练子集和训练量下，{early_words(c, 'Plain-18', 'BaselineNet')}；"
                                 "而“深度”带来的“红利”说的是训练完成的网络，要在完整训练集、同等训练量下比较两者才能判断。")
    tag, caveat = one_seed(c, st)
    tag = f"（{tag}）" if tag else ""
    layers = model_facts("baseline")["weight_layers"]
    if c.verdict == "a":
        return (FAILS + tag, measured,
                f"在同样的数据和训练量下，没有任何跳跃连接的 Plain-18 显著高于 {layers} 层的 BaselineNet：18 层、带批归一化时，深度不靠"
                f"跳跃连接也带来了收益，跳跃连接不是它的前提。{caveat}跳跃连接在更深的网络上才成为必需（He 等 2016 在 34 层看到退化）。")
    if c.verdict == "b":
        return (HOLDS + tag, measured,
                f"在同样的数据和训练量下，去掉跳跃连接的 18 层网络反而不如 {layers} 层的 BaselineNet，没有跳跃连接时深度没有带来收益。{caveat}")
    return WITHIN, measured, f"在同样的数据和训练量下，Plain-18 与 BaselineNet 之差不显著（{_pv(c.p)}），看不出深度在没有跳跃连接时是否带来收益。"


def _se_efficiency(res: Results, st: pd.DataFrame) -> tuple[str, str, str]:
    """§3 "在训练中教会模型'应该关注什么',是提升模型智能和效率的重要方向"."""
    f, r = model_facts("se_resnet18"), model_facts("resnet18")
    c = compare(res, "cnn_se_resnet18_adam", "cnn_resnet18_adam")
    ss, sr = (_seconds(res, e) for e in ("cnn_se_resnet18_adam", "cnn_resnet18_adam"))
    extra = (f["params"] - r["params"]) / r["params"]
    clash = mode_clash(res, "cnn_se_resnet18_adam", "cnn_resnet18_adam")
    ratio = ss / sr if ss == ss and sr == sr and not clash else math.nan  # times in different modes do not compare
    cost = f"SE 多出 {extra * 100:.1f}% 的参数" + (f"，每 epoch 用时为 ResNet-18 的 {ratio:.2f} 倍" if ratio == ratio
                                                 else "，两者训练时的数值格式或内存布局不同，用时不可比" if clash else "")
    spent = (f"多花了 {extra * 100:.1f}% 的参数和 {(ratio - 1) * 100:.0f}% 的时间" if ratio > 1 + SPEED_NOISE
             else f"多花了 {extra * 100:.1f}% 的参数（用时相当）" if ratio == ratio else f"多花了 {extra * 100:.1f}% 的参数")
    if c.reason in ("missing", "scale", "subset"):
        return SCALE, cost, "效率要看同样代价下准确率是否更高，需要训练完成的 SE-ResNet-18 与 ResNet-18 对比。"
    measured = cost + "；" + comparison_text(st, c, "SE-ResNet-18", "ResNet-18")
    if c.verdict == "a":
        return (f"{PARTIAL}（准确率更高）", measured, "SE-ResNet-18 用很少的额外参数换来了显著更高的准确率；"
                "“提升智能”与“重要方向”是展望，本实验无法检验。")
    tag, caveat = one_seed(c, st)
    # lower, or any gain it may have is under a point (an interval that covers the seeds' spread:
    # one seed a side covers test-image sampling only, too narrow to rule a gain out)
    if c.verdict == "b" or (not c.single_seed and c.high < PARITY_MARGIN):
        gain = ("准确率反而显著更低" if c.verdict == "b" else
                f"准确率没有显著提高，95% 区间的上限只有 {_pts(c.high)}：即使有提高，也不到 {PARITY_MARGIN * 100:.0f} 个百分点")
        return (FAILS + (f"（{tag}）" if tag else ""), measured,
                f"在本实验中，SE 模块{spent}，{gain}，没有提升效率。{caveat}它在别的任务上是否有益是另一个问题，不能用本实验支持。")
    if c.single_seed:
        return (f"{WITHIN}（{tag}）", measured,
                f"SE 模块{spent}，准确率的差别不显著（{_pv(c.p)}）。{caveat}95% 区间的上限虽只有 {_pts(c.high)}，"
                "却不含种子间的波动，还不能据此说它没有提升效率。")
    return (WITHIN, measured, f"SE 模块{spent}，准确率的差别不显著（{_pv(c.p)}），但 95% 区间的上限（{_pts(c.high)}）"
            "仍容得下有意义的提高：本实验的精度判断不了它是否提升了效率。")


def _seconds(res: Results, exp: str) -> float:
    sub = res.runs[(res.runs["exp_name"] == exp) & (res.runs["status"] == "completed")] if len(res.runs) else res.runs
    return float(sub["seconds_per_epoch"].mean()) if len(sub) else math.nan


def _meta_learning(res: Results, st: pd.DataFrame) -> tuple[str, str, str]:
    return (CONCEPT, "SE 模块按每张图的特征计算通道权重，其参数与网络其余部分一起由同一个优化器在同一任务上训练",
            "SE 是一种依赖输入的特征重标定（通道注意力），并不学习“如何学习”（如学习初始化、学习率或更新规则），"
            "把它称为“元学习”并不准确；“必经之路”是展望，不是本实验能检验的。")


def _struggle(res: Results, st: pd.DataFrame) -> tuple[str, str, str]:
    (v, vm, _), (cv, cm, _) = _vanishing(res, st), _curves(res, st, "cnn_resnet18_adam")
    measured = f"BaselineNet 的梯度见“梯度消失”一行（{v}）；ResNet-18 {cm}"
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


# (id, section, topic, the study's words, builder): the claims §3 discusses, in the study's order
ENTRIES: tuple[tuple[str, str, str, str, Callable], ...] = (
    ("skip_connections_key", "3", "3", "基线CNN与ResNet/DenseNet的对比雄辩地证明,跳跃连接是现代深度学习的基石。",
     _skip_key),
    ("no_more_struggle", "3", "3", "它将深度网络的训练从与梯度消失的\"搏斗\",转变为一个稳定、可控的优化过程", _struggle),
    ("depth_dividend", "3", "3", "是实现\"深度\"带来\"红利\"的前提。", _depth_dividend),
    ("add_vs_concat", "3", "3", "前者在实现和显存上更具优势,后者则在参数效率上更胜一筹。", _dichotomy),
    ("se_efficiency", "3", "3", "在训练中教会模型\"应该关注什么\",是提升模型智能和效率的重要方向。", _se_efficiency),
    ("se_meta_learning", "3", "3", "但它所代表的\"元学习\"(学习如何学习)思想,是通往更强大人工智能模型的必经之路。",
     _meta_learning),
)
