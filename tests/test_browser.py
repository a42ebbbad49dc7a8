"""Both notebooks in JupyterLab in a real browser, as a user meets them: open, Run All.

While the training notebook runs, a recorder in the page notes every change of the training
cell's outputs: its live view (``cnn_lab.live``) must redraw the curves after each epoch and
update one progress line in place, and the saved notebook, exported as HTML, must give every
figure its alt text.

Playwright (from PyPI) drives the system Chromium (`executable_path`; no browser download).
The server serves a copy of notebooks/ (beside a link to tests/, for the analysis
notebook's fixture runs) whose only changes are the training notebook's ``out_dir`` (as
``papermill -p`` would set it), so the run lands in this test's folder, and a smaller
training subset of the smoke profile (``SMALL``), so that its three epochs pass quickly;
``PYTHONPATH`` points the kernel at this checkout. Screenshots stay in the test's folder.
"""
from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import pytest

from conftest import chromium_or_skip, ensure_kernelspec, lab_server

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ("train_variant.ipynb", "analysis.ipynb")
SMALL = {"train_size": 640, "test_size": 200}  # 10 batches an epoch at smoke's batch size of 64
TRAINING_CALL = "N.train_and_check(cfg)"  # the training cell's call, whose outputs are the live view

pytestmark = pytest.mark.slow

# JupyterLab's view of the open notebook, read through the app object the page exposes
# (--LabApp.expose_app_in_browser): kernel, dirty flag, every code cell's outputs.
STATE_JS = """() => {
  const w = window.jupyterapp.shell.currentWidget;
  if (!w || !w.sessionContext || !w.content) return null;
  const cells = [];
  for (const c of w.content.model.cells) {
    if (c.type !== 'code') continue;
    cells.push({count: c.executionCount, outputs: c.outputs.toJSON()});
  }
  return {kernel: w.sessionContext.kernelDisplayName, status: w.sessionContext.kernelDisplayStatus,
          dirty: w.context.model.dirty, cells};
}"""


def _copy_notebooks(dest: Path, runs: Path) -> Path:
    nbdir = dest / "notebooks"
    nbdir.mkdir(parents=True)
    for name in NOTEBOOKS:
        shutil.copy(ROOT / "notebooks" / name, nbdir / name)
    nb = json.loads((nbdir / "train_variant.ipynb").read_text())
    params = next(c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", []))
    src = "".join(params["source"])
    src, n = re.subn(r"^out_dir: str = '[^']*'", f"out_dir: str = {str(runs)!r}", src, flags=re.M)
    assert n == 1, "the training notebook's parameters cell has no out_dir line"
    for field, value in SMALL.items():
        src, n = re.subn(rf"^({field}: \S+ = )None\b", rf"\g<1>{value}", src, flags=re.M)
        assert n == 1, f"the training notebook's parameters cell has no {field} line"
    params["source"] = src
    (nbdir / "train_variant.ipynb").write_text(json.dumps(nb, indent=1, ensure_ascii=False))
    (dest / "tests").symlink_to(ROOT / "tests")  # the analysis notebook reads ../tests/fixtures/smoke
    return dest


# Installed before Run All: every change of the training cell's outputs, summed up as it happens
# (the distinct figure images, the progress lines, the most outputs naming batches at once).
RECORD_JS = """(call) => {
  const w = window.jupyterapp.shell.currentWidget;
  const cell = [...w.content.model.cells].find(c => c.type === 'code' && c.sharedModel.getSource().includes(call));
  const seen = window.liveSeen = {changes: 0, pngs: [], progress: [], mostProgressOutputs: 0, stderr: 0};
  cell.outputs.changed.connect(() => {
    const outs = cell.outputs.toJSON();
    seen.changes += 1;
    let progress = 0;
    for (const o of outs) {
      const png = (o.data || {})['image/png'];
      if (png && !seen.pngs.includes(png)) seen.pngs.push(png);
      const text = [].concat((o.data || {})['text/plain'] || []).join('');
      if (text.includes('批次')) {
        progress += 1;
        if (!seen.progress.includes(text)) seen.progress.push(text);
      }
      if (o.name === 'stderr') seen.stderr += 1;
    }
    seen.mostProgressOutputs = Math.max(seen.mostProgressOutputs, progress);
  });
  return true;
}"""


def _check_live_view(page, state, served: Path, shots: Path) -> None:
    """The live view as it ran (three figures or more, one progress line updated in place, no
    stderr), as it ended (the last curves), and as saved and exported (every image has its alt)."""
    from bs4 import BeautifulSoup

    from cnn_lab.export import export_html

    seen = page.evaluate("() => window.liveSeen")
    assert len(seen["pngs"]) >= 3, f"the curves were drawn {len(seen['pngs'])} times, not after each of 3 epochs"
    within = [t for t in seen["progress"] if "张图/s" in t and "还需" in t]
    assert len(within) >= 2 and seen["mostProgressOutputs"] == 1, (seen["mostProgressOutputs"], seen["progress"])
    assert seen["stderr"] == 0
    training = next(c for c in state["cells"] if any("训练结束" in "".join(o.get("data", {}).get("text/plain", ""))
                                                      for o in c["outputs"]))
    (final,) = [o for o in training["outputs"] if "image/png" in o.get("data", {})]
    assert final["data"]["image/png"] == seen["pngs"][-1]  # the finished notebook keeps the final curves
    assert "已完成 3 个 epoch" in final["metadata"]["image/png"]["alt"]
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    _wait(page, "train_variant-saved", lambda s: not s["dirty"], 60, shots)
    page_html = export_html(served / "notebooks" / "train_variant.ipynb", shots / "train_variant.html")
    imgs = BeautifulSoup(page_html.read_text(encoding="utf-8"), "html.parser").find_all("img")
    alts = [i.get("alt", "") for i in imgs]
    assert len(imgs) >= 2 and all("损失" in a and "准确率" in a for a in alts), alts  # live curves, then show_curves


def figure_cells(path: Path) -> list[int]:
    """The code cells (their index among code cells) that show a figure (``R.show``, ``N.show_curves``)."""
    cells = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    return [i for i, c in enumerate(cells) if re.search(r"(?m)^[^#\n]*\bshow\w*\(", "".join(c["source"]))]


def _wait(page, what: str, predicate, timeout: float, shots: Path):
    deadline = time.time() + timeout
    while time.time() < deadline:
        state = page.evaluate(STATE_JS)
        if state is not None and predicate(state):
            return state
        time.sleep(0.5)
    page.screenshot(path=str(shots / f"timeout-{what}.png"), full_page=True)
    pytest.fail(f"timed out waiting for {what}; last state: {json.dumps(state, ensure_ascii=False)[:800]}")


def test_notebooks_run_all_in_jupyterlab(tmp_path):
    exe = chromium_or_skip()
    sync_api = pytest.importorskip("playwright.sync_api")
    ensure_kernelspec()
    served = _copy_notebooks(tmp_path / "served", tmp_path / "runs")
    home = tmp_path / "home"
    (home / "settings" / "@jupyterlab" / "notebook-extension").mkdir(parents=True)
    # every cell in the DOM (no windowing), so every figure can be checked
    (home / "settings" / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings").write_text(
        json.dumps({"windowingMode": "none"}))
    (home / "settings" / "@jupyterlab" / "apputils-extension").mkdir(parents=True)
    (home / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    shots = tmp_path / "screenshots"
    shots.mkdir()
    env = {"PYTHONPATH": str(ROOT), "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces")}
    with lab_server(served, home, args=["--LabApp.expose_app_in_browser=True"], env=env) as api, \
            sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, args=[
            "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            console_errors: list[str] = []
            page.on("pageerror", lambda e: console_errors.append(str(e)))
            for name in NOTEBOOKS:
                page.goto(f"{api.base}/lab/tree/notebooks/{name}?reset&token={api.token}")
                page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
                                       " && window.jupyterapp.shell.currentWidget.sessionContext", timeout=90_000)
                state = _wait(page, f"{name}-kernel-idle",
                              lambda s: s["status"] == "idle" and s["kernel"] != "No Kernel", 120, shots)
                time.sleep(2)  # what the kernel's info would change in the metadata has arrived by now
                state = page.evaluate(STATE_JS)
                page.screenshot(path=str(shots / f"{name}-opened.png"))
                assert state["kernel"] == "Python (cnn-lab)", state["kernel"]
                assert not state["dirty"], f"{name} is marked modified before anything ran"

                if name == "train_variant.ipynb":
                    assert page.evaluate(RECORD_JS, TRAINING_CALL)
                page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
                state = _wait(page, f"{name}-run-all",
                              lambda s: s["status"] == "idle" and all(c["count"] for c in s["cells"]), 300, shots)
                page.screenshot(path=str(shots / f"{name}-ran.png"), full_page=True)
                bad = [o for c in state["cells"] for o in c["outputs"]
                       if o["output_type"] == "error" or o.get("name") == "stderr"]
                assert not bad, f"{name}: error or stderr outputs: {json.dumps(bad, ensure_ascii=False)[:1500]}"
                n_png = sum("image/png" in o.get("data", {}) for c in state["cells"] for o in c["outputs"])
                drawn = [i for i, c in enumerate(state["cells"]) if any("image/png" in o.get("data", {})
                                                                        for o in c["outputs"])]
                figures = figure_cells(served / "notebooks" / name)  # each shows its figure, none is left empty
                assert figures and set(figures) <= set(drawn), (name, figures, drawn)
                sizes = page.evaluate("""() => [...document.querySelectorAll(
                    '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output img')]
                    .map(i => [i.naturalWidth, i.getBoundingClientRect().width])""")
                assert len(sizes) == n_png and all(nw > 0 and w > 0 for nw, w in sizes), sizes
                if name == "train_variant.ipynb":
                    _check_live_view(page, state, served, shots)
                page.evaluate("() => window.jupyterapp.commands.execute('filebrowser:go-to-path',"
                              " {path: '/'})")
                page.evaluate("() => window.jupyterapp.commands.execute('application:close-all')")
            assert not console_errors, console_errors
        finally:
            browser.close()
    run = json.loads((tmp_path / "runs" / "cnn_baseline_adam" / "seed0" / "run.json").read_text())
    assert run["status"] == "completed"
