"""The report's figures (matplotlib/seaborn), computed from a loaded reports folder."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from .. import runio
from ..data import CLASSES
from .labels import CLASS_LABELS, METRIC_ZH, model_label
from .load import Results, load_runs
from .gradients import grad_measures, layer_profile
from .stats import best_variant, models_in, per_class_accuracy, reference_variant

CURVE_GROUPS = (
    ("BaselineNet：优化器与学习率对比",
     ("cnn_baseline", "cnn_baseline_adam", "cnn_baseline_sgd_high_lr")),
    ("架构对比（Adam, lr=0.001）与扩展变体",
     ("cnn_baseline_adam", "cnn_resnet18_adam", "cnn_se_resnet18_adam", "cnn_densenet121_adam",
      "cnn_densenet121_cifar_stem_adam", "cnn_resnet18_sgd_cosine_aug")),
)

def _curve_frame(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(变体=df["exp_name"])


def training_curves(res: Results, groups: Sequence[tuple[str, Sequence[str]]] = CURVE_GROUPS):
    """Figure (a): per group (row) train/test loss and accuracy per epoch; band = mean ± std over seeds."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    groups = [(t, [v for v in vs if v in set(res.epochs["exp_name"])]) for t, vs in groups]
    groups = [(t, vs) for t, vs in groups if vs] or [("全部变体", res.variants())]
    metrics = ("train_loss", "test_loss", "train_acc", "test_acc")
    fig, axes = plt.subplots(len(groups), 4, figsize=(18, 4.2 * len(groups)), squeeze=False)
    for gi, (title, vs) in enumerate(groups):
        df = _curve_frame(res.epochs[res.epochs["exp_name"].isin(vs)])
        for mi, m in enumerate(metrics):
            ax = axes[gi, mi]
            sns.lineplot(data=df, x="epoch", y=m, hue="变体", hue_order=vs, errorbar="sd", marker="o",
                         ax=ax, legend=(mi == 3))
            ax.set_title(f"{METRIC_ZH[m]}")
            ax.set_xlabel("epoch")
            ax.set_ylabel(METRIC_ZH[m])
            ax.xaxis.get_major_locator().set_params(integer=True)
        axes[gi, 0].annotate(title, xy=(0, 1.12), xycoords="axes fraction", fontsize=13, weight="bold")
        leg = axes[gi, 3].get_legend()
        if leg is not None:
            sns.move_legend(axes[gi, 3], "upper left", bbox_to_anchor=(1.02, 1), title="变体（阴影：种子间 ±1 标准差）")
    fig.suptitle("训练过程：各变体的损失与准确率（均值 ± 种子间标准差）", y=1.0, fontsize=14)
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


def gradient_flow_figure(res: Results):
    """Figure (b): per model, gradient norm vs normalized layer depth, first vs last epoch (log y)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    models = [m for m in models_in(res) if reference_variant(res, m) is not None
              and (res.grads["model"] == m).any()]
    if not models:
        return _placeholder_figure("梯度流", "没有带梯度记录的运行")
    ncol = min(max(len(models), 1), 3)
    nrow = max(math.ceil(len(models) / ncol), 1)
    fig, axes = plt.subplots(nrow, ncol, figsize=(5.2 * ncol, 4.2 * nrow), squeeze=False)
    for ax in axes.flat[len(models):]:
        fig.delaxes(ax)
    for ax, m in zip(axes.flat, models):
        exp = reference_variant(res, m)
        rms = grad_measures(res).query("exp_name == @exp")["rms"].notna().all()
        prof = layer_profile(res, exp, "rms" if rms else "grad_norm")
        g = res.grads[res.grads["exp_name"] == exp]
        e0, e1 = g["epoch"].min(), g["epoch"].max()
        main = prof[prof["path"] == "main"]
        ax.plot(main["depth"], main["early"], marker=".", label=f"早期（第 {e0} 个 epoch）")
        if e1 != e0:
            ax.plot(main["depth"], main["late"], marker=".", label=f"后期（第 {e1} 个 epoch）")
        for path, mark, name in (("se", "x", "SE 挤压/激励层（后期）"), ("shortcut", "^", "投影捷径（后期）")):
            side = prof[prof["path"] == path]
            if len(side):  # kept off the main line, so their zig-zag does not hide the trend
                ax.scatter(side["depth"], side["late"], marker=mark, s=18, color="grey", label=name)
        ax.legend(title=None, fontsize=8, loc="best")
        ax.set_yscale("log")
        ax.set_title(f"{model_label(m)}（主干 {len(main)} 个权重层）\n{exp}", fontsize=10)
        ax.set_xlabel("主干上的归一化深度（0 = 输入，1 = 输出）")
        ax.set_ylabel(("每参数 RMS 梯度" if rms else "梯度范数") + "（各步中位数，对数轴）")
    fig.suptitle("梯度流：各权重层的每参数梯度随深度的分布", fontsize=13)
    fig.tight_layout()
    return fig


def _placeholder_figure(title: str, message: str):
    """A small figure that says what is missing, so the report still renders without runs."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 1.6))
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=12)
    ax.set_title(title)
    return fig


def per_class_figure(res: Results):
    """Figure (c): heatmap of per-class accuracy for every variant."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    acc = per_class_accuracy(res).astype(float)
    if not len(acc):
        return _placeholder_figure("各类别测试准确率", "没有已完成的运行：无法给出各类别准确率")
    fig, ax = plt.subplots(figsize=(13, 0.55 * max(len(acc), 1) + 2.5))
    sns.heatmap(acc * 100, annot=True, fmt=".0f", cmap="viridis", vmin=0, vmax=100, ax=ax,
                cbar_kws={"label": "准确率 (%)"})
    ax.set_title("各类别测试准确率（%，最后一个 epoch，种子合并）")
    ax.set_xlabel("类别")
    ax.set_ylabel("变体")
    ax.tick_params(axis="x", rotation=35)
    fig.tight_layout()
    return fig


def confusion_figure(res: Results, exp: str | None = None):
    """Figure (d): confusion matrix (rows true, columns predicted) of the best variant, seeds summed."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    exp = exp or best_variant(res)
    if exp is None:
        return _placeholder_figure("混淆矩阵", "没有已完成的运行：无法给出混淆矩阵")
    c = res.confusion[res.confusion["exp_name"] == exp]
    ok = res.runs[(res.runs["exp_name"] == exp) & (res.runs["status"] == "completed")]["seed"]
    c = c[c["seed"].isin(ok)]
    mat = c.groupby(["true", "pred"])["count"].sum().unstack("pred").reindex(index=list(CLASSES), columns=list(CLASSES))
    mat.index, mat.columns = CLASS_LABELS, CLASS_LABELS
    fig, ax = plt.subplots(figsize=(9.5, 7.5))
    sns.heatmap(mat.fillna(0).astype(int), annot=True, fmt="d", cmap="Blues", ax=ax, cbar_kws={"label": "图像数"})
    ax.set_title(f"混淆矩阵：{exp}（平均最终准确率最高的变体，{len(ok)} 个种子合并）")
    ax.set_xlabel("预测类别")
    ax.set_ylabel("真实类别")
    fig.tight_layout()
    return fig

