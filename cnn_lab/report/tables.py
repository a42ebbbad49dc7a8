"""The report's tables (pandas DataFrames with Chinese column names, for display)."""
from __future__ import annotations

import math
from typing import Sequence

import pandas as pd

from ..study import OPTIMIZER_LABELS
from .labels import STATUS_ZH, _fmt_int, model_label, pct
from .load import Results
from .gradients import gradient_ratios
from .stats import models_in, stage_rows, summary_stats

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


def _interval_cell(r: pd.Series) -> str:
    """The accuracy's 95% interval (claims.INTERVAL_METHOD says how it is computed)."""
    if r["state"] != "completed" or pd.isna(r["low"]):
        return "—"
    return f"{r['low'] * 100:.2f}%–{r['high'] * 100:.2f}%"


def summary_table(res: Results, include_extensions: bool = True) -> pd.DataFrame:
    """Table 2.1: one row per variant, Chinese column names, for display."""
    st = summary_stats(res)
    if not include_extensions:
        st = st[st["in_study"]]
    out = pd.DataFrame({
        "实验名称": st.index,
        "模型架构": [model_label(m) if isinstance(m, str) else "—" for m in st["model"]],
        "优化器": [OPTIMIZER_LABELS.get(o, o) if isinstance(o, str) else "—" for o in st["optimizer"]],
        "学习率": [f"{lr:g}" if pd.notna(lr) else "—" for lr in st["lr"]],
        "最终准确率 (均值 ± 标准差)": [_acc_cell(r) for _, r in st.iterrows()],
        "95% 区间": [_interval_cell(r) for _, r in st.iterrows()],
        "种子数": st["n"].astype(int).values,
        "原报告准确率": [pct(a, 0) if pd.notna(a) else "—（扩展变体）" for a in st["study_acc"]],
        "差值": [f"{d * 100:+.1f} pp" if pd.notna(d) else "—" for d in st["diff"]],
    })
    return out.reset_index(drop=True)


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


def stage_table(res: Results | None = None, models: Sequence[str] | None = None) -> pd.DataFrame:
    """Per model and stage: output shape, spatial resolution, MACs per image (computed)."""
    models = list(models) if models is not None else models_in(res)
    rows = []
    for m in models:
        for r in stage_rows(m):
            rows.append({"模型": model_label(m), "阶段": r["stage"], "输出形状": r["shape"],
                         "空间分辨率": f"{r['resolution']}×{r['resolution']}",
                         "MACs (M)": round(r["macs"] / 1e6, 2)})
    return pd.DataFrame(rows)


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
        "每参数 RMS 比值 (早期 / 后期)": [f"{a:.3f} / {b:.3f}" if pd.notna(a) else "—"
                                   for a, b in zip(gr.get("early_rms", gr["early_ratio"] * math.nan),
                                                   gr.get("late_rms", gr["late_ratio"] * math.nan))],
        "早期/后期 epoch": [f"{a} / {b}" for a, b in zip(gr["early_epoch"], gr["late_epoch"])],
    })

