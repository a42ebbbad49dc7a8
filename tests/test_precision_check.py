"""scripts/precision_check.py: the fp32 and bf16 arms' table is computed from the runs."""
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import precision_check  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures" / "smoke"


def arm(tmp_path: Path, name: str, accs: dict[str, list[float]]) -> None:
    dst = tmp_path / name / "smoke"
    shutil.copytree(FIXTURES, dst)
    for exp, values in accs.items():
        for seed, value in enumerate(values):
            p = dst / "runs" / exp / f"seed{seed}" / "metrics.csv"
            m = pd.read_csv(p)
            m.loc[m.index[-1], "test_acc"] = value
            m.to_csv(p, index=False)


def test_table_sets_the_difference_against_the_seed_spread(tmp_path):
    arm(tmp_path, "fp32", {"cnn_baseline_adam": [0.60, 0.62], "cnn_baseline": [0.40, 0.41]})
    arm(tmp_path, "bf16", {"cnn_baseline_adam": [0.61, 0.63], "cnn_baseline": [0.50, 0.51]})
    rows = {line.split(" | ")[0].strip("| "): line for line in precision_check.table(tmp_path, "smoke").splitlines()}
    t = stats.ttest_ind([63.0, 61.0], [60.0, 62.0], equal_var=False)
    adam = rows["cnn_baseline_adam"]
    assert "61.00 ± 1.41 (n=2)" in adam and "62.00 ± 1.41 (n=2)" in adam and "+1.00" in adam
    assert f"| {t.pvalue:.2f} |" in adam and adam.endswith("| yes |")  # 1 point against an SD of 1.41
    assert rows["cnn_baseline"].endswith("| no |")  # 10 points against an SD of 0.71
    assert "cnn_resnet18_adam" in rows  # every variant trained in both arms is listed


def test_each_arm_trains_with_its_precision(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(precision_check, "run_pipeline", lambda *a, **k: calls.append((a, k)) or 0)
    assert precision_check.train_arms(tmp_path, "cpu", 3, "cnn_resnet18_adam", 5) == 0
    got = {(k["reports_dir"].name, tuple(k["only"])): k["overrides"] for a, k in calls}
    assert got[("fp32", ("cnn_resnet18_adam",))] == {"amp": "off", "channels_last": "off", "seeds": 5}
    assert got[("bf16", tuple(precision_check.BASELINES))] == {"amp": "bf16", "seeds": 3}
    assert all(k["report"] is False for a, k in calls) and len(calls) == 4


@pytest.mark.parametrize("flag", ["--help"])
def test_the_documented_command_parses(flag, capsys):
    sys.argv = ["precision_check.py", flag]
    with pytest.raises(SystemExit) as e:
        precision_check.main()
    assert e.value.code == 0 and "fp32" in capsys.readouterr().out
