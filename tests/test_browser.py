"""Both notebooks in JupyterLab in a real browser, as a user meets them: open, Run All.

Playwright (from PyPI) drives the system Chromium (`executable_path`; no browser download).
The server serves a copy of notebooks/ (beside a link to tests/, for the analysis
notebook's fixture runs) whose only change is the training notebook's ``out_dir`` (as
``papermill -p`` would set it), so the run lands in this test's folder;
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
    params["source"] = src
    (nbdir / "train_variant.ipynb").write_text(json.dumps(nb, indent=1, ensure_ascii=False))
    (dest / "tests").symlink_to(ROOT / "tests")  # the analysis notebook reads ../tests/fixtures/smoke
    return dest


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
                page.evaluate("() => window.jupyterapp.commands.execute('filebrowser:go-to-path',"
                              " {path: '/'})")
                page.evaluate("() => window.jupyterapp.commands.execute('application:close-all')")
            assert not console_errors, console_errors
        finally:
            browser.close()
    run = json.loads((tmp_path / "runs" / "cnn_baseline_adam" / "seed0" / "run.json").read_text())
    assert run["status"] == "completed"
