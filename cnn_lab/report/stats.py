"""Statistics of the runs: per-variant summaries, comparisons, gradient ratios, stage costs,
per-class accuracy, and the verdicts on the study's claims.

The verdict code at the end (``study_comparison`` and its helpers) still words its evidence
cells; the rest returns numbers and labels only.
"""
from __future__ import annotations

import math
import re
from functools import lru_cache
from typing import Any, Sequence

import pandas as pd

from ..data import CLASSES
from ..study import EXTENSION_VARIANTS, STUDY_TABLE, STUDY_VARIANTS
from .labels import CLASS_LABELS, STATUS_ZH, _scale_text, pct, pp, variant_label
from .load import FULL_TRAIN, Results

PLATEAU_PP = 0.005  # last-epoch test-accuracy gain below 0.5 pp counts as a plateau

MIN_GAP = 0.005  # differences below 0.5 pp are never called a difference

SINGLE_SEED_GAP = 0.03  # with one seed per variant (no spread measured) only a gap above 3 pp counts

VANISH_RATIO = 0.1  # first/last-layer gradient norm ratio below this is a sign of vanishing

def summary_stats(res: Results) -> pd.DataFrame:
    """Numeric summary per variant (index exp_name): n, mean/std of the last epoch's test accuracy.

    Computed once per loaded report (a copy is returned)."""
    if "summary" not in res.cache:
        res.cache["summary"] = _summary_stats(res)
    return res.cache["summary"].copy()


def _summary_stats(res: Results) -> pd.DataFrame:
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
        rows.append(row)
    df = pd.DataFrame(rows).set_index("exp_name")
    df["extension"] = df.index.isin(EXTENSION_VARIANTS)
    return df


@lru_cache(maxsize=None)
def _stage_rows(model: str) -> tuple[tuple, ...]:
    from ..cost import stage_costs
    from ..models import create_model

    return tuple(tuple(r.items()) for r in stage_costs(create_model(model)))


def stage_rows(model: str) -> list[dict[str, Any]]:
    return [dict(r) for r in _stage_rows(model)]


def models_in(res: Results) -> list[str]:
    """Models of the runs and of cost.csv, in a fixed order (BaselineNet, ResNets, DenseNets)."""
    order = ["baseline", "resnet18", "se_resnet18", "densenet121", "densenet121_cifar"]
    present = set(res.runs["model"].dropna()) if len(res.runs) else set()
    if res.cost is not None:
        present |= set(res.cost["model"])
    return [m for m in order if m in present] + sorted(present - set(order))


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
    in the first epoch (早期) and the last recorded epoch (后期). Computed once per loaded report."""
    if "gradient_ratios" not in res.cache:
        res.cache["gradient_ratios"] = _gradient_ratios(res)
    return res.cache["gradient_ratios"].copy()


def _gradient_ratios(res: Results) -> pd.DataFrame:
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


def best_variant(res: Results) -> str | None:
    st = summary_stats(res)
    st = st[st["state"] == "completed"]
    return None if not len(st) else str(st["mean"].idxmax())


def _have(st: pd.DataFrame, *exps: str) -> bool:
    return all(e in st.index and st.loc[e, "state"] == "completed" for e in exps)


def _spread(st: pd.DataFrame, a: str, b: str) -> float:
    """Seed-to-seed spread of a difference of means: sqrt(std_a^2 + std_b^2); NaN if unknown."""
    sa, sb = st.loc[a, "std"], st.loc[b, "std"]
    vals = [s for s in (sa, sb) if pd.notna(s)]
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
    if math.isnan(s):  # one seed each: no spread to measure the gap against
        if abs(d) <= SINGLE_SEED_GAP:
            return {**out, "verdict": "unknown", "reason": "single_seed"}
        thresh = SINGLE_SEED_GAP
    else:
        thresh = max(s, MIN_GAP)
    out["verdict"] = "tie" if abs(d) <= thresh else ("a" if d > 0 else "b")
    if 0 < min(st.loc[a, "train_size"], st.loc[b, "train_size"]) < FULL_TRAIN:
        out["reason"] = "subset"
    return out


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


def _ratio_row(res: Results, model: str) -> pd.Series | None:
    gr = gradient_ratios(res)
    exp = reference_variant(res, model)
    if exp is None or not len(gr) or exp not in set(gr["exp_name"]):
        return None
    return gr.set_index("exp_name").loc[exp]


def vanishing_verdict(ratio: float) -> str:
    if math.isnan(ratio):
        return "unknown"
    return "vanishing" if ratio < VANISH_RATIO else "none"


def _missing_note(st: pd.DataFrame, *exps: str) -> str:
    bad = [f"`{e}`（{STATUS_ZH[st.loc[e, 'state']] if e in st.index else '缺失'}）"
           for e in exps if not _have(st, e)]
    return "、".join(bad)


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
    if "densenet121_cifar" in c.index and pd.notna(c.loc["densenet121_cifar", "step_memory_mb"]):
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
    ours += f"，种子间波动 {c['spread'] * 100:.1f} 个百分点）" if pd.notna(c["spread"]) else "，单种子）"
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
    from ..config import profile_settings

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
                tol = max(2 * (r["std"] if pd.notna(r["std"]) else 0.0), 0.02)
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

