"""The lab report: load run directories, build tables, figures and Chinese text from them.

Everything the analysis notebook shows is computed here from a reports folder ``R``
(``R/runs/<exp_name>/seed<N>/`` and ``R/cost.csv``); the notebook only calls these
functions. Every sentence whose truth depends on the data is chosen by the data: when the
runs change, the wording changes with them.

Accuracy is always the test accuracy of the LAST epoch (never the best epoch): the test
set is not used to pick anything.
"""
from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from . import runio
from .data import CLASSES, CLASSES_ZH
from .study import EXTENSION_VARIANTS, MODEL_LABELS, OPTIMIZER_LABELS, STUDY_TABLE, STUDY_VARIANTS

STATUS_ZH = {"completed": "完成", "diverged": "发散", "failed": "失败", "running": "未完成",
             "interrupted": "已中断", "missing": "缺失"}
PROFILE_ZH = {"smoke": "smoke（冒烟测试）", "cpu": "cpu（CPU 缩减规模）", "full": "full（原研究规模）"}
CLASS_LABELS = [f"{zh} ({en})" for zh, en in zip(CLASSES_ZH, CLASSES)]
ACC_NOTE = "准确率取最后一个 epoch，不在测试集上挑选。"

# Thresholds used to word the text (all in accuracy fractions unless noted).
PLATEAU_PP = 0.005  # last-epoch test-accuracy gain below 0.5 pp counts as a plateau
MIN_GAP = 0.005  # differences below 0.5 pp are never called a difference
SINGLE_SEED_GAP = 0.03  # with one seed per variant (no spread measured) only a gap above 3 pp counts
FULL_TRAIN = 50_000  # CIFAR-10's training set; a smaller train_size is a subset
FULL_TEST = 10_000
VANISH_RATIO = 0.1  # first/last-layer gradient norm ratio below this is a sign of vanishing
# Groups of variants drawn together in the training-curve figure.
CURVE_GROUPS = (
    ("BaselineNet：优化器与学习率对比",
     ("cnn_baseline", "cnn_baseline_adam", "cnn_baseline_sgd_high_lr")),
    ("架构对比（Adam, lr=0.001）与扩展变体",
     ("cnn_baseline_adam", "cnn_resnet18_adam", "cnn_se_resnet18_adam", "cnn_densenet121_adam",
      "cnn_densenet121_cifar_stem_adam", "cnn_resnet18_sgd_cosine_aug")),
)
METRIC_ZH = {"train_loss": "训练损失", "test_loss": "测试损失", "train_acc": "训练准确率", "test_acc": "测试准确率"}


# ===================================================================== fonts / plotting


def cjk_font_path() -> Path | None:
    """The Noto Sans CJK SC font shipped in the ``mplfonts`` wheel, if installed."""
    try:
        import mplfonts
    except ImportError:
        return None
    p = Path(mplfonts.__file__).parent / "fonts" / "NotoSansCJKsc-Regular.otf"
    return p if p.exists() else None


def setup_plotting(dpi: int = 85) -> str:
    """Register a CJK font, make it the sans-serif family, apply the seaborn theme.

    Returns the family name in use. Falls back to a system "Noto Sans CJK SC".
    """
    import matplotlib as mpl
    import seaborn as sns
    from matplotlib import font_manager

    family = None
    path = cjk_font_path()
    if path is not None:
        font_manager.fontManager.addfont(str(path))
        family = font_manager.FontProperties(fname=str(path)).get_name()
    else:
        names = {f.name for f in font_manager.fontManager.ttflist}
        for cand in ("Noto Sans CJK SC", "Noto Sans CJK JP", "SimHei", "WenQuanYi Zen Hei"):
            if cand in names:
                family = cand
                break
    sans = ([family] if family else []) + ["DejaVu Sans"]
    sns.set_theme(style="whitegrid", context="notebook", font="sans-serif",
                  rc={"font.sans-serif": sans, "axes.unicode_minus": False})
    mpl.rcParams["font.family"] = "sans-serif"
    mpl.rcParams["font.sans-serif"] = sans
    mpl.rcParams["axes.unicode_minus"] = False
    mpl.rcParams["figure.dpi"] = dpi
    mpl.rcParams["savefig.dpi"] = dpi
    return family or "DejaVu Sans"


# ===================================================================== loading


@dataclass
class Results:
    """Tidy tables of one reports folder."""

    reports_dir: Path
    runs: pd.DataFrame  # one row per run
    epochs: pd.DataFrame  # every metrics.csv row, with exp_name and seed
    grads: pd.DataFrame  # every grad_norms.csv row, with exp_name, seed, model
    confusion: pd.DataFrame  # long: exp_name, seed, true, pred, count
    cost: pd.DataFrame | None  # cost.csv, or None
    missing: list[str] = field(default_factory=list)  # study/extension variants with no run

    @property
    def profiles(self) -> list[str]:
        return sorted(self.runs["profile"].dropna().unique()) if len(self.runs) else []

    @property
    def profile(self) -> str:
        p = self.profiles
        return p[0] if len(p) == 1 else ("/".join(p) if p else "未知")

    def variants(self) -> list[str]:
        """Variants present: study order, then extensions, then any others (sorted)."""
        present = set(self.runs["exp_name"]) if len(self.runs) else set()
        known = [v for v in (*STUDY_VARIANTS, *EXTENSION_VARIANTS) if v in present]
        return known + sorted(present - set(known))


def _run_row(run: dict[str, Any]) -> dict[str, Any]:
    cfg, rec, m = run["config"] or {}, run["run"], run["metrics"]
    data = rec.get("data") or {}
    env = rec.get("environment") or {}
    last = m.iloc[-1] if len(m) else None
    status = rec.get("status", "missing")
    if status == "missing":  # config written but no run.json: treat as unfinished
        status = "running"
    exp = cfg.get("exp_name", run["dir"].parent.name)
    return {
        "exp_name": exp,
        "seed": int(cfg.get("seed", rec.get("seed", 0))),
        "model": cfg.get("model", rec.get("model")),
        "optimizer": cfg.get("optimizer"),
        "lr": cfg.get("lr"),
        "momentum": cfg.get("momentum"),
        "weight_decay": cfg.get("weight_decay"),
        "schedule": cfg.get("schedule"),
        "augment": bool(cfg.get("augment", False)),
        "status": status,
        "message": rec.get("message", ""),
        "final_epoch": int(last["epoch"]) if last is not None else 0,
        "final_test_acc": float(last["test_acc"]) if last is not None else math.nan,
        "final_train_acc": float(last["train_acc"]) if last is not None else math.nan,
        "final_test_loss": float(last["test_loss"]) if last is not None else math.nan,
        "final_train_loss": float(last["train_loss"]) if last is not None else math.nan,
        "profile": cfg.get("profile", rec.get("profile")),
        "data_description": data.get("description", "未知"),
        "data_kind": data.get("kind", "未知"),
        "epochs": cfg.get("epochs"),
        "epochs_done": rec.get("epochs_done", len(m)),
        "batch_size": cfg.get("batch_size"),
        "train_size": rec.get("train_size", cfg.get("train_size")),
        "test_size": rec.get("test_size", cfg.get("test_size")),
        "params": rec.get("params"),
        "device": env.get("device"),
        "train_seconds": rec.get("train_seconds", float(m["seconds"].sum()) if len(m) else math.nan),
        "images_per_s": float(m["images_per_s"].mean()) if len(m) else math.nan,
        "seconds_per_epoch": float(m["seconds"].mean()) if len(m) else math.nan,
        "in_study": exp in STUDY_TABLE,
        "study_acc": STUDY_TABLE[exp][3] if exp in STUDY_TABLE else math.nan,
        "dir": str(run["dir"]),
    }


def load_runs(run_dirs: Iterable[str | Path]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """runs, epochs, grads, confusion tables of the given run directories."""
    rows, epochs, grads, conf = [], [], [], []
    for d in run_dirs:
        run = runio.read_run(d)
        row = _run_row(run)
        rows.append(row)
        key = {"exp_name": row["exp_name"], "seed": row["seed"], "model": row["model"]}
        if len(run["metrics"]):
            epochs.append(run["metrics"].assign(**key))
        if run["grad_norms"] is not None and len(run["grad_norms"]):
            grads.append(run["grad_norms"].assign(**key))
        c = run["confusion"]
        if c is not None and len(c):
            long = c.melt(id_vars="true", var_name="pred", value_name="count").assign(**key)
            conf.append(long)
    runs = pd.DataFrame(rows, columns=list(_run_row.__annotations__) if not rows else None)
    if len(runs):
        runs = runs.sort_values(["exp_name", "seed"]).reset_index(drop=True)
    cat = lambda parts, cols: pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=cols)  # noqa
    return (runs,
            cat(epochs, [*runio.METRIC_COLUMNS, "exp_name", "seed", "model"]),
            cat(grads, ["epoch", "step", "layer_index", "layer", "grad_norm", "exp_name", "seed", "model"]),
            cat(conf, ["true", "pred", "count", "exp_name", "seed", "model"]))


def load_results(reports_dir: str | Path) -> Results:
    """Every run below ``reports_dir/runs`` and ``reports_dir/cost.csv``."""
    reports_dir = Path(reports_dir)
    runs, epochs, grads, conf = load_runs(runio.find_runs(reports_dir / "runs"))
    if not len(runs):
        runs = pd.DataFrame(columns=["exp_name", "seed", "model", "status", "profile", "final_test_acc"])
    cost_path = reports_dir / "cost.csv"
    cost = pd.read_csv(cost_path) if cost_path.exists() else None
    present = set(runs["exp_name"])
    missing = [v for v in (*STUDY_VARIANTS, *EXTENSION_VARIANTS) if v not in present]
    return Results(reports_dir, runs, epochs, grads, conf, cost, missing)


# ===================================================================== formatting helpers


def pct(x: float, digits: int = 1) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x * 100:.{digits}f}%"


def pp(x: float, digits: int = 1, sign: bool = True) -> str:
    """A difference of fractions in percentage points."""
    if x is None or math.isnan(x):
        return "—"
    return f"{x * 100:+.{digits}f} 个百分点" if sign else f"{abs(x) * 100:.{digits}f} 个百分点"


def model_label(name: str) -> str:
    return MODEL_LABELS.get(name, name)


def variant_label(exp: str, stats: pd.DataFrame | None = None) -> str:
    if stats is not None and exp in stats.index:
        r = stats.loc[exp]
        return f"{model_label(r['model'])} + {OPTIMIZER_LABELS.get(r['optimizer'], r['optimizer'])} (lr={r['lr']:g})"
    if exp in STUDY_TABLE:
        m, o, lr, _ = STUDY_TABLE[exp]
        return f"{model_label(m)} + {OPTIMIZER_LABELS.get(o, o)} (lr={lr:g})"
    return exp


def _fmt_int(n: Any) -> str:
    return "全部" if n in (0, None) else f"{int(n):,}"


# ===================================================================== summary


def summary_stats(res: Results) -> pd.DataFrame:
    """Numeric summary per variant (index exp_name): n, mean/std of the last epoch's test accuracy."""
    rows = []
    order = [v for v in (*STUDY_VARIANTS, *EXTENSION_VARIANTS)] + [
        v for v in res.variants() if v not in STUDY_TABLE and v not in EXTENSION_VARIANTS]
    for exp in order:
        sub = res.runs[res.runs["exp_name"] == exp]
        study = STUDY_TABLE.get(exp)
        row = {"exp_name": exp, "in_study": exp in STUDY_TABLE,
               "study_acc": study[3] if study else math.nan,
               "n_runs": len(sub), "n_diverged": int((sub["status"] == "diverged").sum()) if len(sub) else 0,
               "n_failed": int((sub["status"] == "failed").sum()) if len(sub) else 0}
        if len(sub):
            first = sub.iloc[0]
            row.update(model=first["model"], optimizer=first["optimizer"], lr=first["lr"])
        elif study:
            row.update(model=study[0], optimizer=study[1], lr=study[2])
        else:
            row.update(model=None, optimizer=None, lr=math.nan)
        done = sub[sub["status"] == "completed"] if len(sub) else sub
        accs = done["final_test_acc"].astype(float) if len(done) else pd.Series(dtype=float)
        row["n"] = len(accs)
        row["mean"] = float(accs.mean()) if len(accs) else math.nan
        row["std"] = float(accs.std(ddof=1)) if len(accs) > 1 else math.nan
        row["seeds"] = ",".join(str(s) for s in sorted(done["seed"])) if len(done) else ""
        if len(done):
            f = done.iloc[0]
            row["train_size"], row["epochs"] = int(f["train_size"] or 0), int(f["epochs"] or 0)
            row["scale"] = f"{row['train_size']}/{int(f['test_size'] or 0)}/{row['epochs']}/{f['batch_size']}"
        else:
            row["train_size"], row["epochs"], row["scale"] = 0, 0, ""
        if not len(sub):
            state = "missing"
        elif len(accs):
            state = "completed"
        elif row["n_diverged"]:
            state = "diverged"
        elif row["n_failed"]:
            state = "failed"
        else:
            state = "running"
        row["state"] = state
        row["diff"] = row["mean"] - row["study_acc"] if state == "completed" and study else math.nan
        if state == "missing" and exp not in STUDY_TABLE and exp in EXTENSION_VARIANTS:
            row["extension"] = True
        rows.append(row)
    df = pd.DataFrame(rows).set_index("exp_name")
    df["extension"] = df.index.isin(EXTENSION_VARIANTS)
    return df


def _acc_cell(r: pd.Series) -> str:
    if r["state"] != "completed":
        return STATUS_ZH[r["state"]]
    s = pct(r["mean"], 2)
    if not math.isnan(r["std"]):
        s += f" ± {r['std'] * 100:.2f}%"
    extra = []
    if r["n_diverged"]:
        extra.append(f"另有 {r['n_diverged']} 个种子发散")
    if r["n_failed"]:
        extra.append(f"另有 {r['n_failed']} 个种子失败")
    return s + (f"（{'；'.join(extra)}）" if extra else "")


def summary_table(res: Results, include_extensions: bool = True) -> pd.DataFrame:
    """Table 2.1: one row per variant, Chinese column names, for display."""
    st = summary_stats(res)
    if not include_extensions:
        st = st[st["in_study"]]
    out = pd.DataFrame({
        "实验名称": st.index,
        "模型架构": [model_label(m) if isinstance(m, str) else "—" for m in st["model"]],
        "优化器": [OPTIMIZER_LABELS.get(o, o) if isinstance(o, str) else "—" for o in st["optimizer"]],
        "学习率": [f"{lr:g}" if lr == lr else "—" for lr in st["lr"]],
        "最终准确率 (均值 ± 标准差)": [_acc_cell(r) for _, r in st.iterrows()],
        "种子数": st["n"].astype(int).values,
        "原报告准确率": [pct(a, 0) if a == a else "—（扩展变体）" for a in st["study_acc"]],
        "差值": [f"{d * 100:+.1f} pp" if d == d else "—" for d in st["diff"]],
    })
    return out.reset_index(drop=True)


# ===================================================================== settings


def settings_table(res: Results) -> pd.DataFrame:
    """Per variant: the settings the runs actually used (read from their config.yaml / run.json)."""
    if not len(res.runs):
        return pd.DataFrame(columns=["实验名称"])
    rows = []
    for exp in res.variants():
        sub = res.runs[res.runs["exp_name"] == exp]
        r = sub.iloc[0]
        rows.append({
            "实验名称": exp, "配置 (profile)": ", ".join(sorted(sub["profile"].astype(str).unique())),
            "数据来源": "; ".join(sorted(sub["data_description"].astype(str).unique())),
            "epochs": int(r["epochs"]), "batch size": int(r["batch_size"]),
            "训练集": _fmt_int(r["train_size"]), "测试集": _fmt_int(r["test_size"]),
            "数据增强": "是" if r["augment"] else "否",
            "动量": f"{r['momentum']:g}" if r["optimizer"] == "sgd" else "—（Adam）",
            "权重衰减": f"{r['weight_decay']:g}", "学习率调度": r["schedule"],
            "种子": ",".join(str(s) for s in sorted(sub["seed"])),
        })
    return pd.DataFrame(rows)


def _uniform(values: Iterable[Any]) -> list[Any]:
    return sorted(set(values), key=str)


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


# ===================================================================== cost and stages


@lru_cache(maxsize=None)
def _stage_rows(model: str) -> tuple[tuple, ...]:
    from .cost import stage_table
    from .models import create_model

    return tuple(tuple(r.items()) for r in stage_table(create_model(model)))


def stage_rows(model: str) -> list[dict[str, Any]]:
    return [dict(r) for r in _stage_rows(model)]


def _models_of(res: Results) -> list[str]:
    order = ["baseline", "resnet18", "se_resnet18", "densenet121", "densenet121_cifar"]
    present = set(res.runs["model"].dropna()) if len(res.runs) else set()
    if res.cost is not None:
        present |= set(res.cost["model"])
    return [m for m in order if m in present] + sorted(present - set(order))


def models_in(res: Results) -> list[str]:
    """Models of the runs and of cost.csv, in a fixed order (BaselineNet, ResNets, DenseNets)."""
    return _models_of(res)


def stage_table(res: Results | None = None, models: Sequence[str] | None = None) -> pd.DataFrame:
    """Per model and stage: output shape, spatial resolution, MACs per image (computed)."""
    models = list(models) if models is not None else _models_of(res)
    rows = []
    for m in models:
        for r in stage_rows(m):
            rows.append({"模型": model_label(m), "阶段": r["stage"], "输出形状": r["shape"],
                         "空间分辨率": f"{r['resolution']}×{r['resolution']}",
                         "MACs (M)": round(r["macs"] / 1e6, 2)})
    return pd.DataFrame(rows)


def stage_summary(models: Sequence[str]) -> pd.DataFrame:
    """Per model: total MACs, the last feature block's resolution and shape."""
    rows = []
    for m in models:
        st = [r for r in stage_rows(m) if "×" in r["shape"] and r["shape"].count("×") == 2]
        last = st[-1] if st else None
        rows.append({"model": m, "macs": sum(r["macs"] for r in stage_rows(m)),
                     "last_stage": last["stage"] if last else "", "last_shape": last["shape"] if last else "",
                     "last_resolution": last["resolution"] if last else math.nan})
    return pd.DataFrame(rows).set_index("model")


def _last_block_resolution(model: str) -> tuple[str, int]:
    """(stage, resolution) of the last block that transforms features (not norm/pool)."""
    rows = [r for r in stage_rows(model) if r["shape"].count("×") == 2 and
            re.search(r"(layer|block)\d", r["stage"])]
    if not rows:
        rows = [r for r in stage_rows(model) if r["shape"].count("×") == 2]
    return (rows[-1]["stage"], rows[-1]["resolution"]) if rows else ("", 0)


def cost_table(res: Results) -> pd.DataFrame:
    """Per variant: params, MACs/image and step memory (cost.csv), training images/s and s/epoch (runs)."""
    rows = []
    cost = res.cost.set_index("model") if res.cost is not None else None
    for exp in res.variants():
        sub = res.runs[res.runs["exp_name"] == exp]
        m = sub.iloc[0]["model"]
        c = cost.loc[m] if cost is not None and m in cost.index else None
        rows.append({
            "实验名称": exp, "模型": model_label(m),
            "参数量": f"{int(c['params'] if c is not None else sub.iloc[0]['params']):,}",
            "MACs/图像 (M)": round(c["macs"] / 1e6, 1) if c is not None else math.nan,
            "训练吞吐 (图像/秒)": round(float(sub["images_per_s"].mean()), 1),
            "每 epoch 秒数": round(float(sub["seconds_per_epoch"].mean()), 2),
            "单步峰值内存 (MB)": c["step_memory_mb"] if c is not None else math.nan,
            "内存测量方式": (f"{c['memory_method']}（{c['memory_device']}，batch {int(c['memory_batch_size'])}）"
                       if c is not None else "无 cost.csv"),
            "设备": ", ".join(sorted(sub["device"].dropna().astype(str).unique())),
        })
    return pd.DataFrame(rows)


# ===================================================================== gradients


def reference_variant(res: Results, model: str) -> str | None:
    """The variant whose gradients represent ``model``: Adam lr=0.001 (the study's common setting) first."""
    sub = res.runs[(res.runs["model"] == model)] if len(res.runs) else res.runs
    if not len(sub):
        return None
    exps = sub["exp_name"].unique().tolist()
    adam = [e for e in exps if STUDY_TABLE.get(e, (None, None))[1] == "adam"]
    adam = adam or sub[(sub["optimizer"] == "adam")]["exp_name"].unique().tolist()
    return (adam or sorted(exps))[0]


def gradient_ratios(res: Results) -> pd.DataFrame:
    """Per variant: first weight layer's gradient norm / last one's, median over recorded steps (and seeds),
    in the first epoch (早期) and the last recorded epoch (后期)."""
    g = res.grads
    rows = []
    if not len(g):
        return pd.DataFrame(columns=["exp_name", "model", "layers", "early_ratio", "late_ratio"])
    for exp in res.variants():
        ge = g[g["exp_name"] == exp]
        if not len(ge):
            continue
        nl = int(ge["layer_index"].max()) + 1
        first = ge[ge["layer_index"] == 0].set_index(["seed", "epoch", "step"])["grad_norm"]
        last = ge[ge["layer_index"] == nl - 1].set_index(["seed", "epoch", "step"])["grad_norm"]
        ratio = (first / last).reset_index(name="ratio")
        e0, e1 = int(ge["epoch"].min()), int(ge["epoch"].max())
        rows.append({"exp_name": exp, "model": ge["model"].iloc[0], "layers": nl,
                     "first_layer": ge[ge["layer_index"] == 0]["layer"].iloc[0],
                     "last_layer": ge[ge["layer_index"] == nl - 1]["layer"].iloc[0],
                     "early_epoch": e0, "late_epoch": e1,
                     "early_ratio": float(ratio[ratio["epoch"] == e0]["ratio"].median()),
                     "late_ratio": float(ratio[ratio["epoch"] == e1]["ratio"].median()),
                     "n_steps": int(len(ratio))})
    return pd.DataFrame(rows)


def gradient_ratio_table(res: Results) -> pd.DataFrame:
    """gradient_ratios for display, Chinese column names."""
    gr = gradient_ratios(res)
    if not len(gr):
        return pd.DataFrame(columns=["实验名称"])
    return pd.DataFrame({
        "实验名称": gr["exp_name"], "模型": [model_label(m) for m in gr["model"]],
        "权重层数": gr["layers"], "首层 / 末层": gr["first_layer"] + " / " + gr["last_layer"],
        "早期比值 (首层/末层)": [f"{x:.3g}" for x in gr["early_ratio"]],
        "后期比值 (首层/末层)": [f"{x:.3g}" for x in gr["late_ratio"]],
        "早期/后期 epoch": [f"{a} / {b}" for a, b in zip(gr["early_epoch"], gr["late_epoch"])],
    })


# ===================================================================== figures


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

    models = [m for m in _models_of(res) if reference_variant(res, m) is not None
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
        g = res.grads[res.grads["exp_name"] == exp]
        nl = g["layer_index"].max() + 1
        e0, e1 = g["epoch"].min(), g["epoch"].max()
        sel = g[g["epoch"].isin([e0, e1])].copy()
        sel["深度"] = sel["layer_index"] / max(nl - 1, 1)
        parts = [sel[sel["epoch"] == e0].assign(阶段=f"早期（第 {e0} 个 epoch）")]
        if e1 != e0:
            parts.append(sel[sel["epoch"] == e1].assign(阶段=f"后期（第 {e1} 个 epoch）"))
        else:
            parts.append(sel[sel["epoch"] == e1].iloc[0:0].assign(阶段="后期（同一 epoch）"))
        sel = pd.concat(parts)
        med = sel.groupby(["阶段", "深度"], as_index=False)["grad_norm"].median()
        sns.lineplot(data=med, x="深度", y="grad_norm", hue="阶段", ax=ax, marker=".",
                     hue_order=[p["阶段"].iloc[0] for p in parts if len(p)])
        ax.legend(title=None, fontsize=9, loc="best")
        ax.set_yscale("log")
        ax.set_title(f"{model_label(m)}（{nl} 个权重层）\n{exp}", fontsize=10)
        ax.set_xlabel("归一化层深度（0 = 输入，1 = 输出）")
        ax.set_ylabel("梯度范数（各步中位数，对数轴）")
    fig.suptitle("梯度流：各权重层的梯度范数随深度的分布", fontsize=13)
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


def per_class_accuracy(res: Results) -> pd.DataFrame:
    """Per-class test accuracy (last epoch, confusion summed over completed seeds); rows variant, cols class."""
    c = res.confusion
    if not len(c):
        return pd.DataFrame(columns=CLASS_LABELS)
    ok = res.runs[res.runs["status"] == "completed"][["exp_name", "seed"]]
    c = c.merge(ok, on=["exp_name", "seed"])
    tot = c.groupby(["exp_name", "true"])["count"].sum()
    hit = c[c["true"] == c["pred"]].groupby(["exp_name", "true"])["count"].sum()
    acc = (hit / tot).unstack("true").reindex(columns=list(CLASSES))
    acc.columns = CLASS_LABELS
    return acc.reindex([v for v in res.variants() if v in acc.index])


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


def best_variant(res: Results) -> str | None:
    st = summary_stats(res)
    st = st[st["state"] == "completed"]
    return None if not len(st) else str(st["mean"].idxmax())


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


# ===================================================================== text: 1. overview


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
    from .models import count_parameters, create_model

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
    from .models import count_parameters, create_model

    models = list(models) if models is not None else _models_of(res)
    rows = ["| 模型 | 参数量 | 每图 MACs | 最后一个特征块的输出 |", "|---|---:|---:|---|"]
    for m in models:
        net = create_model(m)
        stage, resol = _last_block_resolution(m)
        shape = next((r["shape"] for r in stage_rows(m) if r["stage"] == stage), "")
        rows.append(f"| {model_label(m)} | {count_parameters(net):,} | "
                    f"{stage_summary([m]).loc[m, 'macs'] / 1e6:.1f} M | `{stage}` {shape} |")
    return "各模型由 `cnn_lab.models.create_model` 构建，参数量与计算量均由代码计算：\n\n" + "\n".join(rows)


# ===================================================================== text: 2.3 analysis


def _stats(res: Results) -> pd.DataFrame:
    return summary_stats(res)


def _have(st: pd.DataFrame, *exps: str) -> bool:
    return all(e in st.index and st.loc[e, "state"] == "completed" for e in exps)


def _spread(st: pd.DataFrame, a: str, b: str) -> float:
    """Seed-to-seed spread of a difference of means: sqrt(std_a^2 + std_b^2); NaN if unknown."""
    sa, sb = st.loc[a, "std"], st.loc[b, "std"]
    vals = [s for s in (sa, sb) if s == s]
    return math.sqrt(sum(s * s for s in vals)) if vals else math.nan


def compare(st: pd.DataFrame, a: str, b: str) -> dict[str, Any]:
    """a vs b: diff (a - b), spread, verdict and, where the data cannot settle it, why.

    verdict: 'a' / 'b' (the difference exceeds the seed-to-seed spread), 'tie' (it does not),
    'unknown'. reason: None; 'missing' (no result); 'scale' (trained at different scales, not
    comparable); 'single_seed' (no spread to compare with and a gap under SINGLE_SEED_GAP);
    'subset' (a verdict at this scale, but on a training subset: it says nothing about the
    fully trained models the study's claims are about).
    """
    if not _have(st, a, b):
        return {"verdict": "unknown", "diff": math.nan, "spread": math.nan, "reason": "missing"}
    d = st.loc[a, "mean"] - st.loc[b, "mean"]
    s = _spread(st, a, b)
    out = {"diff": d, "spread": s, "reason": None}
    if st.loc[a, "scale"] != st.loc[b, "scale"]:
        return {**out, "verdict": "unknown", "reason": "scale"}
    if s != s:  # one seed each: no spread to measure the gap against
        if abs(d) <= SINGLE_SEED_GAP:
            return {**out, "verdict": "unknown", "reason": "single_seed"}
        thresh = SINGLE_SEED_GAP
    else:
        thresh = max(s, MIN_GAP)
    out["verdict"] = "tie" if abs(d) <= thresh else ("a" if d > 0 else "b")
    if 0 < min(st.loc[a, "train_size"], st.loc[b, "train_size"]) < FULL_TRAIN:
        out["reason"] = "subset"
    return out


def _scale_text(st: pd.DataFrame, e: str) -> str:
    n = int(st.loc[e, "train_size"])
    return f"{'全部 ' if n in (0, FULL_TRAIN) else ''}{n or FULL_TRAIN:,} 张训练图、{int(st.loc[e, 'epochs'])} 个 epoch"


def _caveat(st: pd.DataFrame, a: str, b: str, c: dict[str, Any]) -> str:
    """Why a comparison does not decide the study's claim ('' when it does)."""
    if c["reason"] == "subset":
        n = int(min(st.loc[a, "train_size"], st.loc[b, "train_size"]))
        return (f"但这只是 {n:,} 张图的训练子集上 {int(st.loc[a, 'epochs'])} 个 epoch 的结果，"
                f"反映的是训练初期的快慢，不能判断完整训练后的高下。")
    return ""


def _missing_note(st: pd.DataFrame, *exps: str) -> str:
    bad = [f"`{e}`（{STATUS_ZH[st.loc[e, 'state']] if e in st.index else '缺失'}）"
           for e in exps if not _have(st, e)]
    return "、".join(bad)


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
    spread = (f"种子间波动约 {c['spread'] * 100:.1f} 个百分点" if c["spread"] == c["spread"]
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


def _trend(res: Results, exp: str) -> tuple[str, float]:
    """('plateau' | 'rising' | 'falling' | 'single' | 'none', last-epoch test-acc change)."""
    df = res.epochs[res.epochs["exp_name"] == exp]
    ok = res.runs[(res.runs["exp_name"] == exp) & (res.runs["status"] == "completed")]["seed"]
    df = df[df["seed"].isin(ok)]
    if not len(df):
        return "none", math.nan
    mean = df.groupby("epoch")["test_acc"].mean().sort_index()
    if len(mean) < 2:
        return "single", math.nan
    d = float(mean.iloc[-1] - mean.iloc[-2])
    if abs(d) < PLATEAU_PP:
        return "plateau", d
    return ("rising" if d > 0 else "falling"), d


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


def _ratio_row(res: Results, model: str) -> pd.Series | None:
    gr = gradient_ratios(res)
    exp = reference_variant(res, model)
    if exp is None or not len(gr) or exp not in set(gr["exp_name"]):
        return None
    return gr.set_index("exp_name").loc[exp]


def vanishing_verdict(ratio: float) -> str:
    if ratio != ratio:
        return "unknown"
    return "vanishing" if ratio < VANISH_RATIO else "none"


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


def _memory_claim(res: Results) -> tuple[str, str, str]:
    """(verdict, sentence for 2.3, short evidence for the comparison table) on the claim that
    DenseNet needs more memory than ResNet-18."""
    if res.cost is None:
        return "unknown", "没有 cost.csv，无法检验 DenseNet 的内存说法。", "没有 cost.csv"
    c = res.cost.set_index("model")
    if not {"densenet121", "resnet18"} <= set(c.index):
        return ("unknown", "cost.csv 中缺少 DenseNet-121 或 ResNet-18，无法检验内存说法。",
                "cost.csv 中缺少 DenseNet-121 或 ResNet-18")
    d, r = c.loc["densenet121"], c.loc["resnet18"]
    how = f"{d['memory_method']}，{d['memory_device']}，batch {int(d['memory_batch_size'])}"
    ratio = d["step_memory_mb"] / r["step_memory_mb"] if r["step_memory_mb"] else math.inf
    evidence = (f"单步训练峰值内存（{how}）：DenseNet-121 {d['step_memory_mb']:.1f} MB，ResNet-18 "
                f"{r['step_memory_mb']:.1f} MB（{ratio:.2f} 倍）；参数量 {int(d['params']):,} 对 {int(r['params']):,}，"
                f"每图 MACs {d['macs'] / 1e6:.0f} M 对 {r['macs'] / 1e6:.0f} M")
    summary, stem = evidence, ""
    if "densenet121_cifar" in c.index and c.loc["densenet121_cifar", "step_memory_mb"] == c.loc["densenet121_cifar", "step_memory_mb"]:
        k = c.loc["densenet121_cifar"]
        kr = k["step_memory_mb"] / r["step_memory_mb"] if r["step_memory_mb"] else math.inf
        same_res = f"CIFAR stem 的 DenseNet-121（特征图保持 32×32 起步）为 {k['step_memory_mb']:.1f} MB，是 ResNet-18 的 {kr:.2f} 倍"
        summary += "；" + same_res  # the same network at CIFAR resolution: the other half of the answer
        stem = (f"作为对照，{same_res}：" + ("在同等分辨率下，特征拼接确实使内存高于 ResNet。" if kr > 1.1 else
                                        "即使在同等分辨率下也看不出拼接带来的额外内存。"))
    if ratio > 1.1:
        return "holds", evidence + "。DenseNet 的内存确实更高（特征拼接使前向激活随层数累积）。" + stem, summary
    if ratio < 0.9:
        first = next((row for row in stage_rows("densenet121") if re.search(r"block\d", row["stage"])), None)
        res0 = f"{first['resolution']}×{first['resolution']}" if first else "很小的分辨率"
        return "fails", (evidence + f"。在 32×32 输入上 DenseNet-121 的内存反而更低：ImageNet 式 stem 在第一个稠密块之前"
                         f"就把特征图缩到 {res0}，特征拼接带来的激活累积被极小的分辨率抵消。" + stem), summary
    return "tie", evidence + "。两者相差不到 10%，看不出明显差别。" + stem, summary


def analysis_markdown(res: Results) -> str:
    """2.3 核心架构的训练动态对比分析 (text only; figures/tables are shown beside it)."""
    st = _stats(res)
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
    if c["verdict"] == "tie" and c["spread"] == c["spread"]:
        out.append("也就是说，SE 模块带来的差异小于种子之间的随机波动，本实验不能说明 SE 模块有效。")
    elif c["verdict"] in ("a", "b", "tie") and c["spread"] != c["spread"]:
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


# ===================================================================== text: comparison with the study


def _study(exp: str, what: str = "acc") -> str:
    """The study's reported accuracy (``acc``) or learning rate (``lr``) of a variant, as text."""
    _, _, lr, acc = STUDY_TABLE[exp]
    return f"{acc * 100:.0f}%" if what == "acc" else f"{lr:g}"


CLAIMS = (
    ("baseline_adam_vs_sgd", f"BaselineNet：Adam (lr={_study('cnn_baseline_adam', 'lr')}) 优于 SGD "
     f"(lr={_study('cnn_baseline', 'lr')})（{_study('cnn_baseline_adam')} 对 {_study('cnn_baseline')}）"),
    ("baseline_highlr", f"BaselineNet：SGD 把 lr 提高到 {_study('cnn_baseline_sgd_high_lr', 'lr')} 后最好"
     f"（{_study('cnn_baseline_sgd_high_lr')}，高于 Adam 的 {_study('cnn_baseline_adam')}）"),
    ("resnet_vs_baseline", f"ResNet-18 明显优于 BaselineNet（{_study('cnn_resnet18_adam')} 对最高 "
     f"{_study('cnn_baseline_sgd_high_lr')}）"),
    ("densenet_vs_resnet", f"DenseNet-121 不如 ResNet-18（{_study('cnn_densenet121_adam')} 对 {_study('cnn_resnet18_adam')}）"),
    ("se_vs_resnet", f"SE 模块没有带来提升（SE-ResNet-18 与 ResNet-18 均为 {_study('cnn_resnet18_adam')}）"),
    ("vanishing", "普通网络（BaselineNet）存在梯度消失"),
    ("highway", "残差连接是“梯度高速公路”，使深层网络的浅层也能得到梯度"),
    ("densenet_memory", "DenseNet 因特征拼接，训练时内存占用高于 ResNet"),
)
VERDICT_ZH = {"holds": "成立", "fails": "不成立", "unknown": "本配置规模无法判断"}


def _order_verdict(st: pd.DataFrame, a: str, b: str, want: str) -> tuple[str, str]:
    """Claim 'a better than b' (want='a') or 'no difference' (want='tie')."""
    c = compare(st, a, b)
    if c["reason"] == "missing":
        return "unknown", f"缺少结果：{_missing_note(st, a, b)}"
    ours = f"{pct(st.loc[a, 'mean'])} 对 {pct(st.loc[b, 'mean'])}（{pp(c['diff'])}"
    ours += f"，种子间波动 {c['spread'] * 100:.1f} 个百分点）" if c["spread"] == c["spread"] else "，单种子）"
    if c["reason"] == "scale":
        return "unknown", ours + f"；训练规模不同（{_scale_text(st, a)} 对 {_scale_text(st, b)}），不可直接比较"
    if c["reason"] == "single_seed":
        return "unknown", ours + f"；单种子且差距不足 {SINGLE_SEED_GAP * 100:.0f} 个百分点"
    if c["reason"] == "subset":
        return "unknown", ours + f"；只在 {int(min(st.loc[a, 'train_size'], st.loc[b, 'train_size'])):,} 张图的子集上训练"
    if c["verdict"] == want:
        return "holds", ours
    if want == "a" and c["verdict"] == "tie":
        return "unknown", ours + "；差异在种子波动之内"
    return "fails", ours


def study_scale(st: pd.DataFrame, exp: str) -> bool:
    """Whether a variant ran at the study's scale: all training images and at least the
    ``full`` profile's epochs for its model (the scale its absolute accuracy can be judged at)."""
    from .config import profile_settings

    r = st.loc[exp]
    if r["state"] != "completed" or r["train_size"] not in (0, FULL_TRAIN) or not r["model"]:
        return False
    return r["epochs"] >= profile_settings("full", r["model"])["epochs"]


def study_comparison(res: Results) -> pd.DataFrame:
    """与原报告对比: each claim, our measurement, and 成立 / 不成立 / 本配置规模无法判断."""
    st = summary_stats(res)
    rows = []
    for exp in STUDY_VARIANTS:
        r = st.loc[exp]
        if r["state"] != "completed":
            v, ours = "unknown", STATUS_ZH[r["state"]]
        else:
            ours = f"{pct(r['mean'])}（{pp(r['diff'])}）"
            if not study_scale(st, exp):
                v = "unknown"
                ours += f"；训练规模（{_scale_text(st, exp)}）小于原研究"
            else:
                tol = max(2 * (r["std"] if r["std"] == r["std"] else 0.0), 0.02)
                v = "holds" if abs(r["diff"]) <= tol else "fails"
        rows.append({"原报告的数字/说法": f"{variant_label(exp)} 准确率 {pct(r['study_acc'], 0)}", "本实验": ours,
                     "判定": VERDICT_ZH[v]})
    base = [e for e in ("cnn_baseline", "cnn_baseline_adam", "cnn_baseline_sgd_high_lr") if _have(st, e)]
    best_base = max(base, key=lambda e: st.loc[e, "mean"]) if base else "cnn_baseline_sgd_high_lr"
    checks = {
        "baseline_adam_vs_sgd": _order_verdict(st, "cnn_baseline_adam", "cnn_baseline", "a"),
        "baseline_highlr": _order_verdict(st, "cnn_baseline_sgd_high_lr", "cnn_baseline_adam", "a"),
        "resnet_vs_baseline": _order_verdict(st, "cnn_resnet18_adam", best_base, "a"),
        "densenet_vs_resnet": _order_verdict(st, "cnn_resnet18_adam", "cnn_densenet121_adam", "a"),
        "se_vs_resnet": _order_verdict(st, "cnn_se_resnet18_adam", "cnn_resnet18_adam", "tie"),
    }
    # the plain net's "vanishing gradients" hold if its ratio shows vanishing; ResNet's
    # "highway" holds if its ratio shows none
    for key, model, name, holds_if in (("vanishing", "baseline", "BaselineNet", "vanishing"),
                                       ("highway", "resnet18", "ResNet-18", "none")):
        g = _ratio_row(res, model)
        if g is None:
            checks[key] = ("unknown", f"没有 {name} 的梯度记录")
            continue
        v = vanishing_verdict(min(g["early_ratio"], g["late_ratio"]))
        prefix = "" if model == "baseline" else f"{name} "
        checks[key] = ("holds" if v == holds_if else "fails",
                       f"{prefix}首层/末层梯度比 早期 {g['early_ratio']:.3g}，后期 {g['late_ratio']:.3g}"
                       + ("（只检验浅层仍有梯度；没有去掉残差连接的同深度对照）" if key == "highway" else ""))
    mv, _, mem = _memory_claim(res)
    checks["densenet_memory"] = ({"holds": "holds", "fails": "fails", "tie": "fails"}.get(mv, "unknown"), mem)
    for key, text in CLAIMS:
        v, ours = checks[key]
        rows.append({"原报告的数字/说法": text, "本实验": ours, "判定": VERDICT_ZH[v]})
    return pd.DataFrame(rows)


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


# ===================================================================== 3. summary


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


__all__ = [
    "setup_plotting", "cjk_font_path", "Results", "load_results", "load_runs",
    "summary_stats", "summary_table", "settings_table", "settings_text", "profile_banner",
    "stage_table", "stage_summary", "models_in", "model_label", "cost_table", "gradient_ratios", "gradient_ratio_table",
    "training_curves", "variant_curves", "gradient_flow_figure", "per_class_accuracy", "per_class_figure",
    "best_variant", "confusion_figure", "folded_repr", "model_printout", "overview_markdown",
    "architecture_markdown", "analysis_markdown", "plateau_markdown", "gradient_markdown", "seeds_markdown",
    "study_comparison", "comparison_markdown", "conclusion_markdown", "compare",
]
