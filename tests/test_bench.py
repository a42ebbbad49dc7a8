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
    assert 0 < r["grad_record_ms"] and r["grad_record_over_step"] == pytest.approx(
        r["grad_record_ms"] / r["raw_step_ms"], rel=0.02)
    assert out["settings"]["reps"] == {"baseline": 2}
    md = (tmp_path / "bench.md").read_text()
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
