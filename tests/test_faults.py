"""Faults a user meets, each made for real: an empty variant file, a damaged checkpoint,
damaged data, Ctrl-C, two processes on one folder, a full disk.

Every one ends with one line naming the file and what to do, no traceback, a non-zero
exit status (2 bad input or a busy folder, 1 a failed run, 130 interrupted) and nothing
that was good before lost.
"""
from __future__ import annotations

import errno
import io
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from cnn_lab import cli, pipeline, runio
from cnn_lab import data as D
from cnn_lab.train import RunInterrupted, train_run
from cnn_lab.variant import load_config

from conftest import write_archive

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / "parameters" / "cnn_baseline.yaml"
SMALL = {"train_size": 500, "test_size": 100, "epochs": 2, "batch_size": 50, "grad_points": 2}
# long enough that a signal sent after epoch 1 lands before the last epoch ends
LONGER = {"train_size": 3000, "test_size": 200, "epochs": 3, "batch_size": 50, "grad_points": 2}
# long enough that two more pipelines start and are refused while the first still trains (the data
# is loaded before a run directory is claimed, so its lock is held only while it trains)
HELD = {**LONGER, "epochs": 15}
# ipykernel prints this at every kernel start; it is not ours to word
KERNEL_TCP_WARNING = "[IPKernelApp] WARNING | Kernel is running over TCP"


def set_args(settings: dict) -> list[str]:
    return [a for k, v in settings.items() for a in ("--set", f"{k}={v}")]


def train_args(settings: dict) -> list:
    return ["train", BASELINE, "--profile", "smoke", "--no-progress", *set_args(settings)]


def cli_run(*args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cnn_lab", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, **kw)


def cli_here(capsys, *args) -> subprocess.CompletedProcess:
    """``python -m cnn_lab ARGS`` run in this process (cheaper than a new one): status, stdout, stderr."""
    capsys.readouterr()
    rc = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(args, rc, out, err)


def cli_start(*args) -> subprocess.Popen:
    """A real `python -m cnn_lab` process that reacts to SIGINT as from a terminal's Ctrl-C."""
    return subprocess.Popen([sys.executable, "-m", "cnn_lab", *map(str, args)], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def one_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    lines = [ln for ln in stderr.strip().splitlines() if not ln.startswith(KERNEL_TCP_WARNING)]
    assert len(lines) == 1, stderr
    return lines[0]


def wait_for(cond, what: str, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while not cond():
        if time.time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def epochs_in(metrics: Path) -> int:
    return len(metrics.read_text().splitlines()) - 1 if metrics.exists() else 0


def deterministic(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop(columns=list(runio.TIMING_COLUMNS))


def small_cfg(out: Path, settings: dict = SMALL):
    return load_config(BASELINE, profile="smoke", overrides={**settings, "out_dir": str(out)})


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> pd.DataFrame:
    """metrics.csv of the SMALL run, trained straight through."""
    cfg = small_cfg(tmp_path_factory.mktemp("reference"))
    assert train_run(cfg, progress=False, log=lambda s: None)["status"] == "completed"
    return runio.read_run(cfg.run_dir(0))["metrics"]


def interrupted_run(out: Path) -> Path:
    """A SMALL run stopped by KeyboardInterrupt (what Ctrl-C raises) right after epoch 1."""

    def log(line: str) -> None:
        if "epoch 1/2" in line:
            raise KeyboardInterrupt

    cfg = small_cfg(out)
    with pytest.raises(RunInterrupted):
        train_run(cfg, progress=False, log=log)
    return cfg.run_dir(0)


# --------------------------------------------------------------------- 1. empty variant file


@pytest.mark.parametrize("text", ["", "# to do: fill in\n\n", "{}\n", "- exp_name: x\n"],
                         ids=["empty", "comments", "empty-mapping", "list"])
def test_empty_or_non_mapping_variant_file_exits_2(tmp_path, capsys, text):
    f = tmp_path / "variant.yaml"
    f.write_text(text)
    args = ("train", f, "--out", tmp_path / "out")
    r = cli_run(*args) if text == "" else cli_here(capsys, *args)  # one real process is enough
    assert r.returncode == 2
    line = one_line(r.stderr)
    assert line.startswith(f"error: {f}: ")
    assert "holds no settings (the file is empty or only comments)" in line or "must hold a mapping" in line
    assert not (tmp_path / "out").exists()


def test_pipeline_refuses_an_empty_variant_file(tmp_path, capsys):
    params = tmp_path / "params"
    params.mkdir()
    shutil.copy(BASELINE, params)
    (params / "zz_new.yaml").write_text("# a variant to write later\n")
    rc = pipeline.run_pipeline(profile="smoke", reports_dir=tmp_path / "r", params_dir=params)
    assert rc == 2
    assert one_line(capsys.readouterr().err) == (
        f"error: {params / 'zz_new.yaml'}: holds no settings (the file is empty or only comments); "
        "give at least exp_name and model, as parameters/cnn_baseline.yaml does")
    assert not (tmp_path / "r").exists()


# --------------------------------------------------------------------- 2. damaged checkpoint


@pytest.mark.parametrize("damage", ["truncated", "garbage", "missing"])
def test_damaged_checkpoint_is_set_aside_and_the_run_restarts(tmp_path, capsys, reference, damage):
    run = interrupted_run(tmp_path)
    ckpt = run / runio.CHECKPOINT
    assert runio.read_json(run / runio.RUN)["status"] == "interrupted" and epochs_in(run / runio.METRICS) == 1
    good = ckpt.read_bytes()
    if damage == "missing":
        ckpt.unlink()
    else:
        ckpt.write_bytes(good[: len(good) // 2] if damage == "truncated" else b"\x00not a checkpoint\n" * 64)
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.name not in (runio.CONFIG, runio.RUN)}

    args = (*train_args(SMALL), "--out", tmp_path)
    r = cli_run(*args) if damage == "truncated" else cli_here(capsys, *args)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    warnings = [ln for ln in r.stdout.splitlines() if ln.startswith("warning:")]
    why = "missing though metrics.csv is there" if damage == "missing" else "damaged ("
    assert len(warnings) == 1 and warnings[0].startswith(f"warning: {ckpt} is {why}"), r.stdout
    assert warnings[0].endswith(f"to {run / 'set-aside-1'}/ and restarting cnn_baseline seed 0 from epoch 1")
    # nothing lost: the damaged checkpoint and the epoch-1 files it went with are kept as they were
    aside = run / "set-aside-1"
    assert {p.name: p.read_bytes() for p in aside.iterdir()} == before
    # ... and the run directory itself holds one consistent restart, equal to a straight run
    after = runio.read_run(run)
    assert after["run"]["status"] == "completed" and after["run"]["epochs_done"] == 2
    pd.testing.assert_frame_equal(deterministic(after["metrics"]), deterministic(reference))
    assert torch.load(ckpt, weights_only=False)["epoch"] == 2


# --------------------------------------------------------------------- 3. damaged data


def tiny_jpegs() -> dict[str, bytes]:
    """Two train and one test JPEG per class, in the archive's layout."""
    rng = np.random.default_rng(0)
    members = {}
    for split, n in (("train", 2), ("test", 1)):
        for cls in D.CLASSES:
            for i in range(n):
                buf = io.BytesIO()
                Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(buf, format="JPEG")
                members[f"{split}/{cls}/{i:04d}.jpg"] = buf.getvalue()
    return members


def write_official(folder: Path) -> Path:
    """A cifar-10-batches-py/ of 20 random images per batch, in the official pickle format."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    for name in (*D.TRAIN_BATCHES, D.TEST_BATCH):
        batch = {b"batch_label": name.encode(), b"labels": [i % 10 for i in range(20)],
                 b"data": rng.integers(0, 256, (20, 3072), dtype=np.uint8),
                 b"filenames": [f"{i}.png".encode() for i in range(20)]}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f, protocol=2)
    return folder


def assert_refused(source: Path, data_setting: Path, tmp_path: Path, start: str, remedy: str,
                   capsys=None) -> None:
    """load_cifar10 and `train --set data=...` both refuse, naming ``source``; no cache, no run."""
    cache = tmp_path / "cache"
    with pytest.raises(D.DataDamagedError) as err:
        D.load_cifar10(str(data_setting), cache_dir=cache)
    msg = str(err.value)
    assert msg.startswith(f"{source}: {start} (") and remedy in msg and "\n" not in msg
    assert not cache.exists() or not list(cache.iterdir())  # no cache file, not even a temporary one
    args = (*train_args(SMALL), "--out", tmp_path / "out", "--set", f"data={data_setting}")
    r = cli_here(capsys, *args) if capsys is not None else cli_run(*args)
    assert r.returncode == 2
    assert one_line(r.stderr) == f"error: {msg}"
    assert not (tmp_path / "out").exists()


def real_archive_head() -> bytes | None:
    archive = (ROOT / ".." / "shared" / "datasets" / D.ARCHIVE_NAME).resolve()
    if not archive.is_file():
        return None
    with open(archive, "rb") as f:
        return f.read(300_000)


@pytest.mark.parametrize("which", ["tiny", "real-head"])
def test_truncated_archive_exits_2(tmp_path, capsys, which):
    if which == "tiny":
        whole = write_archive(tmp_path / "whole.tar.gz", tiny_jpegs())
        assert D.load_cifar10(str(whole), cache_dir=tmp_path / "ok").x_train.shape == (20, 3, 32, 32)
        head = whole.read_bytes()[: whole.stat().st_size * 6 // 10]
    else:
        head = real_archive_head()
        if head is None:
            pytest.skip("the offline CIFAR-10 archive is not here")
    cut = tmp_path / "copy" / D.ARCHIVE_NAME
    cut.parent.mkdir()
    cut.write_bytes(head)
    assert_refused(cut, cut, tmp_path, "truncated or damaged", "copy or download the archive again",
                   capsys if which == "real-head" else None)


def test_pipeline_preflight_refuses_a_truncated_archive(tmp_path, capsys):
    whole = write_archive(tmp_path / "whole.tar.gz", tiny_jpegs())
    cut = tmp_path / D.ARCHIVE_NAME
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    rc = pipeline.run_pipeline(profile="smoke", only=["cnn_baseline"], reports_dir=tmp_path / "r",
                               overrides={"data": str(cut)})
    assert rc == 2
    assert one_line(capsys.readouterr().err).startswith(f"error: {cut}: truncated or damaged (")
    assert not (tmp_path / "r").exists()


def test_truncated_official_batch_exits_2(tmp_path, capsys):
    official = write_official(tmp_path / "release" / D.OFFICIAL_DIR)
    assert D.load_cifar10(str(official), cache_dir=tmp_path / "ok").x_train.shape == (100, 3, 32, 32)
    batch = official / "data_batch_3"
    batch.write_bytes(batch.read_bytes()[: batch.stat().st_size // 2])
    assert_refused(batch, official.parent, tmp_path, "truncated or damaged",
                   "download the official release (cifar-10-python.tar.gz) again", capsys)


@pytest.mark.parametrize("bad", ["garbage", "truncated"])
def test_unreadable_image_in_jpeg_folder_exits_2(tmp_path, capsys, bad):
    folder = tmp_path / "jpegs"
    for name, raw in tiny_jpegs().items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(raw)
    victim = folder / "train" / "cat" / "0001.jpg"
    victim.write_bytes(b"this is not an image\n" if bad == "garbage" else victim.read_bytes()[:300])
    assert_refused(victim, folder, tmp_path, "not a readable image", "replace or delete that image", capsys)


# --------------------------------------------------------------------- 4. Ctrl-C


@pytest.mark.slow
def test_ctrl_c_leaves_a_resumable_run_marked_interrupted(tmp_path):
    ref = cli_run(*train_args(LONGER), "--out", tmp_path / "ref")
    assert ref.returncode == 0, ref.stderr
    out = tmp_path / "stopped"
    run = out / "cnn_baseline" / "seed0"
    proc = cli_start(*train_args(LONGER), "--out", out)
    wait_for(lambda: epochs_in(run / runio.METRICS) >= 1, "the first epoch")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    line = one_line(err)
    assert re.fullmatch(rf"interrupted: {re.escape(str(run))}: stopped after epoch [12] of 3; "
                        r"run the same command again to resume", line), line
    rec = runio.read_json(run / runio.RUN)
    assert rec["status"] == "interrupted" and rec["epochs_done"] in (1, 2)
    assert not (run / runio.LOCK).exists()  # released
    again = cli_run(*train_args(LONGER), "--out", out)
    assert again.returncode == 0 and "resuming after epoch" in again.stdout, again.stderr
    a, b = (runio.read_run(d) for d in (tmp_path / "ref" / "cnn_baseline" / "seed0", run))
    pd.testing.assert_frame_equal(deterministic(a["metrics"]), deterministic(b["metrics"]))
    assert b["run"]["status"] == "completed"


@pytest.mark.slow
def test_ctrl_c_stops_the_pipeline_and_its_kernel(tmp_path):
    reports = tmp_path / "reports"
    args = ["pipeline", "--profile", "smoke", "--no-report", "--only", "cnn_baseline", "--reports", reports,
            *set_args(LONGER)]
    run = reports / "smoke" / "runs" / "cnn_baseline" / "seed0"
    proc = cli_start(*args)
    wait_for(lambda: epochs_in(run / runio.METRICS) >= 1, "the first epoch in the notebook")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 130
    line = one_line(err)
    assert line.startswith(f"interrupted: {run}: stopped after epoch ") and line.endswith(
        f"run the same command again to resume (notebook: {run.parent / 'cnn_baseline.ipynb'})")
    assert "FAILED" not in out  # an interruption is not reported as a failed variant
    assert runio.read_json(run / runio.RUN)["status"] == "interrupted"
    assert runio.busy_holder(run / runio.LOCK) is None  # the kernel is gone
    again = cli_run(*args)
    assert again.returncode == 0, again.stderr
    done = runio.read_run(run)
    assert done["run"]["status"] == "completed" and list(done["metrics"]["epoch"]) == [1, 2, 3]


def test_report_counts_an_interrupted_run_as_unfinished(tmp_path):
    from cnn_lab import report

    interrupted_run(tmp_path / "runs")
    res = report.load_results(tmp_path)
    assert list(res.runs["status"]) == ["interrupted"]
    assert report.summary_stats(res).loc["cnn_baseline", "state"] == "running"  # unfinished, no accuracy
    assert "已中断 1 次" in report.overview_markdown(res)


# --------------------------------------------------------------------- 5. two processes, one folder

HOLD_LOCK = """
import sys, time
from cnn_lab import runio
with runio.file_lock(sys.argv[1], shared=sys.argv[2] == "shared"):
    print("held", flush=True)
    time.sleep(120)
"""


def hold_lock(path: Path, shared: bool = False) -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(path), "shared" if shared else "exclusive"],
                         cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "held"
    return p


def test_file_lock_between_processes(tmp_path):
    lock = tmp_path / "folder" / runio.LOCK
    holder = hold_lock(lock)
    try:
        for shared in (False, True):
            with pytest.raises(runio.Busy) as err:
                with runio.file_lock(lock, shared=shared):
                    pass
            assert err.value.holders.startswith(f"pid {holder.pid} on ")
        assert runio.busy_holder(lock).startswith(f"pid {holder.pid} on ")
    finally:
        holder.kill()
        holder.wait()
    # the system dropped the dead holder's lock: free at once, nothing to clean up by hand
    assert runio.busy_holder(lock) is None
    with runio.file_lock(lock):
        assert lock.read_text().startswith(f"pid {os.getpid()} on ")
    assert not lock.exists()  # an exclusive holder removes the file when done
    # shared holders (training-only pipelines) coexist; an exclusive one is refused meanwhile
    holder = hold_lock(lock, shared=True)
    try:
        with runio.file_lock(lock, shared=True):
            with pytest.raises(runio.Busy):
                with runio.file_lock(lock):
                    pass
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.slow
def test_second_train_on_a_run_directory_in_use_is_refused(tmp_path, capsys):
    run = tmp_path / "cnn_baseline" / "seed0"
    first = cli_start(*train_args(LONGER), "--out", tmp_path)
    try:
        wait_for(lambda: runio.busy_holder(run / runio.LOCK) is not None, "the first process to lock its run")
        rc = cli.main([str(a) for a in train_args(LONGER)] + ["--out", str(tmp_path)])  # this process
        assert rc == 2
        line = one_line(capsys.readouterr().err)
        assert re.fullmatch(rf"error: {re.escape(str(run))}: another process is training this run "
                            rf"\(pid {first.pid} on \S+ since [^)]+\); wait for it to finish, or choose "
                            r"another out_dir", line), line
        _, err = first.communicate(timeout=300)
    finally:
        first.kill()
    assert first.returncode == 0, err
    done = runio.read_run(run)
    assert done["run"]["status"] == "completed" and list(done["metrics"]["epoch"]) == [1, 2, 3]


@pytest.mark.slow
def test_second_pipeline_on_a_reports_folder_in_use_is_refused(tmp_path, capsys):
    reports = tmp_path / "reports"
    out = reports / "smoke"
    run = out / "runs" / "cnn_baseline" / "seed0"
    first = cli_start("pipeline", "--profile", "smoke", "--no-report", "--only", "cnn_baseline",
                      "--reports", reports, *set_args(HELD))
    try:
        wait_for(lambda: runio.busy_holder(run / runio.LOCK) is not None, "the first pipeline's kernel to train")
        # a full pipeline (it would write the report) waits for no one: refused
        rc = pipeline.run_pipeline(profile="smoke", only=["cnn_baseline"], reports_dir=reports, overrides=HELD)
        assert rc == 2
        line = one_line(capsys.readouterr().err)
        assert re.fullmatch(rf"error: {re.escape(str(out))}: another pipeline is using this reports folder "
                            rf"\(pid {first.pid} on .*\); wait for it to finish, or give this one another "
                            r"--reports folder", line), line
        # a training-only one may share the folder, but not a run directory being trained
        rc = pipeline.run_pipeline(profile="smoke", only=["cnn_baseline"], reports_dir=reports,
                                   overrides=HELD, report=False)
        assert rc == 2
        assert one_line(capsys.readouterr().err).startswith(
            f"error: {run}: another process is training this run (pid ")
        _, err = first.communicate(timeout=300)
    finally:
        first.kill()
    assert first.returncode == 0, err
    assert runio.read_json(run / runio.RUN)["status"] == "completed"


# --------------------------------------------------------------------- 6. disk full


def test_full_disk_while_writing_a_checkpoint_keeps_the_previous_one(tmp_path, monkeypatch, capsys, reference):
    real_fsync = os.fsync
    calls = {"n": 0}

    def fsync(fd: int) -> None:
        target = os.readlink(f"/proc/self/fd/{fd}")
        if Path(target).name.startswith(f".{runio.CHECKPOINT}."):
            calls["n"] += 1
            if calls["n"] == 2:  # the second epoch's checkpoint: half of it is on disk, then no space
                os.ftruncate(fd, os.fstat(fd).st_size // 2)
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc to tell which file is being written")
    monkeypatch.setattr(runio.os, "fsync", fsync)
    args = [str(a) for a in train_args(SMALL)] + ["--out", str(tmp_path)]
    rc = cli.main(args)
    monkeypatch.setattr(runio.os, "fsync", real_fsync)
    run = tmp_path / "cnn_baseline" / "seed0"
    ckpt = run / runio.CHECKPOINT
    assert rc == 1
    assert one_line(capsys.readouterr().err) == (
        f"error: {ckpt}: cannot write it (disk full: {os.strerror(errno.ENOSPC)}); the files written before it "
        "are intact: free some space (or fix the permission) and run the same command again to resume")
    assert torch.load(ckpt, weights_only=False)["epoch"] == 1  # the previous checkpoint, whole
    assert not list(run.glob(".*.tmp"))  # the half-written temporary file is gone
    rec = runio.read_json(run / runio.RUN)
    assert rec["status"] == "failed" and "disk full" in rec["message"] and epochs_in(run / runio.METRICS) == 1
    # space again: the same command resumes after epoch 1 and ends as a straight run would
    assert cli.main(args) == 0
    assert "resuming after epoch 1" in capsys.readouterr().out
    pd.testing.assert_frame_equal(deterministic(runio.read_run(run)["metrics"]), deterministic(reference))


def test_atomic_write_failure_names_the_file_and_cleans_up(tmp_path, monkeypatch):
    target = tmp_path / "metrics.csv"
    target.write_text("old\n")

    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(runio.os, "fsync", no_space)
    with pytest.raises(runio.WriteError, match=rf"^{re.escape(str(target))}: cannot write it \(disk full: "):
        runio.atomic_write_text(target, "new\n")
    assert target.read_text() == "old\n" and sorted(p.name for p in tmp_path.iterdir()) == ["metrics.csv"]
