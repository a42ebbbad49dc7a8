"""DistributedDataParallel on the CPU: torchrun with the gloo backend and 2 processes.

``batch_size`` is the global batch (each rank takes an interleaved half), so a 2-process
run computes the same optimizer steps as a single process; the only differences are the
order of floating-point sums in the gradient all-reduce. Tolerance: losses agree to a
relative 1e-4, accuracies to within one image of the subset.
"""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from cnn_lab import runio
from cnn_lab.config import load_config
from cnn_lab.distributed import torchrun_command

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / "parameters" / "cnn_baseline.yaml"
# device=cpu: these are the gloo tests; on a GPU box auto would pick CUDA and NCCL. fp32 NCHW:
# the tolerances are fp32's (auto may pick bf16 on this CPU, which rounds differently per world size)
SETTINGS = ["train_size=400", "test_size=200", "epochs=2", "batch_size=50", "grad_points=2", "seeds=1", "device=cpu",
            "amp=off", "channels_last=off"]
TRAIN, TEST = 400, 200

pytestmark = pytest.mark.slow


def _env():
    return dict(os.environ, OMP_NUM_THREADS="1")


def train(out: Path, nproc: int, extra=()):
    sets = [a for s in [*SETTINGS, *extra] for a in ("--set", s)]
    head = [sys.executable, "-m", "cnn_lab"]
    if nproc > 1:
        head = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
                "-m", "cnn_lab"]
    cmd = [*head, "train", str(BASELINE), "--profile", "smoke", "--out", str(out), "--no-progress", *sets]
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=_env(), timeout=600)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    return {**runio.read_run(out / "cnn_baseline" / "seed0"), "stdout": res.stdout}


def assert_same_metrics(a, b):
    ma, mb = a["metrics"], b["metrics"]
    assert list(ma["epoch"]) == list(mb["epoch"])
    for col in ("train_loss", "test_loss", "lr"):
        np.testing.assert_allclose(ma[col], mb[col], rtol=1e-4, err_msg=col)
    np.testing.assert_allclose(ma["train_acc"], mb["train_acc"], atol=1 / TRAIN + 1e-12)
    np.testing.assert_allclose(ma["test_acc"], mb["test_acc"], atol=1 / TEST + 1e-12)


def test_two_gloo_processes_match_one(tmp_path):
    single = train(tmp_path / "single", 1)
    ddp = train(tmp_path / "ddp", 2)
    assert ddp["run"]["status"] == "completed" and ddp["run"]["world_size"] == 2
    assert single["run"]["world_size"] == 1
    assert_same_metrics(single, ddp)
    assert ddp["stdout"].count("epoch 1/2:") == 1  # logged by rank 0 only
    # every image of the subset was seen once per epoch, over both ranks together
    assert ddp["run"]["train_size"] == TRAIN
    # the gradient norms are the all-reduced ones, so they match the single process too
    np.testing.assert_allclose(single["grad_norms"]["grad_norm"], ddp["grad_norms"]["grad_norm"], rtol=1e-3)
    # one consistent run directory, written by rank 0 alone: the same files, no leftovers
    names = lambda p: sorted(x.name for x in p.iterdir())  # noqa: E731
    assert names(ddp["dir"]) == names(single["dir"])
    assert not [x for x in ddp["dir"].iterdir() if x.name.endswith(".tmp")]
    cm = ddp["confusion"].drop(columns="true").to_numpy()
    assert cm.sum() == TEST
    # the per-image predictions are gathered from both ranks' shards into test-set order
    assert (ddp["labels"] == single["labels"]).all() and len(ddp["predictions"]) == TEST
    again = np.zeros_like(cm)
    np.add.at(again, (ddp["labels"], ddp["predictions"]), 1)
    assert (again == cm).all()
    assert (ddp["predictions"] != single["predictions"]).sum() <= 1


def test_checkpoint_resumes_under_another_world_size(tmp_path):
    """Two ranks train epoch 1 and stop; one process resumes and finishes epoch 2."""
    full = train(tmp_path / "single", 1)
    part = tmp_path / "part"
    train(part, 2, extra=["epochs=1"])
    run_dir = part / "cnn_baseline" / "seed0"
    # Make it what a 2-epoch run killed after epoch 1 leaves behind (the schedule is
    # constant, so epoch 1 of a 1-epoch run is epoch 1 of a 2-epoch run).
    cfg = yaml.safe_load((run_dir / runio.CONFIG).read_text())
    cfg["epochs"] = 2
    runio.atomic_write_text(run_dir / runio.CONFIG, yaml.safe_dump(cfg, sort_keys=False))
    rec = runio.read_json(run_dir / runio.RUN)
    rec["status"] = "running"
    runio.write_json(run_dir / runio.RUN, rec)
    resumed = train(part, 1)
    assert resumed["run"]["status"] == "completed" and resumed["run"]["world_size"] == 1
    assert_same_metrics(full, resumed)


def test_torchrun_command_carries_the_resolved_config():
    cfg = load_config(BASELINE, profile="smoke", overrides={"nproc": 2, "lr": 1e-5, "seeds": [0, 3], "data": ""})
    cmd = torchrun_command(None, cfg)
    assert "--nproc-per-node=2" in cmd and "train" in cmd
    from cnn_lab.config import parse_overrides

    sets = parse_overrides([cmd[i + 1] for i, a in enumerate(cmd) if a == "--set"])
    again = load_config(None, profile=cfg.profile, overrides=sets)
    assert again == load_config(BASELINE, profile="smoke",
                                overrides={"lr": 1e-5, "seeds": [0, 3], "data": ""})
    assert "nproc" not in sets  # the workers must not relaunch torchrun


def _divergence_on_one_rank(rank: int, world: int, init_file: str, results: str) -> None:
    import torch
    import torch.distributed as dist

    from cnn_lab import train as T

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        # only rank 1 sees a NaN loss, at the second of three checked steps
        losses = [torch.tensor(1.0), torch.tensor(float("nan") if rank == 1 else 2.0), torch.tensor(3.0)]
        try:
            T._check_finite(losses, epoch=4, first_step=10)
            outcome = "continued"
        except T.Diverged as err:
            outcome = f"diverged {err.epoch} {err.step}"
        dist.barrier()  # a rank that had carried on alone would hang here, not in the next epoch
        Path(results, f"rank{rank}").write_text(outcome)
    finally:
        dist.destroy_process_group()


def test_a_nan_on_one_rank_stops_every_rank(tmp_path):
    import torch.multiprocessing as mp

    mp.start_processes(_divergence_on_one_rank, args=(2, str(tmp_path / "init"), str(tmp_path)),
                       nprocs=2, join=True, start_method="spawn")
    assert [(tmp_path / f"rank{r}").read_text() for r in (0, 1)] == ["diverged 4 11"] * 2


def test_more_processes_than_gpus_is_a_config_error(monkeypatch):
    # F2: not an opaque "invalid device ordinal" from rank 1
    import torch

    from cnn_lab.config import ConfigError
    from cnn_lab.distributed import check_world

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    cfg = load_config(BASELINE, profile="smoke")
    check_world(cfg, 1)
    with pytest.raises(ConfigError, match="2 processes .* but 1 CUDA device"):
        check_world(cfg, 2)
    check_world(load_config(BASELINE, profile="smoke", overrides={"device": "cpu"}), 2)  # gloo on the CPU


@pytest.mark.parametrize("device,backend", [("cuda:1", "nccl"), ("cuda", "nccl"), ("auto", "nccl"), ("cpu", "gloo")])
def test_process_group_backend_follows_the_device(monkeypatch, device, backend):
    # F11: cuda:N is CUDA too (NCCL and set_device), not gloo
    import torch
    import torch.distributed as dist

    from cnn_lab.distributed import maybe_init_process_group

    calls = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_device", lambda i: calls.append(("set_device", i)))
    monkeypatch.setattr(dist, "init_process_group", lambda backend: calls.append(("init", backend)))
    monkeypatch.setattr(dist, "destroy_process_group", lambda: None)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    with maybe_init_process_group(load_config(BASELINE, profile="smoke", overrides={"device": device})):
        pass
    assert ("init", backend) in calls and (("set_device", 1) in calls) == (backend == "nccl")


def test_ddp_on_gpus_uses_sync_batchnorm():
    # F6: per-GPU BatchNorm would make a run depend on the GPU count
    import torch

    from cnn_lab.distributed import sync_batchnorm
    from cnn_lab.models import create_model

    model = create_model("resnet18")
    params = list(model.parameters())
    cpu = sync_batchnorm(model, torch.device("cpu"))
    assert not any(isinstance(m, torch.nn.SyncBatchNorm) for m in cpu.modules())
    gpu = sync_batchnorm(model, torch.device("cuda", 0))
    assert any(isinstance(m, torch.nn.SyncBatchNorm) for m in gpu.modules())
    assert not any(type(m) is torch.nn.BatchNorm2d for m in gpu.modules())
    assert all(a is b for a, b in zip(params, gpu.parameters()))  # the optimizer's parameters stay valid


def test_one_decision_hands_a_variant_to_torchrun_for_the_cli_and_the_notebook(monkeypatch, tmp_path):
    import torch

    from cnn_lab import cli, distributed, notebook
    from cnn_lab.config import ConfigError

    launched = []

    def fake_launch(config_path, cfg):  # what torchrun's rank 0 leaves: one run.json per seed
        launched.append((config_path, cfg.nproc))
        for seed in cfg.seed_list():
            runio.write_json(cfg.run_dir(seed) / runio.RUN, {"exp_name": cfg.exp_name, "seed": seed,
                                                            "status": "completed"})
        return 7

    monkeypatch.setattr(distributed, "launch_torchrun", fake_launch)
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    one = load_config(BASELINE, profile="smoke", overrides={"out_dir": str(tmp_path), "device": "cpu"})
    two = load_config(BASELINE, profile="smoke", overrides={"out_dir": str(tmp_path), "device": "cpu", "nproc": 2})
    assert distributed.hand_to_torchrun("x.yaml", one) is None and launched == []
    assert distributed.hand_to_torchrun("x.yaml", two) == 7 and launched == [("x.yaml", 2)]
    assert cli.main(["train", str(BASELINE), "--profile", "smoke", "--set", "nproc=2", "--set", "device=cpu",
                     "--out", str(tmp_path)]) == 7
    assert launched[-1] == (str(BASELINE), 2)
    assert [r["status"] for r in notebook.train_and_check(two)] == ["completed"] and launched[-1] == (None, 2)
    monkeypatch.setenv("LOCAL_RANK", "0")  # one of torchrun's workers trains here
    assert distributed.hand_to_torchrun("x.yaml", two) is None and len(launched) == 3
    monkeypatch.delenv("LOCAL_RANK")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    gpus = load_config(BASELINE, profile="smoke", overrides={"out_dir": str(tmp_path), "device": "cuda", "nproc": 2})
    with pytest.raises(ConfigError, match="2 processes"):
        distributed.hand_to_torchrun(None, gpus)
    assert len(launched) == 3
