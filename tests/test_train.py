"""The training loop for real: determinism, resume after a kill, divergence, the CLI's errors."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cnn_lab import runio
from cnn_lab.rundir import RunConflict
from cnn_lab.train import RunInterrupted, train_run
from cnn_lab.variant import load_config

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / "parameters" / "cnn_baseline.yaml"


def cli(*args, check=False, **kw):
    return subprocess.run([sys.executable, "-m", "cnn_lab", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, check=check, **kw)


def deterministic(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop(columns=list(runio.TIMING_COLUMNS))


def small(tmp, **extra):
    over = {"out_dir": str(tmp), "train_size": 300, "test_size": 100, "epochs": 2, "batch_size": 50,
            "grad_points": 3, "device": "cpu", **extra}
    return load_config(BASELINE, profile="smoke", overrides=over)


def test_same_config_gives_identical_metrics_on_the_cpu(tmp_path):
    a = train_run(small(tmp_path / "a"), progress=False, log=lambda s: None)
    b = train_run(small(tmp_path / "b"), progress=False, log=lambda s: None)
    assert a["status"] == b["status"] == "completed"
    da, db = (runio.read_run(tmp_path / x / "cnn_baseline" / "seed0") for x in "ab")
    assert len(da["metrics"]) == 2
    pd.testing.assert_frame_equal(deterministic(da["metrics"]), deterministic(db["metrics"]))
    pd.testing.assert_frame_equal(da["grad_norms"], db["grad_norms"])
    pd.testing.assert_frame_equal(da["confusion"], db["confusion"])
    # another seed really is another run
    c = train_run(small(tmp_path / "c"), seed=1, progress=False, log=lambda s: None)
    dc = runio.read_run(tmp_path / "c" / "cnn_baseline" / "seed1")
    assert not dc["metrics"]["train_loss"].equals(da["metrics"]["train_loss"])
    assert c["seed"] == 1


def git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)


def environment_is_this_checkout(env: dict) -> bool:
    """run.json's environment names this torch and torchvision, and this checkout's commit as git
    shows it (marked -dirty while tracked files differ from it)."""
    import torch
    import torchvision

    head, dirty = git("rev-parse", "HEAD"), git("status", "--porcelain", "--untracked-files=no")
    commit = head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "") if head.returncode == 0 else None
    assert (env["torch"], env["torchvision"], env["git_commit"]) == (torch.__version__, torchvision.__version__, commit)
    assert env["torch_threads"] == torch.get_num_threads() and env["cpu_count"] == os.cpu_count()
    return True


def test_run_directory_contents(tmp_path):
    rec = train_run(small(tmp_path), progress=False, log=lambda s: None)
    run = runio.read_run(tmp_path / "cnn_baseline" / "seed0")
    assert list(run["metrics"].columns) == list(runio.METRIC_COLUMNS)
    assert run["config"]["exp_name"] == "cnn_baseline" and run["config"]["epochs"] == 2
    assert run["run"]["status"] == "completed" and run["run"]["params"] == 62_006
    assert run["run"]["data"]["kind"] in ("jpeg-archive", "jpeg-folder", "official")
    assert run["run"]["environment"]["device"] == "cpu"  # what ran (device=cpu)
    assert environment_is_this_checkout(run["run"]["environment"])
    assert run["run"]["final"]["test_acc"] == run["metrics"]["test_acc"].iloc[-1]
    assert rec["final"] == run["run"]["final"]
    grads = run["grad_norms"]
    assert set(grads["epoch"]) == {1, 2} and grads["layer_index"].max() == 4  # conv1, conv2, fc1-3
    assert grads.groupby("epoch")["step"].nunique().tolist() == [3, 3]
    assert run["confusion"].drop(columns="true").to_numpy().sum() == 100
    # the size and weight norm of each layer, for a per-parameter gradient measure
    assert grads.groupby("layer")["numel"].first().to_dict() == {
        "conv1.weight": 450, "conv2.weight": 2400, "fc1.weight": 48000, "fc2.weight": 10080, "fc3.weight": 840}
    assert (grads["weight_norm"] > 0).all()
    # the last epoch's prediction for every test image: it reproduces the confusion matrix
    pred, true = run["predictions"], run["labels"]
    assert pred.dtype == true.dtype == np.uint8 and pred.shape == true.shape == (100,)
    cm = np.zeros((10, 10), dtype=int)
    np.add.at(cm, (true, pred), 1)
    assert (cm == run["confusion"].drop(columns="true").to_numpy()).all()
    assert (pred == true).mean() == pytest.approx(run["metrics"]["test_acc"].iloc[-1])
    assert (tmp_path / "cnn_baseline" / "seed0" / runio.CHECKPOINT).exists()
    assert not list((tmp_path / "cnn_baseline" / "seed0").glob(".*.tmp"))


def test_completed_run_is_not_retrained_and_changed_config_is_refused(tmp_path):
    cfg = small(tmp_path)
    train_run(cfg, progress=False, log=lambda s: None)
    metrics = tmp_path / "cnn_baseline" / "seed0" / runio.METRICS
    before = metrics.stat().st_mtime_ns
    lines = []
    rec = train_run(cfg, progress=False, log=lines.append)
    assert rec["status"] == "completed" and "nothing to train" in lines[0]
    assert metrics.stat().st_mtime_ns == before
    with pytest.raises(RunConflict, match=r"lr: 0\.001 -> 0\.01"):
        train_run(small(tmp_path, lr=0.01), progress=False, log=lambda s: None)
    assert metrics.stat().st_mtime_ns == before
    r = cli("train", BASELINE, "--profile", "smoke", "--out", tmp_path, "--no-progress", "--set", "lr=0.01",
            "--set", "train_size=300", "--set", "test_size=100", "--set", "epochs=2", "--set", "batch_size=50",
            "--set", "grad_points=3")
    assert r.returncode == 2 and "holds a run of another config" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_resume_after_a_kill_gives_the_same_metrics(tmp_path):
    args = ["train", BASELINE, "--profile", "smoke", "--no-progress", "--set", "device=cpu", "--set", "train_size=4000",
            "--set", "test_size=500", "--set", "epochs=6", "--set", "batch_size=50"]
    ref = cli(*args, "--out", tmp_path / "ref", check=True)
    assert "epoch 6/6" in ref.stdout
    out = tmp_path / "killed"
    metrics = out / "cnn_baseline" / "seed0" / runio.METRICS
    proc = subprocess.Popen([sys.executable, "-m", "cnn_lab", *map(str, args), "--out", str(out)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 3:  # header + 2 epochs
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(pd.read_csv(metrics))
    assert 2 <= done < 6, "the kill came too late to test resuming"
    state = json.loads((out / "cnn_baseline" / "seed0" / runio.RUN).read_text())
    assert state["status"] == "running"  # every file still parses after the kill
    again = cli(*args, "--out", out, check=True)
    assert "resuming after epoch" in again.stdout
    a = runio.read_run(tmp_path / "ref" / "cnn_baseline" / "seed0")["metrics"]
    b = runio.read_run(out / "cnn_baseline" / "seed0")["metrics"]
    pd.testing.assert_frame_equal(deterministic(a), deterministic(b))
    assert json.loads((out / "cnn_baseline" / "seed0" / runio.RUN).read_text())["status"] == "completed"


def test_a_smoke_run_of_baselinenet_with_adam_learns(tmp_path):
    """The smoke profile's own budget (BaselineNet + Adam, README's default run) lifts test
    accuracy far above chance and the loss falls from epoch 1 on. The margin is ten standard
    errors of a guesser's accuracy on the smoke test subset (10% +- 0.95 points on 1,000
    images: a cut at 19.5%); the training notebook's default run reaches about 40%."""
    cfg = load_config(ROOT / "parameters" / "cnn_baseline_adam.yaml", profile="smoke",
                      overrides={"out_dir": str(tmp_path), "device": "cpu", "amp": "off", "channels_last": "off"})
    train_run(cfg, progress=False, log=lambda s: None)
    m = runio.read_run(tmp_path / "cnn_baseline_adam" / "seed0")["metrics"]
    assert len(m) == cfg.epochs >= 2
    chance = 1 / 10
    margin = 10 * np.sqrt(chance * (1 - chance) / cfg.test_size)
    assert m["test_acc"].iloc[-1] > chance + margin, (m["test_acc"].tolist(), chance + margin)
    assert m["train_loss"].is_monotonic_decreasing and m["train_loss"].iloc[-1] < m["train_loss"].iloc[0]
    assert m["test_loss"].iloc[-1] < m["test_loss"].iloc[0] < np.log(10)


def _stop_after_epoch_1(line: str) -> None:
    """A log that interrupts the run as its first epoch is reported, i.e. just after that
    epoch's checkpoint and files are written (where a kill or Ctrl-C between epochs lands)."""
    if " epoch 1/" in line:
        raise KeyboardInterrupt


def _metrics_text(run_dir: Path) -> str:
    """metrics.csv as written, less the timing columns (the only ones a rerun may change)."""
    df = pd.read_csv(run_dir / runio.METRICS, dtype=str)  # the digits as written, not parsed floats
    return df.drop(columns=list(runio.TIMING_COLUMNS)).to_csv(index=False)


@pytest.mark.parametrize("variant", ["cnn_resnet18_sgd_cosine_aug", "cnn_baseline_adam"])
def test_every_recipe_resumes_bit_identically_on_the_cpu(tmp_path, variant):
    """The cosine schedule's position, the crop-and-flip random stream, momentum and Adam's
    moments all survive an interruption: the resumed run writes the straight run's files."""
    over = {"train_size": 40, "test_size": 20, "epochs": 2, "batch_size": 20, "grad_points": 1, "device": "cpu",
            "amp": "off", "channels_last": "off"}  # two steps an epoch, fixed numerics (nothing measured)

    def cfg(out: Path):
        return load_config(ROOT / "parameters" / f"{variant}.yaml", profile="smoke", overrides={**over, "out_dir": str(out)})

    train_run(cfg(tmp_path / "straight"), progress=False, log=lambda s: None)
    with pytest.raises(RunInterrupted):
        train_run(cfg(tmp_path / "resumed"), progress=False, log=_stop_after_epoch_1)
    a, b = tmp_path / "straight" / variant / "seed0", tmp_path / "resumed" / variant / "seed0"
    assert runio.read_json(b / runio.RUN)["epochs_done"] == 1
    lines = []
    assert train_run(cfg(tmp_path / "resumed"), progress=False, log=lines.append)["status"] == "completed"
    assert any("resuming after epoch 1" in s for s in lines)
    assert len(pd.read_csv(b / runio.METRICS)) == 2 and _metrics_text(a) == _metrics_text(b)
    for name in (runio.GRAD_NORMS, runio.CONFUSION, runio.PREDICTIONS):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_divergence_stops_the_run_with_status_and_exit_1(tmp_path):
    r = cli("train", BASELINE, "--profile", "smoke", "--out", tmp_path, "--no-progress", "--set", "lr=10000",
            "--set", "epochs=3")
    assert r.returncode == 1
    assert "diverged" in r.stderr and "epoch 1" in r.stderr
    run = runio.read_run(tmp_path / "cnn_baseline" / "seed0")
    assert run["run"]["status"] == "diverged"
    assert run["run"]["diverged_at"]["epoch"] == 1 and run["run"]["diverged_at"]["step"] >= 0
    assert len(run["metrics"]) == 0 and run["config"]["lr"] == 10000.0
    again = cli("train", BASELINE, "--profile", "smoke", "--out", tmp_path, "--no-progress", "--set", "lr=10000",
                "--set", "epochs=3")
    assert again.returncode == 1 and "already diverged" in again.stdout


@pytest.mark.parametrize("args,expected", [
    (["--set", "lr=-1"], "--set: field 'lr' must be a positive number"),
    (["--set", "optimizer=rmsprop"], "field 'optimizer' must be one of sgd, adam"),
    (["--set", "colour=red"], "--set: unknown field 'colour'"),
    (["--set", "epochs=two"], "field 'epochs' must be an integer"),
])
def test_cli_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path, args, expected):
    r = cli("train", BASELINE, "--profile", "smoke", "--out", tmp_path / "out", *args)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [f"error: {r.stderr.strip()[7:]}"] and expected in r.stderr
    assert not (tmp_path / "out").exists()


def test_cli_missing_file(tmp_path):
    r = cli("train", tmp_path / "nope.yaml", "--out", tmp_path / "out")
    assert r.returncode == 2 and "nope.yaml: no such file" in r.stderr
    assert not (tmp_path / "out").exists()


def test_cli_missing_data_lists_places_and_exits_2(tmp_path):
    env = dict(os.environ, CNN_LAB_DATA=str(tmp_path / "empty"))
    (tmp_path / "empty").mkdir()
    r = cli("train", BASELINE, "--profile", "smoke", "--out", tmp_path / "out", env=env)
    assert r.returncode == 2 and str(tmp_path / "empty") in r.stderr
    assert not (tmp_path / "out").exists()


def test_progress_bar_only_on_a_terminal_and_one_log_line_per_epoch(tmp_path, capfd):
    from cnn_lab.train import progress_bar

    assert progress_bar("x", 10, enabled=False).disable
    assert progress_bar("x", 10).disable  # stderr is captured here, so not a terminal
    lines = []
    train_run(small(tmp_path), progress=True, log=lines.append)
    # the precision auto chose (one line), then one line per epoch
    assert lines[0].startswith("cnn_baseline: amp ")
    assert [line.split(": ")[0] for line in lines[1:]] == ["cnn_baseline seed 0 epoch 1/2", "cnn_baseline seed 0 epoch 2/2"]
    assert "it/s" not in capfd.readouterr().err  # no bar written where nobody watches it


def _as_if_killed_after_epoch_1(run_dir: Path, epochs: int) -> None:
    """Make a finished 1-epoch run what an ``epochs``-epoch run killed after epoch 1 leaves
    (the schedule is constant, so its epoch 1 is the same)."""
    import yaml

    cfg = yaml.safe_load((run_dir / runio.CONFIG).read_text())
    runio.atomic_write_text(run_dir / runio.CONFIG, yaml.safe_dump({**cfg, "epochs": epochs}, sort_keys=False))
    rec = runio.read_json(run_dir / runio.RUN)
    runio.write_json(run_dir / runio.RUN, {**rec, "status": "running"})


@pytest.mark.slow
@pytest.mark.parametrize("setting", ["amp=bf16", "channels_last=on", "compile=true"])
def test_gpu_settings_complete_with_finite_losses_and_resume_on_the_cpu(tmp_path, setting):
    from cnn_lab.config import parse_overrides

    extra = {**parse_overrides([setting]), "device": "cpu"}
    straight = train_run(small(tmp_path / "a", **extra), progress=False, log=lambda s: None)
    assert straight["status"] == "completed"
    a = runio.read_run(tmp_path / "a" / "cnn_baseline" / "seed0")["metrics"]
    assert len(a) == 2 and all(np.isfinite(a[c]).all() for c in ("train_loss", "test_loss"))
    assert a["train_loss"].iloc[-1] < 2.31  # it learns (chance is ln 10 = 2.303)

    train_run(small(tmp_path / "b", **extra, epochs=1), progress=False, log=lambda s: None)
    _as_if_killed_after_epoch_1(tmp_path / "b" / "cnn_baseline" / "seed0", epochs=2)
    lines = []
    resumed = train_run(small(tmp_path / "b", **extra), progress=False, log=lines.append)
    assert resumed["status"] == "completed" and any("resuming after epoch 1" in s for s in lines)
    b = runio.read_run(tmp_path / "b" / "cnn_baseline" / "seed0")["metrics"]
    pd.testing.assert_frame_equal(deterministic(a), deterministic(b))
    key = setting.split("=")[0]
    if key != "compile":  # the run trained in the mode asked for (the word, not YAML's boolean)
        assert straight["precision"][key] == setting.split("=")[1]
    else:  # F13: the epoch that paid the compile delay is left out of the throughput
        assert straight["compile_epochs"] == [1]
        assert straight["images_per_s"] == a["images_per_s"].iloc[1]
        assert resumed["compile_epochs"] == [1, 2]


def test_checkpoint_is_loaded_to_the_cpu_first(tmp_path, monkeypatch):
    # F4: map_location=device would leave Adam's 'step' on the GPU (a sync per parameter per step)
    import torch

    import cnn_lab.train as T

    train_run(small(tmp_path, optimizer="adam", epochs=1), progress=False, log=lambda s: None)
    _as_if_killed_after_epoch_1(tmp_path / "cnn_baseline" / "seed0", epochs=2)
    seen, real_load = [], torch.load
    monkeypatch.setattr(T.torch, "load", lambda *a, **k: seen.append(k.get("map_location")) or real_load(*a, **k))
    train_run(small(tmp_path, optimizer="adam"), progress=False, log=lambda s: None)
    assert seen == ["cpu"]


def test_bf16_auto_needs_compute_capability_8(monkeypatch):
    # F7: pre-Ampere GPUs emulate bf16; auto is fp32 there
    import torch

    from cnn_lab import autotune
    from cnn_lab.config import RunConfig

    cuda = torch.device("cuda", 0)
    for cap, amp in (((7, 5), "off"), ((8, 0), "bf16"), ((9, 0), "bf16")):
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda d=None, c=cap: c)
        got = autotune.resolve(RunConfig(), cuda)
        assert (got["amp"], got["channels_last"]) == (amp, "on") and f"{cap[0]}.{cap[1]}" in got["reason"]
    assert autotune.resolve(RunConfig(amp="off", channels_last="off"), cuda)["reason"] == "set explicitly"


@pytest.fixture
def backend_flags():
    """The process-wide backend settings as they were, put back after the test."""
    import torch

    from cnn_lab import precision

    flags = [(torch.backends.cudnn, "benchmark")]
    if precision._NEW_TF32_API:
        flags += [(torch.backends.cuda.matmul, "fp32_precision"), (torch.backends.cudnn.conv, "fp32_precision")]
    else:
        flags += [(torch.backends.cuda.matmul, "allow_tf32"), (torch.backends.cudnn, "allow_tf32")]
    old = [getattr(obj, name) for obj, name in flags]
    yield
    for (obj, name), value in zip(flags, old):
        setattr(obj, name, value)


def test_gpu_backend_is_cudnn_benchmark_and_ieee_fp32(backend_flags, monkeypatch, tmp_path):
    # F14 and item 7 of issue 21: cuDNN allows TF32 convolutions by default, so "fp32" was TF32 there
    import torch

    from cnn_lab import autotune, precision
    from cnn_lab.config import RunConfig

    torch.backends.cudnn.benchmark = False
    precision.configure_backend(torch.device("cpu"))
    assert torch.backends.cudnn.benchmark is False  # a CPU run leaves the CUDA settings alone
    assert precision.backend_settings()["fp32_conv"] == "tf32"  # PyTorch's default, what configure_backend undoes
    precision.configure_backend(torch.device("cuda", 0))
    ieee = {"fp32_matmul": "ieee", "fp32_conv": "ieee", "cudnn_benchmark": True}
    assert precision.backend_settings() == ieee
    # and a GPU run records it beside its mode
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda d=None: (9, 0))
    mode = autotune.for_run(RunConfig(batch_size=64), torch.device("cuda", 0), None, tmp_path, 1, lambda s: None)
    assert mode["amp"] == "bf16" and mode["backend"] == ieee


def test_every_timed_path_configures_the_backend_first(monkeypatch, tmp_path):
    """Training, the bench, the memory measurement and the GPU checks all run under
    ``precision.configure_backend``, called before anything is timed or trained."""
    from cnn_lab import bench, cost, precision
    from test_gpu_checks import load_script

    class Configured(Exception):
        pass

    def configure(device):
        raise Configured(device.type)

    gpu_checks = load_script()
    monkeypatch.setattr(precision, "configure_backend", configure)
    with pytest.raises(Configured):
        bench.run(["baseline"], 64, 1, "cpu", tmp_path / "bench", reps=1, log=lambda s: None)
    with pytest.raises(Configured):
        cost.step_memory_here("baseline", 8, "cpu")
    with pytest.raises(Configured):
        train_run(small(tmp_path / "runs"), progress=False, log=lambda s: None)
    with pytest.raises(Configured):
        gpu_checks.main(["--dry-run", "--stages", "data", "--out", str(tmp_path / "gpu"), "--work", str(tmp_path / "work")])
    assert not (tmp_path / "bench").exists() and not (tmp_path / "gpu" / "gpu-checks.json").exists()
    assert not list((tmp_path / "runs").rglob("metrics.csv"))


def test_the_confusion_matrix_is_counted_without_bincount(monkeypatch):
    # torch.bincount reads its output size from the device: two host syncs per batch on a GPU
    import torch

    from cnn_lab.precision import fp32_head
    from cnn_lab.models import create_model
    from cnn_lab.train import NUM_CLASSES, add_to_confusion, evaluate

    gen = torch.Generator().manual_seed(3)
    labels, preds = torch.randint(0, 10, (5000,), generator=gen), torch.randint(0, 10, (5000,), generator=gen)
    flat = torch.zeros(NUM_CLASSES**2, dtype=torch.int64)
    add_to_confusion(flat, labels[:2000], preds[:2000])
    add_to_confusion(flat, labels[2000:], preds[2000:])
    assert torch.equal(flat, torch.bincount(labels * NUM_CLASSES + preds, minlength=NUM_CLASSES**2))

    sets = _tiny_sets(n_test=57)
    torch.manual_seed(0)
    model = fp32_head(create_model("baseline"))
    real_bincount = torch.bincount
    monkeypatch.setattr(torch, "bincount", lambda *a, **k: pytest.fail("evaluate called torch.bincount"))
    ev = evaluate(model, sets["x_test"], sets["y_test"], batch_size=10, device=torch.device("cpu"))
    monkeypatch.undo()
    pairs = sets["y_test"] * NUM_CLASSES + ev["predictions"].long()
    assert torch.equal(ev["confusion"], real_bincount(pairs, minlength=NUM_CLASSES**2).view(NUM_CLASSES, NUM_CLASSES))
    assert ev["test_acc"] == pytest.approx(float((ev["predictions"].long() == sets["y_test"]).float().mean()))


def test_gradient_norms_are_read_from_the_device_at_once(monkeypatch):
    import torch

    from cnn_lab.models import create_model
    from cnn_lab.train import record_grad_norms, weight_layers

    torch.manual_seed(0)
    model = create_model("resnet18")
    torch.nn.functional.cross_entropy(model(torch.randn(4, 3, 32, 32)), torch.arange(4)).backward()
    layers, rows, reads = weight_layers(model), [], []
    real_tolist = torch.Tensor.tolist
    monkeypatch.setattr(torch.Tensor, "tolist", lambda self: reads.append(tuple(self.shape)) or real_tolist(self))
    monkeypatch.setattr(torch.Tensor, "__float__", lambda self: pytest.fail("a norm read on its own"))
    record_grad_norms(layers, rows, epoch=2, step=5)
    monkeypatch.undo()
    assert reads == [(2 * len(layers),)]  # one read of every norm (21 weight layers: 42 reads before)
    assert [r["layer"] for r in rows] == [n for n, _ in layers] and [r["layer_index"] for r in rows] == list(range(21))
    for row, (_, p) in zip(rows, layers):
        assert (row["epoch"], row["step"], row["numel"]) == (2, 5, p.numel())
        assert row["grad_norm"] == pytest.approx(float(torch.linalg.vector_norm(p.grad)), rel=1e-6)
        assert row["weight_norm"] == pytest.approx(float(torch.linalg.vector_norm(p.detach())), rel=1e-6)


@pytest.mark.parametrize("augment", [True, False])
def test_a_resume_on_another_device_type_warns_and_chooses_the_mode_again(tmp_path, augment):
    # item 5 of issue 21: CUDA's generator draws other crops than the CPU's, and bf16 kept from a
    # GPU may be emulated on the CPU
    train_run(small(tmp_path, epochs=1, augment=augment), progress=False, log=lambda s: None)
    run_dir = tmp_path / "cnn_baseline" / "seed0"
    rec = runio.read_json(run_dir / runio.RUN)
    gpu_mode = {"amp": "bf16", "channels_last": "on", "source": "rule", "reason": "compute capability 9.0"}
    runio.write_json(run_dir / runio.RUN, {**rec, "environment": {**rec["environment"], "device": "cuda:0"},
                                           "precision": gpu_mode})
    _as_if_killed_after_epoch_1(run_dir, epochs=2)
    lines = []
    resumed = train_run(small(tmp_path, augment=augment), progress=False, log=lines.append)
    assert resumed["status"] == "completed" and resumed["epochs_done"] == 2
    warnings = [s for s in lines if s.startswith("warning:")]
    if augment:
        assert len(warnings) == 1 and "resumed on cpu, started on cuda" in warnings[0]
        assert "crops and flips" in warnings[0] and "resume on cuda" in warnings[0]
    else:
        assert warnings == []  # without augmentation the draws do not depend on the device
    assert any("resumed on cpu, started on cuda: its amp / channels_last are chosen again for cpu" in s for s in lines)
    assert resumed["precision"]["source"] == "measured" and "kept from" not in resumed["precision"]["reason"]
    assert resumed["environment"]["device"] == "cpu"


@pytest.mark.parametrize("name", ["baseline", "resnet18"])
def test_classifier_head_runs_in_fp32_under_bf16(name):
    # F15: bf16 logits would round ties in argmax; the head keeps its parameters and their names
    import torch

    from cnn_lab.models import create_model
    from cnn_lab.precision import FP32Head, fp32_head

    plain = create_model(name)
    model = fp32_head(create_model(name))
    assert list(model.state_dict()) == list(plain.state_dict())
    assert sum(isinstance(m, FP32Head) for m in model.modules()) == 1
    x = torch.randn(4, 3, 32, 32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert model(x).dtype == torch.float32 and plain(x).dtype == torch.bfloat16
    model.load_state_dict(plain.state_dict())
    model.eval(), plain.eval()
    with torch.no_grad():
        assert torch.equal(model(x), plain(x))  # the same function in fp32


def test_resume_keeps_the_recorded_mode(tmp_path):
    # F9: the resolved amp / channels_last are recorded; a resume under auto keeps them (a run
    # started on a GPU in bf16 + channels_last and finished on a CPU stays in that mode)
    train_run(small(tmp_path, epochs=1), progress=False, log=lambda s: None)
    run_dir = tmp_path / "cnn_baseline" / "seed0"
    rec = runio.read_json(run_dir / runio.RUN)
    assert rec["precision"]["amp"] in ("bf16", "off") and rec["precision"]["channels_last"] in ("on", "off")
    other = {"amp": "off" if rec["precision"]["amp"] == "bf16" else "bf16",
             "channels_last": "off" if rec["precision"]["channels_last"] == "on" else "on"}
    runio.write_json(run_dir / runio.RUN, {**rec, "precision": {**other, "reason": "started elsewhere"}})
    _as_if_killed_after_epoch_1(run_dir, epochs=2)
    lines = []
    resumed = train_run(small(tmp_path), progress=False, log=lines.append)
    assert {k: resumed["precision"][k] for k in other} == other
    assert "kept from the run's start" in resumed["precision"]["reason"]
    assert any(f"amp {other['amp']}, channels_last {other['channels_last']}" in s for s in lines)
    with pytest.raises(RunConflict, match="amp: 'auto' -> 'bf16'"):  # config.yaml pins explicit settings
        train_run(small(tmp_path, amp="bf16"), progress=False, log=lambda s: None)


# ------------------------------------------------------------------ the pieces of a run, one by one


def _tiny_sets(n_train=100, n_test=20):
    import torch

    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n_train + n_test, 3, 32, 32), dtype=torch.uint8, generator=gen)
    y = torch.arange(n_train + n_test) % 10
    return {"x_train": x[:n_train], "y_train": y[:n_train], "x_test": x[n_train:], "y_test": y[n_train:]}


def _fp32(tmp, **extra):
    return small(tmp, amp="off", channels_last="off", **extra)


def test_build_gives_a_seeded_model_and_a_schedule_over_every_step(tmp_path):
    import torch

    from cnn_lab.config import ConfigError
    from cnn_lab.train import build

    cfg = _fp32(tmp_path, schedule="cosine", epochs=2, batch_size=50)
    parts = build(cfg, torch.device("cpu"), 1, n_train=300)
    assert parts.steps_per_epoch == 6 and parts.params == 62_006
    assert [n for n, _ in parts.layers] == ["conv1.weight", "conv2.weight", "fc1.weight", "fc2.weight", "fc3.weight"]
    decay = parts.scheduler.lr_lambdas[0]
    assert decay(0) == 1.0 and decay(6) == pytest.approx(0.5) and decay(12) == pytest.approx(0.0)
    # under 2 ranks the last batch must give each rank two images: 304 images, batch 50 -> 7 steps, 303 -> 6
    assert build(cfg, torch.device("cpu"), 2, n_train=304).steps_per_epoch == 7
    assert build(cfg, torch.device("cpu"), 2, n_train=303).steps_per_epoch == 6
    again = build(cfg, torch.device("cpu"), 1, n_train=300)
    assert all(torch.equal(a, b) for a, b in zip(parts.model.state_dict().values(), again.model.state_dict().values()))
    with pytest.raises(ConfigError, match="multiple of the world size"):
        build(_fp32(tmp_path, batch_size=51), torch.device("cpu"), 2, n_train=300)


def test_train_step_calls_back_between_backward_and_step():
    import torch

    from cnn_lab.step import train_step

    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(8, 4), torch.arange(8) % 3
    w0, b0 = model.weight.detach().clone(), model.bias.detach().clone()
    seen = []
    out, loss = train_step(model, opt, x, y, before_step=lambda: seen.append(
        (model.weight.grad.clone(), torch.equal(model.weight, w0))))
    (grad, unchanged), = seen
    assert unchanged and grad.abs().sum() > 0  # gradients there, the weights not yet stepped
    assert torch.allclose(model.weight, w0 - 0.1 * grad)
    assert out.shape == (8, 3) and not out.requires_grad and not loss.requires_grad
    assert float(loss) == pytest.approx(float(torch.nn.functional.cross_entropy(x @ w0.T + b0, y)))


def test_fit_yields_one_epoch_at_a_time_and_continues_a_restored_run(tmp_path):
    import torch

    from cnn_lab.train import build, fit, restore

    cpu, sets = torch.device("cpu"), _tiny_sets()
    cfg = _fp32(tmp_path, epochs=3, batch_size=50, grad_points=2)
    parts, grads = build(cfg, cpu, 1, 100), []
    straight = list(fit(parts, parts.model, sets, cfg, start_epoch=1, device=cpu, grad_rows=grads))
    assert [e.row["epoch"] for e in straight] == [1, 2, 3] and list(straight[0].row) == list(runio.METRIC_COLUMNS)
    assert sorted({(g["epoch"], g["step"]) for g in grads}) == [(e, s) for e in (1, 2, 3) for s in (0, 1)]
    assert straight[-1].confusion.sum() == 20 and straight[-1].predictions.shape == (20,)

    # stop after epoch 1 (the generator trains nothing more), save it, restore it into fresh parts
    first, grads1 = build(cfg, cpu, 1, 100), []
    epoch1 = next(fit(first, first.model, sets, cfg, start_epoch=1, device=cpu, grad_rows=grads1))
    run_dir = tmp_path / "run"
    runio.save_epoch(run_dir, first.checkpoint([epoch1.row], grads1), epoch1.confusion)
    later = build(cfg, cpu, 1, 100)
    rows, grads2 = restore(later, run_dir)
    rest = list(fit(later, later.model, sets, cfg, start_epoch=len(rows) + 1, device=cpu, grad_rows=grads2))
    assert [e.row["epoch"] for e in rest] == [2, 3]
    same = [c for c in runio.METRIC_COLUMNS if c not in runio.TIMING_COLUMNS]
    assert [{c: e.row[c] for c in same} for e in rest] == [{c: e.row[c] for c in same} for e in straight[1:]]
    assert grads2 == grads


def test_claim_locks_every_seed_and_checks_each_once(tmp_path, monkeypatch):
    import cnn_lab.rundir as RD
    import cnn_lab.train as T

    cfg = _fp32(tmp_path, seeds=2, epochs=1)
    with RD.claim(cfg, [0, 1]) as states:
        assert states == ["new", "new"]
        assert all(runio.busy_holder(cfg.run_dir(s) / runio.LOCK) for s in (0, 1))
    assert not (tmp_path / "cnn_baseline" / "seed0").exists()  # made for the lock, left empty: removed

    calls = []
    real = RD.check_run_dir
    monkeypatch.setattr(RD, "check_run_dir", lambda c, s: calls.append(s) or real(c, s))
    records = T.train_variant(cfg, progress=False, log=lambda s: None)
    assert [r["status"] for r in records] == ["completed", "completed"] and calls == [0, 1]
    assert runio.busy_holder(cfg.run_dir(0) / runio.LOCK) is None  # released


def test_run_record_reads_older_files_and_writes_only_what_it_knows():
    rec = runio.RunRecord.from_dict({"exp_name": "a", "seed": 1, "status": "completed", "retired_field": 3})
    assert rec.epochs_done is None and rec.data == {} and rec.compile_epochs == [] and rec.message == ""
    out = rec.to_dict()
    assert "retired_field" not in out and "final" not in out and "diverged_at" not in out
    assert runio.RunRecord.from_dict(out) == rec
    assert runio.RunRecord.from_dict({}).status == "missing"
