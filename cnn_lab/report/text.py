"""The report's Chinese text, section by section: each function returns Markdown worded
from the data (one function per paragraph or short section). The per-architecture
discussion (2.3) is in ``analysis``, the summary and appendices in ``closing``.
"""
from __future__ import annotations

import math

import pandas as pd

from ..study import RECIPE_VARIANT, STEM_VARIANT
from ..models import create_model
from .labels import PROFILE_ZH, STATUS_ZH, class_zh, model_label
from .load import FULL_TEST, FULL_TRAIN, Results
from .measures import SPEED_NOISE, CHANCE_ACC, collapsed, confusion_facts, dynamics, model_facts, speed
from .phrases import acc, family_scale, join_nums, points, prose, prose_name, short_names_text
from .claim_text import method_text
from .claims import REFERENCE_COLUMN, claim_sentence, claims, reference_claim, section_claims, tally_text
from .damage import damaged_note
from .reference import provenance_line, scope_note
from .gradients import ORDER_OF_MAGNITUDE, gradient_ratios, ratio_row
from .network_stages import models_in
from .stats import ALPHA, PLATEAU_PP, PLATEAU_SLOPE, TREND_EPOCHS, _trend, late_trend, multi_seed, best_variant, summary_stats


# ------------------------------------------------------------------ front matter and 1. 实验概述


@prose
def profile_banner(res: Results) -> str:
    """A note at the top: a smoke run is a pipeline check, and which variants are missing."""
    lines = []
    if "smoke" in res.profiles:
        lines.append("> ⚠️ 本报告基于 smoke 配置：每个变体只用极少的图像训练极少的 epoch，准确率与曲线没有统计意义，"
                     "只用于检验报告流程，不能作为对原研究的复现结论。")
    elif res.profiles:
        lines.append(f"> 运行配置：{'、'.join(PROFILE_ZH.get(p, p) for p in res.profiles)}。训练规模见 2.1 节。")
    if res.missing:
        lines.append("> 缺失的变体（没有运行记录）：" + "、".join(prose_name(res, m) for m in res.missing)
                     + "；下文相应位置标为“缺失”。")
    if scope_note(res):
        lines.append(scope_note(res))
    return "\n>\n".join(lines)


def _extensions_goal(res: Results) -> str:
    """The extension variants' goal, only for those this report has runs of."""
    trained = set(res.runs["exp_name"]) if len(res.runs) else set()
    aims = {STEM_VARIANT: "DenseNet-121 落后是否因为 ImageNet 式输入层不适合 32×32 图像（换用 CIFAR 式输入层）",
            RECIPE_VARIANT: "深层网络与公开结果的差距有多少来自训练配方（ResNet-18 换用 SGD、余弦退火、权重衰减与数据增强）"}
    here = [aim for exp, aim in aims.items() if exp in trained]
    if not here:
        return ""
    return (f"- 用{'两个扩展变体' if len(here) == 2 else '一个扩展变体'}检验本项目对原报告结果的"
            f"{'两个假设' if len(here) == 2 else '一个假设'}：" + "，".join(here) + "；")


@prose
def overview_markdown(res: Results) -> str:
    """1.1 实验目标: the study's learning goals, then what this report adds and what ran."""
    goals = [
        "本实验在 CIFAR-10 数据集（10 类、32×32 的彩色图像）上用 PyTorch 实现、训练并比较多种卷积神经网络，"
        "重新检验原实验报告的结论。具体目标是：",
        "",
        "- 以一个类 LeNet 的小网络（BaselineNet）为基线，比较优化器（SGD 与 Adam）和学习率的影响；",
        "- 比较 ResNet-18、DenseNet-121 与 SE-ResNet-18 三种深层架构，理解跳跃连接、特征复用和通道注意力"
        "在深层网络训练中的作用；",
        "- 用两个对照变体把原报告混在一起的因素分开：Plain-18（去掉全部跳跃连接的 ResNet-18）单独检验跳跃连接，"
        "按深层模型的规模训练的 BaselineNet 让深浅网络在同等数据上比较；",
        *filter(None, [_extensions_goal(res)]),
        "- 除准确率外，记录每层的梯度范数、各类别准确率与混淆矩阵、计算量、训练速度与内存，"
        "用测量而不是推测来讨论原报告的解释。",
        "",
    ]
    if len(res.runs):
        st = summary_stats(res)
        n_var = int((st["state"] != "missing").sum())
        counts = res.runs["status"].value_counts()
        status = ("，全部完成" if set(counts.index) == {"completed"}
                  else "（" + "，".join(f"{STATUS_ZH.get(s, s)} {n} 次" for s, n in counts.items()) + "）")
        goals.append(f"本报告汇总了 {n_var} 个变体的 {len(res.runs)} 次运行{status}。")
    else:
        goals.append("本报告没有找到任何运行记录，下文的表格与图只说明缺少什么。")
    return "\n".join(goals)


@prose
def architecture_markdown(res: Results | None = None) -> str:
    """1.2 模型架构: a lead-in, then 1.2.1–1.2.4, one paragraph per model."""
    lead = ("四种模型由同一套代码构建，用同一个训练流程训练。下面每个模型一段：它的核心机制、关键形状、"
            "参数量和每张图的计算量（MACs，即乘加次数，按 32×32 输入计算）。完整的模型打印收在本报告 HTML 版的附录 A。")
    parts = [lead]
    for i, (title, fn) in enumerate((("基线 CNN（BaselineNet）", _arch_baseline), ("ResNet-18", _arch_resnet),
                                     ("DenseNet-121", _arch_densenet), ("SE-ResNet-18", _arch_se)), 1):
        parts.append(f"#### 1.2.{i} {title}\n\n{fn()}")
    return "\n\n".join(parts)


def _cost(f: dict) -> str:
    return f"参数量 {f['params']:,}，每张图 {f['macs'] / 1e6:.1f} M MACs"


def _arch_baseline() -> str:
    import torch.nn as nn


    f = model_facts("baseline")
    net = create_model("baseline")
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    fcs = [m.out_features for m in net.modules() if isinstance(m, nn.Linear)]
    return (f"一个类 LeNet-5 的前馈卷积网络，作为性能基线。两层 {convs[0].kernel_size[0]}×{convs[0].kernel_size[1]} 卷积"
            f"（{convs[0].out_channels} 和 {convs[1].out_channels} 个通道，各接 2×2 最大池化）把 3×32×32 的输入变为 "
            f"{f['conv_out']} 的特征图，展平后经过三层全连接（{'、'.join(map(str, fcs))} 个单元）输出类别。"
            f"全网只有 {f['weight_layers']} 个权重层，没有批归一化，也没有跨层连接。{_cost(f)}。")


def _arch_resnet() -> str:
    f, p = model_facts("resnet18"), model_facts("plain18")
    return ("残差网络。残差块不直接拟合目标映射 H(x)，而是拟合残差 F(x) = H(x) − x，输出 F(x) + x："
            "恒等的跳跃连接让信号和梯度可以绕过块内的卷积直接传递；若恒等映射已接近最优，块只需把 F 推向零。"
            f"本实验用 CIFAR 版 ResNet-18：{f['stem_kernel']}×{f['stem_kernel']}、步长 {f['stem_stride']} 的输入层，"
            f"不做最大池化；随后是 {len(f['blocks'])} 个残差阶段，每个阶段 {f['blocks'][0]} 个基本块"
            "（两层 3×3 卷积加批归一化），输出依次为 " + "、".join(f["stage_shapes"]) +
            "；通道数变化处的跳跃连接用 1×1 卷积投影。最后经全局平均池化和一个全连接层输出类别。"
            f"共 {f['weight_layers']} 个权重层，{_cost(f)}。作为对照，Plain-18 是同一个网络去掉全部跳跃连接"
            f"（连同 {f['weight_layers'] - p['weight_layers']} 个投影卷积）：卷积、批归一化和宽度都不变，"
            f"参数量 {p['params']:,}，只差在跳跃连接上。")


def _arch_densenet() -> str:
    f, k = model_facts("densenet121"), model_facts("densenet121_cifar")
    return ("密集连接网络。稠密块里每一层的输入是它之前所有层输出在通道维上的拼接（而不是 ResNet 的相加），"
            f"每层只新增 {f['growth']} 个通道（增长率），旧特征原样保留、被后面的层反复使用（特征复用）；"
            "每一层到损失的路径都很短，原报告称之为“隐式的深度监督”。"
            f"DenseNet-121 有 {len(f['dense_layers'])} 个稠密块（分别 {'、'.join(map(str, f['dense_layers']))} 层），"
            "块之间的过渡层用 1×1 卷积把通道减半、再用平均池化把分辨率减半。"
            f"本实验使用 torchvision 的 DenseNet-121，它的输入层为 224×224 的 ImageNet 图像设计（{f['stem_kernel']}×"
            f"{f['stem_kernel']}、步长 {f['stem_stride']} 的卷积加最大池化）：32×32 的图像进入第一个稠密块前已缩小到 "
            f"{f['block_res'][0]}×{f['block_res'][0]}，四个稠密块的输出依次为 {'、'.join(f['block_shapes'])}。"
            "原报告的模型打印只列出了输入层的第一个卷积（同样是 7×7、步长 2），省略了其后的几行，所以它很可能用的也是这一版本。"
            f"共 {f['weight_layers']} 个权重层，{_cost(f)}。扩展变体把输入层换成 {k['stem_kernel']}×{k['stem_kernel']}、"
            f"步长 {k['stem_stride']}、不池化的 CIFAR 式输入层，四个稠密块的分辨率变为 "
            f"{'、'.join(str(r) for r in k['block_res'])}，{_cost(k)}。")


def _arch_se() -> str:
    f, r = model_facts("se_resnet18"), model_facts("resnet18")
    added = f["params"] - r["params"]
    return ("在 ResNet-18 的每个残差块里，于与跳跃连接相加之前插入一个 Squeeze-and-Excitation（SE）模块。"
            "Squeeze 用全局平均池化把每个通道压缩成一个数；Excitation 用两层 1×1 卷积（先把通道数压缩为 "
            f"1/{f['se_reduction']}，再恢复）和 sigmoid 得到每个通道的权重，再用它缩放该通道。每张图都会得到自己的一组"
            f"通道权重，即动态的通道注意力。SE 压缩比为 {f['se_reduction']}，{sum(f['blocks'])} 个残差块共增加 "
            f"{added:,} 个参数（+{added / r['params'] * 100:.1f}%），计算量几乎不变（{f['macs'] / 1e6:.1f} M 对 "
            f"ResNet-18 的 {r['macs'] / 1e6:.1f} M MACs）。共 {f['weight_layers']} 个权重层（含 SE 模块里的 1×1 卷积），"
            f"{_cost(f)}。")


# ------------------------------------------------------------------ 2.1 汇总


@prose
def summary_caption(res: Results) -> str:
    spread = "（多个种子时为均值 ± 标准差）" if multi_seed(res) else ""
    return f"表 1　各变体最后一个 epoch 的测试准确率{spread}与原报告的对照。{provenance_line(res)}"


@prose
def settings_text(res: Results) -> str:
    """2.1: the training scale of each model family, stated once with what it limits."""
    if not len(res.runs):
        return "\n\n".join(filter(None, ["没有任何训练记录。", damaged_note(res)]))
    parts = []
    deep_budget = (res.runs["model"] != "baseline") | (res.runs["budget"] == "deep")  # the matched control trains at it
    for name, mask in (("BaselineNet 的变体", ~deep_budget),
                       ("深层模型的变体" + ("（含按同样规模训练的 BaselineNet 对照）" if (deep_budget & (res.runs["model"] == "baseline")).any()
                                      else ""), deep_budget)):
        s = family_scale(res, mask)
        if s is None:
            continue
        seeds = f"{s['seeds'][0]}" if s["seeds"][0] == s["seeds"][1] else f"{s['seeds'][0]}–{s['seeds'][1]}"
        full = s["train"] == [FULL_TRAIN] and s["test"] == [FULL_TEST]
        parts.append(f"{name}（{s['variants']} 个）在 {join_nums(s['train'])} 张训练图上训练 {join_nums(s['epochs'])} 个 "
                     f"epoch（批大小 {join_nums(s['batch'])}），在 {join_nums(s['test'])} 张测试图上评估，"
                     f"每个变体 {seeds} 个种子{'；用的是完整数据集' if full else '；训练图与测试图是类别均衡的子集'}。")
    text = "".join(parts) + "准确率一律取最后一个 epoch 的测试准确率，不在测试集上挑选 epoch。" + short_names_text(res)
    return "\n\n".join([text, *filter(None, [scale_note(res), damaged_note(res)])])


@prose
def scale_note(res: Results) -> str:
    """The one statement of what the training scale limits (not repeated where it applies)."""
    st = summary_stats(res)
    done = st[st["state"] == "completed"]
    sub = done[(done["train_size"] > 0) & (done["train_size"] < FULL_TRAIN)]
    notes = []
    if len(sub):
        notes.append(f"训练集不足完整训练集（{FULL_TRAIN:,} 张）的变体，其准确率只反映训练初期学得多快，"
                     "不能与原报告的数字比较，也不能判断完整训练后谁高谁低；下文对这些变体的比较都受此限制，"
                     "不再逐处重复。")
    single = done[done["n"] == 1]
    if len(single):
        n_test = int(res.runs[res.runs["exp_name"].isin(single.index)]["test_size"].max() or FULL_TEST)
        p = float(single["mean"].mean())
        se = math.sqrt(p * (1 - p) / n_test)
        notes.append(f"只有一个种子的变体无法估计种子间波动；仅就 {n_test:,} 张测试图的抽样而言，"
                     f"一次准确率（约 {p * 100:.0f}%）的标准误就约有 {se * 100:.2f} 个百分点。")
    return "".join(notes)


@prose
def settings_caption(res: Results) -> str:
    return "表 2　各变体的训练设置"


# ------------------------------------------------------------------ 2.2 训练过程


@prose
def curves_lead(res: Results) -> str:
    return ("下图每一行是训练规模相同的一组变体（规模不同的运行不画在同一条 epoch 轴上）。左列为损失，纵轴取对数，"
            "一个发散的 epoch 不会把其余曲线压平；右列为准确率。实线为测试集，虚线为训练集，"
            + ("阴影为种子间 ±1 标准差，" if multi_seed(res) else "")
            + "同一变体在本报告所有图中颜色相同。")


@prose
def curves_markdown(res: Results) -> str:
    """2.2: which variants still rise at the end and which level off, by the same per-seed trend
    the 2.8 table judges the plateau claim with; variants with fewer epochs by their last change."""
    groups: dict[str, list[str]] = {k: [] for k in ("rising", "fell_last", "slowing", "flat", "unclear", "noise", "plateau", "falling",
                                                    "short_rising")}
    for exp in res.variants():
        t = late_trend(res, exp)
        if t["kind"] != "short":
            kind = "fell_last" if t["kind"] == "rising" and t["gains"] and not t["gains"][-1] > 0 else t["kind"]
            if kind == "slowing" and not (t["p"] < ALPHA or t.get("every_seed_rose")):
                kind = "unclear"  # between the plateau and the rising line, and the seeds disagree
            groups[kind].append(f"{prose_name(res, exp)}（{t['slope'] * 100:+.2f} 个百分点/epoch）")
            continue
        kind, d = _trend(res, exp)
        kind = "short_rising" if kind == "rising" else kind
        if kind in groups and not math.isnan(d):
            groups[kind].append(f"{prose_name(res, exp)}（最后一个 epoch {'+' if d >= 0 else '−'}{points(d)}）")
    out = []
    if any(groups[k] for k in ("rising", "fell_last", "slowing", "flat", "unclear")):
        out.append(f"按最后 {TREND_EPOCHS} 个 epoch 的斜率（每个种子单独拟合）：")
    if groups["rising"]:
        out.append("仍在明显上升的有" + "、".join(groups["rising"]) + "，尚未收敛。")
    if groups["fell_last"]:
        out.append("斜率为正、但最后一个 epoch 没有再上升的有" + "、".join(groups["fell_last"])
                   + f"：{TREND_EPOCHS} 个 epoch 的斜率主要来自前面的上升，看不出是否已经收敛。")
    if groups["slowing"]:
        out.append(f"仍在上升、但每 epoch 已不到 {PLATEAU_SLOPE * 100:g} 个百分点（增速放缓，尚未到达平台）的有"
                   + "、".join(groups["slowing"]) + "。")
    if groups["flat"]:
        out.append(f"斜率低于每 epoch {PLATEAU_PP * 100:g} 个百分点、且与 0 无显著差别、可视为趋平的有" + "、".join(groups["flat"]) + "。")
    if groups["unclear"]:
        out.append("走势在种子间波动之内、看不清的有" + "、".join(groups["unclear"]) + "。")
    if groups["noise"] or groups["plateau"] or groups["falling"] or groups["short_rising"]:
        out.append(f"训练不足 {TREND_EPOCHS} 个 epoch 的变体只能看最后一个 epoch 的变化：")
    if groups["short_rising"]:
        out.append("上升超出了测试集抽样误差的有" + "、".join(groups["short_rising"]) + "，可能尚未收敛。")
    if groups["noise"]:
        out.append("变化在测试集的抽样误差之内（两次准确率之差的 95% 波动范围）、看不出是否仍在上升的有"
                   + "、".join(groups["noise"]) + "。")
    if groups["plateau"]:
        out.append("变化超出抽样误差但不到半个百分点的有" + "、".join(groups["plateau"]) + "。")
    if groups["falling"]:
        out.append("最后一个 epoch 的下降超出了抽样误差的有" + "、".join(groups["falling"]) + "。")
    if not out:
        out.append("各变体都只训练了一个 epoch，曲线只有一个点，看不出是否收敛。")
    spikes = [(e, d) for e in res.variants() if (d := dynamics(res, e)) and d["spike"]]
    for e, d in spikes:
        out.append(f"{prose_name(res, e)} 第 {d['spike_epoch']} 个 epoch 的测试损失高达 {d['spike_loss']:.3g}"
                   f"（均匀猜测为 {math.log(10):.2f}），当时的测试准确率为 {acc(d['spike_acc'])}"
                   + ("，低于随机猜测" if d["spike_acc"] < CHANCE_ACC else "") + "。")
    return "".join(out)


# ------------------------------------------------------------------ 2.4–2.7 evidence


@prose
def gradient_lead(res: Results) -> str:
    return ("下图给出每个模型（取 Adam、学习率 0.001 的变体）主干上各权重层的每参数均方根梯度 ‖g‖/√(参数个数) 随归一化深度的"
            "分布，虚线为第一个 epoch，实线为最后一个 epoch；SE 模块与捷径投影里的 1×1 卷积不在主干上，单独画成叉号。"
            "下表列出首层与末层之比：梯度范数之比，以及按参数个数归一化后的每参数均方根梯度（下文简称每参数 RMS）之比；"
            f"后者小于 1/{ORDER_OF_MAGNITUDE:g}（相差一个数量级以上）才视为梯度消失。2.8 节另用梯度范数与权重范数之比 ‖g‖/‖w‖"
            "（梯度相对于权重本身的大小）作第二种与层大小无关的度量，并看「前半段最弱一层」：靠近输入的一半权重层中比值最小的一层。"
            "梯度消失若发生，应先在这一半出现；靠近输出的一半里，通道多的宽层每个参数分到的梯度本来就小，又紧挨着损失，不计入。")


@prose
def gradient_markdown(res: Results) -> str:
    """2.4: the range of the per-parameter ratios, how stable they are, and what the measure is."""
    gr = gradient_ratios(res)
    if not len(gr):
        return "没有梯度记录。"
    rms = "early_rms" in gr and gr["early_rms"].notna().all()
    cols = ["early_rms", "late_rms"] if rms else ["early_ratio", "late_ratio"]
    lo, hi = gr[cols].min().min(), gr[cols].max().max()
    text = (f"各变体首层与末层的{'每参数梯度' if rms else '梯度范数（这些运行没有记录各层的参数个数）'}之比"
            f"在 {lo:.3f}–{hi:.3f} 之间")
    low = gr[gr[cols].min(axis=1) < 1 / ORDER_OF_MAGNITUDE]
    text += (f"，低于 1/{ORDER_OF_MAGNITUDE:g} 的有：" + "、".join(prose_name(res, e) for e in low["exp_name"]) + "。") if len(low) else \
        (f"，首层对末层没有一个低于 1/{ORDER_OF_MAGNITUDE:g}（前半段最弱的一层另见表 5 的梯度各行）。")
    r = ratio_row(res, "baseline")
    if r is not None and "late_rms_point_fold" in r and pd.notna(r["late_rms_point_fold"]):
        text += (f"比值在同一 epoch 的不同记录步之间也有起伏（BaselineNet 约 {r['late_rms_point_fold']:.1f} 倍），"
                 "只宜作数量级上的比较。")
    return text + "对 Adam 训练的网络，每个参数的更新幅度已被逐个归一化，梯度大小与学习快慢的关系更弱。"


@prose
def cost_lead(res: Results) -> str:
    r = res.runs
    known = len(r) and r["cpu_model"].notna().all() and set(r["device"]) == {"cpu"}
    where = f"在 {'、'.join(sorted(set(r['cpu_model'])))} 上" if known else ""
    return ("下表的参数量、每图计算量与单步峰值内存对每个模型测量一次；每 epoch 秒数（含每个 epoch 末的测试评估）"
            f"与训练吞吐（只计训练步）取自各次训练{where}的记录，随机器负载变化，只宜作数量级比较。"
            "实际算力按 3 × 每图 MACs × 2 × 训练吞吐计算（反向传播约为前向的两倍，每次乘加计 2 次浮点运算）。"
            "数值格式/布局一列是各次训练实际使用的组合：bf16 指混合精度训练（卷积与矩阵乘法用 bfloat16 计算，"
            "权重、损失与优化器状态保持 fp32），NHWC 指通道维放在最后的内存布局（相对于 PyTorch 默认的 NCHW）；原报告没有说明所用的数值格式。"
            "它们如何选定见附录 B。")


@prose
def cost_markdown(res: Results) -> str:
    """2.5: speed per epoch next to the computational cost, for the models trained at one scale."""
    if res.cost is None:
        return "没有计算量与内存的测量。"
    c = res.cost.set_index("model")
    rows = []
    for m in models_in(res):
        exps = [e for e in res.variants() if (res.runs["exp_name"] == e).any()
                and res.runs.loc[res.runs["exp_name"] == e, "model"].iloc[0] == m]
        sp = speed(res, exps[0]) if exps else None
        if sp and m in c.index and m != "baseline":
            rows.append((m, c.loc[m, "macs"], sp["seconds_per_epoch"], sp["train_size"], sp["mode"]))
    if len(rows) < 2 or len({r[3] for r in rows}) > 1:
        return ""
    rows.sort(key=lambda r: r[1])
    parts = [f"{model_label(m)} {macs / 1e6:.1f} M MACs、每 epoch {sec:.2f} 秒" for m, macs, sec, *_ in rows]
    rho = round(speed_rank(rows), 6)  # a rank correlation of ±1 computed as 0.9999999 is ±1
    # the lightest model against ResNet-18, the report's yardstick (else the heaviest)
    fast = rows[0]
    slow = next((r for r in rows if r[0] == "resnet18" and r is not fast), rows[-1])
    proportion = (f"，但不成正比：{model_label(fast[0])} 的计算量只有 {model_label(slow[0])} 的 {fast[1] / slow[1] * 100:.0f}%，"
                  f"用时却达 {fast[2] / slow[2] * 100:.0f}%")
    if rho == 1:
        head = f"同一训练规模下，深层模型的每 epoch 用时随计算量单调增加{proportion}。各模型："
    elif rho == -1:
        head = "同一训练规模下，深层模型的每 epoch 用时与计算量的大小恰好相反："
    elif rho >= 0.5:
        head = f"同一训练规模下，用时大体随计算量增加（秩相关 ρ={rho:.2f}，有例外）{proportion}。各模型："
    else:
        head = f"同一训练规模下，深层模型的每 epoch 用时与计算量没有一致的关系（秩相关 ρ={rho:.2f}）："
    text = head + "；".join(parts) + "。"
    if len({r[4] for r in rows}) > 1:
        text += "各模型训练时的数值格式与内存布局不尽相同（表 4 的数值格式/布局一列），用时的比较只是粗略的。"
    inverted = [(a, b) for a in rows for b in rows if a[1] < b[1] and a[2] > b[2] * (1 + SPEED_NOISE)]
    if inverted:
        a, b = max(inverted, key=lambda ab: ab[1][1] / ab[0][1])
        text += (f"{model_label(a[0])} 的计算量只有 {model_label(b[0])} 的 {a[1] / b[1] * 100:.0f}%，每 epoch 用时却是它的 "
                 f"{a[2] / b[2]:.2f} 倍。可能的原因是它由许多小层组成、频繁拼接特征，在 CPU 上每层的固定开销和内存搬运"
                 "比乘加次数更决定用时（这是推测，本实验没有分别测量）。")
    return text


def speed_rank(rows: list[tuple]) -> float:
    """Spearman rank correlation of MACs and seconds per epoch over (model, macs, seconds, n) rows."""
    from scipy.stats import spearmanr

    return float(spearmanr([r[1] for r in rows], [r[2] for r in rows]).statistic)


@prose
def per_class_lead(res: Results) -> str:
    return "下图为各变体在每个类别上的测试准确率（%，各种子合并）。"


@prose
def confusion_lead(res: Results) -> str:
    b = best_variant(res)
    return f"下图为平均准确率最高的变体 {prose_name(res, b)} 的混淆矩阵（行为真实类别，列为预测类别，各种子合并）。" if b else ""


@prose
def per_class_markdown(res: Results) -> str:
    """2.6: the most confused pair of the best variant, and models that never predict some classes."""
    out = []
    b = best_variant(res)
    f = confusion_facts(res, b) if b else None
    if collapsed(f):
        out.append(f"{prose_name(res, b)} 出现了预测坍缩：{f['top_pred_share'] * 100:.0f}% 的测试图被判为"
                   f"{class_zh(f['top_pred'])}，它的混淆矩阵反映的是这一偏向，而不是哪些类别彼此相似。")
    elif f:
        a, c = f["pair"]
        out.append(f"{prose_name(res, b)} 最常混淆的一对类别是{class_zh(a)}与{class_zh(c)}：{class_zh(a)}被判成"
                   f"{class_zh(c)} {f['pair_a_to_b']:,} 次，{class_zh(c)}被判成{class_zh(a)} {f['pair_b_to_a']:,} 次"
                   f"（每类 {f['per_class']:,} 张测试图）。")
    concentrated = []
    for e in res.variants():
        g = confusion_facts(res, e)
        if g and (len(g["never_predicted"]) >= 2 or g["top_pred_share"] >= 0.3) and not (e == b and collapsed(f)):
            concentrated.append(f"{prose_name(res, e)} 把 {g['top_pred_share'] * 100:.0f}% 的测试图判为{class_zh(g['top_pred'])}"
                             + (f"，从不预测{'、'.join(class_zh(k) for k in g['never_predicted'])}"
                                if g["never_predicted"] else ""))
    if concentrated:
        out.append(f"训练不足的模型会把预测集中到少数几个类别上{'（超过一半判为同一类即为预测坍缩）' if any(collapsed(confusion_facts(res, e)) for e in res.variants()) else ''}：" + "；".join(concentrated) + "。"
                   "这样的准确率差异反映的是欠训练的分类器偏向哪一类，而不是架构本身的优劣。")
    return "".join(out) or "没有可用的混淆矩阵。"


@prose
def seeds_markdown(res: Results) -> str:
    """2.7: seed-to-seed spread per variant, one range per training scale (a spread measured on all
    the data says nothing about a subset's, and the other way round)."""
    st = summary_stats(res)
    st = st[st["state"] == "completed"]
    if not len(st):
        return "没有完成的运行。"
    multi = st[st["n"] > 1]
    if not len(multi):
        return "每个变体只有一个种子，无法估计种子间的波动；变体之间的差异都可能只是随机性。"
    out = []
    for n_train, group in multi.groupby(multi["train_size"].replace(0, FULL_TRAIN).astype(int), sort=False):
        worst = group["std"].idxmax()
        spread = (f"{group['std'].min() * 100:.2f}–{group['std'].max() * 100:.2f}" if len(group) > 1
                  else f"{group['std'].max() * 100:.2f}")
        out.append(f"在 {n_train:,} 张训练图上训练的 {len(group)} 个变体，种子间标准差为 {spread} 个百分点"
                   + (f"，最大的是 {prose_name(res, worst)}" if len(group) > 1 else f"（{prose_name(res, worst)}）") + "。")
    seeds = sorted({int(n) for n in multi["n"]})
    out.append(f"每个变体只有 {'、'.join(map(str, seeds))} 个种子，标准差本身也很不确定；"
               "同一训练规模下小于这个量级的差异不应解读为架构或优化器的差别，不同规模的波动不能互相套用。")
    return "".join(out)


# ------------------------------------------------------------------ 2.8 与原报告对比


@prose
def comparison_markdown(res: Results) -> str:
    """2.8: how a difference is decided (said once, ``method_text``) and the tally of the claims."""
    head = "下表逐条列出原报告的观点、本实验的测量、结论与理由。" + method_text(res)
    if res.reference is not None and any(reference_claim(res, c) is not None for c in claims(res)):
        head += (f"本次运行规模不足、由参考运行判定的行，「{REFERENCE_COLUMN}」一栏给出参考运行的结论，理由一栏只写参考运行的理由："
                 "本次运行为什么不足以判定，2.1 节已经说明，表中不再逐行重复。")
    if "smoke" in res.profiles:
        head += "本报告基于 smoke 配置，下表的结论只用于检验流程。"
    return head + "\n\n汇总：" + tally_text(res) + "。"


def claims_markdown(res: Results, topic: str) -> str:
    """The study's claims discussed in ``topic`` with their verdicts (the same entries as the 2.8 table)."""
    return "\n".join(f"- {claim_sentence(c)}" for c in section_claims(res, topic))


@prose
def comparison_caption(res: Results) -> str:
    return "表 5　原报告的数字与说法逐项对照"


@prose
def gradient_caption(res: Results) -> str:
    return "表 3　首层与末层权重梯度范数之比（各记录步的中位数，种子合并）"


@prose
def cost_caption(res: Results) -> str:
    return "表 4　参数量、计算量、内存与训练速度"
