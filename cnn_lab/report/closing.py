"""3 实验总结 and the appendices (model printouts, stage table, environment and provenance).

The summary follows the study's three themes (skip connections; addition vs
concatenation; static vs dynamic channel weighting), each worded from the data.
"""
from __future__ import annotations

import html

import pandas as pd

from ..study import BASELINE_VARIANTS, MODEL_LABELS, PLAIN_CONTROL, RECIPE_VARIANT, STEM_VARIANT
from .claim_text import level_range
from .labels import STATUS_ZH, _uniform
from .load import Results
from .measures import confusion_facts, model_facts
from .phrases import acc, early_words, null_words, points, prose, prose_name
from .printouts import model_printout
from .claims import FAILS, HOLDS, PARTIAL, SCALE, claim, claims, levelled, reference_claim, row_numbers, tally
from .damage import damaged_note
from .network_stages import models_in
from .stats import _have, best_of, compare, summary_stats
from .tables import Table, stage_table


# The study's claims each theme of the summary rests on (their verdicts stand in the 2.8 table only)
THEME_CLAIMS = {
    "skip": ("vanishing", "ceiling_locked", "not_capacity", "resnet_vs_baseline", "degradation", "gradient_highway",
             "skip_connections_key", "no_more_struggle", "depth_dividend"),
    "concat": ("densenet_vs_resnet", "densenet_param_efficiency", "densenet_memory", "add_vs_concat"),
    "attention": ("se_parity", "se_saturation", "se_attention", "se_efficiency", "se_meta_learning"),
}


def _rows(res: Results, theme: str) -> str:
    """Where the theme's claims are judged, once: the rows of the 2.8 table."""
    where = row_numbers(res, THEME_CLAIMS[theme])
    return f"（逐条的结论见{where}。）" if where else ""


def _verdict(res: Results, a: str, b: str, la: str, lb: str) -> str:
    """A short clause: how a compares with b, decided by ``stats.compare``."""
    c = compare(res, a, b)
    if c.reason == "missing":
        return f"本次缺少{la}或{lb}的结果，两者无法比较"
    if c.reason == "scale":
        return f"{la}与{lb}的训练规模不同，无法比较"
    if c.reason == "subset":
        p = "p<0.001" if c.p < 0.001 else f"p={c.p:.3f}"
        return f"{la}比{lb}{'高' if c.diff >= 0 else '低'} {points(abs(c.diff))}（{p}），{early_words(c, la, lb)}"
    if c.verdict not in ("a", "b"):
        return f"{la}与{lb}之间，{null_words(c)}"
    hi, lo = (la, lb) if c.verdict == "a" else (lb, la)
    return f"{hi}显著高于{lo}（差 {points(c.diff)}）"


@prose
def conclusion_markdown(res: Results) -> str:
    """3 实验总结: the smoke note, the three themes, what this scale leaves open, what was learned."""
    st = summary_stats(res)
    parts = [_smoke_note(res, st), _theme_skip(res, st), _theme_concat(res, st), _theme_attention(res, st),
             _open_questions(res, st), _tally(res, st), _learned(res, st)]
    return "\n\n".join(p for p in parts if p)


def _smoke_note(res: Results, st: pd.DataFrame) -> str:
    if "smoke" not in res.profiles:
        return ""
    done = st[st["state"] == "completed"]
    top = f"最高的平均最终准确率只有 {acc(done['mean'].max())}（10 类随机猜测为 10%），" if len(done) else ""
    return f"**本报告基于 smoke 配置，结论仅供流程验证**：{top}这是极小的训练规模所致，不反映模型能力。"


def _theme_skip(res: Results, st: pd.DataFrame) -> str:
    text = "**从“无法训练”到“有效训练”：跳跃连接**。"
    lo, hi = "cnn_baseline", "cnn_baseline_sgd_high_lr"
    if _have(st, lo, hi):
        c = compare(res, hi, lo)
        lr = {e: f"{res.runs.loc[res.runs['exp_name'] == e, 'lr'].iloc[0]:g}" for e in (lo, hi)}
        if c.verdict == "a" and c.reason is None:
            text += (f"只把 SGD 学习率从 {lr[lo]} 提高到 {lr[hi]}，{model_facts('baseline')['weight_layers']} 层的 BaselineNet "
                     f"在 {int(st.loc[hi, 'epochs'])} 个 epoch 后就高出 {points(c.diff)}，可见它首先受限于优化设置，而不是梯度消失。")
        else:
            text += f"对 BaselineNet，把 SGD 的学习率从 {lr[lo]} 提高到 {lr[hi]}：" + _verdict(res, hi, lo, f"学习率 {lr[hi]}", f"学习率 {lr[lo]}") + "。"
    ceiling_from_reference = False
    if any(_have(st, e) for e in BASELINE_VARIANTS):
        text += _ceiling_clause(res)
        ceiling_from_reference = _ceiling_source(res)[1] != ""
    evidence = _skip_evidence(res, st)
    if ceiling_from_reference and evidence.startswith("参考运行中，"):
        evidence = "参考运行还显示，" + evidence.removeprefix("参考运行中，")  # not twice in a row
    text += evidence or ("跳跃连接本身的作用要靠同深度、去掉跳跃连接的对照（Plain-18）来检验，"
                         "本次的运行规模还不能判定。")
    return text + _rows(res, "skip")



def _ceiling_source(res: Results) -> tuple[Results, str]:
    """The runs the ceiling row reads (this run's, or the reference's where this run's scale
    cannot tell) and how the text names them."""
    own = claim(res, "ceiling_locked")
    return (res.reference, "参考运行中，") if own.kind == SCALE and reference_claim(res, own) else (res, "")


def _ceiling_clause(res: Results) -> str:
    """Whether BaselineNet's settings stop at one level (a capacity ceiling), read as the ceiling
    row reads it."""
    source, label = _ceiling_source(res)
    sst = summary_stats(source)
    level, c = levelled(source, sst)
    if c is None:
        where = label or "本次"
        return (f"{where}BaselineNet 的曲线都还不能确认已接近平台" if not level else f"{where}只有一种 BaselineNet 设置接近平台") \
            + "，它有没有一个优化设置改变不了的上限，还看不出。"
    if c.significant:
        return f"{label}接近平台的几种设置停在不同的水平，上限随优化设置而变。"
    return (f"{label}接近平台的两种设置停在同一水平附近（{level_range(sst, (c.a, c.b))}），"
            f"这更像 {model_facts('baseline')['weight_layers']} 层小网络的容量上限。")


EARLY_EPOCHS = 10  # a deep network trained fewer epochs than this is still early in its training


def _skip_evidence(res: Results, st: pd.DataFrame) -> str:
    """Deep against shallow, then with and without the skip connection: the user's runs where they
    decide, else the reference runs (marked)."""
    out = ""
    for source, label in ((res, ""), (res.reference, "参考运行中，")):
        if source is None:
            continue
        sst = summary_stats(source)
        deep = compare(source, "cnn_resnet18_adam", PLAIN_CONTROL)
        if not _have(sst, "cnn_resnet18_adam", PLAIN_CONTROL) or deep.reason in ("subset", "scale"):
            continue
        best = best_of(sst, BASELINE_VARIANTS)
        if best is not None:
            out += (f"{label}ResNet-18 达到 {acc(sst.loc['cnn_resnet18_adam', 'mean'])}，最好的 BaselineNet 为 "
                    f"{acc(sst.loc[best, 'mean'])}；")
        out += (f"去掉全部跳跃连接的 Plain-18 为 {acc(sst.loc[PLAIN_CONTROL, 'mean'])}，"
                + ("与 ResNet-18 之差在误差内：在 18 层、带批归一化时，深层网络相对 BaselineNet 的优势主要来自深度、宽度与批归一化，"
                   "跳跃连接的作用要到更深的网络上才显现。" if not deep.significant else
                   f"{'低于' if deep.verdict == 'a' else '高于'} ResNet-18 {points(abs(deep.diff))}，"
                   + (("这部分差距归于跳跃连接" + (f"，但这是只训练了 {int(sst.loc['cnn_resnet18_adam', 'epochs'])} 个 epoch 时的差距，"
                                               "训练完成后是否还在要更长的训练回答（He 等 2016 在 18 层训练完成后看到两者几乎相同）"
                                               if sst.loc["cnn_resnet18_adam", "epochs"] < EARLY_EPOCHS else "") + "。")
                      if deep.verdict == "a" else "跳跃连接在这个深度上没有帮助。")))
        break
    return out


def _theme_concat(res: Results, st: pd.DataFrame) -> str:
    d, r, k = model_facts("densenet121"), model_facts("resnet18"), model_facts("densenet121_cifar")
    text = ("**两种“捷径”：ResNet 的相加与 DenseNet 的拼接**。"
            f"DenseNet-121 的参数只有 ResNet-18 的 {d['params'] / r['params'] * 100:.0f}%。"
            f"但在 32×32 输入上，torchvision 版 DenseNet-121 的 ImageNet 式输入层把计算量压到 {d['macs'] / 1e6:.1f} M MACs"
            f"（ResNet-18 为 {r['macs'] / 1e6:.1f} M），最后一个稠密块只有 {d['block_res'][-1]}×{d['block_res'][-1]}；"
            + (_verdict(res, STEM_VARIANT, "cnn_densenet121_adam", "CIFAR 输入层版", "原版") if _have(st, STEM_VARIANT)
               else "本次没有训练换成 CIFAR 输入层的扩展变体，输入层对准确率的影响未经检验") + "。")
    if res.cost is not None:
        c = res.cost.set_index("model")
        if {"densenet121", "resnet18", "densenet121_cifar"} <= set(c.index):
            m = c["step_memory_mb"]
            text += (f"内存的高低取决于分辨率：原版 DenseNet-121 的单步峰值内存是 ResNet-18 的 "
                     f"{m['densenet121'] / m['resnet18']:.2f} 倍，分辨率相同的 CIFAR 输入层版是 "
                     f"{m['densenet121_cifar'] / m['resnet18']:.2f} 倍（计算量 {k['macs'] / 1e6:.1f} M MACs）。")
    return text + _rows(res, "concat")


def _theme_attention(res: Results, st: pd.DataFrame) -> str:
    pair = ("cnn_se_resnet18_adam", "cnn_resnet18_adam", "SE-ResNet-18", "ResNet-18")
    own = compare(res, *pair[:2])
    # an early comparison on the training subset is left to the reference, as the 2.8 rows are
    source, label = ((res.reference, "参考运行中，") if own.reason == "subset" and res.reference is not None
                     and _have(summary_stats(res.reference), *pair[:2]) else (res, ""))
    text = "**从静态结构到动态注意力：SE 模块**。" + label + _verdict(source, *pair) + "。"
    f = confusion_facts(res, "cnn_se_resnet18_adam") if _have(st, "cnn_se_resnet18_adam") else None
    if f and f["top_pred_share"] >= 0.3:
        text += (f"SE-ResNet-18 把 {f['top_pred_share'] * 100:.0f}% 的测试图判为同一类，这样的差异更多反映欠训练时"
                 "预测偏向哪一类，还谈不上通道注意力是否有效。")
    return text + _rows(res, "attention")


def _open_questions(res: Results, st: pd.DataFrame) -> str:
    """What this run's deep subset cannot answer, and how much of it the reference runs do."""
    done = st[st["state"] == "completed"]
    small = done[(done["model"] != "baseline") & (done["train_size"] > 0) & (done["train_size"] < 50_000)]
    if not len(small):
        return ""
    n, e = int(small["train_size"].max()), int(small["epochs"].max())
    extensions = "、扩展变体的效果" if any(_have(st, x) for x in (STEM_VARIANT, RECIPE_VARIANT)) else ""
    text = (f"**这一规模回答不了的问题**：深层模型只在 {n:,} 张训练图上训练了 {e} 个 epoch，它们之间的排序{extensions}"
            "以及原报告的绝对准确率，本次运行都回答不了。")
    ref = summary_stats(res.reference) if res.reference is not None else None
    deep = ref[(ref["state"] == "completed") & (ref["model"] != "baseline")] if ref is not None else None
    if deep is None or not len(deep):
        return text + "这些要在完整规模（全部训练图、足够的 epoch、多个种子）下重新训练才能判断。"
    seeds = int(deep["n"].max())
    decided = sum(reference_claim(res, c) is not None for c in claims(res))
    return text + (f"参考运行用全部训练图判定了其中 {decided} 条说法（表 5「参考运行的结论」一栏），"
                   f"但它的深层模型也只训练了 {int(deep['epochs'].max())} 个 epoch、"
                   + ("每个一个种子" if seeds == 1 else f"每个 {seeds} 个种子")
                   + "，仍属训练早期：原报告的绝对准确率与训练曲线的形状，要更长的训练（例如在 GPU 上按完整配置训练）才能检验。")


def _tally(res: Results, st: pd.DataFrame) -> str:
    """Variants without results (the tally itself is printed once, in 2.8)."""
    lines = []
    if res.missing:
        lines.append("缺失的变体：" + "、".join(prose_name(res, m) for m in res.missing) + "，相关结论未经检验。")
    bad = st[st["state"].isin(["diverged", "failed"])]
    if len(bad):
        lines.append("未得到结果的变体：" + "、".join(f"{prose_name(res, e)}（{STATUS_ZH[s]}）"
                                              for e, s in bad["state"].items()) + "。")
    return "".join(lines)


def _learned(res: Results, st: pd.DataFrame) -> str:
    """Two or three sentences of what was learned, each chosen by the registry's verdicts."""
    out = []
    v = claim(res, "vanishing")
    if v.kind == FAILS:
        out.append(f"梯度记录表明，只有 {model_facts('baseline')['weight_layers']} 个权重层的 BaselineNet 并没有梯度消失，"
                   "原报告把它的瓶颈归于梯度消失缺少依据。")
    elif v.kind == HOLDS:
        out.append("梯度记录证实 BaselineNet 的首层梯度比末层小一个数量级以上。")
    mem = claim(res, "densenet_memory")
    if mem.kind == FAILS:
        equal_res = res.cost is not None and "densenet121_cifar" in set(res.cost["model"])
        out.append("DenseNet 的内存开销取决于输入分辨率：原报告很可能使用的 ImageNet 输入层在 32×32 图像上反而比 ResNet-18 更省内存"
                   + ("，只有分辨率相同时拼接才显出代价。" if equal_res else
                      "；分辨率相同时拼接的代价有多大，本次没有测量（需要 CIFAR 输入层的扩展变体）。"))
    t = tally(res)
    if t[SCALE] >= len(claims(res)) / 2:
        out.append(f"原报告的说法中有 {t[SCALE]} 条在这一训练规模下无法判断，架构之间的准确率排序要在完整规模、"
                   "多个种子下重新训练才能回答。")
    else:
        out.append(f"原报告可检验的说法中，成立 {t[HOLDS]} 条、部分成立 {t[PARTIAL]} 条、不成立 {t[FAILS]} 条（逐条见 2.8 节）。")
    return "**学到了什么**：" + "".join(out)


# ------------------------------------------------------------------ appendices


class Folded:
    """A block that is collapsed (``<details>``) on screen and replaced in print by a note;
    plain text (the full content) elsewhere."""

    def __init__(self, items: list[tuple[str, str, str]], print_note: str):
        self.items, self.print_note = items, print_note  # (summary, inner HTML, plain text)

    def _repr_html_(self) -> str:
        blocks = "".join(f"<details><summary>{html.escape(s)}</summary>{inner}</details>\n" for s, inner, _ in self.items)
        return f'<div class="screen-only">\n{blocks}</div><p class="print-only">{html.escape(self.print_note)}</p>'

    def __repr__(self) -> str:
        return "\n\n".join(f"== {s} ==\n{text}" for s, _, text in self.items)


def printouts(res: Results) -> Folded:
    """Appendix A: each model's printout, folded."""
    items = []
    for m in models_in(res):
        text = model_printout(m)
        items.append((f"{MODEL_LABELS.get(m, m)}（参数量 {model_facts(m)['params']:,}）",
                      f"<pre>{html.escape(text)}</pre>", text))
    return Folded(items, "完整的模型打印较长，只收录在本报告的 HTML 版中（附录 A 的折叠块）；各模型的关键形状见 1.2 节。")


def stages(res: Results) -> Folded:
    """Appendix B: feature-map shapes and MACs per stage, folded."""
    t = Table(stage_table(res), "各模型每个阶段的输出形状与每图计算量（32×32 输入）")
    return Folded([("各阶段的特征图尺寸与计算量", t._repr_html_(), repr(t))],
                  "分阶段的特征图尺寸与计算量表只收录在 HTML 版中；关键形状见 1.2 节。")


@prose
def precision_lead(res: Results) -> str:
    """Appendix B: how the numeric mode was chosen (the table beside it: ``precision_table``)."""
    gpu = "cuda" in set(res.runs["device"].astype(str).str[:4])
    return ("训练时自动选择数值格式与内存布局（配置项 amp、channels_last 为 auto 时；显式设置总是优先）："
            + ("在 GPU 上按计算能力选定；" if gpu else "")
            + "在 CPU 上对 fp32、bf16 两种数值格式与 NCHW、NHWC 两种内存布局的四种组合各计时几个训练步，取最快者，"
            "同一台机器上之后的运行沿用这一结果。下表是各模型实际使用的组合及其依据的单步用时（在模型训练所用的批大小下测得）。"
            "这些计时只有几步，在共享的机器上前后可差一半，所以结构相近的模型也可能选到不同的组合，"
            "与表 4 中整个 epoch 的吞吐也不完全一致。")


@prose
def environment_markdown(res: Results) -> str:
    """Appendix C: profile, data, software, device, code version, dates and commands."""
    r = res.runs
    if not len(r):
        return "\n".join(filter(None, ["没有运行记录。", damaged_note(res, appendix=True)]))

    def one(col: str) -> str:
        vals = [str(v) for v in _uniform(r[col].dropna())]
        return "、".join(vals) if vals else "未记录"

    profile = one("profile")
    started = min(r["started"].dropna(), default="未记录")
    finished = max(r["finished"].dropna(), default="未记录")
    return "\n".join([
        f"- 运行配置（profile）：{profile}；报告目录：`{res.reports_dir}`",
        # the description names the file as a user elsewhere finds it (relative to the project
        # when in or beside it), not this machine's absolute path
        f"- 数据：{one('data_description')}，指纹 {one('data_fingerprint')}",
        f"- 软件：Python {one('python')}，PyTorch {one('torch')}，torchvision {one('torchvision')}",
        f"- 设备：{one('device')}；处理器 {one('cpu_model')}；平台 {one('platform')}，CPU 核数 {one('cpu_count')}",
        f"- 代码版本（git commit）：{one('git_commit')}",
        f"- 训练时间：{started} 至 {finished}（UTC）",
        f"- 复现：`make report PROFILE={profile}`，即 `python -m cnn_lab pipeline --profile {profile}`；"
        "它依次训练各变体（notebooks/train_variant.ipynb），测量计算量与内存（cost.csv），"
        "再用 papermill 以参数 `reports_dir` 执行 notebooks/analysis.ipynb，导出 HTML，并用 Chromium 打印成 PDF。",
        "- 文中的数值、表格与图都由 `cnn_lab.report` 从各运行的 `runs/<实验名>/seed<N>/` 记录与 `cost.csv` 计算。",
        *filter(None, [damaged_note(res, appendix=True)]),
    ])
