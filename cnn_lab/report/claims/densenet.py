"""2.3.3 DenseNet-121: its stem, every layer's gradient, deep supervision, parameter efficiency,
new features, its curves and its memory."""
from __future__ import annotations

import math
from functools import lru_cache
from typing import Callable

import pandas as pd

from ...models import create_model
from ...study import STUDY_TABLE
from ..claim_text import comparison_text
from ..gradients import flow_reading, ratio_row
from ..load import Results
from ..measures import model_facts
from ..network_stages import _last_block_resolution, stage_rows, stage_summary
from ..stats import compare, order_flip
from .evidence import _cost, _curves, _flow_text, _has_rms, _params, one_seed
from .s2_1 import _abs_entry, _order_entry, smallest_study_gap
from .verdicts import CONCEPT, FACT, FAILS, HOLDS, OUT_OF_SCOPE, PARTIAL, SCALE, UNTESTABLE


def _deep_supervision(res: Results, st: pd.DataFrame) -> tuple[str, str, str]:
    """'每一层都受到了更直接的监督，极大地缓解了梯度消失': refuted if DenseNet's first layer starves by
    both measures; otherwise untestable, since gradients reaching a layer do not show that the
    dense connections brought them there without a network that lacks them (Plain-18 shows how
    far a network without any shortcut gets)."""
    d, r, p = (ratio_row(res, m) for m in ("densenet121", "resnet18", "plain18"))
    if not _has_rms(d):
        return SCALE, "没有 DenseNet-121 的梯度记录", "没有梯度记录，无法检验。"
    fd = flow_reading(d)
    measured = _flow_text(d, "DenseNet-121 ") + f"（前半段最弱一层在深度 {d['rms_min_depth']:.2f}，0 为输入、1 为输出）"
    for row, name in ((r, "ResNet-18 "), (p, "没有任何跳跃连接的 Plain-18 ")):
        if _has_rms(row):
            measured += "；" + _flow_text(row, name)
    if fd["first"] == "vanishing":
        return FAILS, measured, "按两种度量，DenseNet-121 首层的梯度都比末层小一个数量级以上。"
    first = ("首层的梯度与末层在同一数量级" if fd["first"] == "none" else
             f"首层的梯度按每参数 RMS 与末层在同一数量级（{fd['first_rms']:.3f}），按 ‖g‖/‖w‖ 却只有末层的 "
             f"{fd['first_rel']:.3f}，低于 1/10，结论随度量而变")
    plain = (f"但没有任何跳跃连接的 Plain-18 首层也有末层的 {flow_reading(p)['first_rms']:.3f}（每参数 RMS），"
             "可见梯度到达浅层并不需要稠密连接" if _has_rms(p) and flow_reading(p)["first"] == "none" else "")
    others = [n for row, n in ((r, "ResNet-18"), (p, "Plain-18")) if _has_rms(row) and flow_reading(row)["weakest"] != "none"]
    weakest = ("" if fd["weakest"] == "none" else
               f"前半段最弱的一层{'按两种度量都' if fd['weakest'] == 'vanishing' else '在一种度量下'}不到末层的 1/10"
               + (f"，{'、'.join(others)} 也是如此" if others else "") + "，并非每一层都得到同一数量级的梯度")
    parts = "；".join(x for x in (first, plain, weakest) if x)
    return (f"{UNTESTABLE}（没有去掉稠密连接的对照）", measured,
            f"DenseNet-121 {parts}。梯度范数只说明梯度到达了哪些层，要把它归于稠密连接带来的“深度监督”，"
            "需要同样深度、只去掉稠密连接的对照，本实验没有。")


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
                     else "CPU 上新进程中单步训练的峰值常驻内存（进程实际占用的物理内存）增量，作为显存的代理指标")
    return out


def _memory(res: Results, st: pd.DataFrame) -> tuple[str, str, str]:
    m = _memory_parts(res)
    if m is None:
        return SCALE, "没有 DenseNet-121 与 ResNet-18 的内存测量", "缺少 cost.csv 的测量，无法检验。"
    rd, rk = m["d"] / m["r"], m["k"] / m["r"]
    measured = (f"单步训练峰值内存（{m['method']}，批大小 {m['batch']}）：原报告很可能使用的 DenseNet-121（ImageNet 输入层）"
                f"{m['d']:.1f} MB，ResNet-18 {m['r']:.1f} MB（{rd:.2f} 倍）")
    first = next((x for x in stage_rows("densenet121") if "block" in x["stage"]), None)
    shrink = f"第一个稠密块之前特征图已缩小到 {first['resolution']}×{first['resolution']}，" if first else ""
    where = "" if m["cuda"] else "测量的是 CPU 内存，作为显存的代理。"
    if pd.notna(rk):
        measured += f"；同分辨率的 DenseNet-121（CIFAR 输入层）{m['k']:.1f} MB（{rk:.2f} 倍）"
    if rd > 1.1:
        return HOLDS, measured, f"原报告很可能使用的 DenseNet-121 训练内存高于 ResNet-18。{where}"
    equal = (f"只有在同等分辨率下（CIFAR 输入层），特征拼接才使内存达到 ResNet-18 的 {rk:.2f} 倍。" if pd.notna(rk) and rk > 1.1
             else "同等分辨率下也没有更高。" if pd.notna(rk) else "")
    return (f"{FAILS}（对原报告的模型）", measured,
            f"对原报告很可能使用的模型不成立：它在 32×32 图像上{shrink}训练内存只有 ResNet-18 的 {rd:.2f} 倍。{equal}{where}")


def _efficiency(res: Results, st: pd.DataFrame) -> tuple[object, str, str]:
    """DenseNet-121 against ResNet-18 at equal training: the comparison, the measurement with the
    parameter counts (the architecture's fact, stated here and nowhere else), and the verdict word."""
    pd_, pr = _params(res, "densenet121"), _params(res, "resnet18")
    c = compare(res, "cnn_densenet121_adam", "cnn_resnet18_adam")
    params = f"参数量 DenseNet-121 {pd_:,}，ResNet-18 {pr:,}（少 {(1 - pd_ / pr) * 100:.1f}%）" if pd_ and pr else "缺少参数量"
    if c.reason == "missing":
        return c, params, SCALE
    measured = params + "；" + comparison_text(st, c, "DenseNet-121", "ResNet-18")
    if c.reason in ("scale", "subset") or (c.significant and order_flip(res, c.a, c.b) is not None):
        return c, measured, SCALE  # not at equal, finished training; or a ranking that still flips
    if c.verdict == "b":
        return c, measured, FAILS
    return c, measured, (HOLDS if pd_ and pr and pd_ < pr else FAILS)


def _param_efficiency(res: Results, st: pd.DataFrame) -> tuple[str, str, str]:
    c, measured, kind = _efficiency(res, st)
    if kind == SCALE:
        why = ("参数少是结构本身的事实，不是检验；参数效率指同样训练下每个参数换来的准确率，"
               "要比较训练程度相同的准确率，本规模无法判断。")
        d, r = STUDY_TABLE["cnn_densenet121_adam"][3], STUDY_TABLE["cnn_resnet18_adam"][3]
        floor = smallest_study_gap("cnn_resnet18_adam", "cnn_densenet121_adam")
        if floor > 0:  # the study's own table puts DenseNet below ResNet by more than its rounding and noise
            return (f"{FAILS}（按原报告自己的数字）", measured + f"；原报告：DenseNet-121 {d * 100:.0f}%，ResNet-18 {r * 100:.0f}%",
                    why + f"但原报告自己的表中 DenseNet-121 比 ResNet-18 低 {(r - d) * 100:.0f} 个百分点，计入取整与"
                    f"原报告自身的抽样误差后仍至少低 {floor * 100:.1f} 个：按它自己的数字，也没有做到“相当甚至更好”。")
        return SCALE, measured, why
    if kind == FAILS and c.verdict != "b":
        return FAILS, measured, "DenseNet-121 的参数并不比 ResNet-18 少。"
    if kind == FAILS:
        tag, caveat = one_seed(c, st)
        return (FAILS + (f"（{tag}）" if tag else ""), measured,
                "参数虽少，但同样训练下准确率显著低于 ResNet-18，没有做到“用更少的参数达到相当甚至更好的性能”。" + caveat)
    return HOLDS, measured, "同样训练下，DenseNet-121 用更少的参数达到了不低于 ResNet-18 的准确率。"


@lru_cache(maxsize=None)
def _stem_of(model: str) -> tuple[int, int, bool]:
    f = create_model(model).features
    return f.conv0.kernel_size[0], f.conv0.stride[0], hasattr(f, "pool0")


def _stem(res: Results, st: pd.DataFrame) -> tuple[str, str, str]:
    k, s, pool = _stem_of("densenet121")
    ss = stage_summary(["densenet121", "resnet18"])
    r1 = _last_block_resolution("densenet121")[1]
    measured = (f"本项目的 DenseNet-121 输入层的卷积为 {k}×{k}、步长 {s}{'，其后接最大池化' if pool else ''}；"
                f"在 32×32 输入上最后一个稠密块只有 {r1}×{r1}，每图 {ss.loc['densenet121', 'macs'] / 1e6:.1f} M MACs"
                f"（ResNet-18 为 {ss.loc['resnet18', 'macs'] / 1e6:.1f} M）")
    if (k, s) == (7, 2):
        return (f"{FACT}：输入卷积一致", measured,
                "原报告的模型打印只列出了输入层的第一个卷积（7×7、步长 2，与 torchvision 版相同），省略了其后的归一化、激活和池化几行；"
                "因此只能说原研究的输入层以同样的 7×7、步长 2 卷积开头，很可能就是这一版本，本报告对输入层的分析"
                "大概率也适用于原报告的模型。")
    return f"{FACT}：输入卷积不同", measured, "本项目的 DenseNet-121 与原报告打印的输入卷积不同，输入层的分析不能直接套用到原报告。"


def _every_layer(res: Results, st: pd.DataFrame) -> tuple[str, str, str]:
    """2.3.3 "任何一层都能直接接收到来自损失函数以及所有其前序层级的梯度信号"."""
    f = model_facts("densenet121")
    n_blocks = len(f["dense_layers"])
    return (CONCEPT, f"DenseNet-121 有 {n_blocks} 个稠密块（各 {'、'.join(map(str, f['dense_layers']))} 层），"
                     f"块之间由 {n_blocks - 1} 个过渡层相连；直接连接只在块内",
            "方向说反了：一层的梯度来自它后面的层（它的输出被块内所有后续层读取），而不是“前序层级”；前序层从它这里接收梯度。"
            "“任何一层都能直接接收到来自损失函数”的梯度也不准确：稠密连接只在一个块之内，前几个块的层要经过过渡层、"
            "再经过后面的块才到达分类层，并没有到损失函数的直接路径。")


def _novelty(res: Results, st: pd.DataFrame) -> tuple[str, str, str]:
    return (OUT_OF_SCOPE, "本实验没有测量各层特征之间的冗余程度",
            "“学习新的、补充性的特征，而不是冗余的特征”描述的是设计意图（模型并不“知道”什么，拼接只是让后面的层能直接读到前面的特征）；"
            "要检验它，需要分析各层新增特征的相关性或冗余度，本实验的记录不支持这种分析。")


# (id, section, topic, the study's words, builder): the claims 2.3.3 discusses, in the study's order
ENTRIES: tuple[tuple[str, str, str, str, Callable], ...] = (
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
)
