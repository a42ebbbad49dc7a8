"""Gradient flow, made fair across layers of different size (numbers only, no prose).

grad_norms.csv holds, per recording point and weight layer, the gradient norm ‖g‖, the
layer's parameter count and its weight norm ‖w‖. Layers differ in size (BaselineNet's first
conv has 450 weights, its last linear layer 840; DenseNet-121's 9,408 and 10,240), so layers
are compared on the per-parameter RMS gradient ‖g‖/√numel (``rms``); ‖g‖/‖w‖ (``rel``) is
kept beside it. The first/last ratio is taken on the main path: SE-ResNet's squeeze and
excitation layers and the projection shortcuts are kept apart. "Vanishing" is an order of
magnitude: the first layer's RMS gradient below a tenth of the last layer's.
"""
from __future__ import annotations

import math
import re
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from ..models import create_model
from .load import Results
from .stats import cached, completed_runs, reference_variant

ORDER_OF_MAGNITUDE = 10.0


def layer_path(name: str) -> str:
    """'se' for squeeze/excitation layers, 'shortcut' for projection shortcuts, else 'main'."""
    if re.search(r"(^|\.)se\.", name):
        return "se"
    if re.search(r"(shortcut|downsample)", name):
        return "shortcut"
    return "main"


def grad_measures(res: Any) -> pd.DataFrame:
    """res.grads with the per-parameter measures: ``rms`` = ‖g‖/√numel (the RMS gradient; a
    numel missing from the record is taken from the built model) and ``rel`` = ‖g‖/‖w‖ (NaN for
    runs recorded without weight_norm), and ``path``."""
    def make():
        g = res.grads.copy()
        for col in ("numel", "weight_norm"):
            if col not in g:
                g[col] = math.nan
        g["numel"] = _fill_numel(g)
        g["rms"] = g["grad_norm"] / np.sqrt(g["numel"].astype(float))
        g["rel"] = g["grad_norm"] / g["weight_norm"].astype(float)
        g["path"] = [layer_path(n) for n in g["layer"]] if len(g) else []
        return g
    return cached(res, "grad_measures", make)


@lru_cache(maxsize=None)
def layer_sizes(model: str) -> dict[str, int]:
    """Parameter count of each named parameter of ``model``, read from the built network
    (runs recorded before grad_norms.csv had a numel column get their sizes from here)."""
    try:
        net = create_model(model)
    except (KeyError, ValueError):
        return {}
    return {n: p.numel() for n, p in net.named_parameters()}


def _fill_numel(g: pd.DataFrame) -> pd.Series:
    """The numel column, missing entries taken from the model's own layer shapes."""
    numel = g["numel"].astype(float)
    gap = numel.isna()
    if gap.any():
        numel[gap] = [float(layer_sizes(m).get(n, math.nan)) if isinstance(m, str) else math.nan
                      for m, n in zip(g.loc[gap, "model"], g.loc[gap, "layer"])]
    return numel


def _fold(values: pd.Series) -> float:
    v = values.dropna()
    return float(v.max() / v.min()) if len(v) and v.min() > 0 else math.nan


def gradient_flow(res: Any, measure: str = "rms") -> pd.DataFrame:
    """Per variant: the main path's first/last-layer ratio of ``measure`` ('rms', 'rel' or
    'grad_norm') at each recording point, summarised for the first (early) and last (late)
    recorded epoch as the median over seeds and points, with its stability: the per-seed
    medians, their max/min fold (seed_fold), the median max/min fold across the points of one
    seed and epoch (point_fold), and whether every seed lands on the same side of the
    order-of-magnitude line (stable). ``min_ratio``: the weakest main-path layer of the input
    half (where a vanishing gradient would show), its median in the late epoch relative to the
    last layer; ``min_layer`` and ``min_depth`` (0 input, 1 output) say which. The output half
    is left out: its wide layers have small per-parameter gradients from their size alone,
    next to the loss."""
    return cached(res, ("gradient_flow", measure), lambda: _gradient_flow(res, measure))


def _gradient_flow(res: Any, measure: str) -> pd.DataFrame:
    g = grad_measures(res)
    rows = []
    for exp in (list(dict.fromkeys(g["exp_name"])) if len(g) else []):
        ge = g[(g["exp_name"] == exp) & (g["path"] == "main")]
        ge = ge[ge["seed"].isin(completed_runs(res, exp)["seed"])] if len(completed_runs(res, exp)) else ge
        if not len(ge) or ge[measure].isna().all():
            continue
        first_i, last_i = int(ge["layer_index"].min()), int(ge["layer_index"].max())
        key = ["seed", "epoch", "step"]
        first = ge[ge["layer_index"] == first_i].set_index(key)[measure]
        last = ge[ge["layer_index"] == last_i].set_index(key)[measure]
        ratio = (first / last).rename("ratio").reset_index()
        e0, e1 = int(ratio["epoch"].min()), int(ratio["epoch"].max())
        row = {"exp_name": exp, "model": ge["model"].iloc[0], "measure": measure,
               "layers": int(g[g["exp_name"] == exp]["layer_index"].max()) + 1,
               "main_layers": int(ge["layer_index"].nunique()),
               "first_layer": ge[ge["layer_index"] == first_i]["layer"].iloc[0],
               "last_layer": ge[ge["layer_index"] == last_i]["layer"].iloc[0],
               "first_numel": float(ge[ge["layer_index"] == first_i]["numel"].iloc[0]),
               "last_numel": float(ge[ge["layer_index"] == last_i]["numel"].iloc[0]),
               "early_epoch": e0, "late_epoch": e1, "n_seeds": int(ratio["seed"].nunique()),
               "points": int(ratio.groupby(["seed", "epoch"]).size().median())}
        for name, ep in (("early", e0), ("late", e1)):
            r = ratio[ratio["epoch"] == ep]
            per_seed = r.groupby("seed")["ratio"].median()
            row[f"{name}_ratio"] = float(r["ratio"].median())
            row[f"{name}_seed_ratios"] = tuple(float(x) for x in per_seed)
            row[f"{name}_seed_fold"] = _fold(per_seed)
            row[f"{name}_point_fold"] = float(r.groupby("seed")["ratio"].apply(_fold).median())
        line = 1 / ORDER_OF_MAGNITUDE
        row["stable"] = all((np.array(row[f"{k}_seed_ratios"]) < line).tolist() == [row[f"{k}_ratio"] < line]
                            * len(row[f"{k}_seed_ratios"]) for k in ("early", "late"))
        late = ge[ge["epoch"] == e1].groupby("layer_index")[measure].median()
        rel = late / late.loc[last_i]
        weakest = rel.iloc[:(len(rel) + 1) // 2].idxmin()  # the input half (an odd count: with the middle layer)
        row["min_ratio"] = float(rel.loc[weakest])
        row["min_layer"] = ge[ge["layer_index"] == int(weakest)]["layer"].iloc[0]
        row["min_depth"] = float(list(rel.index).index(weakest) / max(len(rel) - 1, 1))  # 0 input, 1 output
        rows.append(row)
    return pd.DataFrame(rows)


def vanishing(ratio: float) -> str:
    """'vanishing' when the first layer's per-parameter gradient is more than an order of
    magnitude below the last's, 'none' otherwise, 'unknown' without a number."""
    if ratio != ratio:
        return "unknown"
    return "vanishing" if ratio < 1 / ORDER_OF_MAGNITUDE else "none"


def layer_profile(res: Any, exp: str, measure: str = "rms") -> pd.DataFrame:
    """Per weight layer of a variant: path, depth along its own path (0 = input, 1 = output)
    and the median ``measure`` in the first and in the last recorded epoch (for the figure)."""
    g = grad_measures(res)
    ge = g[g["exp_name"] == exp]
    if not len(ge):
        return pd.DataFrame(columns=["layer_index", "layer", "path", "depth", "early", "late"])
    e0, e1 = ge["epoch"].min(), ge["epoch"].max()
    prof = (ge.groupby(["layer_index", "layer", "path"])
            .apply(lambda x: pd.Series({"early": x.loc[x["epoch"] == e0, measure].median(),
                                        "late": x.loc[x["epoch"] == e1, measure].median()}),
                   include_groups=False)
            .reset_index())
    main = prof["path"] == "main"
    order = prof.loc[main, "layer_index"].rank(method="first") - 1
    prof["depth"] = np.interp(prof["layer_index"], prof.loc[main, "layer_index"],
                              order / max(int(main.sum()) - 1, 1))
    return prof


def gradient_ratios(res: Results) -> pd.DataFrame:
    """Per variant: the first/last main-path layer ratio of the raw gradient norm
    (``early_ratio``, ``late_ratio``) and of the per-parameter RMS gradient (``early_rms``,
    ``late_rms``, with their seed and point folds and ``stable``), first and last recorded epoch."""
    def make():
        raw, rms = gradient_flow(res, "grad_norm"), gradient_flow(res, "rms")
        if not len(raw):
            return pd.DataFrame(columns=["exp_name", "model", "layers", "early_ratio", "late_ratio",
                                         "early_rms", "late_rms"])
        names = {"early_ratio": "early_rms", "late_ratio": "late_rms", "early_seed_ratios": "early_rms_seeds",
                 "late_seed_ratios": "late_rms_seeds", "early_seed_fold": "early_rms_seed_fold",
                 "late_seed_fold": "late_rms_seed_fold", "early_point_fold": "early_rms_point_fold",
                 "late_point_fold": "late_rms_point_fold", "stable": "rms_stable", "min_ratio": "rms_min_ratio",
                 "min_layer": "rms_min_layer", "min_depth": "rms_min_depth"}
        fair = rms[["exp_name", *names]].rename(columns=names) if len(rms) else None
        out = raw.drop(columns=["measure"])
        if fair is None:  # runs recorded without numel: no per-parameter measure
            fair = pd.DataFrame(columns=["exp_name", *names.values()])
        rel = gradient_flow(res, "rel")  # ‖g‖/‖w‖: runs recorded without weight_norm have none
        rel_names = {k: v.replace("rms", "rel") for k, v in names.items()}
        rel = (rel[["exp_name", *rel_names]].rename(columns=rel_names) if len(rel)
               else pd.DataFrame(columns=["exp_name", *rel_names.values()]))
        return out.merge(fair, on="exp_name", how="left").merge(rel, on="exp_name", how="left")
    return cached(res, "gradient_ratios", make).copy()


MEASURES = ("rms", "rel")  # the per-parameter RMS gradient and ‖g‖/‖w‖: both scale-free


def flow_reading(row: pd.Series) -> dict[str, Any]:
    """One rule for every model, by both scale-free measures: the first main-path layer against
    the last (the weaker of the first and last recorded epoch) and the weakest main-path layer
    of the input half against the last (last recorded epoch). Each is 'vanishing' (below 1/ORDER_OF_MAGNITUDE by
    every measure recorded), 'none' (not below it by any), or 'depends' (the measures disagree)."""
    line = 1 / ORDER_OF_MAGNITUDE
    out: dict[str, Any] = {}
    for m in MEASURES:
        early, late = row.get(f"early_{m}", math.nan), row.get(f"late_{m}", math.nan)
        out[f"first_{m}"] = float(np.nanmin([early, late])) if pd.notna(early) or pd.notna(late) else math.nan
        out[f"weakest_{m}"] = float(row.get(f"{m}_min_ratio", math.nan))
    for part in ("first", "weakest"):
        weak = [out[f"{part}_{m}"] < line for m in MEASURES if pd.notna(out[f"{part}_{m}"])]
        out[part] = "unknown" if not weak else "vanishing" if all(weak) else "none" if not any(weak) else "depends"
    return out


def ratio_row(res: Results, model: str) -> pd.Series | None:
    """gradient_ratios' row of the variant that represents ``model`` (see reference_variant)."""
    gr = gradient_ratios(res)
    exp = reference_variant(res, model)
    if exp is None or not len(gr) or exp not in set(gr["exp_name"]):
        return None
    return gr.set_index("exp_name").loc[exp]
