"""Damaged run files, each damage made for real on copies of the smoke fixtures: cut files,
invalid JSON and YAML, wrong shapes, a missing column, an empty file, for each of the seven
files the report reads.

The report builds from what is readable: a damaged file is left out of only the statistics
that need it, the rest of the report is what it would be without that file (compared with a
copy where the run, or the file, is removed), and the report names the file, the run, what is
wrong and what the run no longer adds, in 2.1's caveats and in appendix B. ``train`` and
``pipeline`` refuse a run directory with a damaged run.json or config.yaml: one line, exit 2,
nothing in the directory changed.
"""
from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from conftest import FIXTURES  # noqa: E402
from cnn_lab import pipeline, runio  # noqa: E402
from cnn_lab import report as R  # noqa: E402
from cnn_lab.report import damage as D  # noqa: E402
from cnn_lab.report.measures import confusion_matrix  # noqa: E402
from cnn_lab.report.phrases import tidy  # noqa: E402
from cnn_lab.report import stats as S  # noqa: E402
from cnn_lab.runcheck import PROBLEMS  # noqa: E402

from test_faults import cli_here, cli_run, one_line  # noqa: E402
from test_report import INTERNALS, SECTIONS, TEXT_SECTIONS  # noqa: E402

EXP, SEED = "cnn_baseline_adam", 1  # the run most damages hit: a study variant with two seeds
ROOT = Path(__file__).resolve().parents[1]


def run_dir(root: Path, exp: str = EXP, seed: int = SEED) -> Path:
    return root / "runs" / exp / f"seed{seed}"


# ------------------------------------------------------------------ the damages, made for real


def cut_mid_line(p: Path) -> None:
    """Cut the file halfway through its last line (a copy stopped mid-write)."""
    data = p.read_bytes()
    start = data.rstrip(b"\n").rfind(b"\n") + 1
    p.write_bytes(data[: start + (len(data) - start) // 2])


def cut_last_line(p: Path) -> None:
    """Cut the file at a line boundary: its last line is gone, the rest ends with a newline."""
    p.write_bytes(b"".join(p.read_bytes().splitlines(keepends=True)[:-1]))


def cut_to(n: int):
    def cut(p: Path) -> None:
        p.write_bytes(p.read_bytes()[:n])
    return cut


def keep_lines(n: int):
    def cut(p: Path) -> None:
        p.write_bytes(b"".join(p.read_bytes().splitlines(keepends=True)[:n]))
    return cut


def lost(p: Path) -> None:
    """The file did not make it into the copy."""
    p.unlink()


def empty(p: Path) -> None:
    p.write_bytes(b"")


def drop_column(name: str):
    def drop(p: Path) -> None:
        rows = list(csv.reader(io.StringIO(p.read_text())))
        i = rows[0].index(name)
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows([r[:i] + r[i + 1:] for r in rows])
        p.write_text(buf.getvalue())
    return drop


def short_row(p: Path) -> None:
    """The second line loses its last fields; the file still ends with a newline."""
    lines = p.read_text().splitlines(keepends=True)
    lines[1] = ",".join(lines[1].split(",")[:3]) + "\n"
    p.write_text("".join(lines))


def cut_json_mid_string(p: Path) -> None:
    text = p.read_text()
    p.write_text(text[: text.index('"platform": "') + 20])


def yaml_syntax_error(p: Path) -> None:
    p.write_text(p.read_text().replace("model: baseline", "model: [baseline"))


def garbage(p: Path) -> None:
    p.write_bytes(b"not an array\n" * 20)


def npy_shorter(p: Path) -> None:
    np.save(p, np.load(p)[:-5])


def npy_two_d(p: Path) -> None:
    np.save(p, np.load(p).reshape(-1, 2))


def npy_float(p: Path) -> None:
    np.save(p, np.load(p).astype(np.float32))


# (file, damage, the kind of problem it must be read as)
DAMAGES = [
    (runio.RUN, cut_json_mid_string, "syntax"),
    (runio.RUN, empty, "empty"),
    (runio.CONFIG, cut_to(183), "syntax"),  # ends "test_s"
    (runio.CONFIG, cut_to(175), "lacks_field"),  # ends "train_size: 50", and test_size and the rest are gone
    (runio.CONFIG, yaml_syntax_error, "syntax"),
    (runio.CONFIG, empty, "empty"),
    (runio.CONFIG, lost, "missing"),  # the run is still found by its run.json
    (runio.METRICS, cut_mid_line, "cut_line"),
    (runio.METRICS, cut_last_line, "epoch_rows"),
    (runio.METRICS, short_row, "row_fields"),
    (runio.METRICS, drop_column("test_acc"), "lacks_column"),
    (runio.METRICS, empty, "empty"),
    (runio.METRICS, lost, "missing"),
    (runio.GRAD_NORMS, cut_mid_line, "cut_line"),
    (runio.GRAD_NORMS, cut_last_line, "uneven_epochs"),
    (runio.GRAD_NORMS, drop_column("grad_norm"), "lacks_column"),
    (runio.GRAD_NORMS, empty, "empty"),
    (runio.CONFUSION, cut_mid_line, "cut_line"),
    (runio.CONFUSION, cut_last_line, "classes"),
    (runio.CONFUSION, drop_column("cat"), "lacks_column"),
    (runio.CONFUSION, empty, "empty"),
    (runio.PREDICTIONS, cut_to(100), "cut_array"),
    (runio.PREDICTIONS, cut_to(200), "cut_array"),
    (runio.PREDICTIONS, npy_shorter, "shape"),
    (runio.PREDICTIONS, empty, "empty"),
    (runio.PREDICTIONS, garbage, "not_npy"),
    (runio.LABELS, npy_two_d, "shape"),
    (runio.LABELS, npy_float, "shape"),
    (runio.LABELS, cut_to(60), "cut_array"),
]


def damaged_copy(root: Path, name: str, damage, exp: str = EXP, seed: int = SEED) -> Path:
    p = run_dir(root, exp, seed) / name
    damage(p)
    return p


def copy_of(root: Path, tmp_path: Path, label: str) -> Path:
    dst = tmp_path / label
    shutil.copytree(root, dst)
    return dst


# ------------------------------------------------------------------ what the report reads


@pytest.mark.parametrize("name,damage,kind", DAMAGES,
                         ids=[f"{n}-{k}-{i}" for i, (n, _, k) in enumerate(DAMAGES)])
def test_each_damage_is_named_with_its_run_and_its_problem(copy, name, damage, kind):
    path = damaged_copy(copy, name, damage)
    res = R.load_results(copy)
    assert [(d.exp_name, d.seed, d.file, d.error.kind) for d in res.damaged] == [(EXP, SEED, name, kind)]
    err = res.damaged[0].error
    assert str(err).startswith(f"{path}: ") and "\n" not in str(err)
    # 2.1 names the run readably and the file by what it records, with what is wrong and what it no longer adds
    d = res.damaged[0]
    problem = D.PROBLEM_ZH[err.kind].format(**err.details)
    note = R.settings_text(res)  # the body names no setting or column by its identifier (appendix B does)
    in_body = D._problem(d, body=True)
    assert tidy(f"{R.prose_name(res, EXP)}种子 {SEED} 的{D.FILE_ZH[name]}{in_body}，这次运行{D.LOST_ZH[name]}") in note
    assert "附录 B" in note
    # appendix B names it by its path
    assert tidy(f"`runs/{EXP}/seed{SEED}/{name}`：{D.FILE_ZH[name]}{problem}；这次运行{D.LOST_ZH[name]}。") \
        in R.environment_markdown(res)
    # said once: in 2.1 and appendix B, nowhere else in the body, which names no file
    body = "\n\n".join(getattr(R, s)(res) for s in TEXT_SECTIONS)
    assert body.count(D.LOST_ZH[name]) == 1 and d.file == name
    assert not INTERNALS.search(body), INTERNALS.search(body)


def test_every_problem_has_its_chinese_wording():
    assert set(D.PROBLEM_ZH) == set(PROBLEMS)
    for kind, words in D.PROBLEM_ZH.items():  # the same details fill both
        assert set(_fields(words)) <= set(_fields(PROBLEMS[kind])), kind


def _fields(template: str) -> list[str]:
    import string

    return [f.split("!")[0] for _, f, _, _ in string.Formatter().parse(template) if f]


def test_the_fixtures_pass_every_check():
    res = R.load_results(FIXTURES)
    assert res.damaged == [] and len(res.predictions) == len(res.runs)
    assert R.damaged_note(res) == "" and R.damaged_note(res, appendix=True) == ""


def test_a_cut_csv_row_is_an_error_never_a_row_of_nans(copy):
    p = run_dir(copy) / runio.METRICS
    cut_mid_line(p)
    assert p.read_text().splitlines()[-1].count(",") < len(runio.METRIC_COLUMNS) - 1  # half a row is there
    run = runio.read_run(run_dir(copy))
    assert run["metrics"] is None and run["damaged"][runio.METRICS].kind == "cut_line"
    # cut inside the last field, the row even has every column: still half a line, still an error
    p = run_dir(copy, seed=0) / runio.METRICS
    p.write_bytes(p.read_bytes()[:-2])
    assert runio.read_run(run_dir(copy, seed=0))["damaged"][runio.METRICS].kind == "cut_line"
    res = R.load_results(copy)
    assert not res.epochs[res.epochs["exp_name"] == EXP].isna().any().any()
    assert R.summary_stats(res).loc[EXP, "state"] == "damaged"  # neither seed has a last epoch to read


# ------------------------------------------------------------------ the rest of the report is unchanged


TABLES = ("summary_table", "settings_table", "cost_table", "gradient_ratio_table", "study_comparison",
          "precision_table", "per_class_accuracy")


def tables(res) -> dict[str, pd.DataFrame]:
    return {name: getattr(R, name)(res) for name in TABLES}


def assert_same(got: dict, want: dict, names) -> None:
    for name in names:
        pd.testing.assert_frame_equal(got[name], want[name], obj=name)


def sections(res) -> dict:
    """Everything the analysis notebook shows (figures drawn and closed): none may raise."""
    R.setup_plotting()
    out = {name: getattr(R, name)(res) for name in SECTIONS}
    plt.close("all")
    return out


def without_run(copy: Path, tmp_path: Path, exp: str = EXP, seed: int = SEED) -> Path:
    ref = copy_of(copy, tmp_path, "without-run")
    shutil.rmtree(run_dir(ref, exp, seed))
    return ref


def note_appended(got: str, want: str, note: str, sep: str) -> bool:
    return got == want + sep + note


@pytest.mark.parametrize("name,damage", [(runio.RUN, cut_json_mid_string), (runio.CONFIG, yaml_syntax_error)])
def test_a_damaged_record_or_config_leaves_the_run_out_of_everything(copy, tmp_path, name, damage):
    ref = without_run(FIXTURES, tmp_path)
    damaged_copy(copy, name, damage)
    res, want = R.load_results(copy), R.load_results(ref)
    assert len(res.runs) == len(want.runs) == len(list((FIXTURES / "runs").glob("*/seed*"))) - 1
    got, ref_out = sections(res), sections(want)
    assert_same(tables(res), tables(want), TABLES)
    for s in TEXT_SECTIONS:  # the whole body reads as without the run, but for the note in 2.1
        if s != "settings_text":
            assert got[s] == ref_out[s], s
    assert note_appended(got["settings_text"], ref_out["settings_text"], R.damaged_note(res), "\n\n")
    here = lambda text, r: text.replace(str(r.reports_dir), "R")  # noqa: E731 - the copies' folders differ
    assert note_appended(here(got["environment_markdown"], res), here(ref_out["environment_markdown"], want),
                         R.damaged_note(res, appendix=True), "\n")


def damaged_against(copy: Path, tmp_path: Path, name: str, damage) -> tuple:
    """One file of the test run damaged: its report (every section built) and tables, with the
    reports without that run and with it whole to compare against."""
    ref = without_run(FIXTURES, tmp_path)
    damaged_copy(copy, name, damage)
    res, without, whole = R.load_results(copy), R.load_results(ref), R.load_results(FIXTURES)
    out = sections(res)
    return res, out, tables(res), without, whole


def test_a_damaged_metrics_file_leaves_out_the_accuracy_and_curves_only(copy, tmp_path):
    res, _, got, without, whole = damaged_against(copy, tmp_path, runio.METRICS, cut_mid_line)
    # accuracy, its interval, the comparisons, the speed (metrics.csv's timings) and the curves: as without the run
    assert_same(got, tables(without), ("summary_table", "cost_table"))
    assert not got["summary_table"].equals(tables(whole)["summary_table"])
    for a, b in (("cnn_baseline_adam", "cnn_baseline"), ("cnn_baseline_adam", "cnn_baseline_sgd_high_lr")):
        assert S.compare(res, a, b) == S.compare(without, a, b)
    pd.testing.assert_frame_equal(res.epochs, without.epochs)
    # the gradients, the per-class counts and the settings it trained with still count
    assert_same(got, tables(whole), ("gradient_ratio_table", "per_class_accuracy", "settings_table"))
    assert SEED in set(res.grads[res.grads["exp_name"] == EXP]["seed"])


def test_a_damaged_gradient_file_leaves_out_the_gradients_only(copy, tmp_path):
    res, _, got, without, whole = damaged_against(copy, tmp_path, runio.GRAD_NORMS, cut_mid_line)
    assert_same(got, tables(without), ("gradient_ratio_table",))
    assert not got["gradient_ratio_table"].equals(tables(whole)["gradient_ratio_table"])
    assert_same(got, tables(whole), ("summary_table", "settings_table", "cost_table", "per_class_accuracy"))


def test_a_damaged_confusion_file_leaves_out_the_per_class_counts_only(copy, tmp_path):
    res, out, got, without, whole = damaged_against(copy, tmp_path, runio.CONFUSION, drop_column("cat"))
    assert_same(got, tables(without), ("per_class_accuracy",))
    pd.testing.assert_frame_equal(confusion_matrix(res, EXP), confusion_matrix(without, EXP))
    assert not got["per_class_accuracy"].equals(tables(whole)["per_class_accuracy"])
    assert_same(got, tables(whole), ("summary_table", "settings_table", "cost_table", "gradient_ratio_table"))
    assert out["per_class_markdown"] == sections(without)["per_class_markdown"]


@pytest.mark.parametrize("name,damage", [(runio.PREDICTIONS, cut_to(100)), (runio.LABELS, npy_two_d)])
def test_damaged_predictions_keep_the_accuracy_and_the_paired_tests_fall_back(copy, tmp_path, name, damage):
    """As for a run that saved no predictions: the other seeds are paired, the accuracy counts."""
    ref = copy_of(FIXTURES, tmp_path, "without-predictions")
    for f in (runio.PREDICTIONS, runio.LABELS):
        (run_dir(ref) / f).unlink()
    damaged_copy(copy, name, damage)
    res, without, whole = R.load_results(copy), R.load_results(ref), R.load_results(FIXTURES)
    got, want = sections(res), sections(without)
    assert_same(tables(res), tables(without), TABLES)
    assert_same(tables(res), tables(whole), ("summary_table", "settings_table", "cost_table",
                                             "gradient_ratio_table", "per_class_accuracy"))
    for s in TEXT_SECTIONS:
        if s != "settings_text":
            assert got[s] == want[s], s
    assert set(S.correctness(res, EXP)) == {0} and set(S.correctness(whole, EXP)) == {0, 1}
    c, c_whole = S.compare(res, EXP, "cnn_baseline"), S.compare(whole, EXP, "cnn_baseline")
    assert c == S.compare(without, EXP, "cnn_baseline")
    assert [p[:2] for p in c.paired.per_seed] == [(0, 0)] and len(c_whole.paired.per_seed) == 2
    assert c.diff == c_whole.diff  # the accuracies are the same


def test_with_no_predictions_left_the_comparison_falls_back_to_fishers_test(copy):
    for seed, damage in ((0, empty), (1, cut_to(100))):
        damaged_copy(copy, runio.PREDICTIONS, damage, seed=seed)
    res, whole = R.load_results(copy), R.load_results(FIXTURES)
    c, c_whole = S.compare(res, EXP, "cnn_baseline"), S.compare(whole, EXP, "cnn_baseline")
    assert "paired" in c_whole.tests and c.paired is None and c.tests[0] == "fisher"
    n = int(res.runs["test_size"].iloc[0])
    accs = res.runs.set_index("exp_name")["final_test_acc"].groupby(level=0).mean()
    ha, hb = round(accs[EXP] * n), round(accs["cnn_baseline"] * n)
    from scipy import stats as sps
    assert c.unpaired_p == pytest.approx(sps.fisher_exact([[ha, n - ha], [hb, n - hb]]).pvalue)
    assert R.summary_stats(res).loc[EXP, "n"] == 2  # both accuracies still count


def test_a_variant_whose_every_run_is_damaged_is_listed_as_such(copy, tmp_path):
    exp = "cnn_se_resnet18_adam"
    damaged_copy(copy, runio.RUN, cut_json_mid_string, exp=exp, seed=0)
    damaged_copy(copy, runio.CONFIG, empty, exp=exp, seed=1)
    res = R.load_results(copy)
    assert exp not in res.missing and exp not in set(res.runs["exp_name"])
    out = sections(res)
    cells = out["summary_table"].filter(like="最终准确率").iloc[:, 0]
    assert cells[exp] == "文件损坏"
    assert tidy(f"{R.prose_name(res, exp)}没有一次可用的运行，表 1 中标为「文件损坏」") in out["settings_text"]
    # otherwise as without the variant, where it is missing
    ref = copy_of(FIXTURES, tmp_path, "without-variant")
    shutil.rmtree(ref / "runs" / exp)
    want = tables(R.load_results(ref))
    got = tables(res)
    assert (got["summary_table"].drop(index=exp) == want["summary_table"].drop(index=exp)).all().all()
    assert_same(got, want, ("settings_table", "cost_table", "gradient_ratio_table", "per_class_accuracy"))
    assert R.prose_name(res, exp) not in R.profile_banner(res)  # damaged, not missing


def test_every_metrics_file_damaged_still_renders(copy):
    for d in (copy / "runs").glob("*/seed*"):
        cut_mid_line(d / runio.METRICS)
    res = R.load_results(copy)
    out = sections(res)
    assert len(res.damaged) == len(list((FIXTURES / "runs").glob("*/seed*"))) and res.epochs.empty
    assert set(out["summary_table"].filter(like="最终准确率").iloc[:, 0]) <= {"文件损坏", "缺失"}


@pytest.mark.slow
def test_the_analysis_notebook_completes_on_a_damaged_run_and_names_it(copy, tmp_path):
    """The issue's case: a run.json cut off mid-string. The notebook runs through and says so."""
    import nbformat
    import papermill

    damaged_copy(copy, runio.RUN, cut_json_mid_string)
    damaged_copy(copy, runio.PREDICTIONS, cut_to(100), exp="cnn_resnet18_adam", seed=0)
    out = tmp_path / "report.ipynb"
    papermill.execute_notebook(str(ROOT / "notebooks" / "analysis.ipynb"), str(out),
                               parameters={"reports_dir": str(copy)}, kernel_name="cnn-lab",
                               cwd=str(ROOT / "notebooks"), progress_bar=False)
    nb = nbformat.read(out, as_version=4)
    outs = [o for c in nb.cells for o in c.get("outputs", [])]
    assert not [o for o in outs if o.get("output_type") == "error" or o.get("name") == "stderr"]
    text = "\n".join(o.get("data", {}).get("text/markdown", "") for o in outs)
    assert f"`runs/{EXP}/seed{SEED}/run.json`：运行记录不是有效的 JSON" in text
    assert "`runs/cnn_resnet18_adam/seed0/predictions.npy`：逐图预测被截断" in text
    assert text.count("有 2 个文件未通过检查") == 1


# ------------------------------------------------------------------ train and pipeline


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def damaged_run_dir(out: Path, name: str, damage) -> tuple[Path, dict[str, bytes]]:
    """A copy of a cnn_baseline fixture run as ``out/cnn_baseline/seed0``, one file damaged."""
    d = out / "cnn_baseline" / "seed0"
    shutil.copytree(run_dir(FIXTURES, "cnn_baseline", 0), d)
    damage(d / name)
    return d, snapshot(d)


def refusal(d: Path, name: str, problem: str) -> str:
    return (f"error: {d / name}: {problem}; delete {d} to start this run over, or restore {name} "
            f"from a good copy")


@pytest.mark.parametrize("name,damage,problem", [
    (runio.RUN, cut_json_mid_string, "is not valid JSON (line {line}: Unterminated string starting at)"),
    (runio.CONFIG, keep_lines(12), "lacks the field(s) {missing}"),
])
def test_train_refuses_a_damaged_run_directory_and_changes_nothing(tmp_path, capsys, name, damage, problem):
    original = (run_dir(FIXTURES, "cnn_baseline", 0) / name).read_text()
    problem = problem.format(line=original[: original.find('"platform": "')].count("\n") + 1,  # where the cut string starts
                             missing=", ".join(line.split(":")[0] for line in original.splitlines()[12:]
                                               if line and not line.startswith((" ", "-"))))  # the fields cut off
    d, before = damaged_run_dir(tmp_path / "out", name, damage)
    args = ("train", ROOT / "parameters" / "cnn_baseline.yaml", "--profile", "smoke", "--out", tmp_path / "out",
            "--no-progress")
    r = cli_run(*args) if name == runio.RUN else cli_here(capsys, *args)  # one real process is enough
    assert r.returncode == 2
    assert one_line(r.stderr) == refusal(d, name, problem)
    assert snapshot(d) == before and sorted(p.name for p in d.iterdir()) == sorted(before)


@pytest.mark.parametrize("name,damage,kind", [(runio.RUN, empty, "is empty"),
                                              (runio.CONFIG, yaml_syntax_error, "is not valid YAML (line 3: ")])
def test_pipeline_refuses_a_damaged_run_directory_and_changes_nothing(tmp_path, capsys, name, damage, kind):
    reports = tmp_path / "reports"
    d, before = damaged_run_dir(reports / "smoke" / "runs", name, damage)
    rc = pipeline.run_pipeline(profile="smoke", only=["cnn_baseline"], reports_dir=reports)
    assert rc == 2
    line = one_line(capsys.readouterr().err)
    assert line.startswith(f"error: {d / name}: {kind}")
    assert line.endswith(f"; delete {d} to start this run over, or restore {name} from a good copy")
    assert snapshot(reports) == {f"smoke/runs/cnn_baseline/seed0/{k}": v for k, v in before.items()}


def test_the_pipelines_cost_step_measures_the_models_of_the_readable_runs(copy):
    """A damaged run of a variant the pipeline does not train (another --only) does not stop cost.csv."""
    for seed in (0, 1):
        damaged_copy(copy, runio.RUN, empty, exp="cnn_se_resnet18_adam", seed=seed)
    damaged_copy(copy, runio.CONFIG, yaml_syntax_error, exp="cnn_resnet18_adam", seed=0)
    models, modes = pipeline._models_of_runs(copy / "runs")
    assert "se_resnet18" not in models and {"baseline", "resnet18", "densenet121"} <= set(models)
