"""The pipeline: variants through the training notebook, cost.csv, the analysis notebook, HTML + PDF."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from cnn_lab import export, pipeline
from cnn_lab.study import CONTROL_VARIANTS, EXTENSION_VARIANTS, STUDY_VARIANTS

from conftest import assert_printed_report, chromium_or_skip, pdf_text

ROOT = Path(__file__).resolve().parent.parent
ANALYSIS = ROOT / "notebooks" / "analysis.ipynb"
SELECTED = ["cnn_baseline", "cnn_baseline_adam"]  # cheap: two BaselineNet runs, one model in cost.csv


def trivial_analysis(path: Path) -> Path:
    """A stand-in analysis notebook: same parameters, one Chinese heading, one cell."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# 实验报告（测试）"),
        nbformat.v4.new_code_cell('reports_dir = ""', metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("import os\nprint(sorted(os.listdir(os.path.join(reports_dir, 'runs'))))"),
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


# --------------------------------------------------------------------- fast: no papermill


def test_variant_order():
    names = [p.stem for p in pipeline.variant_files(ROOT / "parameters")]
    assert names[: len(STUDY_VARIANTS)] == list(STUDY_VARIANTS)
    assert names[len(STUDY_VARIANTS):] == [*CONTROL_VARIANTS, *EXTENSION_VARIANTS]


def test_each_profile_trains_every_variant_file_but_those_it_leaves_out(tmp_path):
    def planned(profile, only=None, params_dir=None):
        plan = pipeline.preflight(profile, only, tmp_path / "r", None, params_dir=params_dir)
        return [v.name for v in plan.variants]

    assert planned("cpu_all_data") == [*STUDY_VARIANTS, "cnn_plain18_adam"]
    assert planned("cpu") == [*STUDY_VARIANTS, *CONTROL_VARIANTS]
    assert planned("smoke") == [*STUDY_VARIANTS, *CONTROL_VARIANTS, *EXTENSION_VARIANTS]
    assert planned("cpu_all_data", ["cnn_baseline_adam_matched"]) == ["cnn_baseline_adam_matched"]  # --only still picks others
    # a variant file a user adds is trained by every profile
    params = tmp_path / "parameters"
    shutil.copytree(ROOT / "parameters", params)
    (params / "my_net.yaml").write_text((params / "cnn_resnet18_adam.yaml").read_text()
                                        .replace("exp_name: cnn_resnet18_adam", "exp_name: my_net"))
    assert planned("cpu", params_dir=params) == [*STUDY_VARIANTS, *CONTROL_VARIANTS, "my_net"]


def test_unknown_only_lists_known(tmp_path, capsys):
    rc = pipeline.run_pipeline(profile="smoke", only=["nope"], reports_dir=tmp_path / "r")
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "nope" in err and "cnn_baseline_adam" in err
    assert not (tmp_path / "r").exists()


def test_unknown_profile_lists_the_profiles(tmp_path, capsys):
    rc = pipeline.run_pipeline(profile="huge", reports_dir=tmp_path / "r")
    assert rc == 2
    assert capsys.readouterr().err.strip() == "error: --profile must be one of smoke, cpu, cpu_all_data, full, auto, got 'huge'"
    assert not (tmp_path / "r").exists()


def test_bad_variant_file_writes_nothing(tmp_path, capsys):
    params = tmp_path / "params"
    params.mkdir()
    shutil.copy(ROOT / "parameters" / "cnn_baseline.yaml", params)
    (params / "zz_bad.yaml").write_text("exp_name: zz_bad\nmodel: baseline\nlr: -3\n")
    rc = pipeline.run_pipeline(profile="smoke", reports_dir=tmp_path / "r", params_dir=params)
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {params / 'zz_bad.yaml'}: field 'lr' must be a positive number, got -3.0"
    assert not (tmp_path / "r").exists()


def test_cli_bad_profile_override(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "cnn_lab", "pipeline", "--profile", "smoke",
                           "--reports", str(tmp_path / "r"), "--set", "epochs=0"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "epochs" in proc.stderr
    assert not (tmp_path / "r").exists()


def test_missing_data_stops_before_any_notebook(tmp_path, capsys):
    missing = tmp_path / "no-cifar-here"
    rc = pipeline.run_pipeline(profile="smoke", only=SELECTED, reports_dir=tmp_path / "r",
                               overrides={"data": str(missing)})
    assert rc == 2
    err = capsys.readouterr().err.strip()
    # the data error names the place and lists how to supply the data (one error, several lines)
    assert err.startswith("error: ") and str(missing) in err.splitlines()[0] and "download" in err
    assert not (tmp_path / "r").exists()


def test_export_pdf_without_chromium(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(export, "find_chromium", lambda: None)
    html = tmp_path / "x.html"
    html.write_text("<html lang='zh'><body>实验</body></html>")
    assert export.export_pdf(html, tmp_path / "x.pdf") is None
    assert "apt-get install chromium fonts-noto-cjk" in capsys.readouterr().out
    assert not (tmp_path / "x.pdf").exists()


# --------------------------------------------------------------------- slow: the real thing


@pytest.fixture(scope="module")
def smoke_reports(tmp_path_factory):
    if not ANALYSIS.exists():
        pytest.skip("notebooks/analysis.ipynb not written yet")
    reports = tmp_path_factory.mktemp("reports")
    rc = pipeline.run_pipeline(profile="smoke", only=SELECTED, reports_dir=reports)
    return reports / "smoke", rc


@pytest.mark.slow
def test_pipeline_smoke_report(smoke_reports):
    out, rc = smoke_reports
    assert rc == 0
    for name in SELECTED:
        run = json.loads((out / "runs" / name / "seed0" / "run.json").read_text())
        assert run["status"] == "completed" and run["profile"] == "smoke"
        assert (out / "runs" / name / f"{name}.ipynb").exists()
    assert (out / "cost.csv").read_text().splitlines()[1].startswith("baseline,")
    # without the break points of identifiers and the kept-whole words of headers and names
    html = re.sub(r'<wbr\s*/?>|<span class="w">|</span>', "", (out / "report.html").read_text(encoding="utf-8"))
    assert re.search(r'<html[^>]*\blang="zh"', html)
    for label in ("BaselineNet · SGD 0.001", "BaselineNet · Adam 0.001"):  # the SELECTED variants, by name
        assert label in html
    for heading in ("1 实验概述", "2 结果与分析", "2.3 分析", "2.8 与原报告对比", "3 实验总结", "实验环境与可复现信息"):
        assert heading in html
    assert "data:image/png;base64," in html
    srcs = re.findall(r'\bsrc=["\']([^"\']*)', html)
    assert srcs and all(s.startswith("data:") for s in srcs), [s[:60] for s in srcs if not s.startswith("data:")]
    assert not re.search(r'<link[^>]+href=["\']https?:', html)
    # no code: neither inputs nor prompts
    assert "import report as R" not in html and "display(Markdown" not in html
    assert 'class="jp-InputPrompt' not in html
    # the variants that were not run are reported as missing
    assert "缺失" in html
    for label in ("ResNet-18 · Adam 0.001", "DenseNet-121 · Adam 0.001"):
        assert label in html
    # without a Chromium the HTML is all there is, and the log said what to install
    assert (out / "report.pdf").exists() == (export.find_chromium() is not None)


@pytest.mark.slow
def test_pipeline_smoke_pdf(smoke_reports):
    chromium_or_skip()
    out, _ = smoke_reports
    pdf = out / "report.pdf"
    assert pdf.read_bytes()[:5] == b"%PDF-"
    text = pdf_text(pdf)
    assert "\f" in text or len(text) > 100  # at least one page
    assert "实验" in text and "实验总结" in text.replace(" ", "")
    assert_printed_report(pdf, out / "report.html")


@pytest.mark.slow
def test_pipeline_rerun_is_up_to_date(smoke_reports, capsys):
    out, _ = smoke_reports
    nbs = {n: (out / "runs" / n / f"{n}.ipynb").stat().st_mtime_ns for n in SELECTED}
    cost = (out / "cost.csv").stat().st_mtime_ns
    capsys.readouterr()
    rc = pipeline.run_pipeline(profile="smoke", only=SELECTED, reports_dir=out.parent, export=False,
                               analysis_notebook=trivial_analysis(out.parent / "trivial.ipynb"))
    assert rc == 0
    text = capsys.readouterr().out
    for i, n in enumerate(SELECTED, 1):
        assert f"[{i}/{len(SELECTED)}] {n}: up to date" in text
        assert (out / "runs" / n / f"{n}.ipynb").stat().st_mtime_ns == nbs[n]
    assert (out / "cost.csv").stat().st_mtime_ns == cost  # same model set: not recomputed


@pytest.mark.slow
def test_failing_variant_does_not_stop_others(tmp_path, capsys):
    params = tmp_path / "params"
    params.mkdir()
    (params / "aa_diverge.yaml").write_text("exp_name: aa_diverge\nmodel: baseline\noptimizer: sgd\nlr: 10000\n")
    shutil.copy(ROOT / "parameters" / "cnn_baseline.yaml", params)
    reports = tmp_path / "reports"
    rc = pipeline.run_pipeline(profile="smoke", reports_dir=reports, params_dir=params, export=False,
                               analysis_notebook=trivial_analysis(tmp_path / "trivial.ipynb"))
    assert rc == 1
    out = capsys.readouterr().out
    assert "[1/2] cnn_baseline: done" in out  # study variants come first
    assert "[2/2] aa_diverge: FAILED" in out and "diverged" in out
    runs = reports / "smoke" / "runs"
    assert json.loads((runs / "cnn_baseline" / "seed0" / "run.json").read_text())["status"] == "completed"
    assert json.loads((runs / "aa_diverge" / "seed0" / "run.json").read_text())["status"] == "diverged"
    assert (runs / "aa_diverge" / "aa_diverge.ipynb").exists()  # the failed notebook, for reading
    assert (reports / "smoke" / "report.ipynb").exists()  # the report is still built


@pytest.mark.slow
def test_no_report_trains_only(tmp_path, capsys):
    # what parallel pipelines sharing one reports folder use: runs only, no shared files
    params = tmp_path / "params"
    params.mkdir()
    (params / "aa_diverge.yaml").write_text("exp_name: aa_diverge\nmodel: baseline\noptimizer: sgd\nlr: 10000\n")
    reports = tmp_path / "reports"
    rc = pipeline.run_pipeline(profile="smoke", reports_dir=reports, params_dir=params, report=False)
    assert rc == 1  # the variant diverged: still said by the exit status
    assert "trained only (no report)" in capsys.readouterr().out
    out = reports / "smoke"
    assert json.loads((out / "runs" / "aa_diverge" / "seed0" / "run.json").read_text())["status"] == "diverged"
    assert sorted(p.name for p in out.iterdir()) == ["runs"]


@pytest.mark.slow
@pytest.mark.skipif(export.find_chromium() is None or shutil.which("pdftotext") is None,
                    reason="needs Chromium and pdftotext")
def test_pdf_keeps_every_chinese_glyph_without_system_cjk_fonts(tmp_path, monkeypatch):
    # a fontconfig that knows no CJK font: Chromium alone would drop the glyphs silently
    conf = tmp_path / "fonts.conf"
    conf.write_text('<?xml version="1.0"?><!DOCTYPE fontconfig SYSTEM "fonts.dtd"><fontconfig>'
                    f'<dir>/usr/share/fonts/truetype/dejavu</dir><cachedir>{tmp_path}/fc-cache</cachedir>'
                    '</fontconfig>')
    monkeypatch.setenv("FONTCONFIG_FILE", str(conf))
    sentence = "卷积神经网络对比实验报告：残差连接与稠密拼接的梯度流"
    html = tmp_path / "r.html"
    html.write_text(f'<html lang="zh"><head><meta charset="utf-8"></head><body><p>{sentence}</p></body></html>',
                    encoding="utf-8")
    export.export_pdf(html, tmp_path / "r.pdf")
    assert sentence in re.sub(r"\s", "", pdf_text(tmp_path / "r.pdf"))
