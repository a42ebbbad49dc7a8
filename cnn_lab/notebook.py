"""The cells of the training notebook (``notebooks/train_variant.ipynb``), one call each.

The notebook resolves its parameters (``notebook_config``), says when it runs at smoke scale
(``scale_note``), shows the config and the model (``config_table``, ``print_model``), trains
every seed (``train_and_check``: here, with ``live``'s view in JupyterLab, or under torchrun for
``nproc`` > 1), and shows the variant's curves and final numbers (``show_curves``, ``final_table``).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Mapping

from . import live, runio
from .config import ConfigError, FIELD_NAMES, RunConfig, pick_profile
from .data import project_root
from .variant import from_params


class RunFailed(RuntimeError):
    """A seed of the variant diverged or failed; the message is run.json's."""


def _status_message(record: Mapping[str, Any]) -> str:
    status, message = str(record.get("status")), str(record.get("message") or "")
    return message if message.startswith(status) else f"{status}: {message}".rstrip(": ")


def notebook_config(params: Mapping[str, Any]) -> RunConfig:
    """The notebook's parameters resolved; a relative ``out_dir`` is taken from the project root.

    A bad parameter prints one line and stops the notebook (papermill marks it failed).
    """
    try:
        cfg = from_params({k: params[k] for k in FIELD_NAMES if k in params})
    except ConfigError as e:
        print(f"error: {e}")
        raise SystemExit(f"error: {e}") from None
    out_dir = Path(cfg.out_dir).expanduser()
    if not out_dir.is_absolute():
        out_dir = project_root() / out_dir
    return dataclasses.replace(cfg, out_dir=str(out_dir))


def scale_note(cfg: RunConfig) -> None:
    """At smoke scale, say so above the results: they check the notebook, not the model."""
    from IPython.display import Markdown, display

    if pick_profile(cfg.profile) != "smoke":
        return
    n = lambda k, full: f"{k:,}" if k else f"全部 {full:,}"  # noqa: E731
    display(Markdown(
        f"> **smoke 规模**：{n(cfg.train_size, 50_000)} 张训练图、{n(cfg.test_size, 10_000)} 张测试图、"
        f"{cfg.epochs} 个 epoch，几秒内走通整个流程；这里的准确率只说明训练在进行，不代表模型的能力。"
        "完整规模请改参数 `profile`：`cpu`（无 GPU 的机器）或 `full`（GPU，原研究的规模）。"))


def config_table(cfg: RunConfig):
    import pandas as pd

    d = cfg.to_dict()
    try:  # shown the same wherever the project is checked out (nbval compares this table)
        d["out_dir"] = "<项目根>/" + Path(d["out_dir"]).relative_to(project_root()).as_posix()
    except ValueError:
        pass
    return pd.DataFrame({"字段": list(d), "值": [repr(v) if isinstance(v, str) else str(v) for v in d.values()]})


def print_model(model: str) -> None:
    """The model's printout and parameter count, as the report's appendix shows them."""
    from .report.printouts import model_printout

    print(model_printout(model))


def _torchrun_record(cfg: RunConfig, seed: int) -> dict[str, Any]:
    path = cfg.run_dir(seed) / runio.RUN
    if path.exists():
        return runio.read_json(path)
    return {"exp_name": cfg.exp_name, "seed": seed, "status": "failed",
            "message": "torchrun wrote no run.json (see the output above)"}


def train_and_check(cfg: RunConfig) -> list[dict[str, Any]]:
    """Train every seed; a diverged or failed seed raises ``RunFailed``. A person watching in
    JupyterLab sees the live view (``live``); papermill and nbval get one plain line per epoch."""
    from .distributed import hand_to_torchrun
    from .train import train_variant

    if hand_to_torchrun(None, cfg) is not None:  # torchrun's workers trained it: their run.json files
        records = [_torchrun_record(cfg, seed) for seed in cfg.seed_list()]
    elif live.has_frontend():
        with live.LiveView(cfg) as view:
            records = train_variant(cfg, progress=view.bar, log=view.log)
            view.finish(records)
    else:
        records = train_variant(cfg, progress=False, log=print)
    bad = [r for r in records if r.get("status") != "completed"]
    if bad:
        raise RunFailed("; ".join(f"{r['exp_name']} seed {r['seed']}: " + _status_message(r) for r in bad))
    return records


def show_curves(cfg: RunConfig) -> None:
    """The variant's curves, at print size and with their alt text (as the report shows figures)."""
    from .report import setup_plotting, show, variant_curves

    setup_plotting()
    show(variant_curves([cfg.run_dir(s) for s in cfg.seed_list()], title=cfg.exp_name))


def final_table(records: list[dict[str, Any]]):
    import pandas as pd

    rows = []
    for r in records:
        f = r.get("final") or {}
        rows.append({"seed": r["seed"], "status": r["status"], "epochs": f.get("epoch"),
                     "train_acc": f.get("train_acc"), "test_acc": f.get("test_acc"),
                     "test_loss": f.get("test_loss"), "params": r.get("params")})
    df = pd.DataFrame(rows)
    if len(df) > 1:
        print(f"test_acc mean {df['test_acc'].mean():.2%} ± {df['test_acc'].std():.2%} over {len(df)} seeds")
    return df
