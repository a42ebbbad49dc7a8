"""The report's Chinese text: each function returns Markdown worded from the data."""
from __future__ import annotations

import math
import re
from typing import Sequence

import pandas as pd

from .labels import ACC_NOTE, PROFILE_ZH, STATUS_ZH, _scale_text, _uniform, _fmt_int, model_label, pct, pp, variant_label
from .load import FULL_TEST, FULL_TRAIN, Results
from .claims import METHOD, claim, claim_sentence, comparison_text, section_claims, tally_text
from .gradients import ORDER_OF_MAGNITUDE, ratio_row
from .stats import (PLATEAU_PP, _have, _last_block_resolution, _missing_note, _trend, compare, models_in,
                    stage_rows, stage_summary, summary_stats)

def settings_text(res: Results) -> str:
    """2.1's settings sentence: profile, data source, epochs, batch size, subsets, augmentation, seeds."""
    if not len(res.runs):
        return f"报告目录 `{res.reports_dir}` 中没有任何训练记录。"
    r = res.runs
    profiles = _uniform(r["profile"])
    data = _uniform(r["data_description"])
    parts = [f"**配置（profile）**：{'、'.join(PROFILE_ZH.get(p, p) for p in profiles)}；"
             f"**数据来源**：{'；'.join(data)}。"]
    for fam_name, mask in (("BaselineNet", r["model"] == "baseline"), ("深层模型", r["model"] != "baseline")):
        sub = r[mask]
        if not len(sub):
            continue
        ep = "/".join(str(int(x)) for x in _uniform(sub["epochs"]))
        bs = "/".join(str(int(x)) for x in _uniform(sub["batch_size"]))
        tr = "/".join(_fmt_int(x) for x in _uniform(sub["train_size"]))
        te = "/".join(_fmt_int(x) for x in _uniform(sub["test_size"]))
        seeds = sub.groupby("exp_name")["seed"].nunique()
        nseed = (f"每个变体 {seeds.iloc[0]} 个种子" if seeds.nunique() == 1
                 else f"每个变体 {seeds.min()}–{seeds.max()} 个种子")
        subset = ((sub["train_size"].fillna(0) % FULL_TRAIN != 0) | (sub["test_size"].fillna(0) % FULL_TEST != 0)).any()
        parts.append(f"{fam_name}：{ep} 个 epoch，batch size {bs}，训练集 {tr} 张、测试集 {te} 张"
                     f"{'（类别均衡子集）' if subset else '（完整数据集）'}，{nseed}。")
    aug = r[r["augment"]]["exp_name"].unique().tolist()
    parts.append("数据增强：" + ("仅 " + "、".join(f"`{a}`" for a in aug) + " 使用（随机裁剪 + 水平翻转）" if aug else "无")
                 + "；SGD 动量 " + "/".join(f"{m:g}" for m in _uniform(r[r["optimizer"] == "sgd"]["momentum"]))
                 + "。" + ACC_NOTE)
    return "\n\n".join(parts)


def profile_banner(res: Results) -> str:
    """A prominent note on the profile and data source (and the smoke warning)."""
    profiles = res.profiles
    data = _uniform(res.runs["data_description"]) if len(res.runs) else ["未知"]
    text = (f"> **运行配置：{'、'.join(PROFILE_ZH.get(p, p) for p in profiles) or '未知'}**；"
            f"数据来源：{'；'.join(data)}；报告目录：`{res.reports_dir.name}`。")
    if "smoke" in profiles:
        text += ("\n>\n> ⚠️ 本报告基于 smoke 配置（极少的 epoch 与极小的数据子集），其中的准确率与曲线没有统计意义，"
                 "下文所有结论仅供流程验证，不能作为对原研究的复现结论。")
    else:
        st = summary_stats(res)
        st = st[st["state"] == "completed"]
        sub = [e for e in st.index if 0 < st.loc[e, "train_size"] < FULL_TRAIN]
        full = [e for e in st.index if e not in sub]
        if sub:
            text += ("\n>\n> 注意：" + "、".join(f"`{e}`（{_scale_text(st, e)}）" for e in sub)
                     + " 在训练子集上训练，绝对准确率不可与原报告直接比较，只反映训练初期的趋势。")
            if full:
                text += ("在完整训练集上训练的变体：" + "、".join(f"`{e}`（{int(st.loc[e, 'epochs'])} 个 epoch）" for e in full)
                         + "（原研究没有说明 epoch 数，这些 epoch 数由本项目选定，见下文的设置表）。")
    if res.missing:
        text += "\n>\n> 缺失的变体（报告目录中没有运行记录）：" + "、".join(f"`{m}`" for m in res.missing) + "。"
    return text


def _signature(m) -> str:
    return re.sub(r"\d+", "#", repr(m))


def folded_repr(module, indent: int = 0) -> str:
    """Like ``repr(module)`` but each run of structurally identical blocks inside a container
    shows its first block and "... (其余 N 个结构相同的模块省略)"."""
    import torch.nn as nn

    children = list(module.named_children())
    extra = module.extra_repr()
    if not children:
        return f"{module._get_name()}({extra})"
    pad = "  " * (indent + 1)
    lines = [f"{module._get_name()}(" + (extra if extra else "")]
    is_container = isinstance(module, (nn.Sequential, nn.ModuleList, nn.ModuleDict))
    i = 0
    while i < len(children):
        name, child = children[i]
        j = i + 1
        if is_container and list(child.children()):
            sig = _signature(child)
            while j < len(children) and _signature(children[j][1]) == sig:
                j += 1
        lines.append(f"{pad}({name}): {folded_repr(child, indent + 1)}")
        if j - i > 1:
            lines.append(f"{pad}... (其余 {j - i - 1} 个结构相同的模块省略)")
        i = j
    lines.append("  " * indent + ")")
    return "\n".join(lines)


def model_printout(model: str) -> str:
    from ..models import count_parameters, create_model

    net = create_model(model)
    return f"{folded_repr(net)}\n\n参数量：{count_parameters(net):,}"


def overview_markdown(res: Results) -> str:
    """1. 实验概述 — 实验目标 (the intro, from the variants present)."""
    st = summary_stats(res)
    present = st[st["state"] != "missing"]
    lines = [
        "在 CIFAR-10（10 类 32×32 彩色图像）上复核原研究的结论：对同一个训练流程比较 "
        "BaselineNet（类 LeNet 的小网络）的优化器与学习率，以及 ResNet-18、SE-ResNet-18、DenseNet-121 三种深层架构，"
        "并用两个扩展变体检验原研究的解释（DenseNet 的 CIFAR 版 stem；ResNet-18 的标准 CIFAR 训练配方）。"
        "除准确率外，还记录了每层梯度范数、各类别准确率与混淆矩阵、计算量与内存。",
        "",
        f"本报告目录中共有 {len(present)} 个变体、{len(res.runs)} 次运行（"
        + "，".join(f"{STATUS_ZH[s]} {n} 次" for s, n in res.runs["status"].value_counts().items()) + "）。"
        if len(res.runs) else "本报告目录中没有任何运行记录。",
    ]
    if res.missing:
        lines += ["", "缺失的变体：" + "、".join(f"`{m}`" for m in res.missing) + "（下文相应位置标为“缺失”）。"]
    return "\n".join(lines)


def architecture_markdown(res: Results, models: Sequence[str] | None = None) -> str:
    """1. 模型架构定义: parameter counts (computed) and the printouts' headers."""
    from ..models import count_parameters, create_model

    models = list(models) if models is not None else models_in(res)
    rows = ["| 模型 | 参数量 | 每图 MACs | 最后一个特征块的输出 |", "|---|---:|---:|---|"]
    for m in models:
        net = create_model(m)
        stage, resol = _last_block_resolution(m)
        shape = next((r["shape"] for r in stage_rows(m) if r["stage"] == stage), "")
        rows.append(f"| {model_label(m)} | {count_parameters(net):,} | "
                    f"{stage_summary([m]).loc[m, 'macs'] / 1e6:.1f} M | `{stage}` {shape} |")
    return "各模型由 `cnn_lab.models.create_model` 构建，参数量与计算量均由代码计算：\n\n" + "\n".join(rows)


def _cmp_sentence(res: Results, st: pd.DataFrame, a: str, b: str, la: str, lb: str) -> str:
    """One comparison, as tested by stats.compare (the method paragraph says how)."""
    c = compare(res, a, b)
    if c.reason == "missing":
        return f"{la} 与 {lb} 无法比较：{_missing_note(st, a, b)} 没有可用结果。"
    if c.reason == "scale":
        return (f"{la}（{pct(st.loc[a, 'mean'], 2)}，{_scale_text(st, a)}）与 {lb}（{pct(st.loc[b, 'mean'], 2)}，"
                f"{_scale_text(st, b)}）的训练规模不同，准确率不能直接比较。")
    nums = comparison_text(st, c, la, lb)
    if c.verdict == "tie":
        text = f"{nums}：差异在误差内。"
    else:
        hi, lo = (la, lb) if c.verdict == "a" else (lb, la)
        text = f"{nums}：{hi} 显著高于 {lo}。"
    if c.reason == "subset":
        text += (f"这只是 {int(st.loc[a, 'train_size']):,} 张图的训练子集上 {int(st.loc[a, 'epochs'])} 个 epoch 的结果，"
                 "反映训练初期的快慢，不能判断完整训练后的高下。")
    return text


def claims_markdown(res: Results, topic: str) -> str:
    """The study's claims discussed in ``topic`` with their verdicts (the same entries as the table)."""
    return "\n".join(f"- {claim_sentence(c)}" for c in section_claims(res, topic))


def _lr_of(res: Results, exp: str) -> str:
    """The learning rate a variant's runs used, as written in their config (e.g. ``0.001``)."""
    lrs = _uniform(res.runs.loc[res.runs["exp_name"] == exp, "lr"].dropna())
    return "、".join(f"{v:g}" for v in lrs) or "?"


def plateau_markdown(res: Results) -> str:
    """Whether each variant's test accuracy still rose in its last epoch."""
    groups: dict[str, list[str]] = {"plateau": [], "rising": [], "falling": [], "single": []}
    for exp in res.variants():
        kind, d = _trend(res, exp)
        if kind in ("rising", "falling", "plateau"):
            groups[kind].append(f"`{exp}`（{pp(d)}）")
        elif kind == "single":
            groups["single"].append(f"`{exp}`")
    parts = [f"以最后一个 epoch 相对前一个 epoch 的平均测试准确率变化判断（阈值 {PLATEAU_PP * 100:.1f} 个百分点）："]
    if groups["rising"]:
        parts.append("- 仍在上升，尚未收敛：" + "、".join(groups["rising"]) + "。增加 epoch 数可能继续提高准确率。")
    if groups["plateau"]:
        parts.append("- 已趋于平稳：" + "、".join(groups["plateau"]) + "。")
    if groups["falling"]:
        parts.append("- 最后一个 epoch 反而下降（波动或过拟合）：" + "、".join(groups["falling"]) + "。")
    if groups["single"]:
        parts.append("- 只训练了 1 个 epoch，无法判断是否收敛：" + "、".join(groups["single"]) + "。")
    return "\n".join(parts)


def gradient_markdown(res: Results) -> str:
    """梯度流: the first/last-layer ratio of the per-parameter (RMS) gradient per model, and how stable it is."""
    lines = [f"**梯度流。** 各层的参数个数不同，所以按每个参数的均方根梯度 ‖g‖/√(参数个数) 比较首个与最后一个权重层"
             f"（SE 模块的挤压/激励层与投影捷径不计入主干）；比值小于 1/{ORDER_OF_MAGNITUDE:g}，"
             "即首层比末层小一个数量级以上，才视为梯度消失。"]
    for m in ("baseline", "resnet18", "se_resnet18", "densenet121", "densenet121_cifar"):
        r = ratio_row(res, m)
        if r is None or pd.isna(r.get("early_rms", math.nan)):
            continue
        seeds = tuple(r["early_rms_seeds"]) + tuple(r["late_rms_seeds"])
        at = (f"第 {int(r['late_epoch'])} 个 epoch {r['late_rms']:.3f}" if r["early_epoch"] == r["late_epoch"] else
              f"第 {int(r['early_epoch'])} 个 epoch {r['early_rms']:.3f}，第 {int(r['late_epoch'])} 个 epoch {r['late_rms']:.3f}")
        lines.append(f"{model_label(m)}（主干 {int(r['main_layers'])} 个权重层）：{at}"
                     + (f"；各种子的比值在 {min(seeds):.3f}–{max(seeds):.3f} 之间" if len(seeds) > 2 else "")
                     + f"；同一 epoch 内各记录点之间相差约 {r['late_rms_point_fold']:.1f} 倍。")
    if len(lines) == 1:
        lines.append("没有梯度记录。")
    return "\n\n".join(lines)


def analysis_markdown(res: Results) -> str:
    """2.3 核心架构的训练动态对比分析 (text only; figures/tables are shown beside it)."""
    st = summary_stats(res)
    out = [ACC_NOTE]
    if "smoke" in res.profiles:
        out.append("（smoke 配置：以下比较只验证分析流程，数值不代表模型的真实表现。）")
    # -- BaselineNet optimizers
    base = [e for e in ("cnn_baseline", "cnn_baseline_adam", "cnn_baseline_sgd_high_lr") if _have(st, e)]
    out += ["", "**BaselineNet 的优化器与学习率。**"]
    if len(base) >= 2:
        ranked = sorted(base, key=lambda e: -st.loc[e, "mean"])
        out.append("最终准确率由高到低：" + " > ".join(
            f"{variant_label(e, st)} {pct(st.loc[e, 'mean'])}" for e in ranked) + "。")
        out.append(_cmp_sentence(res, st, ranked[0], ranked[1], variant_label(ranked[0], st), variant_label(ranked[1], st)))
        if _have(st, "cnn_baseline", "cnn_baseline_sgd_high_lr"):
            c = compare(res, "cnn_baseline_sgd_high_lr", "cnn_baseline")
            lo_lr, hi_lr = _lr_of(res, "cnn_baseline"), _lr_of(res, "cnn_baseline_sgd_high_lr")
            trend, delta = _trend(res, "cnn_baseline")
            slow = (f"lr={lo_lr} 的 SGD 到最后一个 epoch 仍在上升（末 epoch +{delta * 100:.1f} 个百分点），"
                    f"在 {int(st.loc['cnn_baseline', 'epochs'])} 个 epoch 内没有收敛。" if trend == "rising"
                    else f"lr={lo_lr} 的 SGD 学得更慢。")
            out.append(f"SGD 把学习率从 {lo_lr} 提高到 {hi_lr}：" + (
                f"准确率提高 {pp(c.diff, 2, sign=False)}，{slow}" if c.verdict == "a"
                else f"准确率变化 {pp(c.diff, 2)}，" + {"tie": "在误差之内。", "b": "反而下降。"}.get(
                    c.verdict, "无法判断（" + _cmp_sentence(res, st, "cnn_baseline_sgd_high_lr", "cnn_baseline",
                                                         f"lr={hi_lr}", f"lr={lo_lr}") + "）")))
    else:
        out.append("可用的 BaselineNet 变体不足两个（" + (_missing_note(st, "cnn_baseline", "cnn_baseline_adam",
                                                                   "cnn_baseline_sgd_high_lr") or "无") + "），无法比较。")
    out += ["", claims_markdown(res, "2.3.1")]
    # -- ResNet vs BaselineNet
    out += ["", "**ResNet-18 与 BaselineNet。**"]
    best_base = max(base, key=lambda e: st.loc[e, "mean"]) if base else "cnn_baseline_adam"
    out.append(_cmp_sentence(res, st, "cnn_resnet18_adam", best_base, "ResNet-18 (Adam)", f"最好的 BaselineNet（`{best_base}`）"))
    out += ["", claims_markdown(res, "2.3.2")]
    # -- DenseNet vs ResNet, with the stem explanation
    out += ["", "**DenseNet-121 与 ResNet-18。**"]
    out.append(_cmp_sentence(res, st, "cnn_densenet121_adam", "cnn_resnet18_adam", "DenseNet-121", "ResNet-18"))
    ss = stage_summary(["densenet121", "resnet18", "densenet121_cifar"])
    dstage, dres = _last_block_resolution("densenet121")
    rstage, rres = _last_block_resolution("resnet18")
    cstage, cres = _last_block_resolution("densenet121_cifar")
    behind = compare(res, "cnn_densenet121_adam", "cnn_resnet18_adam").verdict == "b"
    out.append(
        ("一个可能的结构原因见阶段表：" if behind else "两者的结构差异见阶段表（本数据中 DenseNet-121 并不落后，下面只是事实对照）：")
        + f"torchvision 的 DenseNet-121 使用为 224×224 ImageNet 设计的 stem（7×7 步长 2 卷积 + 最大池化），"
        f"在 32×32 输入上最后一个稠密块 `{dstage}` 只在 {dres}×{dres} 的特征图上运算，而 ResNet-18 的 `{rstage}` 仍有 {rres}×{rres}；"
        f"每图计算量 DenseNet-121 仅 {ss.loc['densenet121', 'macs'] / 1e6:.0f} M MACs，ResNet-18 为 "
        f"{ss.loc['resnet18', 'macs'] / 1e6:.0f} M。换成 CIFAR stem（3×3 步长 1，无池化）后最后一个块为 {cres}×{cres}、"
        f"{ss.loc['densenet121_cifar', 'macs'] / 1e6:.0f} M MACs。")
    if _have(st, "cnn_densenet121_cifar_stem_adam", "cnn_densenet121_adam"):
        c = compare(res, "cnn_densenet121_cifar_stem_adam", "cnn_densenet121_adam")
        out.append(_cmp_sentence(res, st, "cnn_densenet121_cifar_stem_adam", "cnn_densenet121_adam",
                                 "CIFAR stem 的 DenseNet-121", "原版 DenseNet-121")
                   + ("换成 CIFAR stem 提高了准确率，支持“ImageNet stem 限制了 DenseNet-121”的解释。"
                      if c.verdict == "a" else "本数据不能说明 stem 对准确率有影响。"))
    else:
        out.append("扩展变体 `cnn_densenet121_cifar_stem_adam` 没有可用结果，stem 的解释未经实验检验。")
    out += ["", claims_markdown(res, "2.3.3")]
    # -- SE-ResNet vs ResNet
    out += ["", "**SE-ResNet-18 与 ResNet-18。**"]
    out.append(_cmp_sentence(res, st, "cnn_se_resnet18_adam", "cnn_resnet18_adam", "SE-ResNet-18", "ResNet-18"))
    out += ["", claims_markdown(res, "2.3.4")]
    # -- recipe extension
    if _have(st, "cnn_resnet18_sgd_cosine_aug", "cnn_resnet18_adam"):
        out += ["", "**训练配方（扩展）。** " + _cmp_sentence(
            res, st, "cnn_resnet18_sgd_cosine_aug", "cnn_resnet18_adam", "ResNet-18 + SGD/余弦/增强", "ResNet-18 + Adam")]
    out += ["", "**是否收敛。** " + plateau_markdown(res)]
    out += ["", gradient_markdown(res)]
    return "\n".join(out)


def seeds_markdown(res: Results) -> str:
    """Seed-to-seed spread per variant."""
    st = summary_stats(res)
    st = st[st["state"] == "completed"]
    if not len(st):
        return "没有完成的运行。"
    multi = st[st["n"] > 1]
    if not len(multi):
        return "每个变体只有一个种子，无法估计种子间的波动；以下差异都可能只是随机性。"
    worst = multi["std"].idxmax()
    return (f"{len(multi)} 个变体有多个种子；种子间标准差在 {multi['std'].min() * 100:.2f}–{multi['std'].max() * 100:.2f} "
            f"个百分点之间，最大的是 `{worst}`。小于这个量级的准确率差异不应被解读为架构或优化器的差别。")


def comparison_markdown(res: Results) -> str:
    """与原报告对比: how differences are decided (said once), then the tally of the claims table."""
    head = "下表逐条列出原报告的观点、本实验的测量、结论与理由。" + METHOD
    if "smoke" in res.profiles:
        head += "\n\n本报告基于 smoke 配置，下表的结论只用于验证流程。"
    return head + "\n\n汇总：" + tally_text(res) + "。"


def _stem_sentence(res: Results) -> str:
    """What the CIFAR-stem extension says about the stem explanation (tested like any comparison)."""
    c = compare(res, "cnn_densenet121_cifar_stem_adam", "cnn_densenet121_adam")
    why = {"missing": "结果缺失", "scale": "训练规模不同"}
    text = {"a": f"换成 CIFAR stem 后准确率提高 {pp(c.diff, 2, sign=False)}，支持“ImageNet stem 限制了 DenseNet-121”的解释",
            "tie": "换成 CIFAR stem 后准确率的变化在误差内，stem 的解释没有得到支持",
            "b": f"换成 CIFAR stem 后准确率反而低 {pp(c.diff, 2, sign=False)}，stem 的解释没有得到支持",
            "unknown": f"stem 的解释本配置无法检验（{why.get(c.reason, '')}）"}[c.verdict]
    return text + ("（子集上的结果）" if c.reason == "subset" else "") + "。"


def conclusion_markdown(res: Results) -> str:
    """3. 实验总结."""
    st = summary_stats(res)
    lines = []
    done = st[st["state"] == "completed"]
    if "smoke" in res.profiles:
        top = f"最高的平均最终准确率只有 {pct(done['mean'].max())}（10 类随机猜测为 10%），" if len(done) else ""
        lines.append(f"**本报告基于 smoke 配置，结论仅供流程验证**：{top}这是极小的训练规模所致，不反映模型能力。")
        lines.append("")
    if len(done):
        best = done["mean"].idxmax()
        worst = done["mean"].idxmin()
        lines.append(f"1. 平均最终准确率最高的是 `{best}`（{variant_label(best, st)}，{pct(done.loc[best, 'mean'])}），"
                     f"最低的是 `{worst}`（{pct(done.loc[worst, 'mean'])}）。{ACC_NOTE}")
    else:
        lines.append("1. 没有完成的运行，无法汇总准确率。")
    arch = [claim(res, k) for k in ("densenet_vs_resnet", "se_parity", "densenet_stem", "vanishing")]
    lines.append("2. 与原报告的主要说法：" + "；".join(f"“{c.study}”{c.verdict}" for c in arch) + "。"
                 + _stem_sentence(res))
    lines.append("3. 实验总结中的说法：")
    lines += [f"    - {claim_sentence(c)}" for c in section_claims(res, "3")]
    lines.append(f"4. 与原报告逐项对比：{tally_text(res)}。")
    if res.missing:
        lines.append(f"5. 缺失的变体：{'、'.join(f'`{m}`' for m in res.missing)}，相关结论未经检验。")
    bad = st[st["state"].isin(["diverged", "failed"])]
    if len(bad):
        lines.append("6. 未得到结果的变体：" + "、".join(f"`{e}`（{STATUS_ZH[s]}）" for e, s in bad["state"].items()) + "。")
    return "\n".join(lines)

