"""Does training in bf16 change what the study concludes? Train the same variants under fp32
and under bf16, with several seeds each, and set the difference against the seed-to-seed spread.

    .venv/bin/python scripts/precision_check.py            # cpu profile; prints a markdown table

Each arm is an ordinary training-only pipeline (``--no-report``) in its own reports folder,
so a rerun resumes and completed runs are not retrained:

    fp32: --set amp=off  --set channels_last=off
    bf16: --set amp=bf16 (channels_last: whichever is faster with bf16 on this machine)

The three BaselineNet variants train their cpu budget (all 50,000 images); the deep variant
trains the cpu profile's subset, with more seeds, as its spread is wider.
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
from scipy import stats

from cnn_lab.autotune import cpu_model
from cnn_lab.pipeline import run_pipeline
from cnn_lab.report import load_runs
from cnn_lab.runio import find_runs

ARMS = {"fp32": {"amp": "off", "channels_last": "off"}, "bf16": {"amp": "bf16"}}
BASELINES = ["cnn_baseline", "cnn_baseline_adam", "cnn_baseline_sgd_high_lr"]


def train_arms(out: Path, profile: str, baseline_seeds: int, deep: str, deep_seeds: int) -> int:
    status = 0
    for arm, settings in ARMS.items():
        for only, seeds in ((BASELINES, baseline_seeds), ([deep], deep_seeds)):
            status |= run_pipeline(profile, only=only, reports_dir=out / arm, report=False, export=False,
                                   overrides={**settings, "seeds": seeds})
    return status


def table(out: Path, profile: str) -> str:
    rows = ["| variant | training images | fp32 test acc. | bf16 test acc. | bf16 − fp32 (95% CI) | seed SD | "
            "Welch p | within the spread |", "|---|---|---|---|---|---|---|---|"]
    accs = {}
    for arm in ARMS:
        runs = load_runs(find_runs(out / arm / profile / "runs"))[0]
        accs[arm] = runs[runs["status"] == "completed"]
    for exp in sorted(set(accs["fp32"]["exp_name"]) & set(accs["bf16"]["exp_name"]), key=str):
        a, b = (accs[arm].loc[accs[arm]["exp_name"] == exp, "final_test_acc"].to_numpy() * 100 for arm in ARMS)
        sd = float(np.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2))
        with warnings.catch_warnings():  # identical accuracies in both arms: no test, p is nan
            warnings.simplefilter("ignore", RuntimeWarning)
            t = stats.ttest_ind(b, a, equal_var=False)
        ci = t.confidence_interval(0.95)
        n = accs["fp32"].loc[accs["fp32"]["exp_name"] == exp, "train_size"].iloc[0]
        rows.append(f"| {exp} | {int(n):,} | {a.mean():.2f} ± {a.std(ddof=1):.2f} (n={len(a)}) "
                    f"| {b.mean():.2f} ± {b.std(ddof=1):.2f} (n={len(b)}) | {b.mean() - a.mean():+.2f} "
                    f"({ci.low:+.2f} to {ci.high:+.2f}) | {sd:.2f} | {t.pvalue:.2f} "
                    f"| {'yes' if abs(b.mean() - a.mean()) <= sd else 'no'} |")
    return "\n".join(rows)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("reports/precision"), help="folder for the two arms' runs")
    p.add_argument("--profile", default="cpu")
    p.add_argument("--baseline-seeds", type=int, default=3)
    p.add_argument("--deep", default="cnn_resnet18_adam", help="the deep variant trained on the profile's subset")
    p.add_argument("--deep-seeds", type=int, default=5)
    args = p.parse_args()
    status = train_arms(args.out, args.profile, args.baseline_seeds, args.deep, args.deep_seeds)
    print(f"\nCPU: {cpu_model()}; test accuracy in %, mean ± SD over seeds (last epoch)\n")
    print(table(args.out, args.profile))
    return status


if __name__ == "__main__":
    sys.exit(main())
