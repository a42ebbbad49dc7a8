"""Export an executed report notebook: a self-contained Chinese HTML page, then a PDF of it.

``export_html`` uses nbconvert's HTMLExporter with every code cell's input (and the prompts)
hidden, ``<html lang="zh">``, figures embedded as base64 data URIs (they already are, in
the notebook's outputs) and no script loaded from the network (the require.js and MathJax
CDN tags of the template are dropped), so the page works offline and prints the same; each
figure keeps the alt text its output carries (``cnn_lab.report.show`` gives every figure one).

``export_pdf`` prints that page with headless Chromium, which renders the Chinese text
with the system's CJK fonts or, where there are none, with the Noto Sans CJK SC of the
``mplfonts`` wheel (a dependency), loaded by an ``@font-face`` rule in a print-only copy
of the page (nbconvert's LaTeX PDF silently drops Chinese: not used).
Without a Chromium it prints what to install and returns ``None``; the HTML stays.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from . import runio
from .report.fonts import CSS_FAMILIES, cjk_font_path

CHROMIUM_ENV = "CNN_LAB_CHROMIUM"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
INSTALL_HINT = ("no Chromium found for the PDF export; install one (Debian/Ubuntu: "
                "`apt-get install chromium fonts-noto-cjk`) or point CNN_LAB_CHROMIUM at its executable; "
                "the HTML report is written regardless")
PDF_TIMEOUT_S = 180

# Page styling. A4 portrait; report tables (class report-table) never wider than the text
# column, text left and numbers right, a row's name never broken inside an identifier, a header
# word (class w) never broken; figures at their own (printed) size, never wider than the column;
# on screen, text in a centred reading column of 45 em, tables and figures up to 64 em; in print,
# no forced page break (a page mostly blank is a defect), headings and a figure's lead-in stay
# with what follows, a long table may continue on the next page between rows (no row or figure
# is split), and the folded appendix (model printouts) is replaced by a note.
_EXTRA_CSS = f"""<style>
@page {{ size: A4 portrait; margin: 15mm 15mm 16mm 15mm; }}
body, .jp-RenderedHTMLCommon {{ font-family: {CSS_FAMILIES}, sans-serif; }}
.jp-RenderedImage img, .jp-OutputArea-output img {{ max-width: 100%; height: auto; }}
.jp-RenderedImage {{ text-align: center; }}  /* a figure narrower than the column (the confusion matrix) */
.jp-RenderedHTMLCommon table.report-table {{ table-layout: auto; width: 100%; max-width: 100%; margin: 0.3em 0 0.9em 0;
  border-collapse: collapse; font-size: 0.86em; }}
.jp-RenderedHTMLCommon table.report-table caption {{ caption-side: top; text-align: left; padding: 0 0 0.3em 0;
  font-size: 0.95em; color: #333; }}
.jp-RenderedHTMLCommon table.report-table th, .jp-RenderedHTMLCommon table.report-table td {{
  text-align: left; vertical-align: top; padding: 0.2em 0.45em; overflow-wrap: break-word; word-break: normal;
  min-width: 3.2em;
  border-bottom: 1px solid #ddd; }}
.jp-RenderedHTMLCommon table.report-table th {{ border-bottom: 1px solid #888; }}
.jp-RenderedHTMLCommon table.report-table .num {{ text-align: right; font-variant-numeric: tabular-nums; }}
.jp-RenderedHTMLCommon table.report-table td.num {{ white-space: nowrap; }}
.jp-RenderedHTMLCommon table.report-table .name {{ overflow-wrap: normal; word-break: normal; }}
.jp-RenderedHTMLCommon table.report-table .w {{ white-space: nowrap; }}
.nb {{ white-space: nowrap; }}  /* a model's name (keep_names_whole) */
.jp-RenderedHTMLCommon details pre {{ font-family: var(--jp-code-font-family, monospace); font-size: 0.78em;
  overflow-x: auto; }}
.print-only {{ display: none; }}
@media screen {{
  main {{ max-width: 64em; margin: 0 auto; padding: 1em 1.5em 3em 1.5em; }}
  .jp-RenderedHTMLCommon > :is(p, ul, ol, blockquote, h1, h2, h3, h4, h5, details, pre) {{
    max-width: calc(45 * var(--jp-content-font-size1, 14px)); margin-left: auto; margin-right: auto; }}  /* 45 em of body text */
  .jp-RenderedHTMLCommon table.report-table {{ width: auto; min-width: min(45em, 100%); margin-left: auto;
    margin-right: auto; }}
}}
@media print {{
  .jp-RenderedHTMLCommon {{ font-size: 13px; }}  /* about 10 pt on A4, a printed report's body size */
  body.jp-Notebook, .jp-Notebook .jp-Cell {{ margin: 0; padding: 0; }}  /* the text runs the full 180 mm, as the figures do */
  .jp-RenderedHTMLCommon {{ padding-right: 0; }}
  .jp-RenderedHTMLCommon table.report-table {{ font-size: 0.82em; }}
  .screen-only {{ display: none; }}
  .print-only {{ display: block; }}
  .jp-Cell, .jp-OutputArea-child, .jp-MarkdownCell {{ break-inside: auto; }}
  .jp-Cell-inputWrapper, .jp-Cell-outputWrapper, .jp-OutputArea-child, .jp-InputArea {{ display: block; }}
  /* a scrolling or clipping box is not split across pages: the lab style's outputs would carry a whole
     table to the next page, leaving the page before it half blank */
  .jp-OutputArea, .jp-OutputArea-child, .jp-OutputArea-output {{ display: block; overflow: visible; }}
  .jp-OutputPrompt, .jp-InputPrompt, .jp-OutputArea-prompt {{ display: none; }}
  h1, h2, h3, h4, h5 {{ break-after: avoid; break-inside: avoid; }}
  table.report-table {{ break-inside: auto; }}
  table.report-table caption, table.report-table thead {{ break-after: avoid; }}
  tr, img, .jp-OutputArea-child:has(img) {{ break-inside: avoid; }}
  table.tall-rows tr {{ break-inside: auto; }}  /* the 2.8 table: a tall row left half a page blank */
  table.tall-rows td {{ orphans: 4; widows: 4; }}  /* but a row split leaves no two-line scrap on either page */
  .jp-OutputArea-child:not(:has(img)):has(+ .jp-OutputArea-child img) {{ break-after: avoid; }}
  .jp-MarkdownCell:has(:is(h1, h2, h3, h4, h5):last-child) {{ break-after: avoid; }}  /* a heading cell stays with its section */
  p, li {{ orphans: 2; widows: 2; }}
}}
</style>
"""
# For printing only: the wheel's CJK font as a fallback after the system's, so a machine
# without CJK fonts still gets every Chinese glyph (Chromium would silently drop them).
_PRINT_FONT_CSS = ("<style>\n@font-face {{ font-family: \"cnn-lab CJK\"; src: url(\"{url}\"); }}\n"
                   f"body, .jp-RenderedHTMLCommon {{{{ font-family: {CSS_FAMILIES}, \"cnn-lab CJK\", sans-serif; }}}}\n"
                   "</style>\n")
# nbconvert's lab template with one change: an image whose output carries alt text (metadata
# "alt", as IPython's Image(alt=...) and cnn_lab.report.show write it) gets it as its alt attribute.
_TEMPLATE_NAME = "cnn_lab_report.html.j2"
_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{% block data_png scoped %}
{%- set alt = output | get_metadata('alt', 'image/png') -%}
{%- if alt -%}{{ super() | replace('<img ', '<img alt="' ~ (alt | escape_html) ~ '" ', 1) }}{%- else -%}{{ super() }}{%- endif -%}
{% endblock data_png %}
"""
# A model's name is never broken at its hyphen ("DenseNet-/121"): in the page's text (not inside
# a tag, a script, a style or the title) each is kept whole.
_MODEL_NAME = re.compile(r"(?<![\w-])((?:SE-)?ResNet-\d+|Plain-\d+|DenseNet-\d+|CIFAR-10)(?![\w-])")
_TEXT = re.compile(r"(<(script|style|title)\b.*?</\2>)|>([^<]+)(?=<)", re.S | re.I)  # the "<" not consumed
_REMOTE_SCRIPT = re.compile(r"<script[^>]*\ssrc=[\"'](?:https?:)?//[^\"']*[\"'][^>]*>\s*</script>\s*", re.I)


def export_html(nb_path: str | os.PathLike, html_path: str | os.PathLike, title: str | None = None) -> Path:
    """``nb_path`` (an executed notebook) as a self-contained HTML report without code."""
    import nbformat
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    nb = nbformat.read(str(nb_path), as_version=4)
    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True,
                            embed_images=True, language_code="zh", template_file=_TEMPLATE_NAME,
                            extra_loaders=[DictLoader({_TEMPLATE_NAME: _TEMPLATE})])
    if title is None:
        title = next((line.lstrip("# ").strip() for c in nb.cells if c.cell_type == "markdown"
                      for line in c.source.splitlines() if line.startswith("# ")), Path(nb_path).stem)
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
    body = _REMOTE_SCRIPT.sub("", body)
    body = keep_names_whole(body.replace("</head>", _EXTRA_CSS + "</head>", 1))
    html_path = Path(html_path)
    runio.atomic_write_text(html_path, body)
    return html_path


def keep_names_whole(page: str) -> str:
    """``page`` with every model name in its text wrapped in ``<span class="nb">`` (nowrap)."""
    def text(m: re.Match) -> str:
        if m.group(1):
            return m.group(1)
        return ">" + _MODEL_NAME.sub(r'<span class="nb">\1</span>', m.group(3))
    return _TEXT.sub(text, page)


def find_chromium() -> str | None:
    """``CNN_LAB_CHROMIUM``, else the first of chromium, chromium-browser, google-chrome on PATH."""
    env = os.environ.get(CHROMIUM_ENV)
    if env:
        found = shutil.which(env)
        return found or (env if Path(env).is_file() else None)
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def export_pdf(html_path: str | os.PathLike, pdf_path: str | os.PathLike,
               timeout: float = PDF_TIMEOUT_S) -> Path | None:
    """Print ``html_path`` to ``pdf_path`` with headless Chromium; ``None`` when there is none.

    Raises ``RuntimeError`` when Chromium runs but produces no PDF (or times out).
    """
    exe = find_chromium()
    if exe is None:
        print(f"warning: {INSTALL_HINT}")
        return None
    html_path = Path(html_path).resolve()
    pdf_path = Path(pdf_path).resolve()
    pdf_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="cnn-lab-chromium-") as profile:
        page = _print_copy(html_path, Path(profile))
        tmp_pdf = pdf_path.parent / f".{pdf_path.name}.{os.getpid()}.tmp"
        cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--no-pdf-header-footer",
               "--print-to-pdf-no-header", "--allow-file-access-from-files",
               f"--print-to-pdf={tmp_pdf}", page.as_uri()]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                                  env={**os.environ, "HOME": profile})
            if not tmp_pdf.exists() or tmp_pdf.stat().st_size == 0:
                tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
                raise RuntimeError(f"{exe} wrote no PDF (exit {proc.returncode}): {' | '.join(tail)}")
            os.replace(tmp_pdf, pdf_path)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"{exe} did not finish printing {html_path} within {timeout:.0f} s") from None
        finally:
            if tmp_pdf.exists():
                tmp_pdf.unlink()
    return pdf_path


def _print_copy(html_path: Path, folder: Path) -> Path:
    """The page to print: ``html_path`` itself, or a copy in ``folder`` with the fallback font."""
    font = cjk_font_path()
    if font is None:
        return html_path
    text = html_path.read_text(encoding="utf-8")
    page = folder / "print.html"
    page.write_text(text.replace("</head>", _PRINT_FONT_CSS.format(url=font.resolve().as_uri()) + "</head>", 1),
                    encoding="utf-8")
    return page
