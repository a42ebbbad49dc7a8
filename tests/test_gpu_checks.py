"""scripts/gpu_checks.py, the GPU machine's one prepared script, kept runnable where no GPU is:
its dry run goes through every stage on the CPU at smoke scale."""
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "gpu_checks.py"


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is here: the script would run for real")
def test_without_a_gpu_it_says_so_in_one_line(tmp_path):
    res = subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path)], capture_output=True, text=True)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        "error: no CUDA GPU here; run on the GPU machine, or use --dry-run to try the script on the CPU"]


def test_dry_run_goes_through_every_stage(tmp_path):
    out, work = tmp_path / "out", tmp_path / "work"
    res = subprocess.run([sys.executable, str(SCRIPT), "--dry-run", "--only", "cnn_baseline", "--out", str(out),
                          "--work", str(work)], capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    # at most 8 files come back from the GPU machine, none in a subfolder
    names = sorted(p.name for p in out.iterdir())
    assert names == ["bench-auto.json", "bench-auto.md", "bench-fp32.json", "bench-fp32.md", "gpu-checks.json",
                     "study-runs.tar.gz", "summary.md"]
    result = json.loads((out / "gpu-checks.json").read_text())
    checks = result["checks"]
    assert checks["adam_step_device_after_resume"] == ["cpu"]  # restored onto the CPU, as train_run does
    assert checks["syncs_per_epoch"] is None  # CUDA's sync counter: not on a CPU
    assert checks["channels_last_batch_matches"] is True
    assert all(len(v) == 2 and min(v) > 0 for v in checks["step_memory_mib"].values())
    (row,) = result["study"]["variants"]
    assert row["exp_name"] == "cnn_baseline" and row["rc"] == 0 and row["study_acc"] == 43.0
    # the accuracy reported is the run's own, and the archive holds the run files, no checkpoint
    with tarfile.open(out / "study-runs.tar.gz") as tar:
        files = tar.getnames()
        run = json.load(tar.extractfile("runs/cnn_baseline/seed0/run.json"))
    assert row["test_acc"] == [round(100 * run["final"]["test_acc"], 2)]
    assert row["diff"] == pytest.approx(row["mean"] - 43.0, abs=0.01)
    assert "runs/cnn_baseline/seed0/metrics.csv" in files and "runs/cnn_baseline/seed0/predictions.npy" in files
    assert not any(f.endswith("checkpoint.pt") for f in files)
    assert result["bench"] == {"auto": 0, "fp32": 0}
    fp32 = json.loads((out / "bench-fp32.json").read_text())
    assert fp32["models"][0]["mode"]["amp"] == "off" and fp32["models"][0]["mode"]["channels_last"] == "off"
    assert "| cnn_baseline | 0 |" in (out / "summary.md").read_text()
