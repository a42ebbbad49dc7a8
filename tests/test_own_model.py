"""docs/own-model.md, "Add your own model", done to the letter in a copy of the project.

A model file under cnn_lab/models/, a variant file under parameters/, the pipeline on the
smoke profile: the new variant must then appear in every table and figure of the report
that lists the variants (or the models), as the baseline variant trained beside it does.
The report is inspected through its executed notebook: its tables' cells, and the texts
(legends, titles, tick labels) of the figures its cells draw.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest
from bs4 import BeautifulSoup

from cnn_lab.data import DataNotFoundError, resolve_source

ROOT = Path(__file__).resolve().parents[1]
NEW_MODEL, NEW_VARIANT = "user_vgg", "cnn_user_vgg_adam"
BASE_MODEL_LABEL, BASE_VARIANT = "BaselineNet", "cnn_baseline_adam"
# tables name a variant by its experiment name or by its readable label (model · optimizer lr)
BASE_NAMES = (BASE_VARIANT, f"{BASE_MODEL_LABEL} · Adam 0.001")
NEW_NAMES = (NEW_VARIANT, f"{NEW_MODEL} · Adam 0.001")

MODEL_FILE = '''\
"""A small VGG-style network: three 3x3 convolutions, batch norm, max pooling."""
import torch.nn as nn

from . import register_model


@register_model("user_vgg")  # no family: the profile budget follows its measured cost
def user_vgg(num_classes: int = 10) -> nn.Module:
    def block(cin, cout, pool):
        layers = [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU()]
        return layers + [nn.MaxPool2d(2)] if pool else layers

    return nn.Sequential(*block(3, 32, False), *block(32, 64, True), *block(64, 128, True),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, num_classes))
'''

VARIANT_FILE = f"exp_name: {NEW_VARIANT}\nmodel: {NEW_MODEL}\noptimizer: adam\nlr: 0.001\n"

# Runs in the copy: executes the report's code cells and prints, per figure drawn, the
# cell's source and every text on the figure (legend entries, titles, tick labels).
FIGURE_TEXTS = textwrap.dedent('''
    import json, os, sys
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.text
    import nbformat
    from cnn_lab import report
    nb = nbformat.read(sys.argv[1], as_version=4)
    os.chdir(sys.argv[2])
    shown = []  # what the cell handed to report.show: a figure or a list of them (its rows)
    report.show = lambda figs: shown.extend(figs if isinstance(figs, (list, tuple)) else [figs])
    ns, figures = {}, []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        exec(compile(cell.source, "<report cell>", "exec"), ns)
        if shown:
            texts = {t.get_text() for fig in shown for t in fig.findobj(matplotlib.text.Text)}
            figures.append({"source": cell.source, "texts": sorted(t for t in texts if t)})
            shown.clear()
    print("FIGURES " + json.dumps(figures, ensure_ascii=False))
''')


def copy_project(dst: Path) -> Path:
    for part in ("cnn_lab", "notebooks", "parameters"):
        # kernel-ipc-*: the sockets of a notebook kernel that was killed rather than shut down
        shutil.copytree(ROOT / part, dst / part,
                        ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints", "kernel-ipc-*"))
    (dst / "data" / "cache").mkdir(parents=True)
    for npz in (ROOT / "data" / "cache").glob("*.npz"):  # the decoded data, so it is not decoded again
        (dst / "data" / "cache" / npz.name).symlink_to(npz)
    return dst


def table_cells(nb) -> list[list[str]]:
    """The cells of every table in the notebook's outputs (HTML tables and Markdown tables)."""
    tables = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if "text/html" in data:
                for t in BeautifulSoup(data["text/html"], "html.parser").find_all("table"):
                    tables.append([" ".join(c.get_text().split()) for c in t.find_all(["td", "th"])])
            if "text/markdown" in data:
                rows = [line for line in data["text/markdown"].splitlines() if line.startswith("|")]
                if rows:
                    tables.append([c.strip().strip("`") for r in rows for c in r.strip("|").split("|")])
    return tables


@pytest.fixture(scope="module")
def own_model_report(tmp_path_factory):
    try:
        source = resolve_source(None)
    except DataNotFoundError as err:
        pytest.skip(f"no CIFAR-10 copy: {err}")
    proj = copy_project(tmp_path_factory.mktemp("project"))
    (proj / "cnn_lab" / "models" / f"{NEW_MODEL}.py").write_text(MODEL_FILE)
    (proj / "parameters" / f"{NEW_VARIANT}.yaml").write_text(VARIANT_FILE)
    reports = proj.parent / "reports"
    env = {**os.environ, "PYTHONPATH": str(proj), "CNN_LAB_DATA": source.path, "MPLBACKEND": "Agg"}
    run = subprocess.run(
        [sys.executable, "-m", "cnn_lab", "pipeline", "--profile", "smoke", "--only", NEW_VARIANT, BASE_VARIANT,
         "--reports", str(reports), "--no-export"],
        cwd=proj, env=env, capture_output=True, text=True, timeout=1200)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    report_nb = reports / "smoke" / "report.ipynb"
    figs = subprocess.run([sys.executable, "-c", FIGURE_TEXTS, str(report_nb), str(proj / "notebooks")],
                          cwd=proj, env=env, capture_output=True, text=True, timeout=600)
    assert figs.returncode == 0, figs.stderr[-3000:]
    line = next(x for x in figs.stdout.splitlines() if x.startswith("FIGURES "))
    return run.stdout, nbformat.read(report_nb, as_version=4), json.loads(line[len("FIGURES "):])


@pytest.mark.slow
def test_the_pipeline_says_which_budget_the_new_model_got(own_model_report):
    log, _, _ = own_model_report
    line = next(x for x in log.splitlines() if x.strip().startswith(f"{NEW_VARIANT}:"))
    # not registered with a family: classified by its measured cost, and given the deep budget
    assert line.strip().startswith(f"{NEW_VARIANT}: deep budget (smoke, ") and "M MACs/image >= 10 M" in line
    assert line.endswith("1 epoch, batch 50, 100/100 images, 1 seed")
    assert f"{BASE_VARIANT}: small budget (smoke): 3 epochs, batch 64, 4,000/1,000 images, 1 seed" in log
    # the study's variants and models first (cnn_lab.study's order), the new ones after them
    assert f"[1/2] {BASE_VARIANT}: training" in log and f"[2/2] {NEW_VARIANT}: training" in log
    assert f"cost.csv: baseline, {NEW_MODEL} (" in log


@pytest.mark.slow
def test_the_new_variant_is_in_every_table_that_lists_the_variants(own_model_report):
    _, nb, _ = own_model_report
    tables = table_cells(nb)
    per_variant = [t for t in tables if any(name in t for name in BASE_NAMES)]
    per_model = [t for t in tables if BASE_MODEL_LABEL in t]
    assert len(per_variant) >= 4 and len(per_model) >= 1  # summary, settings, gradients, cost; stages (appendix A)
    for t in per_variant:
        assert any(name in t for name in NEW_NAMES), t[:20]
    for t in per_model:
        assert NEW_MODEL in t, t[:20]


def names_the_new_variant(figure: dict) -> bool:
    texts = " ".join(figure["texts"])
    return NEW_VARIANT in texts or NEW_MODEL in texts


@pytest.mark.slow
def test_the_new_variant_is_in_every_figure_that_shows_several(own_model_report):
    _, _, figures = own_model_report
    assert len(figures) >= 4
    # the confusion matrix shows one variant (the best); the curves are checked below
    shown = [f for f in figures if "confusion" not in f["source"] and "training_curves" not in f["source"]]
    assert len(shown) >= 2
    assert [f["source"] for f in shown if not names_the_new_variant(f)] == []


@pytest.mark.slow
def test_the_new_variant_is_in_the_training_curves(own_model_report):
    _, _, figures = own_model_report
    (curves,) = [f for f in figures if "training_curves" in f["source"]]
    assert names_the_new_variant(curves)
