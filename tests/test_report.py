"""The report is computed from the runs: tables, text and figures follow the data.

Uses the committed smoke runs in tests/fixtures/smoke (real runs, see its README); tests
that change data work on a copy in tmp_path.
"""
from __future__ import annotations

import json
import re
import shutil
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from conftest import FIXTURES  # noqa: E402
from cnn_lab import report as R  # noqa: E402
from cnn_lab import runio  # noqa: E402
from cnn_lab.report.claims import REFERENCE_COLUMN  # noqa: E402
from cnn_lab.report.labels import mode_label  # noqa: E402
from cnn_lab.report.phrases import null_words  # noqa: E402
from cnn_lab.report.stats import Comparison  # noqa: E402
from cnn_lab.study import CONTROL_VARIANTS, EXTENSION_VARIANTS, STUDY_VARIANTS  # noqa: E402



def acc_col(tbl: pd.DataFrame) -> pd.Series:
    """Table 1's accuracy column ("最终准确率", with "(均值 ± 标准差)" only when a variant has several seeds)."""
    return tbl.filter(like="最终准确率").iloc[:, 0]


def set_last_acc(root: Path, exp: str, seed: int, value: float) -> None:
    p = root / "runs" / exp / f"seed{seed}" / "metrics.csv"
    m = pd.read_csv(p)
    m.loc[m.index[-1], "test_acc"] = value
    m.to_csv(p, index=False)


def set_status(root: Path, exp: str, seed: int, status: str) -> None:
    p = root / "runs" / exp / f"seed{seed}" / "run.json"
    rec = json.loads(p.read_text())
    rec["status"] = status
    p.write_text(json.dumps(rec))


def set_train_size(root: Path, exp: str, n: int) -> None:
    """Relabel a variant's runs as trained on ``n`` images (e.g. 50,000: the full set)."""
    for d in sorted((root / "runs" / exp).glob("seed*")):
        rec = json.loads((d / "run.json").read_text())
        rec["train_size"] = n
        (d / "run.json").write_text(json.dumps(rec))


def last_accs(root: Path, exp: str) -> pd.Series:
    return pd.Series([pd.read_csv(d / "metrics.csv")["test_acc"].iloc[-1]
                      for d in sorted((root / "runs" / exp).glob("seed*"))])


# ------------------------------------------------------------------ loading and tables


def test_fixtures_load_as_tidy_tables(res):
    assert set(res.runs["exp_name"]) == set(STUDY_VARIANTS) | set(CONTROL_VARIANTS) | set(EXTENSION_VARIANTS)
    assert (res.runs.groupby("exp_name")["seed"].nunique() == 2).all()
    assert (res.runs["status"] == "completed").all()
    assert res.profiles == ["smoke"]
    assert res.missing == []
    assert {"exp_name", "seed", "epoch", "test_acc"} <= set(res.epochs.columns)
    assert {"exp_name", "seed", "layer_index", "grad_norm"} <= set(res.grads.columns)
    assert res.confusion.groupby(["exp_name", "seed"])["count"].sum().gt(0).all()
    assert res.cost is not None and {"params", "macs", "step_memory_mb"} <= set(res.cost.columns)


def test_an_empty_run_list_gives_the_runs_table_columns(res):
    runs, epochs, grads, conf = R.load_runs([])
    assert list(runs.columns) == list(res.runs.columns)  # the columns a loaded run has, not ['run', 'return']
    assert {"exp_name", "seed", "final_test_acc", "status"} <= set(runs.columns)
    assert {"exp_name", "seed", "epoch", "test_acc"} <= set(epochs.columns)


def test_an_older_run_json_without_the_newer_fields_still_loads(copy):
    # run.json is read through its schema (runio.RunRecord): a field an older file lacks takes
    # its default, or the value the run's own files give
    d = sorted((copy / "runs").glob("*/seed0"))[0]
    rec = json.loads((d / "run.json").read_text())
    for key in ("epochs_done", "train_seconds", "precision", "compile_epochs", "world_size", "environment", "data"):
        rec.pop(key, None)
    (d / "run.json").write_text(json.dumps(rec))
    m = pd.read_csv(d / "metrics.csv")
    row = R.load_results(copy).runs.set_index("dir").loc[str(d)]
    assert row["status"] == rec["status"] and row["epochs_done"] == len(m)
    assert row["train_seconds"] == pytest.approx(m["seconds"].sum())
    assert row["data_kind"] == "未知" and pd.isna(row["device"])


def test_summary_is_computed_once_per_loaded_report(res):
    a = R.summary_stats(res)
    a.loc[a.index[0], "mean"] = -1.0  # a caller's change does not reach the cached copy
    assert R.summary_stats(res).loc[a.index[0], "mean"] != -1.0
    assert "summary" in res.cache


def test_summary_lists_every_study_variant_with_mean_and_std_of_last_epoch(res):
    tbl = R.summary_table(res)
    for exp in STUDY_VARIANTS:
        accs = last_accs(FIXTURES, exp)
        cell = acc_col(tbl)[exp]
        assert cell.startswith(f"{accs.mean() * 100:.2f}% ± {accs.std(ddof=1) * 100:.2f}%"), (exp, cell)
        assert tbl.loc[exp, "本次种子数"] == len(accs)
        assert tbl.loc[exp, "原报告准确率"].endswith("%")


def test_last_epoch_is_used_never_the_best(copy):
    p = copy / "runs" / "cnn_baseline_adam" / "seed0" / "metrics.csv"
    m = pd.read_csv(p)
    m.loc[0, "test_acc"] = 0.99  # a better earlier epoch must not be picked
    m.loc[m.index[-1], "test_acc"] = 0.30
    m.to_csv(p, index=False)
    st = R.summary_stats(R.load_results(copy))
    others = last_accs(copy, "cnn_baseline_adam")
    assert st.loc["cnn_baseline_adam", "mean"] == pytest.approx(others.mean())
    assert 0.30 in others.values


def test_missing_variant_is_reported(copy):
    shutil.rmtree(copy / "runs" / "cnn_se_resnet18_adam")
    res = R.load_results(copy)
    assert "cnn_se_resnet18_adam" in res.missing
    tbl = R.summary_table(res)
    assert acc_col(tbl)["cnn_se_resnet18_adam"] == "缺失"
    for text in (R.conclusion_markdown(res), R.profile_banner(res)):
        assert "SE-ResNet-18" in text and "缺失" in text
    analysis = R.analysis_markdown(res)
    assert "SE-ResNet-18 与 ResNet-18 无法比较：SE-ResNet-18（缺失）没有可用结果" in analysis
    assert "一个种子" not in R.se_section(res)  # a missing run is not "one seed"
    assert R.claim(res, "se_parity").verdict == "规模不足无法判断"
    R.setup_plotting()
    R.training_curves(res)  # figures still draw
    plt.close("all")


def test_an_extension_without_runs_is_named_from_its_variant_file(copy):
    shutil.rmtree(copy / "runs" / "cnn_resnet18_sgd_cosine_aug")
    res = R.load_results(copy)
    tbl = R.summary_table(res)
    assert acc_col(tbl)["cnn_resnet18_sgd_cosine_aug"] == "缺失"
    assert tbl.loc["cnn_resnet18_sgd_cosine_aug", "变体"] == "ResNet-18 · SGD 0.1 余弦+增强"


def test_diverged_and_failed_runs_are_marked(copy):
    for seed in (0, 1):
        set_status(copy, "cnn_baseline_sgd_high_lr", seed, "diverged")
    set_status(copy, "cnn_densenet121_adam", 0, "failed")
    set_status(copy, "cnn_densenet121_adam", 1, "failed")
    set_status(copy, "cnn_baseline", 1, "diverged")
    res = R.load_results(copy)
    tbl = R.summary_table(res)
    assert acc_col(tbl)["cnn_baseline_sgd_high_lr"] == "发散"
    assert acc_col(tbl)["cnn_densenet121_adam"] == "失败"
    assert "另有 1 个种子发散" in acc_col(tbl)["cnn_baseline"]
    assert tbl.loc["cnn_baseline", "本次种子数"] == 1
    assert "BaselineNet（SGD，学习率 0.01）（发散）" in R.conclusion_markdown(res)


# what the notebook shows, in order (2.3.x: analysis_markdown; appendix A: printouts, stages)
TEXT_SECTIONS = ("profile_banner", "overview_markdown", "architecture_markdown", "summary_caption", "settings_text",
                 "settings_caption", "curves_lead", "curves_markdown", "analysis_lead", "analysis_markdown",
                 "gradient_lead", "gradient_caption", "gradient_markdown", "cost_lead", "cost_caption", "cost_markdown",
                 "per_class_lead", "confusion_lead", "per_class_markdown", "seeds_markdown", "comparison_markdown",
                 "comparison_caption", "conclusion_markdown")
SECTIONS = TEXT_SECTIONS + ("summary_table", "settings_table", "training_curves", "gradient_flow_figures",
                            "gradient_ratio_table", "cost_table", "stage_table", "per_class_figure",
                            "confusion_figure", "study_comparison", "printouts", "stages", "environment_markdown")


@pytest.mark.parametrize("case", ["every run failed", "no runs at all"])
def test_report_renders_without_a_single_completed_run(copy, case):
    if case == "every run failed":
        for p in (copy / "runs").glob("*/seed*/run.json"):
            set_status(copy, p.parent.parent.name, int(p.parent.name[4:]), "failed")
    else:
        shutil.rmtree(copy / "runs")
        (copy / "runs").mkdir()
    res = R.load_results(copy)
    R.setup_plotting()
    out = {name: getattr(R, name)(res) for name in SECTIONS}  # none of them raises
    plt.close("all")
    cells = acc_col(out["summary_table"])
    assert set(cells[list(STUDY_VARIANTS)]) == {"失败" if case == "every run failed" else "缺失"}
    assert R.best_variant(res) is None
    assert R.per_class_accuracy(res).empty


def test_se_resnet_clearly_better_changes_table_and_text(copy):
    for seed, (se, rn) in enumerate(((0.90, 0.50), (0.91, 0.51))):
        set_last_acc(copy, "cnn_se_resnet18_adam", seed, se)
        set_last_acc(copy, "cnn_resnet18_adam", seed, rn)
    for exp in ("cnn_se_resnet18_adam", "cnn_resnet18_adam"):
        set_train_size(copy, exp, 50_000)  # as if trained on the whole set
    res = R.load_results(copy)
    tbl = R.summary_table(res)
    assert acc_col(tbl)["cnn_se_resnet18_adam"].startswith("90.50% ± 0.71%")
    assert tbl.loc["cnn_se_resnet18_adam", "差值（个百分点）"] == "+8.50"
    text = R.analysis_markdown(res)
    assert "SE-ResNet-18 90.50% 对 ResNet-18 50.50%，差 +40.00 个百分点" in text
    assert "SE-ResNet-18 显著高于 ResNet-18" in text
    se = R.claim(res, "se_parity")
    assert se.verdict == "不成立"
    concl = R.conclusion_markdown(res)
    assert "SE-ResNet-18 显著高于 ResNet-18（差 40.00 个百分点）" in concl
    # the verdict itself stands once, in the 2.8 table; the summary points at its row
    assert "持平”不成立" not in concl and "表 5 第" in concl


def se_behind_resnet(copy: Path, se_accs: tuple[float, float], gap: float):
    """The fixture copy with SE-ResNet-18 at ``se_accs`` (two seeds) and ResNet-18 ``gap`` above
    each, both relabelled as trained on all 50,000 images, loaded."""
    for seed, v in enumerate(se_accs):
        set_last_acc(copy, "cnn_se_resnet18_adam", seed, v)
        set_last_acc(copy, "cnn_resnet18_adam", seed, v + gap)
    for exp in ("cnn_se_resnet18_adam", "cnn_resnet18_adam"):
        set_train_size(copy, exp, 50_000)
    return R.load_results(copy)


def test_se_resnet_equal_within_seed_spread(copy):
    res = se_behind_resnet(copy, (0.50, 0.60), 0.01)
    text = R.analysis_markdown(res)
    assert "SE-ResNet-18 55.00% 对 ResNet-18 56.00%，差 −1.00 个百分点" in text
    # two seeds 10 points apart: the interval is far too wide to rank the two, and the text says so
    assert re.search(r"SE-ResNet-18 55\.00% 对 ResNet-18 56\.00%[^。]*：95% 区间宽达 \d+ 个百分点，这组数据排不出高低", text)
    # not significant, but the interval reaches well beyond a point either way: parity not shown
    parity = R.claim(res, "se_parity")
    assert parity.verdict == "差异在误差内" and "不显著不等于持平" in parity.reason


def test_se_resnet_parity_holds_when_the_whole_interval_is_within_a_point(copy):
    res = se_behind_resnet(copy, (0.500, 0.502), 0.001)
    c = R.compare(res, "cnn_se_resnet18_adam", "cnn_resnet18_adam")
    assert not c.significant and max(abs(c.low), abs(c.high)) <= 0.01
    assert R.claim(res, "se_parity").verdict == "成立"


def test_a_difference_not_found_is_worded_by_its_interval(copy):
    # equal within a point, too wide to rank, or simply no larger than the noise: three
    # different things a statistician would say, not one "在误差内" for all
    tight = Comparison("a", "b", "tie", diff=0.001, p=0.6, low=-0.004, high=0.006, seeds=object())
    wide = Comparison("a", "b", "tie", diff=0.02, p=0.4, low=-0.15, high=0.19)
    middle = Comparison("a", "b", "tie", diff=0.01, p=0.2, low=-0.01, high=0.03)
    assert tight.equivalent and not wide.equivalent and not middle.equivalent
    assert null_words(tight) == "两者相当，95% 区间整个落在 ±1 个百分点之内"
    assert null_words(wide) == "95% 区间宽达 34 个百分点，这组数据排不出高低"
    assert null_words(middle) == "这点差别没有超出测试图抽样带来的波动"  # one seed: test images only
    assert "种子与测试图抽样" in null_words(Comparison("a", "b", "tie", low=-0.01, high=0.03, seeds=object()))
    # a significant difference is never "equivalent", however narrow its interval
    assert not Comparison("a", "b", "a", low=0.002, high=0.008).equivalent
    # on the SE fixture copy: the parity claim and the prose agree
    res = se_behind_resnet(copy, (0.500, 0.502), 0.001)
    assert R.compare(res, "cnn_se_resnet18_adam", "cnn_resnet18_adam").equivalent
    assert "两者相当，95% 区间整个落在 ±1 个百分点之内" in R.analysis_markdown(res)


@pytest.mark.committed_reference
def test_each_section_says_where_its_claims_are_judged_and_by_which_runs():
    # 2.3.x gives the argument; the verdicts are in the 2.8 table, and the section counts them by
    # the runs that decide them, as the table's own columns do
    res = R.load_results(FIXTURES)
    table = R.claims_table(res)
    decided = []
    for topic, section in (("2.3.2", R.resnet_section), ("2.3.3", R.densenet_section)):
        rows = table[[c.topic == topic for c in R.claims(res)]]
        # a reference verdict of 无法检验 leaves the claim open, and the section counts it so
        by_ref = int(sum(v != "—" and not v.startswith("无法检验") for v in rows[REFERENCE_COLUMN]))
        decided.append(by_ref)
        text = section(res)
        claims_para = text.split("**与原报告的说法**")[1].split("\n\n")[0]
        assert f" {len(rows)} 条说法" in claims_para and f"表 5 第 {rows['#'].iloc[0]}–{rows['#'].iloc[-1]} 行" in claims_para
        assert (f"{by_ref} 条本次规模不足、由参考运行判定" in text) if by_ref else ("由参考运行判定" not in text)
        assert not any(v in text.split("**与原报告的说法**")[1].split("**")[0] for v in ("不成立", "部分成立"))
    assert any(decided)  # the fixture's reference decides some of them


def test_a_subset_or_a_scale_mismatch_decides_no_claim(copy):
    # the fixture's deep runs trained on 100 images: a clear gap there is reported, with the
    # caveat, but the study's claim about trained models is left undecided
    for seed, (se, rn) in enumerate(((0.90, 0.50), (0.91, 0.51))):
        set_last_acc(copy, "cnn_se_resnet18_adam", seed, se)
        set_last_acc(copy, "cnn_resnet18_adam", seed, rn)
    res = R.load_results(copy)
    text = R.analysis_markdown(res)
    assert "SE-ResNet-18 90.50% 对 ResNet-18 50.50%" in text
    # worded without a verdict label, so the text cannot contradict the claim's 规模不足无法判断
    assert "训练初期 SE-ResNet-18 领先于 ResNet-18" in text
    sentence = re.search(r"SE-ResNet-18 90\.50% 对 ResNet-18 50\.50%[^。]*。", text).group()
    assert "显著高于" not in sentence and "排不出高低" not in sentence and "差别没有超出" not in sentence
    # the subset caveat is stated once, in 2.1, not beside each comparison
    assert "不足完整训练集" in R.settings_text(res) and "不再逐处重复" in R.settings_text(res)
    assert "只反映训练初期" not in text and "不作判断" not in text  # the subset caveat: said once, in 2.1
    se = R.claim(res, "se_parity")
    assert se.verdict == "规模不足无法判断" and "训练子集" in se.reason
    # ResNet-18 (100 images) against BaselineNet (500 images): not comparable at all
    assert "训练规模不同" in text
    assert R.claim(res, "resnet_vs_baseline").verdict == "规模不足无法判断"


def test_baseline_ranking_follows_the_data(copy):
    for seed in (0, 1):
        set_last_acc(copy, "cnn_baseline", seed, 0.70 + seed * 0.01)
        set_last_acc(copy, "cnn_baseline_adam", seed, 0.40 + seed * 0.01)
        set_last_acc(copy, "cnn_baseline_sgd_high_lr", seed, 0.20 + seed * 0.01)
    text = R.analysis_markdown(R.load_results(copy))
    assert "由高到低为 BaselineNet（SGD，学习率 0.001）70.50%、BaselineNet（Adam，学习率 0.001）40.50%" in text
    assert "准确率从 70.50% 变为 20.50%，训练初期学习率 0.001 领先于学习率 0.01" in text


def set_config(root: Path, exp: str | None, **values) -> None:
    """Rewrite fields of the config.yaml of a variant's runs (every variant when exp is None)."""
    import yaml
    for p in (root / "runs").glob(f"{exp or '*'}/seed*/config.yaml"):
        cfg = yaml.safe_load(p.read_text())
        cfg.update(values)
        p.write_text(yaml.safe_dump(cfg))


def both_seeds(root: Path, exp: str, acc: float) -> None:
    for seed in (0, 1):
        set_last_acc(root, exp, seed, acc + 0.01 * seed)


def test_stem_explanation_is_offered_only_where_the_data_calls_for_it(copy):
    both_seeds(copy, "cnn_resnet18_adam", 0.50)
    both_seeds(copy, "cnn_densenet121_adam", 0.20)
    both_seeds(copy, "cnn_densenet121_cifar_stem_adam", 0.60)
    res = R.load_results(copy)
    text = R.densenet_section(res)
    # on the smoke profile's training subset a significant lead reflects early training only
    assert "还不能检验本项目的假设（ImageNet 式输入层限制了 DenseNet-121" in text and "这支持" not in text
    assert "训练初期 CIFAR 输入层版领先于原版" in R.conclusion_markdown(res)
    for exp in ("cnn_densenet121_adam", "cnn_densenet121_cifar_stem_adam"):
        set_train_size(copy, exp, 50_000)
    assert "这支持本项目的假设：ImageNet 式输入层限制了 DenseNet-121" in R.densenet_section(R.load_results(copy))
    for exp in ("cnn_densenet121_adam", "cnn_densenet121_cifar_stem_adam"):
        set_train_size(copy, exp, 100)
    # DenseNet ahead of ResNet, CIFAR stem behind: no stem story
    both_seeds(copy, "cnn_densenet121_adam", 0.70)
    res = R.load_results(copy)
    text, concl = R.densenet_section(res), R.conclusion_markdown(res)
    # 10 points on 100 test images is within the error (Fisher's exact test: the predictions
    # no longer match the edited accuracies, so the unpaired test decides)
    assert "还不能检验" in text and "这支持" not in text
    for exp in ("cnn_densenet121_adam", "cnn_densenet121_cifar_stem_adam"):
        set_train_size(copy, exp, 50_000)
    text = R.densenet_section(R.load_results(copy))
    assert "本数据不能说明输入层对准确率有影响" in text and "这支持" not in text
    assert re.search(r"CIFAR 输入层版比原版[高低] 10\.00 个百分点（p=0\.\d+），(95% 区间宽达|这点差别没有超出)", concl), concl


def test_learning_rates_and_trend_in_the_text_come_from_the_runs(copy):
    both_seeds(copy, "cnn_baseline", 0.20)
    both_seeds(copy, "cnn_baseline_sgd_high_lr", 0.60)
    set_config(copy, "cnn_baseline_sgd_high_lr", lr=0.02)
    res = R.load_results(copy)
    text = R.analysis_markdown(res)
    assert "只把 SGD 的学习率从 0.001 提高到 0.02，准确率从 20.50% 变为 60.50%，训练初期学习率 0.02 领先于学习率 0.001" in text


def test_settings_text_reads_the_training_scale_from_the_runs(copy):
    set_config(copy, None, profile="cpu")
    res = R.load_results(copy)
    assert "smoke" not in R.profile_banner(res)
    text = R.settings_text(res)
    assert "BaselineNet 的变体（3 个）在 500 张训练图上训练 2 个 epoch（批大小 50），在 200 张测试图上评估" in text
    # the matched BaselineNet trains at the deep budget and is counted with the deep variants
    assert "深层模型的变体（含按同样规模训练的 BaselineNet 对照）（7 个）在 100 张训练图上训练 1 个 epoch" in text
    assert "不足完整训练集" in text
    # all on the full training set and one seed each: no subset caveat, the single-seed one instead
    for exp in res.variants():
        set_train_size(copy, exp, 50_000)
    for d in (copy / "runs").glob("*/seed1"):
        shutil.rmtree(d)
    text = R.settings_text(R.load_results(copy))
    assert "不足完整训练集" not in text and "只有一个种子的变体无法估计种子间波动" in text


def test_smoke_conclusion_quotes_the_measured_best(copy):
    both_seeds(copy, "cnn_baseline_adam", 0.33)
    assert "最高的平均最终准确率只有 33.50%" in R.conclusion_markdown(R.load_results(copy))


def test_gradient_ratio_comes_from_grad_norms(res, copy):
    gr = R.gradient_ratios(res).set_index("exp_name")
    g = pd.read_csv(FIXTURES / "runs" / "cnn_baseline_adam" / "seed0" / "grad_norms.csv")
    assert gr.loc["cnn_baseline_adam", "layers"] == g["layer_index"].max() + 1

    def expected(root):
        parts = []
        for d in sorted((root / "runs" / "cnn_baseline_adam").glob("seed*")):
            x = pd.read_csv(d / "grad_norms.csv")
            x = x[x["epoch"] == x["epoch"].max()]
            first = x[x["layer_index"] == 0].set_index("step")["grad_norm"]
            last = x[x["layer_index"] == x["layer_index"].max()].set_index("step")["grad_norm"]
            parts.append(first / last)
        return pd.concat(parts).median()

    assert gr.loc["cnn_baseline_adam", "late_ratio"] == pytest.approx(expected(FIXTURES))
    # shrink every first-layer norm of the last epoch a thousandfold: the ratio follows
    for d in (copy / "runs" / "cnn_baseline_adam").glob("seed*"):
        x = pd.read_csv(d / "grad_norms.csv")
        mask = (x["layer_index"] == 0) & (x["epoch"] == x["epoch"].max())
        x.loc[mask, "grad_norm"] /= 1000
        x.to_csv(d / "grad_norms.csv", index=False)
    res2 = R.load_results(copy)
    gr2 = R.gradient_ratios(res2).set_index("exp_name")
    assert gr2.loc["cnn_baseline_adam", "late_ratio"] == pytest.approx(expected(copy))
    assert gr2.loc["cnn_baseline_adam", "late_ratio"] == pytest.approx(gr.loc["cnn_baseline_adam", "late_ratio"] / 1000)
    vanishing = R.claim(res2, "vanishing")  # the Adam runs' first layer now gets a thousandth
    assert vanishing.verdict.startswith("部分成立") and "Adam" in vanishing.reason
    tbl = R.gradient_ratio_table(res2).set_index("变体")
    assert tbl.loc[R.variant_short(res2, "cnn_baseline_adam"), "后期比值 (首层/末层)"] == f"{gr2.loc['cnn_baseline_adam', 'late_ratio']:.3f}"


def test_stage_numbers_are_computed():
    ss = R.stage_summary(["densenet121", "resnet18"])
    assert round(ss.loc["densenet121", "macs"] / 1e6) == 58
    assert round(ss.loc["resnet18", "macs"] / 1e6) == 555
    assert R._last_block_resolution("densenet121") == ("features.denseblock4", 1)


def test_smoke_profile_is_prominent(res):
    assert "本报告基于 smoke 配置" in R.profile_banner(res)
    assert "结论仅供流程验证" in R.conclusion_markdown(res)


def body_text(res) -> str:
    return "\n\n".join(getattr(R, name)(res) for name in TEXT_SECTIONS)


def test_each_caveat_is_stated_once(res):
    body = body_text(res)
    assert body.count("不在测试集上挑选") == 1
    assert body.count("不再逐处重复") == 1
    # a long variant name is defined once and its short name used after
    assert body.count("ResNet-18（SGD，学习率 0.1") == 1 and body.count("ResNet-18（SGD 配方）指") == 1
    assert body.count("在训练子集上") <= 1


def test_gradient_table_names_layers_in_words(res):
    t = R.table(R.gradient_ratio_table(res))
    shown = repr(t)
    assert "卷积层 / 全连接层" in shown and ".weight" not in shown


def test_model_printout_folds_repeated_blocks():
    text = R.model_printout("densenet121")
    assert "(其余 5 个结构相同的模块省略)" in text  # denseblock1: 6 layers
    assert "参数量：6,964,106" in text
    assert text.count("\n") < 250
    assert "参数量：62,006" in R.model_printout("baseline")


# ------------------------------------------------------------------ fonts and figures


def test_chinese_text_renders_with_the_cjk_font():
    from matplotlib import font_manager

    family = R.setup_plotting()
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, -1], label="测试准确率")
    ax.set_title("训练过程：梯度范数")
    ax.set_xlabel("归一化层深度")
    ax.set_ylabel("损失 −1")
    ax.legend(title="变体")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig.canvas.draw()
    plt.close(fig)
    assert not [w for w in caught if "Glyph" in str(w.message)]
    used = font_manager.findfont(font_manager.FontProperties(family=["sans-serif"]))
    assert "CJK" in used or "cjk" in used.lower(), used
    assert "CJK" in family


def test_per_class_accuracy_matches_confusion(res):
    acc = R.per_class_accuracy(res)
    assert list(acc.columns) == R.CLASS_LABELS
    assert set(acc.index) == set(res.runs["exp_name"])
    st = R.summary_stats(res)
    # equal test-set class counts: the mean per-class accuracy is the pooled accuracy
    for exp in acc.index:
        assert acc.loc[exp].mean() == pytest.approx(st.loc[exp, "mean"], abs=1e-9)


def test_memory_claim_follows_cost_csv(copy):
    res = R.load_results(copy)
    row = R.claim(res, "densenet_memory")
    c = res.cost.set_index("model")
    d, r, k = (c.loc[m, "step_memory_mb"] for m in ("densenet121", "resnet18", "densenet121_cifar"))
    assert f"DenseNet-121（ImageNet 输入层）{d:.1f} MB" in row.measured and "显存的代理指标" in row.measured
    assert row.verdict == ("成立" if d > 1.1 * r else "不成立（对原报告的模型）")
    # make DenseNet-121 take three times ResNet-18's memory: the verdict and the text follow
    cost = pd.read_csv(copy / "cost.csv")
    cost.loc[cost["model"] == "densenet121", "step_memory_mb"] = 3 * r
    cost.to_csv(copy / "cost.csv", index=False)
    res = R.load_results(copy)
    row = R.claim(res, "densenet_memory")
    assert row.verdict == "成立" and f"（ImageNet 输入层）{3 * r:.1f} MB" in row.measured and "（3.00 倍）" in row.measured
    assert "DenseNet-121 训练内存高于 ResNet-18" in row.reason
    assert f"ResNet-18 为 {r:.1f} MB（3.00 倍）" in R.densenet_section(res)


# ------------------------------------------------------------------ tables (their layout: test_layout.py)


def test_tables_drop_the_index_and_move_single_valued_columns_to_the_caption():
    df = pd.DataFrame({"实验名称": ["cnn_a", "cnn_b"], "设备": ["cpu", "cpu"], "准确率": ["9.50%", "17.00% ± 4.24%"],
                       "说明": ["完成", "完成了"]})
    t = R.table(df, "表 9　示例")
    assert list(t.df.columns) == ["实验名称", "准确率", "说明"] and t.caption_text() == "表 9　示例；设备：cpu。"
    html = t._repr_html_()
    assert '<th class="num"><span class="w">准确率</span></th>' in html and '<th><span class="w">说明</span></th>' in html
    assert '<td><span class="w">完成</span></td>' in html  # a short cell is kept whole
    # the row's name is never broken inside the identifier; no index column
    assert '<td class="name">cnn_a</td>' in html and "<wbr>" not in html and "<th></th>" not in html
    df["层"] = ["conv1.weight", "fc.weight"]
    assert "conv1.<wbr>weight" in R.table(df)._repr_html_()  # identifiers elsewhere may break after "."
    assert repr(t).splitlines()[0] == t.caption_text()
    # a column's note follows the caption's first sentence, never a provenance line after it
    two = R.table(df, "表 9　示例。参考运行：另一台机器上的 7 个变体。")
    assert two.caption_text() == "表 9　示例；设备：cpu。参考运行：另一台机器上的 7 个变体。"


ARCH_SECTIONS = ("baseline_section", "resnet_section", "densenet_section", "se_section")


def test_each_architecture_section_has_mechanism_data_and_limits(res):
    from cnn_lab.report.analysis import CLAIMS, DATA, LIMITS, MECHANISM

    table = R.study_comparison(res)
    for i, name in enumerate(ARCH_SECTIONS, 1):
        text = getattr(R, name)(res)
        assert text.startswith(f"#### 2.3.{i} ")
        paras = [p for p in text.split("\n\n") if p.startswith("**")]
        marks = (MECHANISM, DATA, CLAIMS, LIMITS)
        assert [p[:len(m)] for p, m in zip(paras, marks)] == list(marks)
        assert all(len(p) > len(MECHANISM) + 40 for p in (paras[0], paras[1], paras[3])), name
        assert "没有可用的运行结果" not in text
        # the study's claims of this subsection: argued here, judged once in the 2.8 table (its rows named)
        here = R.section_claims(res, f"2.3.{i}")
        assert R.row_numbers(res, [c.id for c in here]) in paras[2]
        for c in here:
            assert f"**{c.verdict}**" not in text and c.verdict in set(table["结论"])


# the body (everything before the appendices) speaks of the experiment, not of the tool
INTERNALS = re.compile(r"cnn_lab|papermill|reports_dir|\bcnn_\w+|\.\./|/work/|\w+\.(csv|yaml|json|ipynb)\b|"
                       r"\bpp\b|features\.denseblock|上图|full 配置|\w+\.(weight|bias)\b|shortcut|\bstage\b|channels_last")


def test_body_text_names_no_tool_internals(res, copy):
    assert not INTERNALS.search(body_text(res)), INTERNALS.search(body_text(res))
    shutil.rmtree(copy / "runs" / "cnn_se_resnet18_adam")  # missing and diverged variants are named readably too
    set_status(copy, "cnn_baseline", 0, "diverged")
    body = body_text(R.load_results(copy))
    assert not INTERNALS.search(body), INTERNALS.search(body)


def test_the_committed_notebook_body_names_no_tool_internals():
    import nbformat

    nb = nbformat.read(Path(__file__).parents[1] / "notebooks" / "analysis.ipynb", as_version=4)
    text = []
    for c in nb.cells:
        if c.cell_type == "markdown":
            if c.source.startswith("## 附录"):
                break
            text.append(c.source)
        else:
            text += [o["data"].get("text/markdown", "") for o in c.get("outputs", []) if "data" in o]
    assert len(text) > 20 and not INTERNALS.search("\n".join(text))


# ------------------------------------------------------------------ the rendered report (conftest.rendered)


@pytest.mark.slow
def test_the_executed_report_has_no_stderr_or_error_outputs(rendered):
    import nbformat

    nb = nbformat.read(rendered[0], as_version=4)
    outs = [o for c in nb.cells for o in c.get("outputs", [])]
    assert outs
    assert not [o for o in outs if o.get("output_type") == "error" or o.get("name") == "stderr"]
    assert not [o for o in outs if "application/vnd.jupyter.stderr" in o.get("data", {})]


def set_seconds(root: Path, exp: str, seconds: float) -> None:
    for p in (root / "runs" / exp).glob("seed*/metrics.csv"):
        m = pd.read_csv(p)
        m["seconds"] = seconds
        m.to_csv(p, index=False)


@pytest.mark.parametrize("order, words", [
    ((10, 20, 21, 40), "用时随计算量单调增加"),  # DenseNet, ResNet, SE-ResNet, CIFAR-stem DenseNet: by MACs
    ((40, 21, 20, 10), "用时与计算量的大小恰好相反"),
    ((30, 10, 11, 40), "没有一致的关系"),
])
def test_speed_sentence_follows_the_data(copy, order, words):
    exps = ("cnn_densenet121_adam", "cnn_resnet18_adam", "cnn_se_resnet18_adam", "cnn_densenet121_cifar_stem_adam")
    for exp, sec in zip(exps, order):
        set_seconds(copy, exp, sec)
    set_seconds(copy, "cnn_resnet18_sgd_cosine_aug", 1e6)  # not the reference variant: not counted
    set_seconds(copy, "cnn_plain18_adam", (order[0] + order[1]) / 2)  # Plain-18's MACs lie between these two
    text = R.cost_markdown(R.load_results(copy))
    assert words in text
    others = {"用时随计算量单调增加", "用时与计算量的大小恰好相反", "没有一致的关系"} - {words}
    assert not any(w in text for w in others)
    if order == (10, 20, 21, 40):  # "not proportional" is said against ResNet-18, the report's yardstick
        assert "DenseNet-121 的计算量只有 ResNet-18 的 10%，用时却达 50%" in text
    # a cheaper model that is slower is named, with the hedged reason
    assert ("计算量只有" in text and "这是推测" in text) == (order[0] > order[1] * 1.1)


def test_noise_is_not_read_as_a_finding(copy):
    res = R.load_results(copy)  # 200 test images, accuracies near 10%: every last-epoch change is noise
    curves = R.curves_markdown(res)
    assert "抽样误差之内" in curves and "尚未收敛" not in curves and "趋平" not in curves
    # ResNet-18's train and test accuracy are both near chance: no "测试集反而高出"
    assert "测试集反而高出" not in R.resnet_section(res) and "与随机猜测（10%）相差无几" in R.resnet_section(res)
    # a model putting most test images in one class: collapse, not a "most confused pair"
    best = R.best_variant(res)
    f = R.confusion_facts(res, best)
    assert f["top_pred_share"] > 0.5
    text = R.per_class_markdown(res)
    assert "预测坍缩" in text and "最常混淆的一对类别" not in text


def test_old_runs_without_numel_get_the_per_parameter_measure(copy):
    for p in (copy / "runs").glob("*/seed*/grad_norms.csv"):
        g = pd.read_csv(p)
        g.drop(columns=["numel", "weight_norm"]).to_csv(p, index=False)
    old, new = R.gradient_ratios(R.load_results(copy)), R.gradient_ratios(R.load_results(FIXTURES))
    assert old["early_rms"].notna().all()
    pd.testing.assert_series_equal(old["late_rms"], new["late_rms"])
    res = R.load_results(copy)
    assert "没有" not in R.claim(res, "vanishing").measured and "每参数" in R.gradient_markdown(res)


def test_single_seed_reports_show_no_spread_template(copy):
    for d in (copy / "runs").glob("*/seed1"):
        shutil.rmtree(d)
    res = R.load_results(copy)
    assert "±" not in R.summary_caption(res) and "阴影" not in R.curves_lead(res)
    assert "最终准确率" in R.summary_table(res).columns
    caption = R.table(R.settings_table(res), R.settings_caption(res)).caption_text()
    assert "种子 0" in caption and "种子：" not in caption
    method = R.method_text(res)
    assert "每个变体只有一个种子" in method and "Welch" not in method
    assert "（单种子，种子间波动未计入）" not in R.analysis_markdown(res)


def test_method_names_fisher_only_where_it_is_the_fallback(copy):
    assert "Fisher" not in R.method_text(R.load_results(FIXTURES))
    for p in (copy / "runs" / "cnn_baseline").glob("seed*/predictions.npy"):
        p.unlink()
    method = R.method_text(R.load_results(copy))
    assert "McNemar" in method and "BaselineNet（SGD，学习率 0.001）的运行没有保存逐图预测" in method and "Fisher" in method


def set_precision(root: Path, model: str, precision: dict, processor: str) -> None:
    for rj in (root / "runs").glob("*/seed*/run.json"):
        rec = runio.read_json(rj)
        if rec["model"] == model:
            rec["precision"] = precision
            rec["environment"]["processor"] = processor
            runio.write_json(rj, rec)


def test_cost_table_and_appendix_show_the_precision_and_the_flops_achieved(copy):
    timings = {"fp32": 0.0101, "bf16": 0.0084, "fp32 + channels_last": 0.0085, "bf16 + channels_last": 0.0073}
    set_precision(copy, "baseline", {"amp": "bf16", "channels_last": "on", "source": "measured", "reason": "fastest",
                                      "timings_s": timings}, "Example CPU 9000")
    set_precision(copy, "resnet18", {}, None)  # runs from before the mode was recorded, on an unnamed CPU
    res = R.load_results(copy)
    cost = res.cost.set_index("model")
    tbl = R.cost_table(res).set_index("变体")
    for exp in res.variants():
        sub = res.runs[res.runs["exp_name"] == exp]
        row = tbl.loc[R.variant_short(res, exp)]
        flops = 6 * cost.loc[sub.iloc[0]["model"], "macs"] * sub["images_per_s"].mean() / 1e9
        assert row["实际算力 (GFLOP/s)"] == f"{flops:.1f}"
        # the mode each run recorded; runs recorded before the choice was kept trained in fp32, NCHW
        rec = json.loads((Path(sub.iloc[0]["dir"]) / runio.RUN).read_text()).get("precision") or {}
        assert row["数值格式/布局"] == mode_label(rec.get("amp", "off"), rec.get("channels_last", "off"))
    assert "处理器 Example CPU 9000" in R.environment_markdown(res)
    prec = R.precision_table(res).set_index("模型")
    assert prec.loc["BaselineNet", "训练所用"] == "bf16/NHWC" and prec.loc["BaselineNet", "选定方式"] == "auto 实测取最快"
    assert prec.loc["BaselineNet", "bf16/NHWC (ms/步)"] == "7.3" and prec.loc["BaselineNet", "fp32/NCHW (ms/步)"] == "10.1"
    assert prec.loc["ResNet-18", "训练所用"] == "fp32/NCHW" and prec.loc["ResNet-18", "fp32/NCHW (ms/步)"] == "—"
    assert prec.loc["ResNet-18", "选定方式"].startswith("未记录")
    assert "Example CPU" not in R.cost_lead(res)  # not every run says which CPU it ran on
    for model in ("resnet18", "se_resnet18", "densenet121", "densenet121_cifar", "plain18"):
        set_precision(copy, model, {}, "Example CPU 9000")
    assert "在 Example CPU 9000 上" in R.cost_lead(R.load_results(copy))


def test_a_percentage_prints_the_same_everywhere():
    """0.62185 as a numpy and as a Python float (a table row from iterrows): one rounding."""
    import numpy as np

    from cnn_lab.report.labels import pct, shown

    assert pct(np.float64(0.62185), 2) == pct(0.62185, 2) == pct(0.6218500000000001, 2)
    assert shown(np.float64(0.62185)) == shown(0.62185)


def test_a_variant_its_profile_leaves_out_is_not_reported_missing(copy):
    from cnn_lab.study import EXTENSION_VARIANTS

    for exp in EXTENSION_VARIANTS:
        shutil.rmtree(copy / "runs" / exp)
    smoke = R.load_results(copy)  # the smoke profile trains the extensions: they are missing
    assert smoke.missing == list(EXTENSION_VARIANTS)
    assert set(EXTENSION_VARIANTS) <= set(R.summary_stats(smoke).index)
    for cfg in (copy / "runs").rglob("config.yaml"):
        cfg.write_text(cfg.read_text().replace("profile: smoke", "profile: cpu"))
    cpu = R.load_results(copy)  # the cpu profile leaves them out: not missing, not a row
    assert cpu.missing == [] and not set(EXTENSION_VARIANTS) & set(R.summary_stats(cpu).index)
    assert "缺失的变体" not in R.overview_markdown(cpu) + R.environment_markdown(cpu)


def test_a_fresh_machine_s_font_cache_notice_stays_out_of_the_report(caplog):
    """On a fresh, slow machine matplotlib says on stderr that it is building its font cache,
    which the analysis notebook would print into the report's first cell; other font messages pass."""
    import logging

    R.setup_plotting()
    log = logging.getLogger("matplotlib.font_manager")
    with caplog.at_level(logging.WARNING, logger=log.name):
        log.warning("Matplotlib is building the font cache; this may take a moment.")
        log.warning("findfont: Font family 'X' not found.")
    assert [r.getMessage() for r in caplog.records] == ["findfont: Font family 'X' not found."]
