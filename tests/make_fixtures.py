"""Train the fixture runs of tests/fixtures/smoke: the exact recipe, written out.

    .venv/bin/python tests/make_fixtures.py                       # every variant in parameters/
    .venv/bin/python tests/make_fixtures.py cnn_plain18_adam ...  # only these
    .venv/bin/python tests/make_fixtures.py --out /tmp/smoke      # into another folder (to compare)

Each variant is trained with the smoke profile and these explicit settings (the profile's own
values may change; the fixtures' must not, or every expectation built on them moves):
BaselineNet 2 epochs on 500 training / 200 test images, the deep models (and any variant at the
deep budget) 1 epoch on 100 / 100, batch 50, seeds 0 and 1; on the CPU in fp32 NCHW (``amp`` and
``channels_last`` off: under ``auto`` a timing would choose them, and bf16 gives other numbers).
On the same torch and data, the same command gives the same numbers: tests/test_fixtures.py
retrains one run with it and compares. Checkpoints are deleted. cost.csv gains a row for each
model it lacks (rows already there are kept: their memory figures are measurements the tests quote).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "smoke"
PROFILE = "smoke"
SIZES = {
    "small": {"epochs": 2, "batch_size": 50, "train_size": 500, "test_size": 200, "seeds": 2},
    "deep": {"epochs": 1, "batch_size": 50, "train_size": 100, "test_size": 100, "seeds": 2},
}
FIXED = {"device": "cpu", "amp": "off", "channels_last": "off"}  # what the numbers do not depend on the machine for


def recipe(path: Path) -> dict:
    """The ``--set`` values a variant file's fixture runs are trained with."""
    from cnn_lab.config import read_yaml
    from cnn_lab.variant import budget_family

    values = read_yaml(path)
    family, _ = budget_family(values.get("model", "baseline"), values.get("budget", "model"))
    return {**SIZES[family], **FIXED}


def train(path: Path, out: Path = OUT, seeds: str | None = None) -> None:
    sets = [f"--set={k}={v}" for k, v in {**recipe(path), **({"seeds": seeds} if seeds else {})}.items()]
    subprocess.run([sys.executable, "-m", "cnn_lab", "train", str(path), "--profile", PROFILE, "--out",
                    str(out / "runs"), "--no-progress", *sets], check=True, cwd=ROOT)


def add_cost_rows(out: Path = OUT) -> None:
    from cnn_lab.cost import cost_table
    from cnn_lab.runio import find_runs, read_config

    path = out / "cost.csv"
    old = pd.read_csv(path) if path.exists() else pd.DataFrame(columns=["model"])
    models = sorted({read_config(d)["model"] for d in find_runs(out / "runs")} - set(old["model"]))
    if models:
        new = pd.DataFrame(cost_table(models, batch_size=64, device="cpu"))
        pd.concat([old, new], ignore_index=True).to_csv(path, index=False)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="variant names (default: every file in parameters/)")
    parser.add_argument("--out", type=Path, default=OUT, help=f"reports folder to write (default {OUT})")
    args = parser.parse_args(argv)
    for path in sorted((ROOT / "parameters").glob("*.yaml")):
        if not args.names or path.stem in args.names:
            train(path, args.out)
    for ckpt in (args.out / "runs").rglob("checkpoint.pt"):
        ckpt.unlink()
    add_cost_rows(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
