"""The report's Chinese text: each function returns Markdown worded from the data."""
from __future__ import annotations

import math
import re
from typing import Any, Sequence

import pandas as pd

from .labels import ACC_NOTE, PROFILE_ZH, STATUS_ZH, _scale_text, _uniform, _fmt_int, model_label, pct, pp, variant_label
from .load import FULL_TEST, FULL_TRAIN, Results
from .stats import (SINGLE_SEED_GAP, PLATEAU_PP, VANISH_RATIO, _have, _last_block_resolution, _memory_claim,
                    _missing_note, _ratio_row, _trend, compare, models_in, stage_rows, stage_summary,
                    study_comparison, summary_stats, vanishing_verdict, VERDICT_ZH)

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


def _caveat(st: pd.DataFrame, a: str, b: str, c: dict[str, Any]) -> str:
    """Why a comparison does not decide the study's claim ('' when it does)."""
    if c["reason"] == "subset":
        n = int(min(st.loc[a, "train_size"], st.loc[b, "train_size"]))
        return (f"但这只是 {n:,} 张图的训练子集上 {int(st.loc[a, 'epochs'])} 个 epoch 的结果，"
                f"反映的是训练初期的快慢，不能判断完整训练后的高下。")
    return ""


def _cmp_sentence(st: pd.DataFrame, a: str, b: str, la: str, lb: str) -> str:
    c = compare(st, a, b)
    if c["reason"] == "missing":
        return f"{la} 与 {lb} 无法比较：{_missing_note(st, a, b)} 没有可用结果。"
    ma, mb = st.loc[a, "mean"], st.loc[b, "mean"]
    if c["reason"] == "scale":
        return (f"{la}（{pct(ma)}，{_scale_text(st, a)}）与 {lb}（{pct(mb)}，{_scale_text(st, b)}）"
                f"的训练规模不同，准确率不能直接比较。")
    if c["reason"] == "single_seed":
        return (f"{la}（{pct(ma)}）与 {lb}（{pct(mb)}）相差 {pp(c['diff'], sign=False)}；只有单个种子，"
                f"无法估计种子间波动，差距又不足 {SINGLE_SEED_GAP * 100:.0f} 个百分点，无法判断高下。")
    spread = (f"种子间波动约 {c['spread'] * 100:.1f} 个百分点" if pd.notna(c["spread"])
              else f"单种子下的判断阈值 {SINGLE_SEED_GAP * 100:.0f} 个百分点")
    if c["verdict"] == "tie":
        text = (f"{la}（{pct(ma)}）与 {lb}（{pct(mb)}）相差 {pp(c['diff'], sign=False)}，"
                f"不超过{spread}，可视为无差别。")
    else:
        hi, lo = (la, lb) if c["verdict"] == "a" else (lb, la)
        text = (f"{hi} 优于 {lo}：{pct(ma)} 对 {pct(mb)}，差 {pp(c['diff'], sign=False)}，"
                f"超过{spread}。")
    return text + _caveat(st, a, b, c)


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
    """梯度消失 / 梯度高速公路, worded from the measured first/last-layer ratios."""
    rows = {m: _ratio_row(res, m) for m in ("baseline", "resnet18", "se_resnet18", "densenet121", "densenet121_cifar")}
    lines = ["**梯度流。** 下表与上图给出首个权重层与最后一个权重层的梯度范数之比（各记录步的中位数；"
             f"比值小于 {VANISH_RATIO:g} 视为梯度随深度明显衰减，即“梯度消失”的迹象）。"]
    b = rows["baseline"]
    if b is None:
        lines.append("BaselineNet 没有梯度记录，无法检验原报告关于普通网络“梯度消失”的说法。")
    else:
        v = vanishing_verdict(min(b["early_ratio"], b["late_ratio"]))
        desc = f"BaselineNet（{int(b['layers'])} 个权重层）的首层/末层比值早期为 {b['early_ratio']:.3g}、后期为 {b['late_ratio']:.3g}"
        if v == "vanishing":
            lines.append(desc + "，首层梯度明显小于末层，数据显示出梯度消失的迹象。")
        else:
            lines.append(desc + "，首层梯度并不比末层小一个数量级：本数据不支持原报告“普通网络存在梯度消失”的说法"
                         f"（BaselineNet 只有 {int(b['layers'])} 个权重层，本就不深，准确率的差距应另找原因，如容量与优化）。")
    r = rows["resnet18"]
    if r is None:
        lines.append("ResNet-18 没有梯度记录，无法检验“残差连接是梯度高速公路”的说法。")
    else:
        v = vanishing_verdict(min(r["early_ratio"], r["late_ratio"]))
        desc = (f"ResNet-18（{int(r['layers'])} 个权重层，含 shortcut 卷积）的比值早期为 {r['early_ratio']:.3g}、"
                f"后期为 {r['late_ratio']:.3g}")
        if v == "none":
            vs = ""
            if b is not None:
                rb, rr = min(b["early_ratio"], b["late_ratio"]), min(r["early_ratio"], r["late_ratio"])
                vs = (f"不过它的比值（{rr:.3g}）{'低于' if rr < rb else '不低于'} {int(b['layers'])} 层的 BaselineNet"
                      f"（{rb:.3g}）。")
            lines.append(desc + "：首层仍得到与末层同一数量级的梯度，与残差连接让梯度直达浅层"
                         f"（“梯度高速公路”）的解释一致。{vs}本实验没有同等深度、去掉残差连接的对照网络，"
                         "所以只检验了“浅层仍能得到梯度”这一点，没有检验梯度是否因为残差连接才得以保留。")
        else:
            lines.append(desc + "：首层梯度明显小于末层，本数据下看不出残差连接起到“梯度高速公路”的作用。")
    for m in ("densenet121", "se_resnet18", "densenet121_cifar"):
        r2 = rows[m]
        if r2 is not None:
            lines.append(f"{model_label(m)}：早期 {r2['early_ratio']:.3g}，后期 {r2['late_ratio']:.3g}"
                         f"（{'有衰减迹象' if vanishing_verdict(min(r2['early_ratio'], r2['late_ratio'])) == 'vanishing' else '无明显衰减'}）。")
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
        out.append(_cmp_sentence(st, ranked[0], ranked[1], variant_label(ranked[0], st), variant_label(ranked[1], st)))
        if _have(st, "cnn_baseline", "cnn_baseline_sgd_high_lr"):
            c = compare(st, "cnn_baseline_sgd_high_lr", "cnn_baseline")
            lo_lr, hi_lr = _lr_of(res, "cnn_baseline"), _lr_of(res, "cnn_baseline_sgd_high_lr")
            trend, delta = _trend(res, "cnn_baseline")
            slow = (f"lr={lo_lr} 的 SGD 到最后一个 epoch 仍在上升（末 epoch +{delta * 100:.1f} 个百分点），"
                    f"在 {int(st.loc['cnn_baseline', 'epochs'])} 个 epoch 内没有收敛。" if trend == "rising"
                    else f"lr={lo_lr} 的 SGD 学得更慢。")
            out.append(f"SGD 把学习率从 {lo_lr} 提高到 {hi_lr}：" + (
                f"准确率提高 {pp(c['diff'], sign=False)}，{slow}" if c["verdict"] == "a"
                else f"准确率变化 {pp(c['diff'])}，" + {"tie": "在种子间波动之内。", "b": "反而下降。"}.get(
                    c["verdict"], "无法判断（" + _cmp_sentence(st, "cnn_baseline_sgd_high_lr", "cnn_baseline",
                                                            f"lr={hi_lr}", f"lr={lo_lr}") + "）")))
    else:
        out.append("可用的 BaselineNet 变体不足两个（" + (_missing_note(st, "cnn_baseline", "cnn_baseline_adam",
                                                                   "cnn_baseline_sgd_high_lr") or "无") + "），无法比较。")
    # -- ResNet vs BaselineNet
    out += ["", "**ResNet-18 与 BaselineNet。**"]
    best_base = max(base, key=lambda e: st.loc[e, "mean"]) if base else "cnn_baseline_adam"
    out.append(_cmp_sentence(st, "cnn_resnet18_adam", best_base, "ResNet-18 (Adam)", f"最好的 BaselineNet（`{best_base}`）"))
    # -- DenseNet vs ResNet, with the stem explanation
    out += ["", "**DenseNet-121 与 ResNet-18。**"]
    out.append(_cmp_sentence(st, "cnn_densenet121_adam", "cnn_resnet18_adam", "DenseNet-121", "ResNet-18"))
    ss = stage_summary(["densenet121", "resnet18", "densenet121_cifar"])
    dstage, dres = _last_block_resolution("densenet121")
    rstage, rres = _last_block_resolution("resnet18")
    cstage, cres = _last_block_resolution("densenet121_cifar")
    behind = compare(st, "cnn_densenet121_adam", "cnn_resnet18_adam")["verdict"] == "b"
    out.append(
        ("一个可能的结构原因见阶段表：" if behind else "两者的结构差异见阶段表（本数据中 DenseNet-121 并不落后，下面只是事实对照）：")
        + f"torchvision 的 DenseNet-121 使用为 224×224 ImageNet 设计的 stem（7×7 步长 2 卷积 + 最大池化），"
        f"在 32×32 输入上最后一个稠密块 `{dstage}` 只在 {dres}×{dres} 的特征图上运算，而 ResNet-18 的 `{rstage}` 仍有 {rres}×{rres}；"
        f"每图计算量 DenseNet-121 仅 {ss.loc['densenet121', 'macs'] / 1e6:.0f} M MACs，ResNet-18 为 "
        f"{ss.loc['resnet18', 'macs'] / 1e6:.0f} M。换成 CIFAR stem（3×3 步长 1，无池化）后最后一个块为 {cres}×{cres}、"
        f"{ss.loc['densenet121_cifar', 'macs'] / 1e6:.0f} M MACs。")
    if _have(st, "cnn_densenet121_cifar_stem_adam", "cnn_densenet121_adam"):
        c = compare(st, "cnn_densenet121_cifar_stem_adam", "cnn_densenet121_adam")
        out.append(_cmp_sentence(st, "cnn_densenet121_cifar_stem_adam", "cnn_densenet121_adam",
                                 "CIFAR stem 的 DenseNet-121", "原版 DenseNet-121")
                   + ("换成 CIFAR stem 提高了准确率，支持“ImageNet stem 限制了 DenseNet-121”的解释。"
                      if c["verdict"] == "a" else "本数据不能说明 stem 对准确率有影响。"))
    else:
        out.append("扩展变体 `cnn_densenet121_cifar_stem_adam` 没有可用结果，stem 的解释未经实验检验。")
    out.append(_memory_claim(res)[1])
    # -- SE-ResNet vs ResNet
    out += ["", "**SE-ResNet-18 与 ResNet-18。**"]
    c = compare(st, "cnn_se_resnet18_adam", "cnn_resnet18_adam")
    out.append(_cmp_sentence(st, "cnn_se_resnet18_adam", "cnn_resnet18_adam", "SE-ResNet-18", "ResNet-18"))
    if c["verdict"] == "tie" and pd.notna(c["spread"]):
        out.append("也就是说，SE 模块带来的差异小于种子之间的随机波动，本实验不能说明 SE 模块有效。")
    elif c["verdict"] in ("a", "b", "tie") and math.isnan(c["spread"]):
        out.append("但只有单个种子，这一结论是否可靠无法确认。")
    # -- recipe extension
    if _have(st, "cnn_resnet18_sgd_cosine_aug", "cnn_resnet18_adam"):
        out += ["", "**训练配方（扩展）。** " + _cmp_sentence(
            st, "cnn_resnet18_sgd_cosine_aug", "cnn_resnet18_adam", "ResNet-18 + SGD/余弦/增强", "ResNet-18 + Adam")]
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
    tbl = study_comparison(res)
    counts = tbl["判定"].value_counts()
    head = ("逐项列出原报告的数字或说法与本实验的测量。排序类说法以种子间波动为界："
            "差异不超过波动时不下结论；绝对准确率只在变体以 full 配置的规模训练时判定"
            "（全部训练图、不少于 full 配置的 epoch 数；容差为 2 个百分点与两倍种子标准差中的较大者）。"
            "原研究没有说明 epoch 数：BaselineNet 的 epoch 数是本项目参照原报告的准确率选定的，"
            "所以这几项只说明在该 epoch 数下能否得到原报告的数字，不是独立的复现。")
    if "smoke" in res.profiles:
        head += "\n\n本报告基于 smoke 配置，下表的判定只用于验证流程。"
    head += "\n\n汇总：" + "，".join(f"{k} {counts.get(k, 0)} 项" for k in VERDICT_ZH.values()) + "。"
    return head


def conclusion_markdown(res: Results) -> str:
    """3. 实验总结."""
    st = summary_stats(res)
    tbl = study_comparison(res)
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
    why = {"missing": "结果缺失", "scale": "训练规模不同", "single_seed": "单种子、差距太小"}
    c = compare(st, "cnn_se_resnet18_adam", "cnn_resnet18_adam")
    se = {"tie": "SE-ResNet-18 与 ResNet-18 的差异在种子波动之内",
          "a": f"SE-ResNet-18 比 ResNet-18 高 {pp(c['diff'], sign=False)}",
          "b": f"SE-ResNet-18 比 ResNet-18 低 {pp(c['diff'], sign=False)}",
          "unknown": f"SE-ResNet-18 与 ResNet-18 无法比较（{why.get(c['reason'], '')}）"}[c["verdict"]]
    c2 = compare(st, "cnn_densenet121_adam", "cnn_resnet18_adam")
    dn = {"tie": "DenseNet-121 与 ResNet-18 相当", "a": "DenseNet-121 优于 ResNet-18",
          "b": "DenseNet-121 不如 ResNet-18",
          "unknown": f"DenseNet-121 与 ResNet-18 无法比较（{why.get(c2['reason'], '')}）"}[c2["verdict"]]
    if "subset" in (c["reason"], c2["reason"]):
        dn = "在深度模型的训练子集上，" + dn
        se += "（子集上的结果，不代表完整训练后的高下）"
    r1 = _last_block_resolution("densenet121")[1]
    c3 = compare(st, "cnn_densenet121_cifar_stem_adam", "cnn_densenet121_adam")
    stem = {"a": f"换成 CIFAR stem 后准确率提高 {pp(c3['diff'], sign=False)}，支持“ImageNet stem 限制了 DenseNet-121”的解释",
            "tie": "换成 CIFAR stem 后准确率变化在波动之内，stem 的解释没有得到支持",
            "b": f"换成 CIFAR stem 后准确率反而低 {pp(c3['diff'], sign=False)}，stem 的解释没有得到支持",
            "unknown": f"stem 的解释本配置无法检验（{why.get(c3['reason'], '')}）"}[c3["verdict"]]
    if c3["reason"] == "subset" and c3["verdict"] != "unknown":
        stem += "（子集上的结果）"
    lines.append(f"2. 架构：{dn}；{se}。torchvision 的 DenseNet-121 在 32×32 输入上最后一个稠密块只有 {r1}×{r1}；{stem}。")
    b = _ratio_row(res, "baseline")
    lines.append("3. 梯度：" + ("没有梯度记录。" if b is None else (
        "BaselineNet 显示出梯度消失迹象。" if vanishing_verdict(min(b["early_ratio"], b["late_ratio"])) == "vanishing"
        else f"BaselineNet 的首层/末层梯度比（{b['early_ratio']:.3g} / {b['late_ratio']:.3g}）不支持“普通网络梯度消失”的说法。")))
    n = tbl["判定"].value_counts()
    lines.append(f"4. 与原报告逐项对比：成立 {n.get('成立', 0)} 项，不成立 {n.get('不成立', 0)} 项，"
                 f"本配置规模无法判断 {n.get('本配置规模无法判断', 0)} 项。")
    if res.missing:
        lines.append(f"5. 缺失的变体：{'、'.join(f'`{m}`' for m in res.missing)}，相关结论未经检验。")
    bad = st[st["state"].isin(["diverged", "failed"])]
    if len(bad):
        lines.append("6. 未得到结果的变体：" + "、".join(f"`{e}`（{STATUS_ZH[s]}）" for e, s in bad["state"].items()) + "。")
    return "\n".join(lines)

