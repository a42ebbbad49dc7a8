"""2.3 分析: one subsection per architecture, each in three paragraphs: the mechanism and
what it predicts (the study's explanation), what our runs show, and what this scale
cannot show. Every number is computed from the runs; the verdict words come from
``stats.compare``.
"""
from __future__ import annotations

import math

import pandas as pd

from ..study import BASELINE_VARIANTS, MATCHED_BASELINE, PLAIN_CONTROL
from .labels import class_zh, shown
from .load import Results
from .measures import (SPEED_NOISE, CHANCE_ACC, collapsed, confusion_facts, dynamics, mode_clash, model_facts,
                       near_chance, speed)
from .phrases import acc, cmp_sentence, early_words, null_words, points, prose, prose_name, ref_sentence
from .claims import decided_by, row_numbers, section_claims
from .stats import _have, best_of, change_noise, compare, summary_stats

MECHANISM = "**机制与预期**："
DATA = "**本实验的数据**："
CLAIMS = "**与原报告的说法**："
LIMITS = "**这一规模不能说明的**："


@prose
def analysis_lead(res: Results) -> str:
    return ("下面逐个架构讨论：先说明原报告给出的机制及其可检验的推论，再看本实验的数据，最后指出这一规模下无法回答的问题。"
            "梯度、计算量与各类别错误的完整数据见 2.4–2.6 节。")


@prose
def analysis_markdown(res: Results) -> str:
    """All of 2.3 (the notebook shows the four subsections one by one)."""
    return "\n\n".join(f(res) for f in (baseline_section, resnet_section, densenet_section, se_section))


def _section(res: Results, title: str, mechanism: str, data: list[str], limits: str) -> str:
    """Mechanism → our data → the study's claims here (their verdict words only; the measurement
    and the reason are in the 2.8 table, from the same registry entries) → limits."""
    data_text = "".join(x for x in data if x)
    topic = title.split(" ", 1)[0]
    here = section_claims(res, topic)
    claims = _claims_here(res, here) if here else "本节没有对应的说法。"
    return (f"#### {title}\n\n{MECHANISM}{mechanism}\n\n{DATA}{data_text or '没有可用的运行结果。'}\n\n"
            f"{CLAIMS}{claims}\n\n{LIMITS}{limits}")


def _claims_here(res: Results, here: list) -> str:
    """Where the section's claims are judged (the 2.8 rows) and by which runs: their verdicts are
    said there, once."""
    n = decided_by(res, here)
    parts = [f"{n['own']} 条由本次运行判定" if n["own"] else "",
             f"{n['reference']} 条本次规模不足、由参考运行判定" if n["reference"] else "",
             f"{n['open']} 条无法检验或规模不足" if n["open"] else "",
             f"{n['other']} 条只作对照、不计入" if n["other"] else ""]
    where = row_numbers(res, [c.id for c in here])
    counted = "，".join(p for p in parts if p)
    frames = (f"原报告在这部分的 {len(here)} 条说法列在{where}，测量与理由都在那里；其中{counted}。",
              f"这一节涉及原报告的 {len(here)} 条说法，见{where}：{counted}。",
              f"{where}是这一节的 {len(here)} 条说法，{counted}。",
              f"本节的 {len(here)} 条说法同样逐条列在{where}；{counted}。")
    return frames[(int(here[0].topic.rsplit(".", 1)[-1]) - 1) % len(frames)]  # 2.3.1 says it in full, the others shorter


# ------------------------------------------------------------------ shared data sentences


def _gap_sentence(res: Results, exp: str, name: str) -> str:
    """Train/test gap of the last epoch, and test loss rising while test accuracy rose."""
    d = dynamics(res, exp)
    if d is None:
        return ""
    n = int(res.runs[res.runs["exp_name"] == exp]["test_size"].max() or 10_000)
    head = f"{name}最后一个 epoch 的训练准确率为 {acc(d['train_acc'])}，测试准确率为 {acc(d['test_acc'])}，"
    if near_chance(d["train_acc"], n) and near_chance(d["test_acc"], n):
        text = head + "两者都与随机猜测（10%）相差无几，谈不上训练集与测试集之差。"
    elif abs(d["gap"]) < change_noise(d["test_acc"], n):
        text = head + f"两者之差（{points(d['gap'])}）在测试集的抽样误差之内。"
    else:
        text = head + f"{'训练集高出' if d['gap'] >= 0 else '测试集反而高出'} {points(d['gap'])}。"
    if d["loss_rises"]:
        text += (f"测试损失在第 {d['loss_min_epoch']} 个 epoch 降到最低（{d['loss_min']:.3f}）后回升到 {d['loss_last']:.3f}"
                 + ("，而测试准确率仍在上升：损失升而准确率不降，通常是模型对判错的样本给出了更极端的概率"
                    if d["test_acc"] > d["acc_at_loss_min"] else "，测试准确率也没有再提高")
                 + ("；只回升了一个 epoch，还不足以认定为过拟合。" if d["epochs"] - d["loss_min_epoch"] <= 1
                    else "，是过拟合的迹象。" if d["test_acc"] > d["acc_at_loss_min"] else "，已出现过拟合。"))
    return text


def _collapse_sentence(res: Results, exp: str, name: str) -> str:
    f = confusion_facts(res, exp)
    if f is None or (f["top_pred_share"] < 0.3 and len(f["never_predicted"]) < 2):
        return ""
    return (f"{name}把 {f['top_pred_share'] * 100:.0f}% 的测试图判为{class_zh(f['top_pred'])}"
            + (f"，从不预测{'、'.join(class_zh(k) for k in f['never_predicted'])}" if f["never_predicted"] else "")
            + ("：预测坍缩到一个类别上，是欠训练的表现。" if collapsed(f) else "：预测集中在少数类别上，是欠训练的表现。"))


# ------------------------------------------------------------------ 2.3.1 BaselineNet


@prose
def baseline_section(res: Results) -> str:
    st = summary_stats(res)
    mechanism = ("原报告认为基线网络学得慢、很早进入平台期，原因是串联结构中的梯度消失：梯度每经过一层都要乘以"
                 "该层的权重和激活函数的导数，传到浅层时已很微弱，浅层几乎不更新；因此无论怎样调整优化器和学习率，"
                 "性能上限都被锁死。若如此，首层的梯度应比末层小一个数量级以上，准确率应早早停止上升，"
                 "调学习率也不应带来大的提高。")
    return _section(res, "2.3.1 BaselineNet：浅层网络的瓶颈", mechanism,
                    [_baseline_ranking(res, st), _baseline_lr(res, st), _baseline_confusion(res, st)],
                    _baseline_limits(res))


def _baseline_ranking(res: Results, st: pd.DataFrame) -> str:
    base = [e for e in BASELINE_VARIANTS if _have(st, e)]
    if len(base) < 2:
        return ""
    ranked = sorted(base, key=lambda e: -st.loc[e, "mean"])
    first = ("三个变体" if len(base) == 3 else "两个变体") + "的最终准确率由高到低为 " + "、".join(
        f"{prose_name(res, e)} {acc(st.loc[e, 'mean'])}" for e in ranked) + "。"
    return first + cmp_sentence(res, st, ranked[0], ranked[1], prose_name(res, ranked[0]), prose_name(res, ranked[1]))


def _baseline_lr(res: Results, st: pd.DataFrame) -> str:
    lo, hi = "cnn_baseline", "cnn_baseline_sgd_high_lr"
    if not _have(st, lo, hi):
        return ""
    c = compare(res, hi, lo)
    lr_lo, lr_hi = (f"{res.runs.loc[res.runs['exp_name'] == e, 'lr'].iloc[0]:g}" for e in (lo, hi))
    head = f"只把 SGD 的学习率从 {lr_lo} 提高到 {lr_hi}，"
    if c.reason == "subset":
        return head + (f"准确率从 {acc(st.loc[lo, 'mean'])} 变为 {acc(st.loc[hi, 'mean'])}，"
                       + early_words(c, f"学习率 {lr_hi}", f"学习率 {lr_lo}") + "。")
    if c.verdict == "a":
        return head + f"准确率就提高了 {points(_shown_diff(st, hi, lo))}（{acc(st.loc[lo, 'mean'])} → {acc(st.loc[hi, 'mean'])}）。"
    if c.verdict == "b":
        return head + f"准确率反而下降 {points(_shown_diff(st, hi, lo))}（{acc(st.loc[lo, 'mean'])} → {acc(st.loc[hi, 'mean'])}）。"
    return head + f"准确率从 {acc(st.loc[lo, 'mean'])} 变为 {acc(st.loc[hi, 'mean'])}，{null_words(c)}。"


def _baseline_confusion(res: Results, st: pd.DataFrame) -> str:
    best = best_of(st, BASELINE_VARIANTS)
    if best is None:
        return ""
    f = confusion_facts(res, best)
    if f is None:
        return ""
    if collapsed(f):
        return (f"{prose_name(res, best)} 出现了预测坍缩：{f['top_pred_share'] * 100:.0f}% 的测试图被判为"
                f"{class_zh(f['top_pred'])}，混淆矩阵反映的是这一偏向，而不是哪些类别彼此相似。")
    a, b = f["pair"]
    return (f"{prose_name(res, best)} 最常混淆的是{class_zh(a)}与{class_zh(b)}（两个方向共 {f['pair_count']:,} 次，"
            f"每类 {f['per_class']:,} 张测试图）。")


def _baseline_limits(res: Results) -> str:
    b, r = model_facts("baseline"), model_facts("resnet18")
    return (f"BaselineNet 只有 {b['weight_layers']} 个权重层，本身并不深；它与 ResNet-18 的参数量相差约 "
            f"{r['params'] / b['params']:.0f} 倍，后者还有批归一化、更多的层和更宽的通道。所以两者的准确率差距"
            "不能单独归因于跳跃连接；跳跃连接的作用由同深度、只去掉跳跃连接的 Plain-18 单独检验（2.3.2）。")


# ------------------------------------------------------------------ 2.3.2 ResNet-18


@prose
def resnet_section(res: Results) -> str:
    st = summary_stats(res)
    mechanism = ("原报告认为跳跃连接为梯度提供了一条从高层直达低层的“高速公路”，使训练稳定、快速且持续提升。"
                 "若如此，ResNet-18 的浅层应得到与深层同一数量级的梯度，训练曲线应平稳上升。")
    return _section(res, "2.3.2 ResNet-18：残差连接与优化", mechanism,
                    [_resnet_vs_baseline(res, st), _deep_vs_shallow(res, st), _skip_control(res, st),
                     _gap_sentence(res, "cnn_resnet18_adam", "ResNet-18 "), _recipe(res, st)],
                    _resnet_limits(res, st))


RESNET = "cnn_resnet18_adam"


def _resnet_vs_baseline(res: Results, st: pd.DataFrame) -> str:
    best = best_of(st, BASELINE_VARIANTS)
    if best is None:
        return ""
    text = cmp_sentence(res, st, RESNET, best, "ResNet-18", f"最好的基线 {prose_name(res, best)}")
    ref = res.reference
    if ref is not None and (rbest := best_of(summary_stats(ref), BASELINE_VARIANTS)) is not None:
        text += ref_sentence(res, RESNET, rbest, "ResNet-18", f"最好的基线 {prose_name(ref, rbest)}")
    return text


def _deep_vs_shallow(res: Results, st: pd.DataFrame) -> str:
    """Deep against shallow at equal data: the matched BaselineNet trained at the deep budget."""
    if not _have(st, RESNET, MATCHED_BASELINE):
        return ""
    return ("为了在同等数据上比较深浅，BaselineNet（Adam）另按深层模型的规模（同样的训练子集、epoch 数与批大小）训练："
            + cmp_sentence(res, st, RESNET, MATCHED_BASELINE, "ResNet-18", "同等规模的 BaselineNet"))


def _skip_control(res: Results, st: pd.DataFrame) -> str:
    """ResNet-18 against Plain-18: the same network with and without its shortcuts."""
    if not _have(st, RESNET, PLAIN_CONTROL) and (res.reference is None or not _have(summary_stats(res.reference), RESNET, PLAIN_CONTROL)):
        return ""
    head = ("Plain-18 是去掉了全部跳跃连接（包括三处 1×1 投影捷径）的 ResNet-18，卷积、批归一化与宽度都相同，"
            "两者之差只在跳跃连接。")
    own = cmp_sentence(res, st, RESNET, PLAIN_CONTROL, "ResNet-18", "Plain-18") if _have(st, RESNET, PLAIN_CONTROL) else ""
    return head + own + ref_sentence(res, RESNET, PLAIN_CONTROL, "ResNet-18", "Plain-18")


def _recipe(res: Results, st: pd.DataFrame) -> str:
    e = "cnn_resnet18_sgd_cosine_aug"
    if not _have(st, e, RESNET):
        return ""
    name, d = prose_name(res, e), dynamics(res, e)
    lr = f"{res.runs.loc[res.runs['exp_name'] == e, 'lr'].iloc[0]:g}"
    if d and d["spike"]:  # the comparison would be read as a verdict; the divergence is the finding
        return (f"扩展变体{name}以学习率 {lr} 起步，第 {d['spike_epoch']} 个 epoch 几乎发散：测试损失高达 {d['spike_loss']:.3g}"
                f"（均匀猜测为 {math.log(10):.2f}），测试准确率只有 {acc(d['spike_acc'])}"
                + ("，低于随机猜测" if d["spike_acc"] < CHANCE_ACC else "")
                + f"；到第 {d['epochs']} 个 epoch 恢复到 {acc(d['test_acc'])}（Adam 训练的 ResNet-18 为 "
                f"{acc(st.loc[RESNET, 'mean'])}）。这种配方要训练上百个 epoch、学习率退火之后才显出优势，"
                f"{d['epochs']} 个 epoch 还不能拿来判断它的好坏。")
    return "扩展变体：" + cmp_sentence(res, st, e, RESNET, name, "Adam 训练的 ResNet-18")


def _resnet_limits(res: Results, st: pd.DataFrame) -> str:
    text = ("跳跃连接的对照只有 18 层一种深度；“退化”是更深的普通网络比浅的更差，He 等（2016）在 34 层时才明显看到，"
            "本实验没有训练更深的一对。")
    d = dynamics(res, "cnn_resnet18_sgd_cosine_aug")
    if _have(st, "cnn_resnet18_sgd_cosine_aug") and not (d and d["spike"]):  # else the data paragraph said it
        text += (f"标准 CIFAR 配方（余弦退火配合数据增强）通常要训练上百个 epoch 才显出优势，"
                 f"{int(st.loc['cnn_resnet18_sgd_cosine_aug', 'epochs'])} 个 epoch 检验不了它。")
    return text


# ------------------------------------------------------------------ 2.3.3 DenseNet-121


@prose
def densenet_section(res: Results) -> str:
    st = summary_stats(res)
    mechanism = ("原报告认为拼接带来特征复用和“隐式的深度监督”：每一层都直接得到来自损失的梯度，新层只需学习补充的特征，"
                 "所以 DenseNet 的参数效率更高；代价是特征图的通道数随层数增长，训练时显存开销大。原报告中 DenseNet-121 的"
                 "准确率（77%）低于 ResNet-18（82%）。若机制成立，DenseNet-121 应以更少的参数达到相近的准确率，"
                 "训练内存应高于 ResNet-18。")
    return _section(res, "2.3.3 DenseNet-121：拼接与特征复用", mechanism,
                    [cmp_sentence(res, st, "cnn_densenet121_adam", "cnn_resnet18_adam", "DenseNet-121", "ResNet-18")
                     + ref_sentence(res, "cnn_densenet121_adam", "cnn_resnet18_adam", "DenseNet-121", "ResNet-18"),
                     _densenet_stem(res, st), _densenet_speed(res), _densenet_memory(res),
                     _gap_sentence(res, "cnn_densenet121_adam", "DenseNet-121 ")],
                    _densenet_limits(res, st))


def _shown_diff(st: pd.DataFrame, a: str, b: str) -> float:
    """a's mean minus b's as the two printed percentages subtract."""
    return (shown(st.loc[a, "mean"]) - shown(st.loc[b, "mean"])) / 100


def _densenet_stem(res: Results, st: pd.DataFrame) -> str:
    d, k, r = model_facts("densenet121"), model_facts("densenet121_cifar"), model_facts("resnet18")
    text = (f"由于 ImageNet 式的输入层，它最后一个稠密块只在 {d['block_res'][-1]}×{d['block_res'][-1]} 的特征图上运算，"
            f"每张图的计算量只有 {d['macs'] / 1e6:.1f} M MACs，约为 ResNet-18（{r['macs'] / 1e6:.1f} M）的 "
            f"{d['macs'] / r['macs'] * 100:.0f}%；换成 CIFAR 输入层后升至 {k['macs'] / 1e6:.1f} M。")
    e = "cnn_densenet121_cifar_stem_adam"
    if not _have(st, e, "cnn_densenet121_adam"):
        return text + "本次没有训练换成 CIFAR 输入层的扩展变体，这一解释未经实验检验。"
    c = compare(res, e, "cnn_densenet121_adam")
    text += cmp_sentence(res, st, e, "cnn_densenet121_adam", "CIFAR 输入层版", "原版")
    if c.reason == "subset":  # cmp_sentence has said it reflects early training only
        return text + "因此这里还不能检验本项目的假设（ImageNet 式输入层限制了 DenseNet-121 在 32×32 图像上的表现），需要完整训练的结果。"
    return text + ("这支持本项目的假设：ImageNet 式输入层限制了 DenseNet-121 在 32×32 图像上的表现。" if c.verdict == "a"
                   else "本数据不能说明输入层对准确率有影响。")


def _speed_of(res: Results, exp: str) -> float:
    s = speed(res, exp)
    return s["seconds_per_epoch"] if s else math.nan


def _densenet_speed(res: Results) -> str:
    sd, sr = _speed_of(res, "cnn_densenet121_adam"), _speed_of(res, "cnn_resnet18_adam")
    if math.isnan(sd) or math.isnan(sr):
        return ""
    md, mr = model_facts("densenet121")["macs"], model_facts("resnet18")["macs"]
    cheaper = md < mr
    head = f"DenseNet-121 每 epoch 用时 {sd:.2f} 秒，ResNet-18 为 {sr:.2f} 秒（前者是后者的 {sd / sr:.2f} 倍）"
    clash = mode_clash(res, "cnn_densenet121_adam", "cnn_resnet18_adam")
    if clash:
        return head + clash + "。"
    if abs(sd / sr - 1) < SPEED_NOISE:
        verdict = f"两者用时相当，与计算量相差 {max(md, mr) / min(md, mr):.1f} 倍并不相称"
    elif (sd < sr) == cheaper:
        verdict = (f"快慢的方向与计算量一致，但不成正比：计算量之比为 {md / mr:.2f}，用时之比为 {sd / sr:.2f}"
                   if abs(math.log((sd / sr) / (md / mr))) > math.log(1 + 2 * SPEED_NOISE) else "与计算量大致成正比")
    else:
        verdict = "与计算量的大小关系相反"
    return f"{head}，{verdict}。"


def _densenet_memory(res: Results) -> str:
    if res.cost is None:
        return ""
    c = res.cost.set_index("model")
    if not {"densenet121", "resnet18"} <= set(c.index):
        return ""
    d, r = c.loc["densenet121", "step_memory_mb"], c.loc["resnet18", "step_memory_mb"]
    text = (f"单步训练的峰值内存，DenseNet-121 为 {d:.1f} MB，ResNet-18 为 {r:.1f} MB（{d / r:.2f} 倍）"
            + ("，在 32×32 输入上反而更低：特征图太小，拼接累积的激活不多" if d < 0.9 * r else "") + "。")
    if "densenet121_cifar" in c.index and pd.notna(c.loc["densenet121_cifar", "step_memory_mb"]):
        k = c.loc["densenet121_cifar", "step_memory_mb"]
        text += (f"CIFAR 输入层版在同样分辨率下为 {k:.1f} MB，是 ResNet-18 的 {k / r:.2f} 倍"
                 + ("：分辨率相同时，拼接确实使内存更高。" if k > 1.1 * r else "。"))
    return text


def _densenet_limits(res: Results, st: pd.DataFrame) -> str:
    return ("特征复用和隐式深度监督是否让 DenseNet 以更少的参数学得更好，要在完整训练后比较准确率才能看出；"
            "内存用的是 CPU 上单步训练的峰值常驻内存增量，不是原报告所说的 GPU 显存，只能比较相对大小。")


# ------------------------------------------------------------------ 2.3.4 SE-ResNet-18


@prose
def se_section(res: Results) -> str:
    st = summary_stats(res)
    mechanism = ("原报告认为 SE 模块让网络按每张图的内容动态地给通道分配权重，突出有用的通道、抑制冗余的通道；"
                 "但在 CIFAR-10 上 SE-ResNet-18 与 ResNet-18 持平（都是 82%），原报告把这解释为 ResNet-18 的特征能力"
                 "已接近饱和。若如此，两者的准确率应在种子间波动之内。")
    return _section(res, "2.3.4 SE-ResNet-18：动态通道注意力", mechanism,
                    [cmp_sentence(res, st, "cnn_se_resnet18_adam", "cnn_resnet18_adam", "SE-ResNet-18", "ResNet-18")
                     + ref_sentence(res, "cnn_se_resnet18_adam", "cnn_resnet18_adam", "SE-ResNet-18", "ResNet-18"),
                     _se_cost(res), _collapse_sentence(res, "cnn_se_resnet18_adam", "SE-ResNet-18 "),
                     _collapse_sentence(res, "cnn_resnet18_adam", "ResNet-18 ")],
                    _se_limits(res, st))


def _se_cost(res: Results) -> str:
    ss, sr = _speed_of(res, "cnn_se_resnet18_adam"), _speed_of(res, "cnn_resnet18_adam")
    f, r = model_facts("se_resnet18"), model_facts("resnet18")
    text = f"SE 模块只增加了 {(f['params'] - r['params']) / r['params'] * 100:.1f}% 的参数"
    if not (math.isnan(ss) or math.isnan(sr)):
        text += f"，每 epoch 用时 {ss:.2f} 秒，ResNet-18 为 {sr:.2f} 秒（{ss / sr:.2f} 倍）"
        clash = mode_clash(res, "cnn_se_resnet18_adam", "cnn_resnet18_adam")
        if clash:
            text += clash
        elif abs(ss / sr - 1) < SPEED_NOISE:
            text += "，相差在运行之间的波动（约 10%）之内"
        elif ss > sr:
            text += "，逐通道的缩放在 CPU 上可能并不便宜"
    return text + "。"


def _se_limits(res: Results, st: pd.DataFrame) -> str:
    c = compare(res, "cnn_se_resnet18_adam", "cnn_resnet18_adam")
    single = c.reason != "missing" and c.single_seed
    return ("“特征提取能力已接近饱和”的解释需要在完整训练、多个种子下比较两者才能检验"
            + ("；本实验每个变体只有一个种子，连两者是否持平都无法判断。" if single else "。")
            + "通道注意力要在网络已学到可区分的特征、各通道的重要性确有差别时才可能起作用，"
            "训练初期的准确率差异说明不了它是否有效。")
