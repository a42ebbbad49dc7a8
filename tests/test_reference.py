"""The reference runs: published without machine paths, loaded beside the user's runs, shown
with their provenance, used only where the user's own scale cannot decide, and a report
without them still builds and says so once."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import FIXTURES

from cnn_lab import report as R
from cnn_lab.publish import PublishError, portable_record, publish
from cnn_lab.report.claims import REFERENCE_COLUMN, SCALE, claims, effective_kind, reference_claim, tally
from cnn_lab.report.load import REFERENCE_DIR, load_reference
from cnn_lab.report.reference import REFERENCE_HEADER, provenance_line
from cnn_lab.report.stats import compare
from cnn_lab.data import project_root
from cnn_lab.study import PLAIN_CONTROL, STUDY_VARIANTS

COMMAND = "python -m cnn_lab pipeline --profile cpu_all_data --reports ~/ref --no-report"


def _as_full_data(runs: Path) -> None:
    """Mark copied runs as trained on all 50,000 images (the scale a reference decides at)."""
    for cfg_path in runs.rglob("config.yaml"):
        cfg = yaml.safe_load(cfg_path.read_text())
        cfg.update(train_size=0, profile="cpu_all_data")
        cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        rec_path = cfg_path.parent / "run.json"
        rec = json.loads(rec_path.read_text())
        rec.update(train_size=0, profile="cpu_all_data")
        rec["data"]["path"] = "/home/someone/data/cifar10-jpeg.tar.gz"
        rec["data"]["cache_file"] = "/home/someone/project/data/cache/x.npz"
        rec["environment"]["processor"] = "Example CPU Model @ 2.00GHz"  # the fixtures predate the model line
        rec_path.write_text(json.dumps(rec))


@pytest.fixture
def reference(tmp_path) -> Path:
    """A reference folder published from a full-data copy of the fixture runs."""
    src = tmp_path / "ran" / "cpu_all_data"
    shutil.copytree(FIXTURES / "runs", src / "runs")
    (src / "runs" / "cnn_resnet18_adam" / "seed0" / "checkpoint.pt").write_bytes(b"not shipped")
    _as_full_data(src / "runs")
    publish(src, tmp_path / "reference" / "cpu_all_data", COMMAND)
    return tmp_path / "reference"


def test_published_runs_carry_no_machine_path_checkpoint_or_notebook(reference):
    pub = reference / "cpu_all_data"
    files = [p for p in pub.rglob("*") if p.is_file()]
    assert not [p for p in files if p.suffix in (".pt", ".ipynb")]
    for p in files:
        if p.suffix in (".json", ".yaml", ".md"):
            text = p.read_text()
            assert "/home/someone" not in text and str(FIXTURES.resolve()) not in text, p
    rec = json.loads((pub / "runs/cnn_resnet18_adam/seed0/run.json").read_text())
    assert "path" not in rec["data"] and "cache_file" not in rec["data"]
    assert rec["data"]["fingerprint"] and rec["data"]["kind"]  # what identifies the data stays
    cfg = yaml.safe_load((pub / "runs/cnn_resnet18_adam/seed0/config.yaml").read_text())
    assert not Path(cfg["out_dir"]).is_absolute()
    readme = (pub / "README.md").read_text()
    assert COMMAND in readme and rec["environment"]["processor"] in readme
    assert rec["environment"]["git_commit"] in readme


def test_a_run_published_later_from_another_machine_joins_the_earlier_ones(tmp_path, reference):
    """Publishing the one run that was missing keeps the runs published before; the README then
    names both machines, each with its own wall time, and marks a mode set by hand."""
    pub = reference / "cpu_all_data"
    before = sorted(p.parent.relative_to(pub) for p in pub.rglob("run.json"))
    later = tmp_path / "later" / "cpu_all_data"
    shutil.copytree(FIXTURES / "runs" / "cnn_plain18_adam", later / "runs" / "cnn_plain18_adam")
    _as_full_data(later / "runs")
    for rec_path in (later / "runs").rglob("run.json"):
        rec = json.loads(rec_path.read_text())
        rec["environment"]["processor"] = "Other CPU Model"
        rec_path.write_text(json.dumps(rec))
    for cfg_path in (later / "runs").rglob("config.yaml"):
        cfg_path.write_text(yaml.safe_dump({**yaml.safe_load(cfg_path.read_text()), "amp": "off",
                                            "channels_last": "on"}, sort_keys=False))
    auto = pub / "runs" / "cnn_resnet18_adam" / "seed0" / "config.yaml"  # the fixtures pin the mode; this one is left to auto
    auto.write_text(yaml.safe_dump({**yaml.safe_load(auto.read_text()), "amp": "auto", "channels_last": "auto"},
                                   sort_keys=False))
    publish(later, pub, COMMAND)
    assert sorted(p.parent.relative_to(pub) for p in pub.rglob("run.json")) == before  # none lost, none doubled
    readme = (pub / "README.md").read_text()
    machine_lines = [line for line in readme.splitlines() if line.startswith("- CPU (`lscpu` model line)")]
    assert len(machine_lines) == 2
    assert "Other CPU Model" in machine_lines[1] or "Other CPU Model" in machine_lines[0]
    rows = [line for line in readme.splitlines() if line.startswith("| cnn_")]
    plain = [line for line in rows if line.startswith("| cnn_plain18_adam |")]
    assert plain and all("(set)" in line and line.endswith("Other CPU Model |") for line in plain)
    resnet = [line for line in rows if line.startswith("| cnn_resnet18_adam | 0 |")]
    assert resnet and "(set)" not in resnet[0]


def test_a_description_keeps_the_data_kind_without_its_path():
    rec = portable_record({"data": {"description": "CIFAR-10 JPEG archive (/srv/x/cifar10-jpeg.tar.gz)",
                                    "path": "/srv/x/cifar10-jpeg.tar.gz", "kind": "jpeg-archive"}})
    assert rec["data"] == {"description": "CIFAR-10 JPEG archive", "kind": "jpeg-archive"}


def test_publishing_nothing_is_refused(tmp_path):
    with pytest.raises(PublishError, match="no completed runs"):
        publish(tmp_path, tmp_path / "out", COMMAND)


def test_the_reference_loads_beside_the_users_runs_and_table_1_shows_it(reference):
    res = R.load_results(FIXTURES, reference_dir=reference)
    assert res.reference is not None and res.reference_note == ""
    tbl = R.summary_table(res)
    col = tbl[REFERENCE_HEADER]
    ref_st = R.summary_stats(res.reference)
    for exp in ("cnn_baseline_adam", "cnn_resnet18_adam"):
        assert col.loc[exp].startswith(R.pct(ref_st.loc[exp, "mean"], 2))
    # the user's own numbers are not touched by the reference
    own = R.load_results(FIXTURES, reference_dir=reference.parent / "none")
    pd.testing.assert_frame_equal(tbl.drop(columns=[REFERENCE_HEADER]),
                                  R.summary_table(own).drop(columns=[REFERENCE_HEADER]))


def test_provenance_names_cpu_commit_dates_and_scale(reference):
    res = R.load_results(FIXTURES, reference_dir=reference)
    line = provenance_line(res)
    runs = res.reference.runs
    assert runs["cpu_model"].iloc[0] in line
    assert str(runs["git_commit"].iloc[0])[:7] in line
    assert str(runs["started"].min())[:10] in line and "50,000" in line
    assert line in R.summary_caption(res)


def test_a_report_without_the_reference_builds_and_says_so_once(tmp_path):
    res = R.load_results(FIXTURES, reference_dir=tmp_path / "nothing-here")
    assert res.reference is None
    assert "没有找到参考运行" in res.reference_note
    assert "没有找到参考运行" in R.load_results(FIXTURES).reference_note  # the tests' default: none
    shown = R.profile_banner(res) + R.summary_caption(res)
    assert shown.count("没有找到参考运行") == 2  # the scope note and table 1's caption, one line each
    tbl = R.table(R.summary_table(res))
    assert REFERENCE_HEADER not in tbl.df.columns  # a column with nothing in it is left out
    assert REFERENCE_COLUMN not in R.table(R.claims_table(res)).df.columns
    assert all(reference_claim(res, c) is None for c in claims(res))


def test_the_reference_decides_only_what_the_users_scale_cannot(reference):
    res = R.load_results(FIXTURES, reference_dir=reference)
    decided_by_ref = [c for c in claims(res) if reference_claim(res, c) is not None]
    assert decided_by_ref, "the full-data reference should decide some of the subset's 规模不足 claims"
    for c in claims(res):
        ref = reference_claim(res, c)
        if ref is not None:
            assert c.kind == SCALE and ref.kind != SCALE
            assert effective_kind(res, c) == ref.kind
        else:
            assert effective_kind(res, c) == c.kind
    table = R.claims_table(res)
    marked = table[table[REFERENCE_COLUMN] != "—"]
    assert len(marked) == len(decided_by_ref)
    assert marked["结论"].str.startswith(SCALE).all()
    assert marked["本实验测量"].str.contains("参考运行：").all()
    # the reason there is the reference's alone; why the user's scale cannot decide is said once, above
    assert marked["理由"].str.startswith("参考运行：").all()
    assert "理由一栏只写参考运行的理由" in R.comparison_markdown(res)
    assert "理由一栏" not in R.comparison_markdown(R.load_results(FIXTURES, reference_dir=reference.parent / "none"))
    # the tally counts the reference's verdicts in place of 规模不足
    own = R.load_results(FIXTURES, reference_dir=reference.parent / "none")
    assert tally(res)[SCALE] == tally(own)[SCALE] - len(decided_by_ref)
    assert f"其中 {len(decided_by_ref)} 项由参考运行判定" in R.tally_text(res)


def test_reference_sentences_are_marked_and_only_where_the_users_runs_cannot_decide(reference):
    res = R.load_results(FIXTURES, reference_dir=reference)
    se = R.se_section(res)
    assert "参考运行中，SE-ResNet-18" in se  # the user's deep runs are a subset: the reference is cited
    # BaselineNet's comparisons ran on the user's own full data in a cpu report: no citation there
    full = R.load_results(reference / "cpu_all_data", reference_dir=reference)
    assert "参考运行中" not in R.se_section(full) and "参考运行中" not in R.baseline_section(full)


def test_same_data_at_other_budgets_is_decided_and_says_who_trained_longer(tmp_path):
    shutil.copytree(FIXTURES, tmp_path / "r")
    _as_full_data(tmp_path / "r" / "runs")
    res = R.load_results(tmp_path / "r", reference_dir=tmp_path / "none")
    for cfg_path in (tmp_path / "r" / "runs" / "cnn_resnet18_adam").rglob("config.yaml"):
        cfg = yaml.safe_load(cfg_path.read_text())
        cfg["epochs"] = cfg["epochs"] + 5
        cfg_path.write_text(yaml.safe_dump(cfg))
    res = R.load_results(tmp_path / "r", reference_dir=tmp_path / "none")
    c = compare(res, "cnn_resnet18_adam", "cnn_se_resnet18_adam")
    assert c.reason == "budget" and c.paired is not None and c.epochs[0] == c.epochs[1] + 5
    assert c.winner_trained_longer == (c.verdict == "a")


COMMITTED = project_root() / REFERENCE_DIR / "cpu_all_data"


@pytest.mark.committed_reference
@pytest.mark.skipif(not COMMITTED.exists(), reason="no committed reference runs in this checkout")
def test_the_committed_reference_holds_the_study_on_all_data():
    ref, note = load_reference()
    assert ref is not None and note == ""
    st = R.summary_stats(ref)
    for exp in (*STUDY_VARIANTS, PLAIN_CONTROL):  # the six study variants and the plain network
        assert st.loc[exp, "state"] == "completed", exp
        runs = ref.runs[ref.runs["exp_name"] == exp]
        assert runs["train_size"].isin([0, 50_000]).all() and runs["test_size"].isin([0, 10_000]).all()
    for p in COMMITTED.rglob("*"):
        assert p.suffix not in (".pt", ".ipynb"), p
        if p.suffix in (".json", ".yaml"):
            assert "/root/" not in p.read_text() and "/home/" not in p.read_text(), p
    # the skip connection's claims are decided there, ResNet-18 against Plain-18, and say they rest on one seed a side
    for cid in ("degradation", "skip_connections_key"):
        c = R.claim(ref, cid)
        assert c.kind != SCALE and "Plain-18" in c.measured and "每方只有一个种子" in c.reason, (cid, c.verdict)
    # the skip connection's part is credited; "退化" needs two depths, which one depth cannot show
    assert "单个种子" in R.claim(ref, "skip_connections_key").verdict
    assert R.claim(ref, "degradation").verdict == "无法检验（只有一种深度）"
    # BaselineNet has two seeds there: the one-seed caveat names the side that has one
    lead = R.claim(ref, "resnet_vs_baseline")
    assert "ResNet-18只有一个种子" in lead.reason and "每方" not in lead.reason
    readme = (COMMITTED / "README.md").read_text()
    assert "python -m cnn_lab pipeline --profile cpu_all_data" in readme and "Not yet here" not in readme
    for cpu in set(ref.runs["cpu_model"]):  # every machine the runs came from is named
        assert f"- CPU (`lscpu` model line): {cpu};" in readme


def test_the_documented_publish_command_works(tmp_path):
    """docs/reference-runs.md: `python scripts/publish_reference.py ~/ref/cpu_all_data` (here with --dst, into a temporary folder)."""
    import subprocess
    import sys

    src = tmp_path / "ref" / "cpu_all_data"
    shutil.copytree(FIXTURES / "runs", src / "runs")
    _as_full_data(src / "runs")
    readme = (project_root() / "docs" / "reference-runs.md").read_text(encoding="utf-8")
    assert "python scripts/publish_reference.py ~/ref/cpu_all_data" in readme
    out = subprocess.run([sys.executable, "scripts/publish_reference.py", str(src), "--dst", str(tmp_path / "pub")],
                         cwd=project_root(), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "published" in out.stdout
    assert (tmp_path / "pub" / "README.md").exists()
    bad = subprocess.run([sys.executable, "scripts/publish_reference.py", str(tmp_path / "nothing")],
                         cwd=project_root(), capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "no completed runs" in bad.stderr


@pytest.mark.committed_reference
@pytest.mark.skipif(not COMMITTED.exists(), reason="no committed reference runs in this checkout")
def test_the_comparison_table_says_each_reason_and_caveat_in_full_once():
    """A reason the same as an earlier row's points back to it; the one-seed caveat (the committed
    reference has one seed per deep model) is said in full once."""
    from cnn_lab.report.claims.evidence import ONE_SEED_CAVEAT
    from cnn_lab.report.phrases import tidy
    res = R.load_results(FIXTURES, reference_dir=COMMITTED.parent)
    table = R.claims_table(res)
    full = {}
    for c, row in zip(claims(res), table.itertuples()):
        ref = reference_claim(res, c)
        full[row[1]] = tidy(f"参考运行：{ref.reason}" if ref else c.reason)
    reasons = list(table["理由"])
    assert sum(ONE_SEED_CAVEAT in r for r in reasons) == 1 < sum(ONE_SEED_CAVEAT in r for r in full.values())
    seen = {}
    for n, reason in zip(table["#"], reasons):
        if "同第 " in reason.replace("局限同第 ", "") and not reason.startswith("同第 "):
            assert reason.startswith("参考运行：同第 ") and full[n].startswith("参考运行：")
        if reason.removeprefix("参考运行：").startswith("同第 "):
            earlier = reason.removeprefix("参考运行：").removeprefix("同第 ").removesuffix(" 行。")
            assert int(earlier) < int(n) and full[earlier] == full[n] and earlier in seen
        else:
            assert reason not in seen.values()
            seen[n] = reason
        if "局限同第 " in reason:
            assert ONE_SEED_CAVEAT in full[n] and ONE_SEED_CAVEAT not in reason


def test_a_reference_measurement_does_not_repeat_the_clauses_this_runs_cell_already_has():
    from cnn_lab.report.claims.registry import _new_part
    own = "参数量 A 10，B 5；同深度对照（训练子集）：A 30% 对 B 20%"
    assert _new_part(own, "参数量 A 10，B 5；同深度对照：A 70% 对 B 60%") == "同深度对照：A 70% 对 B 60%"
    assert _new_part(own, "A 70% 对 B 60%") == "A 70% 对 B 60%"  # nothing shared: whole
    assert _new_part("X；Y", "X；Y") == "X；Y"  # all shared: kept whole rather than emptied
