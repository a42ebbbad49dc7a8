"""The networks stage by stage: each stage's output shape, resolution and MACs (read from the
built model by ``cost.stage_costs``), per model and summed, for the models a report shows."""
from __future__ import annotations

import math
import re
from functools import lru_cache
from typing import Any, Sequence

import pandas as pd

from ..cost import stage_costs
from ..models import create_model
from ..study import MODEL_ORDER, in_order
from .load import Results


@lru_cache(maxsize=None)
def _stage_rows(model: str) -> tuple[tuple, ...]:
    return tuple(tuple(r.items()) for r in stage_costs(create_model(model)))


def stage_rows(model: str) -> list[dict[str, Any]]:
    return [dict(r) for r in _stage_rows(model)]


def models_in(res: Results) -> list[str]:
    """Models of the runs and of cost.csv, in a fixed order (BaselineNet, ResNets, DenseNets)."""
    present = set(res.runs["model"].dropna()) if len(res.runs) else set()
    if res.cost is not None:
        present |= set(res.cost["model"])
    return in_order(present, MODEL_ORDER)


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
