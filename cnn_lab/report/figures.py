"""The report's figures (matplotlib/seaborn), computed from a loaded reports folder.

Every figure is drawn at the printed text width (``TEXT_WIDTH_IN``) with fonts of at least
``MIN_FONT_PT``; each variant has one colour in every figure (``variant_colors``).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from .. import runio
from ..data import CLASSES
from ..study import VARIANT_ORDER, in_order
from .fonts import TEXT_WIDTH_IN
from .labels import class_zh, model_label, variant_short
from .load import FULL_TRAIN, Results, load_runs
from .measures import CHANCE_ACC, confusion_matrix
from .gradients import grad_measures, layer_profile
from .stats import best_variant, models_in, multi_seed, per_class_accuracy, reference_variant

SIDE_LAYERS = r"\.se\.|shortcut"  # 1×1 convolutions beside the main path (SE modules, projections)
MAX_LOSS_DECADES = 2  # the loss axis (log scale) shows at most this many decades above the lowest loss


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


def training_curves(res: Results):
    """Figure 2.2: per training scale (row), loss (log axis) and accuracy per epoch; test solid,
    train dashed; band = ±1 standard deviation over seeds."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    groups = scale_groups(res)
    if not groups:
        return _placeholder_figure("训练过程", "没有训练记录")
    colors = variant_colors(res.variants())
    fig, axes = plt.subplots(len(groups), 2, figsize=(TEXT_WIDTH_IN, 2.2 * len(groups) + 1.0), squeeze=False)
    for (title, vs), (ax_loss, ax_acc) in zip(groups, axes):
        for v in vs:
            df = res.epochs[res.epochs["exp_name"] == v]
            for split, ls in (("test", "-"), ("train", "--")):
                for ax, col, scale in ((ax_loss, f"{split}_loss", 1), (ax_acc, f"{split}_acc", 100)):
                    s = _mean_sd(df, col) * scale
                    ax.plot(s.index, s["mean"], ls=ls, color=colors[v], marker="o" if split == "test" else None,
                            ms=3, lw=1.3 if split == "test" else 1.0)
                    if split == "test" and (s["std"] > 0).any():
                        ax.fill_between(s.index, s["mean"] - s["std"], s["mean"] + s["std"], color=colors[v],
                                        alpha=0.15, lw=0)
        _loss_axis(ax_loss, res.epochs[res.epochs["exp_name"].isin(vs)])
        ax_loss.set_title(f"{title}：损失（对数轴）")
        ax_acc.axhline(CHANCE_ACC * 100, color="0.5", ls=":", lw=1)
        ax_acc.set_title(f"{title}：准确率（%，点线为随机猜测）")
        for ax in (ax_loss, ax_acc):
            ax.set_xlabel("epoch")
            _epoch_axis(ax, res.epochs[res.epochs["exp_name"].isin(vs)]["epoch"])
    shown = [v for _, vs in groups for v in vs]
    handles = [Line2D([], [], color=colors[v], lw=2, label=variant_short(res, v)) for v in dict.fromkeys(shown)]
    handles += [Line2D([], [], color="0.3", ls="-", marker="o", ms=3, label="测试集（阴影：种子间 ±1 标准差）" if multi_seed(res) else "测试集"),
                Line2D([], [], color="0.3", ls="--", label="训练集")]
    fig.tight_layout(rect=(0, 0.11 if len(groups) < 2 else 0.1, 1, 1))
    fig.legend(handles=handles, loc="lower center", ncol=3, frameon=False, bbox_to_anchor=(0.5, 0))
    return fig


def _plain_log(ax) -> None:
    """A log y axis labelled with plain numbers (2.3, 0.5), not powers of ten."""
    from matplotlib import ticker

    ax.set_yscale("log")
    lo, hi = ax.get_ylim()
    wide = lo > 0 and math.log10(hi / lo) > 2  # more than two decades: powers of ten only
    ax.yaxis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0,) if wide else (1.0, 2.0, 5.0), numticks=6))
    ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda y, _: f"{y:.3g}"))
    ax.yaxis.set_minor_formatter(ticker.NullFormatter())  # labels on a few major ticks only: none overlap


def _epoch_axis(ax, epochs) -> None:
    epochs = sorted(set(int(e) for e in epochs))
    ax.set_xticks(epochs if len(epochs) <= 12 else epochs[::math.ceil(len(epochs) / 12)])
    if len(epochs) == 1:
        ax.set_xlim(epochs[0] - 0.5, epochs[0] + 0.5)


def _loss_axis(ax, df: pd.DataFrame) -> None:
    """Log scale; a loss more than MAX_LOSS_DECADES decades above the lowest is clipped and marked."""
    _plain_log(ax)
    losses = df[["train_loss", "test_loss"]].to_numpy().ravel()
    losses = losses[losses > 0]
    if not len(losses):
        return
    top = losses.min() * 10 ** MAX_LOSS_DECADES
    if losses.max() > top:
        ax.set_ylim(top=top)
        ax.annotate(f"最大值 {losses.max():.3g}（已截断）", xy=(0.98, 0.97), xycoords="axes fraction",
                    ha="right", va="top", fontsize=8)


def gradient_flow_figure(res: Results):
    """Figure: per model, gradient norm vs normalized layer depth, first vs last epoch (log y).
    The line has the variant's colour; the 1×1 convolutions inside SE modules are drawn as
    separate points, off the main path."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    models = [m for m in models_in(res) if reference_variant(res, m) is not None
              and (res.grads["model"] == m).any()]
    if not models:
        return _placeholder_figure("梯度流", "没有带梯度记录的运行")
    colors = variant_colors(res.variants())
    ncol = 3 if len(models) > 2 else len(models)
    nrow = math.ceil((len(models) + 1) / ncol)  # one slot for the legend
    fig, axes = plt.subplots(nrow, ncol, figsize=(TEXT_WIDTH_IN, 2.35 * nrow), squeeze=False, layout="constrained")
    for ax, m in zip(axes.flat, models):
        exp = reference_variant(res, m)
        rms = grad_measures(res).query("exp_name == @exp")["rms"].notna().all()
        prof = layer_profile(res, exp, "rms" if rms else "grad_norm")
        g = res.grads[res.grads["exp_name"] == exp]
        e0, e1 = g["epoch"].min(), g["epoch"].max()
        main, side = prof[prof["path"] == "main"], prof[prof["path"] != "main"]
        for col, ls in (("early", "--"), ("late", "-")) if e1 != e0 else (("late", "-"),):
            ax.plot(main["depth"], main[col], ls=ls, color=colors[exp], lw=1.2, marker=".", ms=3)
        if len(side):  # SE layers and projection shortcuts, off the main path
            ax.plot(side["depth"], side["late"], ls="none", marker="x", ms=3, color=colors[exp], alpha=0.6)
        _plain_log(ax)
        ax.set_title(f"{model_label(m)}\n主干 {len(main)} 个权重层")
        ax.set_xlabel("主干上的归一化深度（0 输入，1 输出）")
        ax.set_ylabel("每参数 RMS 梯度" if rms else "原始梯度范数")
    for ax in axes.flat[len(models):]:
        ax.axis("off")
    e_first, e_last = int(res.grads["epoch"].min()), int(res.grads["epoch"].max())
    handles = [Line2D([], [], color="0.3", ls="--", label="早期（第一个 epoch）"),
               Line2D([], [], color="0.3", ls="-", label="后期（最后一个 epoch）")]
    if res.grads["layer"].str.contains(SIDE_LAYERS).any():
        handles.append(Line2D([], [], color="0.3", ls="none", marker="x", label="旁路的 1×1 卷积\n（SE 模块、捷径投影）"))
    legend_ax = axes.flat[len(models)] if len(models) < axes.size else axes.flat[-1]
    legend_ax.legend(handles=handles, loc="center", frameon=False,
                     title="各步中位数，对数纵轴" if e_first != e_last else "各步中位数，对数纵轴（只有一个 epoch）")
    return fig


def _placeholder_figure(title: str, message: str):
    """A small figure that says what is missing, so the report still renders without runs."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(TEXT_WIDTH_IN, 1.2))
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=10)
    ax.set_title(title)
    return fig


def per_class_figure(res: Results):
    """Heat map of per-class test accuracy (rows variants, columns classes)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    acc = per_class_accuracy(res).astype(float)
    if not len(acc):
        return _placeholder_figure("各类别测试准确率", "没有已完成的运行：无法给出各类别准确率")
    acc.index = [variant_short(res, v) for v in acc.index]
    acc.columns = [class_zh(c) for c in CLASSES]
    fig, ax = plt.subplots(figsize=(TEXT_WIDTH_IN, 0.27 * len(acc) + 1.1))
    sns.heatmap(acc * 100, annot=True, fmt=".0f", cmap="viridis", vmin=0, vmax=100, ax=ax,
                annot_kws={"size": 8}, cbar_kws={"label": "准确率 (%)", "pad": 0.02})
    ax.set_xlabel("")
    ax.set_ylabel("")
    ax.tick_params(axis="x", rotation=0)
    fig.tight_layout()
    return fig


def confusion_figure(res: Results, exp: str | None = None):
    """Confusion matrix (rows true, columns predicted) of ``exp`` (default: the best variant), seeds summed."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    exp = exp or best_variant(res)
    if exp is None:
        return _placeholder_figure("混淆矩阵", "没有已完成的运行：无法给出混淆矩阵")
    mat = confusion_matrix(res, exp)
    mat.index = mat.columns = [class_zh(c) for c in CLASSES]
    fig, ax = plt.subplots(figsize=(TEXT_WIDTH_IN * 0.78, 4.3))
    sns.heatmap(mat, annot=True, fmt="d", cmap="Blues", ax=ax, annot_kws={"size": 8},
                cbar_kws={"label": "图像数", "pad": 0.02})
    ax.set_title(f"混淆矩阵：{variant_short(res, exp)}")
    ax.set_xlabel("预测类别")
    ax.set_ylabel("真实类别")
    ax.tick_params(axis="y", rotation=0)
    fig.tight_layout()
    return fig


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
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, col, name in ((axes[0], "loss", "损失"), (axes[1], "acc", "准确率")):
        sns.lineplot(data=long, x="epoch", y=col, hue="数据集", errorbar="sd", marker="o", ax=ax)
        ax.set_title(f"{name}随 epoch 的变化")
        ax.set_ylabel(name)
        ax.xaxis.get_major_locator().set_params(integer=True)
    n = df["seed"].nunique()
    fig.suptitle(f"{title or '单个变体'}（{n} 个种子{'，阴影为 ±1 标准差' if n > 1 else ''}）")
    fig.tight_layout()
    return fig
