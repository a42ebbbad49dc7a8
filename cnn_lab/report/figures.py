"""The report's figures (matplotlib/seaborn), computed from a loaded reports folder.

Every figure is drawn at the printed text width (``TEXT_WIDTH_IN``) or narrower, with fonts of
at least ``MIN_FONT_PT``, and ``show`` displays it at that size: the page neither shrinks nor
enlarges it, so its fonts print at their point sizes. A figure that would be tall comes as
rows of its own (one per training scale, ``MODELS_PER_ROW`` models per row), so that a page
break may fall between them instead of leaving a page half blank. Each variant has one colour
in every figure (``variant_colors``). Each figure carries a short Chinese description of what
it plots, computed from the data (``alt_text``), which ``show`` gives the image as its alt text.
"""
from __future__ import annotations

import io
import math
import re
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from .. import runio
from ..data import CLASSES
from ..study import VARIANT_ORDER, in_order
from .fonts import TEXT_WIDTH_IN
from .labels import class_zh, model_label, variant_short
from .load import FULL_TRAIN, Results, load_runs
from .measures import CHANCE_ACC, confusion_matrix
from .gradients import grad_measures, layer_profile
from .network_stages import models_in
from .stats import best_variant, multi_seed, per_class_accuracy, reference_variant

SIDE_LAYERS = r"\.se\.|shortcut"  # 1×1 convolutions beside the main path (SE modules, projections)
CSS_PX_PER_IN = 96  # a CSS pixel is 1/96 inch, on screen and on paper
# A loss is drawn off the axis (and marked with its value) when it lies above the upper quartile of
# the plotted losses by more than 1.5 interquartile ranges and by more than this factor (log scale).
OUTLIER_FACTOR = 3.0
MODELS_PER_ROW = 3  # gradient panels per row (one image each)
BLOCKS_ABOVE = 40  # a main path of more weight layers than this is drawn per block, its layers as faint points
PANEL_HEIGHT_IN = 2.0  # a row of panels, without its titles and legend


def _with_alt(fig, text: str):
    """Attach ``text`` (what the figure plots, in Chinese) to ``fig`` as its alt text."""
    fig.cnn_lab_alt = text
    return fig


def alt_text(fig) -> str:
    """The figure's alt text: the description its maker attached, else its titles."""
    titles = [t.replace("\n", " ") for t in (fig.get_suptitle(), *(ax.get_title() for ax in fig.axes)) if t]
    return getattr(fig, "cnn_lab_alt", "") or ("图：" + "；".join(titles) if titles else "图")


def show(figures: Any) -> None:
    """Display a figure (or each of a list) in the notebook at its printed size, with its alt
    text, and close it.

    The PNG is the figure's own size (no tight bounding box: every figure lays itself out) and
    its width is given in CSS pixels, so the exported page shows it at ``TEXT_WIDTH_IN`` or less
    on screen and on paper, never stretched to the column."""
    import matplotlib.pyplot as plt
    from IPython.display import display

    for fig in figures if isinstance(figures, (list, tuple)) else [figures]:
        display(figure_image(fig))
        plt.close(fig)


def figure_image(fig):
    """The figure as the notebook shows it: a PNG of its own size, its width in CSS pixels, its alt text."""
    from IPython.display import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return Image(data=buf.getvalue(), width=round(fig.get_figwidth() * CSS_PX_PER_IN), alt=alt_text(fig))


def variant_colors(variants: list[str] | None = None) -> dict[str, Any]:
    """One colour per variant, the same in every figure: the study's variants, then the
    extensions, in a fixed order, then any others."""
    import seaborn as sns

    pal = sns.color_palette("tab10", 10)
    return {v: pal[i % len(pal)] for i, v in enumerate(in_order({*VARIANT_ORDER, *(variants or [])}))}


def scale_groups(res: Results) -> list[tuple[str, list[str]]]:
    """Variants grouped by training scale (training images, epochs), largest first: runs of
    different scale are never drawn on one epoch axis."""
    if not len(res.epochs):
        return []
    runs = res.runs[res.runs["exp_name"].isin(set(res.epochs["exp_name"]))]
    keys = runs.groupby("exp_name")[["train_size", "epochs"]].first()
    groups = []
    for (n, e), sub in keys.groupby(["train_size", "epochs"], sort=False):
        n = int(n or FULL_TRAIN)
        order = [v for v in res.variants() if v in sub.index]
        groups.append((n, int(e), f"训练集 {n:,} 张、{int(e)} 个 epoch", order))
    groups.sort(key=lambda g: (-g[0], -g[1]))
    return [(title, vs) for _, _, title, vs in groups]


def _mean_sd(df: pd.DataFrame, col: str) -> pd.DataFrame:
    return df.groupby("epoch")[col].agg(["mean", "std"]).fillna({"std": 0.0})


def training_curves(res: Results) -> list:
    """Figure 2.2, one figure per training scale (largest first): loss (log axis) and accuracy
    per epoch; test solid, train dashed; band = ±1 standard deviation over seeds. A loss far
    above the bulk of the curves (a diverged epoch) is drawn off the axis, its value marked."""
    groups = scale_groups(res)
    if not groups:
        return [_placeholder_figure("训练过程", "没有训练记录")]
    colors = variant_colors(res.variants())
    return [_scale_curves(res, title, vs, colors) for title, vs in groups]


def _scale_curves(res: Results, title: str, vs: list[str], colors: dict[str, Any]):
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(TEXT_WIDTH_IN, 1.0), layout="constrained")
    curves = {(v, split, kind): _mean_sd(res.epochs[res.epochs["exp_name"] == v], f"{split}_{kind}")
              for v in vs for split in ("test", "train") for kind in ("loss", "acc")}
    losses = [(v, split, int(e), float(y)) for (v, split, kind), s in curves.items() if kind == "loss"
              for e, y in s["mean"].items()]  # every plotted loss: (variant, split, epoch, mean over seeds)
    limit = bulk_limit(y for *_, y in losses)
    for (v, split, kind), s in curves.items():
        ax, s = (ax_loss, s) if kind == "loss" else (ax_acc, s * 100)
        ax.plot(s.index, s["mean"], ls="-" if split == "test" else "--", color=colors[v],
                marker="o" if split == "test" else None, ms=3, lw=1.3 if split == "test" else 1.0)
        if split == "test" and (s["std"] > 0).any():  # no band around a loss drawn off the axis
            ax.fill_between(s.index, s["mean"] - s["std"], s["mean"] + s["std"], color=colors[v], alpha=0.15, lw=0,
                            where=(s["mean"] <= limit).to_numpy() if kind == "loss" else None)
    clipped = _loss_axis(ax_loss, losses, limit, colors)
    ax_loss.set_title("损失（对数轴）")
    ax_acc.axhline(CHANCE_ACC * 100, color="0.5", ls=":", lw=1)
    ax_acc.set_title("准确率（%，点线为随机猜测）")
    for ax in (ax_loss, ax_acc):
        ax.set_xlabel("epoch")
        _epoch_axis(ax, res.epochs[res.epochs["exp_name"].isin(vs)]["epoch"])
    fig.suptitle(title)
    handles = [Line2D([], [], color=colors[v], lw=2, label=variant_short(res, v)) for v in vs]
    handles += [Line2D([], [], color="0.3", ls="-", marker="o", ms=3,
                       label="测试集（阴影：种子间 ±1 标准差）" if multi_seed(res) else "测试集"),
                Line2D([], [], color="0.3", ls="--", label="训练集")]
    if clipped:
        handles.append(Line2D([], [], color="0.3", ls="none", marker="^", ms=4, label="超出纵轴的损失（旁注其值）"))
    fig.legend(handles=handles, loc="outside lower center", ncol=3, frameon=False)
    fig.set_figheight(PANEL_HEIGHT_IN + 0.55 + 0.19 * math.ceil(len(handles) / 3))
    alt = f"训练曲线（{title}）：{len(vs)} 个变体的训练集与测试集损失（对数纵轴）和准确率随 epoch 的变化"
    if clipped:
        named = [f"{variant_short(res, v)} 第 {e} 个 epoch 的{'测试' if split == 'test' else '训练'}损失 {y:.3g}"
                 for v, split, e, y in clipped[:3]]
        alt += "；" + "、".join(named) + (f" 等 {len(clipped)} 处" if len(clipped) > 3 else "") + " 超出纵轴，图中标出其值"
    return _with_alt(fig, alt)


def _plain_log(ax) -> None:
    """A log y axis labelled with plain numbers (2.3, 0.5), not powers of ten: powers of ten
    only over more than 2.5 decades, more ticks within less than one."""
    from matplotlib import ticker

    ax.set_yscale("log")
    lo, hi = ax.get_ylim()
    decades = math.log10(hi / lo) if lo > 0 else 3.0
    subs = (1.0,) if decades > 2.5 else (1.0, 2.0, 5.0) if decades > 0.8 else (1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 7.0)
    ax.yaxis.set_major_locator(ticker.LogLocator(base=10, subs=subs, numticks=12))
    ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda y, _: f"{y:.3g}"))
    ax.yaxis.set_minor_formatter(ticker.NullFormatter())  # labels on a few major ticks only: none overlap


def _epoch_axis(ax, epochs) -> None:
    epochs = sorted(set(int(e) for e in epochs))
    ax.set_xticks(epochs if len(epochs) <= 12 else epochs[::math.ceil(len(epochs) / 12)])
    if len(epochs) == 1:
        ax.set_xlim(epochs[0] - 0.5, epochs[0] + 0.5)


def bulk_limit(values: Iterable[float]) -> float:
    """The largest value that still belongs to the bulk of positive ``values`` on a log scale:
    the upper quartile plus 1.5 interquartile ranges (Tukey's fence), and at least
    ``OUTLIER_FACTOR`` times the upper quartile."""
    logs = np.log10([v for v in values if v > 0])
    if not len(logs):
        return math.inf
    q1, q3 = np.percentile(logs, [25, 75])
    return float(10 ** (q3 + max(1.5 * (q3 - q1), math.log10(OUTLIER_FACTOR))))


def _loss_axis(ax, losses: list[tuple[str, str, int, float]], limit: float, colors: dict[str, Any]) -> list:
    """A log axis over the plotted losses up to ``limit`` (``bulk_limit``); each loss above it is
    marked at the top edge (a triangle in the variant's colour) with its value. Returns those."""
    bulk = [y for *_, y in losses if 0 < y <= limit]
    if not bulk:
        _plain_log(ax)
        return []
    clipped = sorted((p for p in losses if p[3] > limit), key=lambda p: (p[2], -p[3]))
    ax.set_yscale("log")
    ax.set_ylim(min(bulk) / 1.15, max(bulk) * (1.35 if clipped else 1.15))  # room under the marks
    _plain_log(ax)
    top = ax.get_ylim()[1]
    epochs = sorted({p[2] for p in losses})
    for e in sorted({p[2] for p in clipped}):
        here = [p for p in clipped if p[2] == e]
        for v, *_ in here:
            ax.plot([e], [top], ls="none", marker="^", ms=5, color=colors[v], clip_on=False, zorder=5)
        right = e == epochs[-1] and len(epochs) > 1  # the value goes left of the last epoch's mark
        ax.annotate("、".join(f"{y:.3g}" for *_, y in here), xy=(e, top), xytext=(-5 if right else 5, -3),
                    textcoords="offset points", ha="right" if right else "left", va="top", fontsize=8)
    return clipped


def gradient_flow_figures(res: Results) -> list:
    """Figure 2.4, ``MODELS_PER_ROW`` models per figure (a row): per model, the per-parameter RMS
    gradient along the main path's normalized depth, first (dashed) and last (solid) recorded
    epoch, log y, in the variant's colour. The 1×1 convolutions beside the main path (SE modules,
    projection shortcuts) are separate points. A model with more than ``BLOCKS_ABOVE`` main-path
    layers (DenseNet-121, whose 1×1 and 3×3 convolutions alternate) is drawn as the median of each
    block (a dense block, a transition, the stem), its layers as faint points. The legend is in
    the last row."""
    import matplotlib.pyplot as plt

    models = [m for m in models_in(res) if reference_variant(res, m) is not None
              and (res.grads["model"] == m).any()]
    if not models:
        return [_placeholder_figure("梯度流", "没有带梯度记录的运行")]
    colors = variant_colors(res.variants())
    rows = [models[i:i + MODELS_PER_ROW] for i in range(0, len(models), MODELS_PER_ROW)]
    figs = []
    for k, row in enumerate(rows, 1):
        below = k == len(rows) and len(row) == MODELS_PER_ROW  # no free panel for the legend
        fig, axes = plt.subplots(1, MODELS_PER_ROW, figsize=(TEXT_WIDTH_IN, PANEL_HEIGHT_IN + 0.45 + 0.75 * below),
                                 layout="constrained", squeeze=False)
        panels = [_gradient_panel(ax, res, m, colors) for ax, m in zip(axes.flat, row)]
        for ax in axes.flat[len(row):]:
            ax.axis("off")
        if k == len(rows):
            _gradient_legend(fig, axes.flat[len(row)] if not below else None, res, any(p["blocks"] for p in panels))
        figs.append(_with_alt(fig, _gradient_alt(res, panels, k, len(rows))))
    return figs


def layer_block(name: str) -> str:
    """The block a weight layer belongs to: its name up to the first numbered module
    ('features.denseblock2.denselayer5.conv1.weight' → 'features.denseblock2', 'layer3.1.conv2.weight'
    → 'layer3'), else the layer itself."""
    m = re.match(r"(.*?[A-Za-z_]\d+)(\.|$)", name)
    return m.group(1) if m else name.rsplit(".", 1)[0]


def _gradient_panel(ax, res: Results, m: str, colors: dict[str, Any]) -> dict[str, Any]:
    exp = reference_variant(res, m)
    rms = grad_measures(res).query("exp_name == @exp")["rms"].notna().all()
    prof = layer_profile(res, exp, "rms" if rms else "grad_norm")
    g = res.grads[res.grads["exp_name"] == exp]
    e0, e1 = int(g["epoch"].min()), int(g["epoch"].max())
    main, side = prof[prof["path"] == "main"], prof[prof["path"] != "main"]
    blocks = main.groupby(main["layer"].map(layer_block), sort=False)
    grouped = len(main) > BLOCKS_ABOVE and blocks.ngroups < len(main)
    for col, ls in (("early", "--"), ("late", "-")) if e1 != e0 else (("late", "-"),):
        if grouped:  # the layers faint, a line through each block's median
            ax.plot(main["depth"], main[col], ls="none", marker=".", ms=2.5, color=colors[exp], alpha=0.3)
            agg = blocks.agg(depth=("depth", "mean"), value=(col, "median"))
            ax.plot(agg["depth"], agg["value"], ls=ls, color=colors[exp], lw=1.4, marker="o", ms=3)
        else:
            ax.plot(main["depth"], main[col], ls=ls, color=colors[exp], lw=1.2, marker=".", ms=3)
    if len(side):  # SE layers and projection shortcuts, off the main path
        ax.plot(side["depth"], side["late"], ls="none", marker="x", ms=3, color=colors[exp], alpha=0.6)
    _plain_log(ax)
    ax.set_xticks([0, 0.5, 1])
    ax.set_title(f"{model_label(m)}\n主干 {len(main)} 层" + (f"，{blocks.ngroups} 段的中位数" if grouped else ""))
    ax.set_xlabel("主干深度（0 输入，1 输出）")
    ax.set_ylabel("每参数 RMS 梯度" if rms else "原始梯度范数")
    return {"model": m, "layers": len(main), "blocks": blocks.ngroups if grouped else 0, "rms": bool(rms),
            "epochs": (e0, e1), "side": bool(len(side))}


def _gradient_legend(fig, slot, res: Results, grouped: bool) -> None:
    """The line styles' key: in the free panel ``slot``, else under the row."""
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color="0.3", ls="--", label="早期（第一个 epoch）"),
               Line2D([], [], color="0.3", ls="-", label="后期（最后一个 epoch）")]
    if grouped:
        handles.append(Line2D([], [], color="0.3", ls="none", marker=".", alpha=0.4, label="单层（按块汇总的模型）"))
    if res.grads["layer"].str.contains(SIDE_LAYERS).any():
        handles.append(Line2D([], [], color="0.3", ls="none", marker="x", label="旁路的 1×1 卷积\n（SE 模块、捷径投影）"))
    title = "各步中位数，对数纵轴"
    if slot is not None:
        slot.legend(handles=handles, loc="center", frameon=False, title=title)
    else:
        fig.legend(handles=handles, loc="outside lower center", ncol=2, frameon=False, title=title)


def _gradient_alt(res: Results, panels: list[dict[str, Any]], k: int, n: int) -> str:
    measure = "每参数 RMS 梯度" if all(p["rms"] for p in panels) else "梯度"
    text = (f"梯度流{f'（第 {k}/{n} 行）' if n > 1 else ''}：" + "、".join(model_label(p["model"]) for p in panels)
            + f" 的主干上各权重层的{measure}随深度的变化（对数纵轴）")
    spans = {p["epochs"] for p in panels}
    if len(spans) == 1 and (e := next(iter(spans)))[0] != e[1]:
        text += f"，虚线为第 {e[0]} 个 epoch，实线为第 {e[1]} 个 epoch"
    elif any(e0 != e1 for e0, e1 in spans):
        text += "，虚线为第一个 epoch，实线为最后一个 epoch"
    grouped = [p for p in panels if p["blocks"]]
    if grouped:
        text += "；" + "、".join(f"{model_label(p['model'])}（{p['layers']} 层分 {p['blocks']} 段）" for p in grouped) \
                + "的线连接各段的中位数，浅色点为单层"
    return text


def _placeholder_figure(title: str, message: str):
    """A small figure that says what is missing, so the report still renders without runs."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(TEXT_WIDTH_IN, 1.2), layout="constrained")
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=10)
    ax.set_title(title)
    return _with_alt(fig, f"{title}：{message}")


def per_class_figure(res: Results):
    """Heat map of per-class test accuracy (rows variants, columns classes)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    acc = per_class_accuracy(res).astype(float)
    if not len(acc):
        return _placeholder_figure("各类别测试准确率", "没有已完成的运行：无法给出各类别准确率")
    acc.index = [variant_short(res, v) for v in acc.index]
    acc.columns = [class_zh(c) for c in CLASSES]
    fig, ax = plt.subplots(figsize=(TEXT_WIDTH_IN, 0.22 * len(acc) + 0.8), layout="constrained")
    sns.heatmap(acc * 100, annot=True, fmt=".0f", cmap="viridis", vmin=0, vmax=100, ax=ax,
                annot_kws={"size": 8}, cbar_kws={"label": "准确率 (%)", "pad": 0.02})
    ax.set_xlabel("")
    ax.set_ylabel("")
    ax.tick_params(axis="x", rotation=0)
    mean = acc.mean()
    return _with_alt(fig, f"各类别测试准确率热图：{len(acc)} 个变体（行）× {len(acc.columns)} 个类别（列），"
                          f"格中为准确率（%，各种子合并）；各变体平均最高的类别是{mean.idxmax()}"
                          f"（{mean.max() * 100:.0f}%），最低的是{mean.idxmin()}（{mean.min() * 100:.0f}%）")


def confusion_figure(res: Results, exp: str | None = None):
    """Confusion matrix (rows true, columns predicted) of ``exp`` (default: the best variant,
    the one 2.6's text discusses), seeds summed; at most a third of a printed page."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    exp = exp or best_variant(res)
    if exp is None:
        return _placeholder_figure("混淆矩阵", "没有已完成的运行：无法给出混淆矩阵")
    mat = confusion_matrix(res, exp)
    mat.index = mat.columns = [class_zh(c) for c in CLASSES]
    fig, ax = plt.subplots(figsize=(4.8, 3.3), layout="constrained")
    sns.heatmap(mat, annot=True, fmt="d", cmap="Blues", ax=ax, annot_kws={"size": 8},
                cbar_kws={"label": "图像数", "pad": 0.02})
    name = variant_short(res, exp)
    ax.set_title(f"混淆矩阵：{name}")
    ax.set_xlabel("预测类别")
    ax.set_ylabel("真实类别")
    ax.tick_params(axis="x", rotation=0)
    ax.tick_params(axis="y", rotation=0)
    off = mat.where(~np.eye(len(mat), dtype=bool), 0).stack()
    (a, b), n = off.idxmax(), int(off.max())
    alt = (f"混淆矩阵：{name} 在 {int(mat.values.sum()):,} 张测试图上的预测（行为真实类别，列为预测类别，各种子合并），"
           f"对角线上判对 {int(np.trace(mat.values)):,} 张")
    return _with_alt(fig, alt + (f"；最多的错判是把{a}判成{b}（{n:,} 张）" if n else ""))


def variant_curves(source: Any, title: str | None = None):
    """Figure (e): loss and accuracy curves of ONE variant (its seeds as a mean ± std band).

    ``source``: a run directory, a list of run directories, a variant folder (holding seed*/),
    or a DataFrame of metrics rows (with or without a ``seed`` column).
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    if isinstance(source, pd.DataFrame):
        df = source.copy()
    else:
        dirs = [source] if isinstance(source, (str, Path)) else list(source)
        found: list[Path] = []
        for d in dirs:
            d = Path(d)
            found += [d] if (d / runio.CONFIG).exists() else runio.find_runs(d)
        _, df, _, _ = load_runs(found)
        if title is None and len(df):
            title = ", ".join(sorted(df["exp_name"].unique()))
    if "seed" not in df:
        df["seed"] = 0
    long = pd.concat([
        df[["epoch", "seed", f"{split}_loss", f"{split}_acc"]]
        .rename(columns={f"{split}_loss": "loss", f"{split}_acc": "acc"}).assign(数据集="训练集" if split == "train" else "测试集")
        for split in ("train", "test")], ignore_index=True)
    fig, axes = plt.subplots(1, 2, figsize=(TEXT_WIDTH_IN, 2.9), layout="constrained")
    for ax, col, name in ((axes[0], "loss", "损失"), (axes[1], "acc", "准确率")):
        sns.lineplot(data=long, x="epoch", y=col, hue="数据集", errorbar="sd", marker="o", ax=ax)
        ax.set_title(f"{name}随 epoch 的变化")
        ax.set_ylabel(name)
        ax.xaxis.get_major_locator().set_params(integer=True)
    n, epochs = df["seed"].nunique(), df["epoch"].nunique()
    fig.suptitle(f"{title or '单个变体'}（{n} 个种子{'，阴影为 ±1 标准差' if n > 1 else ''}）")
    return _with_alt(fig, f"{title or '单个变体'} 的训练集与测试集损失和准确率随 epoch 的变化"
                          f"（{n} 个种子，{epochs} 个 epoch{'，阴影为种子间 ±1 标准差' if n > 1 else ''}）")


def seed_curves(metrics: pd.DataFrame, title: str):
    """A small figure of one variant's training so far (the notebook's live view): loss and
    accuracy by epoch, training and test set, one line for each seed in ``metrics`` (its rows:
    seed, epoch and metrics.csv's columns)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    long = pd.concat([
        metrics[["epoch", "seed", f"{split}_loss", f"{split}_acc"]]
        .rename(columns={f"{split}_loss": "loss", f"{split}_acc": "acc"}).assign(数据集=name)
        for split, name in (("train", "训练集"), ("test", "测试集"))], ignore_index=True)
    fig, axes = plt.subplots(1, 2, figsize=(TEXT_WIDTH_IN * 0.8, 2.2), layout="constrained")
    for ax, col, name in ((axes[0], "loss", "损失"), (axes[1], "acc", "准确率")):
        sns.lineplot(data=long, x="epoch", y=col, hue="数据集", units="seed", estimator=None, marker="o", ax=ax,
                     legend=ax is axes[1])
        ax.set_title(name)
        ax.set_ylabel("")
        ax.xaxis.get_major_locator().set_params(integer=True)
    n, epochs = metrics["seed"].nunique(), len(metrics)
    return _with_alt(fig, f"{title} 训练中的损失和准确率随 epoch 的变化：训练集与测试集，每个种子一条线"
                          f"（{n} 个种子，已完成 {epochs} 个 epoch）")
