"""The report's layout, printed on A4 and on screen.

Figures are drawn and shown at their printed size with readable fonts, nothing cut or
overlapping, and carry an alt text computed from the data; an outlier does not flatten the
loss axis; a deep model's gradient profile is summarised per block. The exported page:
table headers break only between words, every image has a meaningful alt, no page is left
mostly blank, and on screen the text has a reading width.

Figure tests use the committed smoke runs (tests/fixtures/smoke; a copy where they change
data); the page tests render the analysis notebook executed on them (conftest.rendered) in
headless Chromium.
"""
from __future__ import annotations

import io
import re
import shutil
import subprocess
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from conftest import FIXTURES, assert_printed_report, chromium_or_skip  # noqa: E402

from cnn_lab import report as R  # noqa: E402
from cnn_lab.report.figures import MODELS_PER_ROW, bulk_limit, layer_block  # noqa: E402
from cnn_lab.report.measures import confusion_matrix  # noqa: E402

A4_TEXT_IN = (297 - 15 - 16) / 25.4  # the printed page's text height (the print style's margins)
A4_WIDTH_IN = (210 - 2 * 15) / 25.4  # its text width in inches (A4 less the 15 mm side margins)
SMALLEST_PT = 8  # the smallest text readable in print
A4_TEXT_PX = round((210 - 2 * 15) / 25.4 * 96)  # its text width in CSS px (A4 less the 15 mm side margins)
CJK = re.compile(r"[\u4e00-\u9fff]")


def all_figures(res) -> dict[str, list]:
    """Every figure of the report, by the function that draws it."""
    R.setup_plotting()
    return {"training_curves": R.training_curves(res), "gradient_flow_figures": R.gradient_flow_figures(res),
            "per_class_figure": [R.per_class_figure(res)], "confusion_figure": [R.confusion_figure(res)],
            "variant_curves": [R.variant_curves(FIXTURES / "runs" / "cnn_baseline_adam")]}


def shown_ticklabels(ax) -> list:
    lo, hi = sorted(ax.get_xlim())
    return [lab for loc, lab in zip(ax.get_xticks(), ax.get_xticklabels()) if lo <= loc <= hi]


def set_test_loss(root: Path, exp: str, seed: int, epoch: int, value: float) -> None:
    p = root / "runs" / exp / f"seed{seed}" / "metrics.csv"
    m = pd.read_csv(p)
    m.loc[m["epoch"] == epoch, "test_loss"] = value
    m.to_csv(p, index=False)


# ------------------------------------------------------------------ figures


def test_figures_have_the_expected_axes(res):
    R.setup_plotting()
    groups = R.scale_groups(res)
    figs = R.training_curves(res)
    assert len(groups) == 2 and len(figs) == len(groups)  # 500-image and 100-image runs: one figure each
    for (title, vs), fig in zip(groups, figs):
        ax_loss, ax_acc = fig.axes
        assert fig.get_suptitle() == title and ax_loss.get_yscale() == "log"
        assert len([ln for ln in ax_loss.lines if len(ln.get_xdata())]) == 2 * len(vs)  # test and train
    fig2 = R.variant_curves(FIXTURES / "runs" / "cnn_baseline_adam")
    assert len(fig2.axes) == 2
    assert all(len([ln for ln in ax.lines if len(ln.get_xdata())]) == 2 for ax in fig2.axes)
    rows = R.gradient_flow_figures(res)
    panels = [ax for fig in rows for ax in fig.axes if ax.lines]
    assert len(rows) == -(-len(R.models_in(res)) // MODELS_PER_ROW) and len(panels) == len(R.models_in(res))
    fig4 = R.per_class_figure(res)
    assert len(fig4.axes) == 2  # heatmap + colorbar
    plt.close("all")


def test_figures_are_drawn_at_print_size_with_readable_text_none_cut_or_overlapping(res):
    """Every text at least 8 pt, no figure wider than the A4 text width (literal values: lowering
    the code's constants must not pass), inside the figure (``show`` saves the figure as it is,
    no tight box), and no axis label or tick label under a legend (the "epoch" label and
    the legend below the curves)."""
    from matplotlib.text import Text

    figures = all_figures(res)
    # the wide figures are drawn at the text width (their fonts print at their size), not shrunk
    widest = max(fig.get_size_inches()[0] for figs in figures.values() for fig in figs)
    assert A4_WIDTH_IN - 0.25 <= widest <= A4_WIDTH_IN
    for name, figs in figures.items():
        for fig in figs:
            fig.canvas.draw()
            assert fig.get_size_inches()[0] <= A4_WIDTH_IN, name
            texts = [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
            assert texts and min(t.get_fontsize() for t in texts) >= SMALLEST_PT, name
            drawn = fig.get_tightbbox(fig.canvas.get_renderer())  # inches, what is drawn
            w, h = fig.get_size_inches()
            assert drawn.x0 >= -0.01 and drawn.y0 >= -0.01 and drawn.x1 <= w + 0.01 and drawn.y1 <= h + 0.01, name
            legends = [*fig.legends, *(ax.get_legend() for ax in fig.axes if ax.get_legend())]
            labels = [t for ax in fig.axes for t in (ax.xaxis.label, *shown_ticklabels(ax)) if t.get_text()]
            under = [t.get_text() for t in labels for lg in legends
                     if t.get_window_extent().overlaps(lg.get_window_extent())]
            assert not under, (name, under)
    plt.close("all")


def test_show_displays_each_figure_at_its_printed_size_with_its_alt_text(res, monkeypatch):
    import IPython.display
    from PIL import Image

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj, **kw: shown.append(obj))
    R.setup_plotting()
    figs = R.training_curves(res)
    expected = [(f.get_size_inches(), R.alt_text(f)) for f in figs]
    R.show(figs)
    assert len(shown) == len(figs) and not any(plt.fignum_exists(f.number) for f in figs)  # one image each, closed
    for img, ((w, h), alt) in zip(shown, expected):
        dpi = matplotlib.rcParams["savefig.dpi"]
        # the PNG is the figure itself, shown at its width in inches (96 CSS px each): 1:1 on paper
        assert Image.open(io.BytesIO(img.data)).size == (round(w * dpi), round(h * dpi))
        assert img._repr_png_()[1] == {"width": round(w * 96), "alt": alt} and alt


def test_every_figure_says_what_it_plots(res):
    figs = all_figures(res)
    alts = {name: [R.alt_text(f) for f in fs] for name, fs in figs.items()}
    for (title, vs), alt in zip(R.scale_groups(res), alts["training_curves"]):
        assert alt.startswith(f"训练曲线（{title}）") and f"{len(vs)} 个变体" in alt and "损失" in alt and "准确率" in alt
    models = R.models_in(res)
    assert all("梯度" in a for a in alts["gradient_flow_figures"])
    assert all(R.model_label(m) in " ".join(alts["gradient_flow_figures"]) for m in models)
    assert f"{len(R.per_class_accuracy(res))} 个变体" in alts["per_class_figure"][0]
    best = R.best_variant(res)
    mat = confusion_matrix(res, best)
    (conf,) = alts["confusion_figure"]
    assert conf.startswith(f"混淆矩阵：{R.variant_short(res, best)} 在 {mat.values.sum():,} 张测试图上")
    assert f"判对 {np.trace(mat.values):,} 张" in conf
    assert "cnn_baseline_adam" in alts["variant_curves"][0] and "2 个种子" in alts["variant_curves"][0]
    every = [a for group in alts.values() for a in group]
    assert all(CJK.search(a) and len(a) >= 20 for a in every) and len(set(every)) == len(every)
    plt.close("all")


def test_bulk_limit_leaves_the_curves_and_cuts_the_outlier():
    rng = np.random.default_rng(0)
    bulk = list(rng.uniform(1.5, 4.0, 40))
    assert max(bulk) < bulk_limit(bulk + [987.0]) < 987.0
    assert bulk_limit([2.3, 1.1, 0.6, 0.3, 0.1]) > 2.3  # a loss falling over decades is all bulk


def test_a_diverged_epoch_is_marked_and_does_not_flatten_the_loss_axis(copy):
    """The review's case: one epoch with test loss 987 among curves near 2.3."""
    R.setup_plotting()
    ax = R.training_curves(R.load_results(copy))[0].axes[0]  # the 500-image runs: BaselineNet
    assert not [t for t in ax.texts]  # nothing clipped
    exp = "cnn_baseline_adam"
    set_test_loss(copy, exp, 0, 1, 987.0)
    res = R.load_results(copy)
    fig = R.training_curves(res)[0]
    ax = fig.axes[0]
    curves = res.epochs[res.epochs["exp_name"].isin(R.scale_groups(res)[0][1])]
    means = curves.groupby(["exp_name", "epoch"])[["train_loss", "test_loss"]].mean()
    outlier = means.loc[(exp, 1), "test_loss"]
    rest = means.drop((exp, 1))["test_loss"].tolist() + means["train_loss"].tolist()
    lo, hi = ax.get_ylim()
    assert ax.get_yscale() == "log" and max(rest) <= hi < 1.5 * max(rest) and lo <= min(rest)  # the bulk fills the axis
    assert [t.get_text() for t in ax.texts] == [f"{outlier:.3g}"]  # the outlier's value, marked
    assert f"第 1 个 epoch 的测试损失 {outlier:.3g} 超出纵轴" in R.alt_text(fig)
    assert any(lg.get_texts()[-1].get_text().startswith("超出纵轴") for lg in fig.legends)
    set_test_loss(copy, exp, 0, 1, 1.3 * max(rest))  # high, but of the bulk: drawn, not marked
    ax = R.training_curves(R.load_results(copy))[0].axes[0]
    assert not ax.texts and ax.get_ylim()[1] >= 1.3 * max(rest)
    plt.close("all")


def test_a_deep_models_gradient_profile_is_drawn_per_block_over_faint_layers(res):
    """DenseNet-121's 121 layers: one line through each block's median, the layers as faint
    points; ResNet-18 (21 layers) as it is."""
    R.setup_plotting()
    panels = {ax.get_title().split("\n")[0]: ax for fig in R.gradient_flow_figures(res) for ax in fig.axes if ax.lines}
    dense = panels["DenseNet-121"]
    layers = [ln for ln in dense.lines if ln.get_alpha() is not None and ln.get_alpha() <= 0.5]
    lines = [ln for ln in dense.lines if ln.get_linestyle() != "None"]
    blocks = {layer_block(n) for n in res.grads[res.grads["model"] == "densenet121"]["layer"]}
    assert len(layers[0].get_xdata()) == 121 and len(lines[0].get_xdata()) == len(blocks) == 9
    resnet = panels["ResNet-18"]
    assert all(ln.get_alpha() is None for ln in resnet.lines if ln.get_linestyle() != "None")
    assert len(resnet.lines[0].get_xdata()) == int(re.search(r"主干 (\d+) 层", resnet.get_title())[1]) > 15
    plt.close("all")


def test_the_confusion_matrix_takes_a_third_of_a_page_and_shows_the_variant_the_text_discusses(res):
    R.setup_plotting()
    fig = R.confusion_figure(res)
    w, h = fig.get_size_inches()
    assert h <= A4_TEXT_IN / 3 and w <= A4_WIDTH_IN
    shown = [e for e in res.variants() if fig.axes[0].get_title() == f"混淆矩阵：{R.variant_short(res, e)}"]
    assert len(shown) == 1 and R.prose_name(res, shown[0]) in R.confusion_lead(res)
    plt.close("all")


def test_model_names_in_the_page_text_are_kept_whole_and_tags_untouched():
    from cnn_lab.export import keep_names_whole

    page = ('<title>ResNet-18</title><script>var a = "DenseNet-121";</script>'
            '<p>SE-ResNet-18 对 DenseNet-121、Plain-18，CIFAR-10 上；ResNet-18x</p><img alt="ResNet-18 的曲线">')
    out = keep_names_whole(page)
    assert re.findall(r'<span class="nb">([^<]+)</span>', out) == ["SE-ResNet-18", "DenseNet-121", "Plain-18", "CIFAR-10"]
    assert out.startswith('<title>ResNet-18</title><script>var a = "DenseNet-121";</script>')
    assert out.endswith('<img alt="ResNet-18 的曲线">')
    # a title right after another tag (as nbconvert writes the head) stays plain text: it is the PDF's title
    head = '<meta charset="utf-8">\n<title>CIFAR-10 卷积神经网络对比实验报告</title><p>CIFAR-10</p>'
    assert keep_names_whole(head) == ('<meta charset="utf-8">\n<title>CIFAR-10 卷积神经网络对比实验报告</title>'
                                      '<p><span class="nb">CIFAR-10</span></p>')


def test_a_short_cell_breaks_only_where_a_header_may():
    t = R.table(pd.DataFrame({"#": ["1", "2"], "结论": ["规模不足无法判断", "部分成立（首层有梯度，但不靠跳跃连接）"]}))
    html = t._repr_html_()
    assert '<td><span class="w">规模不足无法判断</span></td>' in html
    # the bracket's words are longer than a column should be forced to: they may break
    assert '<td><span class="w">部分成立</span><wbr>（首层有梯度，但不靠跳跃连接）</td>' in html


def test_table_headers_and_variant_names_mark_where_they_may_break():
    t = R.table(pd.DataFrame({"变体": ["DenseNet-121 (CIFAR stem) · Adam 0.001", "cnn_a"],
                              "训练/测试图像": ["1 / 2", "3 / 4"], "差值（个百分点）": ["+1.00", "-2.00"]}))
    html = t._repr_html_()
    assert '<th class="num"><span class="w">训练/</span><wbr><span class="w">测试图像</span></th>' in html
    assert '<span class="w">差值</span><wbr><span class="w">（个百分点）</span>' in html
    assert '<td class="name"><span class="w">DenseNet-121 (CIFAR stem) ·</span> <span class="w">Adam 0.001</span></td>' in html
    assert '<td class="name">cnn_a</td>' in html


# ------------------------------------------------------------------ the exported page (headless Chromium)


def open_page(p, html: Path, media: str, width: int):
    exe = chromium_or_skip()
    browser = p.chromium.launch(executable_path=exe, args=["--no-sandbox", "--headless"])
    page = browser.new_page(viewport={"width": width, "height": 1000})
    page.emulate_media(media=media)
    page.goto(html.resolve().as_uri())
    page.wait_for_load_state("load")
    return browser, page


@pytest.mark.slow
@pytest.mark.parametrize("media,width", [("print", A4_TEXT_PX), ("screen", 1280)])
def test_no_table_or_figure_is_wider_than_the_text_column(rendered, media, width):
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        browser, page = open_page(p, rendered[1], media, width)
        too_wide = page.evaluate("""() => {
            const bad = [];
            for (const el of document.querySelectorAll('table, img')) {
                if (!el.offsetParent) continue;  // hidden (the folded appendix in print)
                const col = el.closest('.jp-OutputArea-output') || document.body;
                const w = el.getBoundingClientRect().width, c = col.getBoundingClientRect().width;
                if (w > c + 1 || el.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
                    bad.push([el.tagName, Math.round(w), Math.round(c), (el.textContent || '').slice(0, 40)]);
            }
            return bad;
        }""")
        # each figure at its own width (its printed size), not stretched or shrunk to the column
        resized = page.evaluate("""() => [...document.querySelectorAll('img')].filter(
            i => Math.abs(i.getBoundingClientRect().width - i.getAttribute('width')) > 1).map(i => i.alt)""")
        n = page.evaluate("() => document.querySelectorAll('table.report-table, img').length")
        browser.close()
    assert n >= 8  # the report's tables and figures were there to measure
    assert not too_wide, too_wide
    assert not resized, resized


# The lines a table header or a variant's name was laid out in (text of each line box).
LINES_JS = """(sel) => [...document.querySelectorAll(sel)].map(cell => {
    const lines = [];
    let top = null;
    const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        for (let i = 0; i < node.length; i++) {
            const range = document.createRange();
            range.setStart(node, i);
            range.setEnd(node, i + 1);
            const rect = [...range.getClientRects()].find(r => r.width > 0);
            const ch = node.data[i];
            if (rect && (top === null || rect.top > top + rect.height / 2)) { lines.push(''); top = rect.top; }
            if (lines.length) lines[lines.length - 1] += ch;
        }
    }
    return lines;
})"""


def header_words(text: str) -> list[str]:
    """A header's words: split at spaces, after a "/" between Chinese words, before a full-width bracket."""
    return [w for w in re.split(r" +|(?<=[\u4e00-\u9fff]/)(?=[\u4e00-\u9fff])|(?<=\S)(?=（)", text) if w]


@pytest.mark.slow
def test_no_table_header_breaks_inside_a_word_at_a4_width(rendered):
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        browser, page = open_page(p, rendered[1], "print", A4_TEXT_PX)
        headers = page.evaluate(LINES_JS, "table.report-table th")
        names = page.evaluate(LINES_JS, "table.report-table td.name")
        cells = page.evaluate(LINES_JS, "table.report-table td:not(.num):not(.name)")
        models = page.evaluate(LINES_JS, ".nb")
        browser.close()
    # a verdict ("规模不足无法判断", "不成立（对原报告的模型）") breaks only before its bracket (a bracket of
    # more than 10 characters may break inside)
    verdicts = [lines for lines in cells if re.match(r"^(成立|不成立|部分成立|规模不足无法判断|差异在误差内|无法检验|概念有误)",
                                                     "".join(lines)) and len("".join(lines)) <= 24]
    assert verdicts, "the claims table's verdicts were not found"
    split = [" / ".join(v) for v in verdicts
             if any(len(w) <= 10 and not any(w in line for line in v) for w in header_words("".join(v)))]
    assert not split, split
    # a model's name ("DenseNet-121", "SE-ResNet-18") is never broken at its hyphen, in the text or a table
    assert len(models) > 20 and all(len(lines) <= 1 for lines in models), [m for m in models if len(m) > 1]
    assert len(headers) >= 30 and any(len(h) > 1 for h in headers)  # headers were there, some on two lines
    broken = [" / ".join(lines) for lines in headers
              if [w for line in lines for w in header_words(line)] != header_words("".join(lines).strip())]
    assert not broken, broken
    variants = [lines for lines in names if " · " in "".join(lines)]
    assert variants and any(len(v) > 1 for v in variants)
    # a variant's name breaks only after its separator "·"
    bad = [" / ".join(v) for v in variants if any(not line.rstrip().endswith("·") for line in v[:-1])]
    assert not bad, bad


@pytest.mark.slow
def test_every_image_has_an_alt_that_names_what_it_shows(rendered, caplog):
    from bs4 import BeautifulSoup

    from cnn_lab.export import export_html

    with caplog.at_level("WARNING"):
        html = export_html(rendered[0], rendered[1].parent / "again.html")
    assert "Alternative text is missing" not in caplog.text  # nbconvert found an alt on every image
    imgs = BeautifulSoup(html.read_text(encoding="utf-8"), "html.parser").find_all("img")
    alts = [i.get("alt", "") for i in imgs]
    assert len(imgs) >= 5 and all(CJK.search(a) and len(a) >= 20 for a in alts), alts
    assert len(set(alts)) == len(alts)
    for topic in ("训练曲线", "梯度流", "各类别测试准确率", "混淆矩阵"):
        assert any(a.startswith(topic) for a in alts), topic


@pytest.mark.slow
def test_on_screen_the_text_has_a_reading_width_and_print_the_full_column(rendered):
    playwright = pytest.importorskip("playwright.sync_api")
    measure = """() => [...document.querySelectorAll('.jp-RenderedMarkdown > p')].filter(e => e.offsetParent)
        .map(e => { const r = e.getBoundingClientRect();
                    return [r.left, document.documentElement.clientWidth - r.right, r.width,
                            parseFloat(getComputedStyle(e).fontSize)]; })"""
    with playwright.sync_playwright() as p:
        browser, page = open_page(p, rendered[1], "screen", 1280)
        screen = page.evaluate(measure)
        widest = page.evaluate("() => Math.max(...[...document.querySelectorAll('table.report-table, img')]"
                               ".map(e => e.getBoundingClientRect().width))")
        browser.close()
        browser, page = open_page(p, rendered[1], "print", A4_TEXT_PX)
        printed = page.evaluate(measure)
        browser.close()
    assert len(screen) >= 20
    for left, right, width, em in screen:
        assert 40 * em <= width <= 46 * em and abs(left - right) <= 30  # about 45 em, centred
    assert widest > 46 * screen[0][3]  # tables and figures may be wider than the text
    long = [w for _, _, w, _ in printed if w > 0]
    assert long and max(long) >= A4_TEXT_PX - 40  # in print the text runs the column


def blank_share(pdf: Path, folder: Path) -> list[float]:
    """Per page: the share of the text area (the print style's 15/16 mm margins) blank under the last ink."""
    from PIL import Image

    subprocess.run(["pdftoppm", "-r", "40", "-gray", "-png", str(pdf), str(folder / "page")], check=True)
    shares = []
    for png in sorted(folder.glob("page-*.png")):
        ink = np.asarray(Image.open(png)) < 200
        mm = ink.shape[0] / 297
        top, bottom = 15 * mm, ink.shape[0] - 16 * mm
        rows = np.nonzero(ink.any(axis=1))[0]
        shares.append(float((bottom - (rows.max() if len(rows) else top)) / (bottom - top)))
    return shares


@pytest.mark.slow
def test_no_page_is_left_mostly_blank(rendered, tmp_path):
    """A figure too tall for what is left of a page moves to the next one with its lead-in;
    the figures are small enough (and the tall ones come in rows) that no page but the last
    is left more than 40% blank."""
    from cnn_lab.export import export_pdf

    chromium_or_skip()
    if not shutil.which("pdftoppm"):
        pytest.skip("no pdftoppm (Debian/Ubuntu: apt-get install poppler-utils)")
    pdf = export_pdf(rendered[1], tmp_path / "report.pdf")
    assert_printed_report(pdf, rendered[1])
    shares = blank_share(pdf, tmp_path)
    assert len(shares) >= 8
    assert max(shares[:-1]) <= 0.40, [f"p{i}: {s:.0%}" for i, s in enumerate(shares, 1) if s > 0.40]
