"""Train the fixture runs of tests/fixtures/smoke: the exact recipe, written out.

    .venv/bin/python tests/make_fixtures.py                       # every variant in parameters/
    .venv/bin/python tests/make_fixtures.py cnn_plain18_adam ...  # only these

Each variant is trained with the smoke profile and these explicit sizes (the profile's own
values may change; the fixtures' must not, or every expectation built on them moves):
BaselineNet 2 epochs on 500 training / 200 test images, the deep models (and any variant at the
deep budget) 1 epoch on 100 / 100, batch 50, seeds 0 and 1. Checkpoints are deleted. cost.csv
gains a row for each model it lacks (rows already there are kept: their memory figures are
measurements the tests quote).
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "smoke"
SIZES = {
    "small": {"epochs": 2, "batch_size": 50, "train_size": 500, "test_size": 200, "seeds": 2},
    "deep": {"epochs": 1, "batch_size": 50, "train_size": 100, "test_size": 100, "seeds": 2},
}


def variant_sizes(path: Path) -> dict:
    from cnn_lab.config import read_yaml
    from cnn_lab.variant import budget_family

    values = read_yaml(path)
    family, _ = budget_family(values.get("model", "baseline"), values.get("budget", "model"))
    return SIZES[family]


def train(path: Path) -> None:
    sets = [f"--set={k}={v}" for k, v in variant_sizes(path).items()]
    subprocess.run([sys.executable, "-m", "cnn_lab", "train", str(path), "--profile", "smoke", "--out",
                    str(OUT / "runs"), "--no-progress", *sets], check=True, cwd=ROOT)


def add_cost_rows() -> None:
    from cnn_lab.cost import cost_table
    from cnn_lab.runio import find_runs, read_config

    path = OUT / "cost.csv"
    old = pd.read_csv(path) if path.exists() else pd.DataFrame(columns=["model"])
    models = sorted({read_config(d)["model"] for d in find_runs(OUT / "runs")} - set(old["model"]))
    if models:
        new = pd.DataFrame(cost_table(models, batch_size=64, device="cpu"))
        pd.concat([old, new], ignore_index=True).to_csv(path, index=False)


def main(names: list[str]) -> int:
    files = sorted((ROOT / "parameters").glob("*.yaml"))
    for path in files:
        if not names or path.stem in names:
            train(path)
    for ckpt in (OUT / "runs").rglob("checkpoint.pt"):
        ckpt.unlink()
    add_cost_rows()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
