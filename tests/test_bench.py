"""The benchmark command: it measures every method, and its ratios are its own measurements."""
import json
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_bench_writes_side_by_side_ratios(tmp_path):
    res = subprocess.run(
        [sys.executable, "-m", "cnn_lab", "bench", "--models", "baseline", "--steps", "4", "--reps", "2",
         "--batch-size", "32", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads((tmp_path / "bench.json").read_text())
    assert out["settings"]["batch_size"] == 32 and out["settings"]["num_workers_conventional"] == 2
    assert out["environment"]["torch"] and out["data"]["dtype"] == "uint8"
    (r,) = out["models"]
    assert r["model"] == "baseline" and r["steps"] == 4
    for method in ("raw", "loop", "loop_nograd", "conventional"):
        assert len(r["windows"][method]) == 2 and all(v > 0 for v in r["windows"][method])
    w = r["windows"]
    for key, a, b in (("loop_over_raw", "loop", "raw"), ("loop_over_conventional", "loop", "conventional"),
                      ("grad_on_over_off", "loop", "loop_nograd")):
        paired = statistics.median(x / y for x, y in zip(w[a], w[b]))  # same-repetition ratios
        assert r[key] == pytest.approx(paired, rel=3e-3, abs=1e-3)
    assert r["images_per_s"]["raw"] == pytest.approx(statistics.median(w["raw"]), rel=1e-3)
    # the from-parts estimates are built from their own timings
    assert r["loop_over_raw_from_parts"] == pytest.approx(
        r["raw_step_ms"] / (r["raw_step_ms"] + r["data_path_ms"]), abs=2e-3)
    raw_ms = 32 / statistics.median(w["raw"]) * 1e3  # from the unrounded windows, not a rounded field
    assert r["raw_step_ms"] == pytest.approx(raw_ms, rel=1e-3)
    assert 0 < r["grad_record_ms"] and r["grad_record_over_step"] == pytest.approx(
        r["grad_record_ms"] / raw_ms, rel=2e-3)
    assert out["settings"]["reps"] == {"baseline": 2} and out["settings"]["compile"] is False
    # against the hardware: every mode's raw step, the loop in auto's mode, FLOP/s and peak share
    assert set(r["raw_modes"]) == {"raw fp32", "raw bf16", "raw fp32 + channels_last", "raw bf16 + channels_last"}
    assert r["mode"]["amp"] in ("off", "bf16") and r["mode"]["reason"]
    fastest = max(r["raw_modes"].values())
    assert r["raw_modes"][r["fastest_raw_mode"]] == fastest
    assert r["loop_over_fastest_raw"] == pytest.approx(r["images_per_s"]["loop"] / fastest, rel=2e-3)
    # the speed-up over fp32: the loop against the fp32 raw step of the same repetition
    fp32 = "raw" if (r["mode"]["amp"], r["mode"]["channels_last"]) == ("off", "off") else "raw fp32"
    assert r["fp32_raw_method"] == fp32
    assert r["loop_over_fp32_raw"] == pytest.approx(
        statistics.median(x / y for x, y in zip(w["loop"], w[fp32])), rel=3e-3)
    from cnn_lab.cost import macs_per_image
    from cnn_lab.models import create_model

    assert r["flops_per_image"] == 6 * macs_per_image(create_model("baseline"))
    assert r["loop_flops"] == pytest.approx(r["images_per_s"]["loop"] * r["flops_per_image"], rel=2e-3)
    peak = out["peak_flops"]["bf16" if r["mode"]["amp"] == "bf16" else "fp32"]
    assert peak > 0 and r["loop_share_of_peak"] == pytest.approx(r["loop_flops"] / peak, rel=1e-2)
    md = (tmp_path / "bench.md").read_text()
    assert "matmul peak (2048²)" in md and "loop / fastest raw" in md and "loop / raw fp32" in md
    assert "| baseline | 4 |" in md and "loop / raw" in md
    assert "loop / raw" in res.stdout  # printed as well as written


def test_bench_rejects_an_unknown_model(tmp_path):
    res = subprocess.run([sys.executable, "-m", "cnn_lab", "bench", "--models", "vgg", "--out", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    assert "unknown model 'vgg'" in res.stderr and "resnet18" in res.stderr
    assert not (tmp_path / "bench.json").exists()


def test_the_loop_window_writes_only_what_it_measured(tmp_path):
    """A timed loop window writes its metrics file as training does, but with no test columns
    (it evaluates nothing) and its real throughput."""
    import pandas as pd
    import torch

    from cnn_lab import bench, data as D, runio

    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (200, 3, 32, 32), dtype=torch.uint8, generator=gen)
    y = torch.arange(200) % 10
    data = D.CifarData(x, y, x[:20], y[:20], D.DataSource("jpeg-folder", str(tmp_path)))
    b = bench._Bench("baseline", bench.bench_config(32), data, torch.device("cpu"), steps=3, workdir=tmp_path)
    try:
        assert b.loop(3) == 96
    finally:
        b.close()
    df = pd.read_csv(tmp_path / "baseline_loop.csv")
    assert list(df.columns) == [c for c in runio.METRIC_COLUMNS if not c.startswith("test_")]
    row = df.iloc[0]
    # 96 images in the window's time (the file rounds seconds to 1 ms and images/s to 0.1)
    low, high = 96 / (row["seconds"] + 6e-4) - 0.06, 96 / max(row["seconds"] - 6e-4, 1e-9) + 0.06
    assert low <= row["images_per_s"] <= high
    assert row["train_loss"] > 0 and row["train_acc"] >= 0


def test_bench_honours_compile(monkeypatch):
    # F3: --set compile=true measured an uncompiled model before
    import torch

    from cnn_lab import bench

    compiled = []
    monkeypatch.setattr(torch, "compile", lambda m: compiled.append(m) or ("compiled", m))
    b = bench._Bench.__new__(bench._Bench)
    b.name, b.device, b.cl = "baseline", torch.device("cpu"), False
    for flag in (False, True):
        b.cfg = bench.bench_config(32, {"compile": flag})
        model, opt = b._model()
        assert (model[0] == "compiled") if flag else isinstance(model, torch.nn.Module)
    assert len(compiled) == 1


def test_cost_step_runs_in_the_mode_the_runs_trained_in(tmp_path, monkeypatch):
    # F5: cost.csv's step memory is measured in each model's amp / channels_last from run.json
    import yaml

    from cnn_lab import cost, pipeline, runio
    from cnn_lab.config import RunConfig

    for model, prec in (("baseline", {"amp": "bf16", "channels_last": "off"}),
                        ("resnet18", {"amp": "off", "channels_last": "on"})):
        d = tmp_path / "runs" / model / "seed0"
        d.mkdir(parents=True)
        (d / runio.CONFIG).write_text(yaml.safe_dump(RunConfig(model=model).to_dict()))  # every setting, as written
        runio.write_json(d / runio.RUN, {"status": "completed", "precision": {**prec, "reason": "x"}})
    seen = {}
    monkeypatch.setattr(cost, "cost_table", lambda models, batch_size, device, modes: seen.update(modes) or [
        {"model": m, "memory_amp": modes[m]["amp"]} for m in models])
    pipeline.write_cost(tmp_path, tmp_path / "runs", log=lambda s: None)
    assert seen == {"baseline": {"amp": "bf16", "channels_last": "off"},
                    "resnet18": {"amp": "off", "channels_last": "on"}}
    # in a fresh process, as the pipeline measures it: in this one, memory that earlier tests
    # freed can be reused and the step's growth read as 0
    row = cost.step_memory("baseline", 8, "cpu", amp="bf16", channels_last="on")  # runs in that mode
    assert (row["amp"], row["channels_last"]) == ("bf16", "on") and row["step_bytes"] > 0


def test_step_memory_is_not_charged_with_the_parent_process_memory():
    """The fresh process measures its own peak: a parent holding 2 GiB (a pipeline that has
    loaded the data set and timed models) must not show up as the step's memory."""
    import numpy as np

    from cnn_lab import cost

    alone = cost.step_memory("baseline", 16)["step_bytes"]
    held = np.ones(2 * 2**30 // 8)  # touched, so resident in this (the parent) process
    beside = cost.step_memory("baseline", 16)["step_bytes"]
    assert held.sum() > 0 and beside < alone + 200 * 2**20 and beside < 2**30
    # a measurement, not a floor: a step holds memory, and four times the images hold more
    # (the DenseNet memory verdict of the report rests on these numbers)
    assert alone > 0 and beside > 0
    assert cost.step_memory("baseline", 64)["step_bytes"] > alone
