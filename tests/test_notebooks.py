"""The training notebook: its parameters mirror RunConfig, and it runs under papermill."""
from __future__ import annotations

import ast
import inspect
import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from cnn_lab.config import RunConfig

ROOT = Path(__file__).resolve().parent.parent
NB = ROOT / "notebooks" / "train_variant.ipynb"
PAPERMILL = [sys.executable, "-m", "papermill"]


def parameters_cell(nb) -> str:
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, "exactly one cell tagged 'parameters'"
    return cells[0].source


def parameter_values(source: str) -> dict:
    out = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.AnnAssign):
            out[node.target.id] = ast.literal_eval(node.value)
        elif isinstance(node, ast.Assign):
            (target,) = node.targets
            out[target.id] = ast.literal_eval(node.value)
        else:
            pytest.fail(f"unexpected statement in the parameters cell: {ast.dump(node)}")
    return out


def outputs_text(nb) -> str:
    parts = []
    for c in nb.cells:
        for o in c.get("outputs", []):
            parts.append(o.get("text", ""))
            parts.append(o.get("data", {}).get("text/plain", ""))
            parts.append(o.get("data", {}).get("text/markdown", ""))
            parts.append(o.get("evalue", ""))
            parts.extend(o.get("traceback", []))
    return "\n".join(parts)


def run_papermill(out_nb: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*PAPERMILL, str(NB), str(out_nb), "--no-progress-bar", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_parameters_cell_matches_runconfig():
    nb = nbformat.read(NB, as_version=4)
    values = parameter_values(parameters_cell(nb))
    expected = {f.name: f.default for f in dataclasses.fields(RunConfig)}
    assert list(values) == list(expected)  # same names, same order
    assert values == expected
    # and the same comments (what --help-notebook shows), written without the quotes, '=' and
    # apostrophes that papermill's comment parser would trip over
    def plain(text):
        return (text.replace('"" =', "empty:").replace('"', "").replace("\u2019", "'").replace(" = ", ": "))

    src = inspect.getsource(RunConfig)
    want = {k: plain(v) for k, v in re.findall(r"^\s{4}(\w+):[^#\n]*#\s*(.*)$", src, re.M)}
    got = {k: plain(v) for k, v in re.findall(r"^(\w+):[^#\n]*#\s*(.*)$", parameters_cell(nb), re.M)}
    assert got == want
    assert nb.metadata["kernelspec"]["name"] == "cnn-lab"  # the project's kernel, as papermill and nbval resolve it
    assert {"name", "version", "mimetype", "file_extension", "codemirror_mode", "nbconvert_exporter", "pygments_lexer"} <= set(nb.metadata["language_info"])  # complete: opening it does not dirty it
    # the committed notebook is a clean template: outputs only where nbval compares them (the
    # resolved config and the model printout), and nbval skips the cells that train
    code = [c for c in nb.cells if c.cell_type == "code"]
    tags = {c.source.split("(")[0]: set(c.metadata.get("tags", [])) for c in code}
    assert {k for k, t in tags.items() if "nbval-check-output" in t} == {"N.config_table", "N.print_model"}
    assert {k for k, t in tags.items() if "nbval-skip" in t} == {
        "records = N.train_and_check", "N.show_curves", "N.final_table"}
    assert all(bool(c.get("outputs")) == ("nbval-check-output" in c.metadata.get("tags", [])) for c in code)
    assert all((c.get("execution_count") is None) != bool(c.get("outputs")) for c in code)
    printout = "".join(o.get("text", "") for c in code if c.source.startswith("N.print_model") for o in c.outputs)
    assert "Linear(in_features=84, out_features=10, bias=True)" in printout and "62,006" in printout


def test_cells_call_cnn_lab_notebook_with_the_imports_in_a_cell_of_their_own():
    import cnn_lab.notebook

    nb = nbformat.read(NB, as_version=4)
    code = [ast.parse(c.source) for c in nb.cells if c.cell_type == "code" and "parameters" not in c.metadata.get("tags", [])]
    imports = [t for t in code if any(isinstance(n, (ast.Import, ast.ImportFrom)) for n in t.body)]
    assert len(imports) == 1 and all(isinstance(n, (ast.Import, ast.ImportFrom)) for n in imports[0].body)
    assert ast.unparse(imports[0]) == "from cnn_lab import notebook as N"
    calls = {ast.unparse(n.func) for t in code for n in ast.walk(t) if isinstance(n, ast.Call)}
    assert calls - {"globals"} == {f"N.{name}" for name in (
        "notebook_config", "scale_note", "config_table", "print_model", "train_and_check", "show_curves", "final_table")}
    assert all(callable(getattr(cnn_lab.notebook, c[2:])) for c in calls - {"globals"})


def test_first_cell_documents_out_dir():
    nb = nbformat.read(NB, as_version=4)
    assert nb.cells[0].cell_type == "markdown"
    assert "out_dir" in nb.cells[0].source and "papermill" in nb.cells[0].source


def test_help_notebook_lists_every_field():
    proc = subprocess.run([*PAPERMILL, "--help-notebook", str(NB)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout + proc.stderr
    assert "Unable to parse" not in text
    for f in dataclasses.fields(RunConfig):
        line = next((ln for ln in text.splitlines() if ln.strip().startswith(f"{f.name}:")), None)
        assert line is not None, f"{f.name} missing from --help-notebook"
        assert f"(default {f.default!r})" in line
    # every parameter has its help text (papermill reads the inline comment)
    assert "passes over the training subset" in text
    assert "class-balanced training subset" in text


@pytest.mark.slow
def test_papermill_variant_file_smoke(tmp_path, caplog):
    out_nb = tmp_path / "out.ipynb"
    runs = tmp_path / "runs"
    proc = run_papermill(out_nb, "-f", "parameters/cnn_resnet18_adam.yaml", "-p", "profile", "smoke",
                         "-p", "out_dir", str(runs))
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_dir = runs / "cnn_resnet18_adam" / "seed0"
    for name in ("config.yaml", "metrics.csv", "run.json", "checkpoint.pt", "confusion.csv"):
        assert (run_dir / name).exists(), name
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "completed" and record["model"] == "resnet18" and record["profile"] == "smoke"
    nb = nbformat.read(out_nb, as_version=4)
    text = outputs_text(nb)
    assert "ResNet" in text and "参数量" in text  # the model printout and its parameter count
    assert "epoch 1/1" in text  # plain per-epoch lines
    assert "test_acc" in text  # the final-numbers table
    images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert images, "the variant's curves"
    # exported as a page, every figure says what it shows (its alt text), and nbconvert has nothing to warn
    from bs4 import BeautifulSoup

    from cnn_lab.export import export_html

    with caplog.at_level("WARNING"):
        page = export_html(out_nb, tmp_path / "out.html").read_text(encoding="utf-8")
    assert "Alternative text is missing" not in caplog.text
    alts = [img.get("alt", "") for img in BeautifulSoup(page, "html.parser").find_all("img")]
    assert len(alts) == len(images) and all(
        a.startswith("cnn_resnet18_adam 的训练集与测试集损失和准确率随 epoch 的变化（1 个种子") for a in alts), alts
    assert "smoke 规模" in text  # says that the numbers come from a smoke-scale run
    # no warning or other stderr text in any cell (it would be printed into the notebook)
    assert not [o.get("text", "")[:200] for c in nb.cells for o in c.get("outputs", []) if o.get("name") == "stderr"]
    assert not (ROOT / "notebooks" / "runs").exists()


@pytest.mark.slow
def test_bad_parameter_fails_with_one_line(tmp_path):
    out_nb = tmp_path / "out.ipynb"
    runs = tmp_path / "runs"
    proc = run_papermill(out_nb, "-p", "lr", "-1", "-p", "out_dir", str(runs))
    assert proc.returncode != 0
    expected = "field 'lr' must be a positive number"
    nb = nbformat.read(out_nb, as_version=4)
    text = outputs_text(nb)
    assert f"error: notebook parameters: {expected}, got -1.0" in text
    assert expected in proc.stderr
    assert not runs.exists()  # nothing written


@pytest.mark.slow
def test_diverging_run_ends_notebook(tmp_path):
    out_nb = tmp_path / "out.ipynb"
    runs = tmp_path / "runs"
    proc = run_papermill(out_nb, "-p", "lr", "10000", "-p", "optimizer", "sgd", "-p", "out_dir", str(runs))
    assert proc.returncode != 0
    record = json.loads((runs / "cnn_baseline_adam" / "seed0" / "run.json").read_text())
    assert record["status"] == "diverged"
    nb = nbformat.read(out_nb, as_version=4)
    text = outputs_text(nb)
    assert "RunFailed" in text and record["message"] in text
    assert "RunFailed" in proc.stderr


def test_analysis_notebook_carries_the_reference_outputs_nbval_compares():
    # a stripped notebook would pass nbval while comparing nothing
    nb = nbformat.read(ROOT / "notebooks" / "analysis.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    checked = [c for c in code if "NBVAL_CHECK_OUTPUT" in c.source]
    assert len(checked) >= 10
    assert all(c.outputs and c.execution_count for c in checked)
    assert not any(c.outputs for c in code if c not in checked)  # no figures committed
    text = json.dumps([c.outputs for c in checked], ensure_ascii=False)
    for expected in ("62,006", "11,173,962", "6,964,106", "11,263,042", "SE-ResNet-18 · Adam 0.001", "与原报告"):
        assert expected in text
    # nothing that holds only on the machine that recorded them: no absolute path (appendix B's
    # data line names the archive as the project sees it, ../shared/datasets/...)
    assert not re.findall(r"(?<![\w.~/<])/(?:[\w.-]+/)+[\w.-]+", text)
    assert "数据：CIFAR-10 JPEG archive (../shared/datasets/cifar10-jpeg.tar.gz)" in text
