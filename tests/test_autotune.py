"""amp / channels_last ``auto`` on the CPU: measured once per machine, model and batch, cached,
recorded with its reason, explicit settings first, and never a change to a run's numbers."""
import json

import pandas as pd
import pytest
import torch

from cnn_lab import autotune, precision, runio
from cnn_lab.config import RunConfig
from cnn_lab.train import train_run
from cnn_lab.variant import load_config

from test_train import BASELINE, deterministic

CPU = torch.device("cpu")
FAKE = {"off/off": 0.010, "bf16/off": 0.006, "off/on": 0.008, "bf16/on": 0.007}


@pytest.fixture
def cache(tmp_path, monkeypatch):
    path = tmp_path / "cache" / "autotune.json"
    monkeypatch.setattr(autotune, "cache_file", lambda: path)
    monkeypatch.setattr(autotune, "_TIMED", {})  # nothing timed yet in this process
    monkeypatch.setattr(autotune, "native_bf16", lambda: None)  # a CPU of unknown bf16 support: every mode timed
    return path


@pytest.mark.parametrize("text, native", [
    ("model name\t: Xeon\nflags\t\t: fpu sse2 avx2 avx512f amx_bf16 amx_tile\n", True),
    ("flags\t\t: fpu avx512f avx512_bf16 avx512_vnni\n", True),
    ("flags\t\t: fpu sse2 avx2 avx512f avx512_vnni\n", False),  # AVX-512 without BF16: emulated
    ("Features\t: fp asimd sve bf16 i8mm\n", True),  # Arm
    ("Features\t: fp asimd\n", False),
    ("processor\t: 0\n", None),  # no flags line: unknown
])
def test_native_bf16_is_read_from_the_cpu_flags(tmp_path, text, native):
    info = tmp_path / "cpuinfo"
    info.write_text(text)
    assert autotune.native_bf16(info) is native
    assert autotune.native_bf16(tmp_path / "missing") is None


def test_a_cpu_without_native_bf16_times_only_fp32_unless_bf16_is_asked_for(cache, monkeypatch):
    """Emulated bf16 is always slower, so auto does not spend minutes timing it there; the
    reason says so, the cache keeps what was timed, and an explicit bf16 still gets its timing."""
    calls = []

    def fake(model, optimizer, batch, candidates=autotune.CANDIDATES, **kw):
        calls.append(tuple(candidates))
        return {f"{a}/{c}": FAKE[f"{a}/{c}"] for a, c in candidates}

    monkeypatch.setattr(autotune, "native_bf16", lambda: False)
    monkeypatch.setattr(autotune, "measure_modes", fake)
    lines = []
    auto = autotune.resolve(RunConfig(model="baseline", batch_size=32), CPU, log=lines.append)
    assert calls == [autotune.FP32_ONLY] and all(a == "off" for a, _ in autotune.FP32_ONLY)
    assert (auto["amp"], auto["channels_last"]) == ("off", "on")  # the faster fp32 mode, though FAKE's bf16 is faster
    assert "bf16 not timed: this CPU has no native bf16" in auto["reason"] and set(auto["timings_s"]) == {
        precision.mode_name(*m) for m in autotune.FP32_ONLY}
    assert "(not bf16: this CPU has no native bf16)" in next(s for s in lines if s.startswith("autotune: timing"))
    again = autotune.resolve(RunConfig(model="baseline", batch_size=32, channels_last="off"), CPU, log=lines.append)
    assert len(calls) == 1 and again["amp"] == "off" and "cached" in again["reason"]  # fp32 timings suffice
    asked = autotune.resolve(RunConfig(model="baseline", batch_size=32, amp="bf16"), CPU, log=lines.append)
    assert calls[1] == autotune.CANDIDATES and asked["amp"] == "bf16"  # explicit bf16: timed after all
    key = autotune.cache_key("baseline", "adam", 32)
    assert set(json.loads(cache.read_text())["entries"][key]["step_s"]) == {f"{a}/{c}" for a, c in autotune.CANDIDATES}
    monkeypatch.setattr(autotune, "measure_modes", lambda *a, **k: pytest.fail("measured"))
    assert autotune.step_seconds("baseline", "adam", 32, "off", "on", log=lines.append) == FAKE["off/on"]


def test_measuring_some_modes_times_only_those():
    step = autotune.measure_modes("baseline", "sgd", 8, rounds=1, candidates=autotune.FP32_ONLY)
    assert set(step) == {f"{a}/{c}" for a, c in autotune.FP32_ONLY}


def test_measurement_times_every_mode_and_leaves_the_rng_alone():
    torch.manual_seed(7)
    before = torch.random.get_rng_state()
    step = autotune.measure_modes("baseline", "sgd", 16, rounds=1)
    assert torch.equal(torch.random.get_rng_state(), before)
    assert set(step) == {f"{a}/{c}" for a, c in autotune.CANDIDATES} and all(v > 0 for v in step.values())


def test_fastest_mode_is_chosen_cached_and_explained(cache, monkeypatch):
    calls = []
    monkeypatch.setattr(autotune, "measure_modes", lambda *a, **k: calls.append(a) or dict(FAKE))
    cfg = RunConfig(model="baseline", batch_size=32)
    first = autotune.resolve(cfg, CPU, log=lambda s: None)
    assert (first["amp"], first["channels_last"]) == ("bf16", "off") and "measured now" in first["reason"]
    assert autotune.cpu_model() in first["reason"] and "bf16 6 ms" in first["reason"]
    assert first["source"] == "measured" and first["cpu"] == autotune.cpu_model()
    assert first["timings_s"] == {precision.mode_name(*m): FAKE[f"{m[0]}/{m[1]}"] for m in autotune.CANDIDATES}
    again = autotune.resolve(cfg, CPU, log=lambda s: None)
    assert (again["amp"], again["channels_last"]) == ("bf16", "off") and "cached" in again["reason"]
    assert len(calls) == 1  # the second run takes the cached answer
    key = autotune.cache_key("baseline", cfg.optimizer, 32)
    assert torch.__version__ in key and autotune.cpu_model() in key and "batch 32" in key
    assert json.loads(cache.read_text())["entries"][key]["step_s"] == FAKE
    autotune.resolve(RunConfig(model="baseline", batch_size=64), CPU, log=lambda s: None)
    assert len(calls) == 2  # another batch size is another measurement


def test_a_model_is_timed_once_per_process_for_every_variant_that_shares_it(cache, monkeypatch):
    """Two variants of one model and batch (ResNet-18 with Adam and with SGD) time its modes
    once; the second takes those timings, and the cache holds them for both (so each
    variant's own training process reads the same answer)."""
    calls, lines = [], []
    monkeypatch.setattr(autotune, "measure_modes", lambda *a, **k: calls.append(a) or dict(FAKE))
    adam = autotune.resolve(RunConfig(model="resnet18", optimizer="adam", batch_size=64), CPU, log=lines.append)
    sgd = autotune.resolve(RunConfig(model="resnet18", optimizer="sgd", batch_size=64), CPU, log=lines.append)
    assert calls == [("resnet18", "adam", 64)]
    assert [s for s in lines if s.startswith("autotune: timing")] == [
        "autotune: timing fp32, bf16 and channels_last on resnet18 at batch 64 ..."]
    assert (sgd["amp"], sgd["channels_last"]) == (adam["amp"], adam["channels_last"])
    entries = json.loads(cache.read_text())["entries"]
    assert entries[autotune.cache_key("resnet18", "sgd", 64)] == entries[autotune.cache_key("resnet18", "adam", 64)]
    autotune.resolve(RunConfig(model="resnet18", optimizer="sgd", batch_size=32), CPU, log=lines.append)
    autotune.resolve(RunConfig(model="baseline", optimizer="sgd", batch_size=64), CPU, log=lines.append)
    assert calls[1:] == [("resnet18", "sgd", 32), ("baseline", "sgd", 64)]  # another batch, another model


def test_explicit_settings_win(cache, monkeypatch):
    monkeypatch.setattr(autotune, "measure_modes", lambda *a, **k: dict(FAKE))
    only_cl = autotune.resolve(RunConfig(model="baseline", batch_size=32, amp="off"), CPU, log=lambda s: None)
    assert (only_cl["amp"], only_cl["channels_last"]) == ("off", "on")  # the fastest fp32 mode
    monkeypatch.setattr(autotune, "measure_modes", lambda *a, **k: pytest.fail("measured"))
    both = autotune.resolve(RunConfig(amp="off", channels_last="off"), CPU)
    assert both == {"amp": "off", "channels_last": "off", "source": "explicit", "reason": "set explicitly"}


@pytest.mark.parametrize("text", ["{not json", '{"version": 1, "entries": []}', "[]"])
def test_damaged_cache_is_ignored_with_one_line(cache, monkeypatch, text):
    cache.parent.mkdir(parents=True)
    cache.write_text(text)
    monkeypatch.setattr(autotune, "measure_modes", lambda *a, **k: dict(FAKE))
    lines = []
    got = autotune.resolve(RunConfig(model="baseline", batch_size=32), CPU, log=lines.append)
    assert got["amp"] == "bf16"
    notes = [s for s in lines if s.startswith("note:")]
    assert len(notes) == 1 and str(cache) in notes[0] and "\n" not in notes[0]
    assert json.loads(cache.read_text())["version"] == autotune.CACHE_VERSION  # rewritten whole


def test_same_config_twice_gives_identical_metrics_under_the_chosen_mode(tmp_path, cache):
    """The first run measures (with the real model), the second takes the cached choice; both
    train in that mode with identical metrics, and so does a run that sets the mode explicitly
    (so the measurement did not move the training's random stream)."""
    def run(out, **extra):
        cfg = load_config(BASELINE, profile="smoke", overrides={
            "out_dir": str(tmp_path / out), "train_size": 300, "test_size": 100, "epochs": 2, "batch_size": 50,
            "device": "cpu", **extra})
        rec = train_run(cfg, progress=False, log=lambda s: None)
        return rec, runio.read_run(tmp_path / out / "cnn_baseline" / "seed0")["metrics"]

    a, ma = run("a")
    b, mb = run("b")
    mode = {k: a["precision"][k] for k in ("amp", "channels_last")}
    assert "measured now" in a["precision"]["reason"] and "cached" in b["precision"]["reason"]
    assert {k: b["precision"][k] for k in mode} == mode
    pd.testing.assert_frame_equal(deterministic(ma), deterministic(mb))
    c, mc = run("c", **mode)
    assert c["precision"]["reason"] == "set explicitly"
    pd.testing.assert_frame_equal(deterministic(ma), deterministic(mc))
    assert runio.read_json(tmp_path / "a" / "cnn_baseline" / "seed0" / runio.RUN)["precision"] == a["precision"]


def test_training_time_estimate_from_the_measured_step(cache, monkeypatch):
    from cnn_lab.pipeline import estimate_seconds

    monkeypatch.setattr(autotune, "measure_modes", lambda *a, **k: dict(FAKE))
    monkeypatch.setattr(autotune, "data_path_seconds", lambda *a, **k: 0.001)
    cfg = load_config(BASELINE, profile="cpu", overrides={"device": "cpu"})  # 8 epochs, batch 128, 2 seeds

    def expected(step: float) -> float:  # 50,000 images: 391 steps; evaluation: 10,000 images' forward passes
        return autotune.START_S + (391 * (step + 0.001) + 10_000 / 128 * step * autotune.FORWARD_SHARE) * 8 * 2

    assert estimate_seconds(cfg, log=lambda s: None) == pytest.approx(expected(FAKE["bf16/off"]))  # auto: the fastest
    fp32 = load_config(BASELINE, profile="cpu", overrides={"device": "cpu", "amp": "off", "channels_last": "off"})
    assert estimate_seconds(fp32, log=lambda s: None) == pytest.approx(expected(FAKE["off/off"]))


def test_data_path_is_timed_as_the_loop_does_it(monkeypatch):
    """The estimate and the bench time the loop's own batch function, with the run's batch size,
    augmentation and layout: the estimate on random images, the bench on the set it is given."""
    calls, real = [], autotune.load_batch

    def spy(x, y, idx, **kw):
        calls.append((len(idx), kw["augment_with"] is not None, kw["channels_last"], len(x)))
        return real(x, y, idx, **kw)

    monkeypatch.setattr(autotune, "load_batch", spy)
    seconds = autotune.data_path_seconds(64, augment=True, channels_last=True, batches=5)
    assert calls == [(64, True, True, 4 * 64)] * 5 and 0 < seconds < 1
    calls.clear()
    autotune.data_path_seconds(32, augment=False, channels_last=False, batches=3)
    assert calls == [(32, False, False, 4 * 32)] * 3
    calls.clear()
    x, y = torch.zeros(100, 3, 32, 32, dtype=torch.uint8), torch.zeros(100, dtype=torch.int64)
    autotune.data_path_seconds(16, augment=True, channels_last=False, batches=8, x=x, y=y)
    assert calls == [(16, True, False, 100)] * 8


def test_pipeline_prints_the_whole_runs_estimate_and_each_variants(tmp_path, cache, monkeypatch):
    from cnn_lab import pipeline

    monkeypatch.setattr(autotune, "measure_modes", lambda *a, **k: dict(FAKE))
    monkeypatch.setattr(pipeline, "execute_notebook", lambda *a, **k: None)
    lines = []
    rc = pipeline.run_pipeline("smoke", only=["cnn_baseline", "cnn_resnet18_adam"], reports_dir=tmp_path,
                               overrides={"device": "cpu"}, report=False, log=lines.append)
    assert rc == 0
    assert any(s.startswith("smoke profile, 2 variant(s) to train: about ") and "on this machine" in s for s in lines)
    for i, name in enumerate(["cnn_baseline", "cnn_resnet18_adam"], 1):
        assert any(s.startswith(f"[{i}/2] {name}: training (") and ", about " in s for s in lines)
        assert any(s.startswith(f"[{i}/2] {name}: done in ") and "estimated" in s for s in lines)


def test_a_measurement_on_a_busy_machine_says_so(cache, monkeypatch):
    monkeypatch.setattr(autotune, "measure_modes", lambda *a, **k: dict(FAKE))
    monkeypatch.setattr(autotune.os, "getloadavg", lambda: (9.0, 9.0, 9.0))
    lines = []
    autotune.resolve(RunConfig(model="baseline", batch_size=32), CPU, log=lines.append)
    assert any("the machine is busy (load average 9.0" in s and str(cache) in s for s in lines)
    assert json.loads(cache.read_text())["entries"][autotune.cache_key("baseline", "adam", 32)]["load"] == 9.0
