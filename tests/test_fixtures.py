"""The fixture runs (tests/fixtures/smoke) are what their recipe, tests/make_fixtures.py, trains."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import pytest

from cnn_lab import runio
from cnn_lab.config import result_fields
from cnn_lab.variant import load_config

from conftest import FIXTURES

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("make_fixtures", Path(__file__).with_name("make_fixtures.py"))
make_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_fixtures)
VARIANTS = sorted((ROOT / "parameters").glob("*.yaml"))


@pytest.mark.parametrize("path", VARIANTS, ids=[p.stem for p in VARIANTS])
def test_every_fixture_run_has_the_settings_its_recipe_gives(path):
    recipe = make_fixtures.recipe(path)
    want = result_fields(load_config(path, profile=make_fixtures.PROFILE, overrides=recipe))
    runs = sorted((FIXTURES / "runs" / path.stem).glob("seed*"))
    assert [r.name for r in runs] == [f"seed{s}" for s in range(recipe["seeds"])]
    for run in runs:
        rec = runio.read_json(run / runio.RUN)
        assert result_fields({**runio.read_config(run), "seed": want["seed"]}) == want, run
        assert rec["status"] == "completed" and rec["profile"] == make_fixtures.PROFILE
        assert (rec["train_size"], rec["test_size"]) == (recipe["train_size"], recipe["test_size"])
        assert rec["environment"]["device"] == "cpu"


def test_the_recipe_retrains_a_fixture_run_to_the_same_numbers(tmp_path):
    """On the same torch and data the recipe gives the committed numbers: one seed of
    cnn_baseline retrained with it writes the same metrics (timings aside), gradient norms,
    confusion matrix and predictions. Bit for bit on the kind of CPU that made them; another
    instruction set (AVX2 against AVX-512) sums fp32 in another order, which moves the 8th
    digit of a loss, so the real numbers are compared to 6 significant digits; every count,
    prediction and label exactly."""
    make_fixtures.train(ROOT / "parameters" / "cnn_baseline.yaml", tmp_path, seeds="[0]")
    new, old = tmp_path / "runs" / "cnn_baseline" / "seed0", FIXTURES / "runs" / "cnn_baseline" / "seed0"
    timing = list(runio.TIMING_COLUMNS)
    for name, drop in ((runio.METRICS, timing), (runio.GRAD_NORMS, [])):
        a, b = (pd.read_csv(d / name).drop(columns=drop) for d in (new, old))
        pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-6, atol=0)
    for name in (runio.CONFUSION, runio.PREDICTIONS, runio.LABELS):
        assert (new / name).read_bytes() == (old / name).read_bytes(), name
