"""Measurements the discussion rests on, as numbers (no prose): each architecture's key
shapes, each variant's training dynamics (train/test gap, rising test loss, loss spikes),
what its confusion matrix shows, and its speed next to its computational cost.
"""
from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import pandas as pd

from ..models import count_parameters, create_model
from ..data import CLASSES
from .labels import model_label, modes_of
from .load import Results
from .network_stages import stage_rows

CHANCE_ACC = 1 / len(CLASSES)  # ten balanced classes
CHANCE_LOSS = math.log(len(CLASSES))  # cross-entropy of a uniform guess
COLLAPSE_SHARE = 0.5  # one predicted class taking more than half the test images: the predictions collapsed
SPIKE_FACTOR = 3  # a test loss above this many times the uniform guess's counts as a spike


@lru_cache(maxsize=None)
def model_facts(name: str) -> dict[str, Any]:
    """Parameters, MACs per image and the key shapes of a model, read from the built network."""
    import torch.nn as nn


    net = create_model(name)
    rows = stage_rows(name)
    spatial = [r for r in rows if r["shape"].count("×") == 2]
    feats = getattr(net, "features", None)
    stem = feats.conv0 if feats is not None else next(m for m in net.modules() if isinstance(m, nn.Conv2d))
    facts: dict[str, Any] = {
        "params": count_parameters(net), "macs": sum(r["macs"] for r in rows),
        "stem_kernel": stem.kernel_size[0], "stem_stride": stem.stride[0],
        "weight_layers": sum(isinstance(m, (nn.Conv2d, nn.Linear)) for m in net.modules()),
        "stages": rows, "last_spatial": spatial[-1] if spatial else None,
    }
    if hasattr(net, "layer1"):  # ResNet family
        layers = [getattr(net, f"layer{i}") for i in range(1, 5)]
        facts["blocks"] = [len(x) for x in layers]
        facts["stage_shapes"] = [r["shape"] for r in rows if r["stage"].startswith("layer")]
        se = next((m for m in net.modules() if type(m).__name__ == "SEModule"), None)
        if se is not None:
            facts["se_reduction"] = se.fc1.in_channels // se.fc1.out_channels
    if feats is not None:  # DenseNet family
        blocks = [m for n, m in feats.named_children() if n.startswith("denseblock")]
        facts["dense_layers"] = [len(b) for b in blocks]
        first = next(iter(blocks[0].children()))
        facts["growth"] = first.conv2.out_channels
        facts["stem_pool"] = not isinstance(feats.pool0, nn.Identity)
        facts["block_shapes"] = [r["shape"] for r in rows if "denseblock" in r["stage"]]
        facts["block_res"] = [r["resolution"] for r in rows if "denseblock" in r["stage"]]
    if name == "baseline":
        facts["conv_out"] = next(r["shape"] for r in reversed(rows) if r["shape"].count("×") == 2)
    return facts


def epoch_means(res: Results, exp: str) -> pd.DataFrame:
    """Per epoch: the mean over the completed seeds of every metrics.csv column."""
    ok = res.runs[(res.runs["exp_name"] == exp) & (res.runs["status"] == "completed")]["seed"]
    df = res.epochs[(res.epochs["exp_name"] == exp) & res.epochs["seed"].isin(ok)]
    if not len(df):
        return pd.DataFrame()
    return df.groupby("epoch").mean(numeric_only=True).sort_index()


def dynamics(res: Results, exp: str) -> dict[str, Any] | None:
    """Train/test gap of the last epoch, whether test loss rose from its minimum while test
    accuracy still rose, and the worst test-loss spike (a loss above SPIKE_FACTOR × ln 10)."""
    m = epoch_means(res, exp)
    if not len(m):
        return None
    last = m.iloc[-1]
    e_min = int(m["test_loss"].idxmin())
    worst = int(m["test_loss"].idxmax())
    return {
        "epochs": len(m), "train_acc": float(last["train_acc"]), "test_acc": float(last["test_acc"]),
        "gap": float(last["train_acc"] - last["test_acc"]),
        "loss_min_epoch": e_min, "loss_min": float(m.loc[e_min, "test_loss"]), "loss_last": float(last["test_loss"]),
        "loss_rises": e_min < int(m.index[-1]) and float(last["test_loss"]) > float(m.loc[e_min, "test_loss"]),
        "acc_at_loss_min": float(m.loc[e_min, "test_acc"]),
        "spike": float(m.loc[worst, "test_loss"]) > SPIKE_FACTOR * CHANCE_LOSS,
        "spike_epoch": worst, "spike_loss": float(m.loc[worst, "test_loss"]),
        "spike_acc": float(m.loc[worst, "test_acc"]),
    }


def confusion_matrix(res: Results, exp: str) -> pd.DataFrame:
    """Rows true class, columns predicted class (CLASSES order), summed over completed seeds."""
    ok = res.runs[(res.runs["exp_name"] == exp) & (res.runs["status"] == "completed")]["seed"]
    c = res.confusion[(res.confusion["exp_name"] == exp) & res.confusion["seed"].isin(ok)]
    if not len(c):
        return pd.DataFrame(0, index=list(CLASSES), columns=list(CLASSES))
    mat = c.groupby(["true", "pred"])["count"].sum().unstack("pred")
    return mat.reindex(index=list(CLASSES), columns=list(CLASSES)).fillna(0).astype(int)


def confusion_facts(res: Results, exp: str) -> dict[str, Any] | None:
    """The most confused pair of classes (both directions summed), the largest single
    confusion, classes never predicted, and the share of predictions that went to the most
    predicted class."""
    mat = confusion_matrix(res, exp)
    total = int(mat.values.sum())
    if not total:
        return None
    off = mat.copy()
    for k in CLASSES:
        off.loc[k, k] = 0
    pairs = {(a, b): int(off.loc[a, b] + off.loc[b, a]) for i, a in enumerate(CLASSES) for b in CLASSES[i + 1:]}
    (pa, pb), pn = max(pairs.items(), key=lambda kv: kv[1])
    t, p = off.stack().idxmax()
    per_class = mat.sum(axis=1)
    col = mat.sum(axis=0)
    top = col.idxmax()
    recall = pd.Series({k: mat.loc[k, k] / per_class[k] if per_class[k] else math.nan for k in CLASSES})
    return {
        "total": total, "pair": (pa, pb), "pair_count": pn, "pair_a_to_b": int(off.loc[pa, pb]),
        "pair_b_to_a": int(off.loc[pb, pa]), "per_class": int(per_class.iloc[0]),
        "worst": (t, p), "worst_count": int(off.loc[t, p]), "worst_share": float(off.loc[t, p] / per_class[t]),
        "never_predicted": [k for k in CLASSES if col[k] == 0],
        "zero_recall": [k for k in CLASSES if recall[k] == 0],
        "top_pred": top, "top_pred_share": float(col[top] / total),
    }


def near_chance(acc: float, n: int) -> bool:
    """Whether an accuracy on ``n`` test images is within the sampling noise (1.96 SE) of a uniform guess."""
    return abs(acc - CHANCE_ACC) < 1.96 * math.sqrt(CHANCE_ACC * (1 - CHANCE_ACC) / max(n, 1))


def collapsed(f: dict[str, Any] | None) -> bool:
    """Whether one predicted class takes most test images (confusion_facts' top_pred_share)."""
    return f is not None and f["top_pred_share"] > COLLAPSE_SHARE


SPEED_NOISE = 0.1  # epoch times of one machine differing by less than this fraction: run-to-run noise


def speed(res: Results, exp: str) -> dict[str, float] | None:
    """Mean seconds per epoch and training images per second over the variant's runs."""
    sub = res.runs[res.runs["exp_name"] == exp]
    if not len(sub) or sub["seconds_per_epoch"].isna().all():
        return None
    return {"seconds_per_epoch": float(sub["seconds_per_epoch"].mean()),
            "images_per_s": float(sub["images_per_s"].mean()),
            "train_size": int(sub["train_size"].iloc[0] or 0), "batch_size": int(sub["batch_size"].iloc[0] or 0),
            "mode": modes_of(sub)}


def mode_clash(res: Results, *exps: str) -> str:
    """'' when the variants trained in one numeric format and memory layout, else a clause
    saying their times are not comparable (each one's mode named)."""
    modes = {e: s["mode"] for e in exps if (s := speed(res, e))}
    if len(set(modes.values())) <= 1:
        return ""
    return ("，但两者训练时的数值格式与内存布局不同（" + "，".join(f"{model_label(res.runs.loc[res.runs['exp_name'] == e, 'model'].iloc[0])}用"
                                             f"{_mode_zh(m)}" for e, m in modes.items()) + "，见 2.5 节），用时不能直接比较")


def _mode_zh(mode: str) -> str:
    """'bf16/NHWC' said in words, for running text before 2.5 explains the short forms."""
    fmt, layout = (mode.split("/") + [""])[:2]
    return ("bf16 混合精度" if fmt == "bf16" else "fp32 单精度") + ("、通道在后的内存布局" if layout == "NHWC" else "、默认内存布局")
