"""scripts/gpu_checks.py, the GPU machine's one prepared script, kept runnable where no GPU is:
its dry run goes through every stage on the CPU at smoke scale."""
import importlib.util
import json
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "gpu_checks.py"


def load_script():
    spec = importlib.util.spec_from_file_location("gpu_checks", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def started(tmp_path: Path, code: str) -> subprocess.Popen:
    """A child running ``code`` after it has written its ready file (its signal handling in place)."""
    ready = tmp_path / "ready"
    proc = subprocess.Popen([sys.executable, "-c", f"import pathlib, signal, time\n{code}\n"
                             f"pathlib.Path({str(ready)!r}).touch()\ntime.sleep(60)"])
    for _ in range(600):
        if ready.exists():
            return proc
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("the child never started")


def test_a_process_past_the_budget_gets_ctrl_c_then_is_killed(tmp_path):
    gc = load_script()
    # a run stops on SIGINT as Ctrl-C stops it (the training CLI exits 130, run.json interrupted)
    polite = started(tmp_path, "signal.signal(signal.SIGINT, lambda *a: exit(130))")
    t0 = time.perf_counter()
    assert gc.stop_in_time(polite, 0.5, grace=20) == 130
    assert time.perf_counter() - t0 < 10
    (tmp_path / "ready").unlink()
    # one that ignores it is killed after the grace period, so the budget still holds
    stubborn = started(tmp_path, "signal.signal(signal.SIGINT, signal.SIG_IGN)")
    t0 = time.perf_counter()
    assert gc.stop_in_time(stubborn, 0.5, grace=1) == -9
    assert time.perf_counter() - t0 < 10


def test_no_variant_starts_once_the_budget_is_spent(tmp_path):
    gc = load_script()
    result = gc.study(["cnn_baseline"], "smoke", torch.device("cpu"), tmp_path / "work", tmp_path,
                      deadline=time.perf_counter())
    assert result["variants"] == [{"exp_name": "cnn_baseline", "rc": None, "note": "not started: budget spent"}]
    assert not (tmp_path / "work" / "runs").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is here: the script would run for real")
def test_without_a_gpu_it_says_so_in_one_line(tmp_path):
    res = subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path)], capture_output=True, text=True)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        "error: no CUDA GPU here; run on the GPU machine, or use --dry-run to try the script on the CPU"]


@pytest.mark.slow
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
