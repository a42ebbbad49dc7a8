"""scripts/gpu_checks.py, the GPU machine's one prepared script, kept runnable where no GPU is:
its dry run goes through every stage on the CPU at smoke scale."""
import importlib.util
import json
import os
import re
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


def test_the_plan_fits_six_minutes_and_leaves_room_for_a_second_try():
    gc = load_script()
    assert sum(gc.SHARES.values()) == 360 and list(gc.SHARES) == ["checks", "data", "bench", "study"]
    ends = gc.deadlines(list(gc.SHARES), 360, start=0)
    assert ends == {"checks": 60, "data": 90, "bench": 180, "study": 360}
    # a second try of some stages splits its own budget in the same proportions
    assert gc.deadlines(["bench", "study"], 135, start=10) == {"bench": 55, "study": 145}
    # the command's limit: the budget and a minute for imports and the last writes; with a
    # machine's start (up to 2 minutes) that leaves over 4 of the 15 minutes, where a fresh
    # machine can still start, for a second try
    timeout = int(re.search(r"timeout_s (\d+)", gc.__doc__).group(1))
    assert timeout == 360 + 60 and 15 * 60 - (120 + timeout) > 4 * 60


def test_the_setup_line_works_where_git_has_no_info_folder(tmp_path):
    gc = load_script()
    line = next(x.strip() for x in gc.__doc__.splitlines() if "echo /.gpu/" in x)
    (tmp_path / "shared" / "datasets").mkdir(parents=True)
    (tmp_path / "shared" / "datasets" / "cifar10-jpeg.tar.gz").write_bytes(b"archive")
    project = tmp_path / "project"
    (project / ".git").mkdir(parents=True)  # a fresh clone may have no .git/info
    res = subprocess.run(["bash", "-c", line], cwd=project, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert (project / ".gpu" / "cifar10-jpeg.tar.gz").read_bytes() == b"archive"
    assert (project / ".git" / "info" / "exclude").read_text() == "/.gpu/\n"


def test_a_failing_stage_leaves_the_others_in_gpu_checks_json(tmp_path, monkeypatch, capsys):
    gc = load_script()

    def broken(*args):
        raise RuntimeError("injected")

    monkeypatch.setattr(gc, "checks", broken)
    out = tmp_path / "out"
    status = gc.main(["--dry-run", "--stages", "checks", "data", "study", "--only", "cnn_baseline", "--budget", "5",
                      "--out", str(out), "--work", str(tmp_path / "work")])
    assert status == 1
    result = json.loads((out / "gpu-checks.json").read_text())
    assert result["checks"]["error"] == "RuntimeError: injected"  # recorded, with where it came from
    assert any("injected" in line for line in result["checks"]["where"])
    assert result["data"]["cache_file"].endswith(".npz") and "error" not in result["data"]  # the next stages ran
    assert result["study"]["variants"] == [{"exp_name": "cnn_baseline", "rc": None, "note": "not started: budget spent"}]
    summary = (out / "summary.md").read_text()
    assert "## checks: FAILED" in summary and "## data" in summary and "## study" in summary
    assert "stage checks: FAILED: RuntimeError: injected" in capsys.readouterr().out
    # a check that fails inside a stage is recorded beside the others, and fails the run too
    assert gc.errors({"a": {"error": "x"}, "b": [1], "c": {"d": {"error": "y"}}}) == ["x", "y"]


def test_the_study_trains_the_cheapest_model_first():
    gc = load_script()
    order = gc.study_order(list(gc.STUDY_VARIANTS))
    models = [gc.STUDY_TABLE[v][0] for v in order]
    assert models == ["baseline"] * 3 + ["resnet18", "se_resnet18", "densenet121"]
    assert sorted(order) == sorted(gc.STUDY_VARIANTS)


def only_these_packages(folder: Path, needs) -> Path:
    """The python of a fresh virtual environment in ``folder`` that holds the distributions
    ``needs`` and what they depend on (linked from this one) and nothing else."""
    import importlib.metadata as md
    import venv

    from packaging.requirements import Requirement

    venv.EnvBuilder(with_pip=False, symlinks=True).create(folder)
    site = next(folder.glob("lib/python*/site-packages"))
    todo, done = list(needs), set()
    while todo:
        dist = md.distribution(todo.pop())
        name = dist.metadata["Name"].lower()
        if name in done:
            continue
        done.add(name)
        for path in dist.files or []:
            top = path.parts[0]
            if top != ".." and not (site / top).exists():
                (site / top).symlink_to(Path(dist.locate_file(top)))
        for req in map(Requirement, dist.requires or []):
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return folder / "bin" / "python"


@pytest.mark.slow
def test_dry_run_goes_through_every_stage_with_only_the_gpu_machines_packages(tmp_path):
    gc = load_script()
    assert all(name in gc.__doc__.replace("PyYAML", "pyyaml").replace("Pillow", "pillow") for name in gc.NEEDS)
    python = only_these_packages(tmp_path / "venv", gc.NEEDS)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    for absent in ("pandas", "seaborn", "papermill", "matplotlib", "scipy", "cnn_lab"):
        probe = subprocess.run([str(python), "-c", f"import {absent}"], capture_output=True, cwd=tmp_path, env=env)
        assert probe.returncode == 1, absent
    out, work = tmp_path / "out", tmp_path / "work"
    res = subprocess.run([str(python), str(SCRIPT), "--dry-run", "--only", "cnn_baseline", "--out", str(out),
                          "--work", str(work)], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    # at most 8 files come back from the GPU machine, none in a subfolder
    names = sorted(p.name for p in out.iterdir())
    assert names == ["bench-baseline.json", "bench-baseline.md", "gpu-checks.json", "study-runs.tar.gz", "summary.md"]
    result = json.loads((out / "gpu-checks.json").read_text())
    checks = result["checks"]
    assert checks["training"]["adam_step_device_after_resume"] == ["cpu"]  # restored onto the CPU, as train_run does
    assert checks["training"]["syncs_per_epoch"] is None  # CUDA's sync counter: not on a CPU
    assert checks["channels_last_batch_matches"] is True
    assert checks["syncbn"]["reference"] == "F.batch_norm"
    assert max(checks["syncbn"]["max_abs_diff"].values()) < 1e-4
    assert all(len(v) == 2 and min(v) > 0 for v in checks["step_memory_mib"].values())
    assert result["data"]["cache_file"].endswith(".npz")
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
    assert result["bench"] == {"baseline": 0}
    bench = json.loads((out / "bench-baseline.json").read_text())
    (model,) = bench["models"]
    assert model["model"] == "baseline" and "raw fp32" in model["raw_modes"]  # fp32 is among the modes timed
    assert "| cnn_baseline | 0 |" in (out / "summary.md").read_text()
