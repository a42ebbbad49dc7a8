"""Shared test helpers."""
from __future__ import annotations

import contextlib
import io
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Mapping, Sequence

import pytest

from cnn_lab import export


def chromium_or_skip() -> str:
    """The Chromium that prints the PDF, or skip the test saying what to install
    (`make setup` installs it where this user may; scripts/system-deps.sh)."""
    exe = export.find_chromium()
    if exe is None:
        pytest.skip(export.INSTALL_HINT)
    return exe


def pdftotext_or_skip() -> str:
    exe = shutil.which("pdftotext")
    if exe is None:
        pytest.skip("no pdftotext (Debian/Ubuntu: apt-get install poppler-utils)")
    return exe


def pdf_text(pdf: Path) -> str:
    """The PDF's text as poppler's pdftotext reads it (pypdf where poppler is missing)."""
    if shutil.which("pdftotext"):
        return subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    pypdf = pytest.importorskip("pypdf")
    return "\n".join(p.extract_text() or "" for p in pypdf.PdfReader(str(pdf)).pages)


def assert_printed_report(pdf: Path, html: Path) -> None:
    """What README promises of the PDF, read from the PDF itself: every page A4 portrait
    (595 x 842 pt), an image for every figure of the HTML report, and appendix A's model
    printouts left out, their note printed instead."""
    import html as html_mod

    from pypdf import PdfReader

    reader = PdfReader(str(pdf))
    sizes = [(float(p.mediabox.width), float(p.mediabox.height)) for p in reader.pages]
    assert sizes and all(abs(w - 595) <= 1 and abs(h - 842) <= 1 for w, h in sizes), sizes
    page = html.read_text(encoding="utf-8")
    figures = len(re.findall(r'<img[^>]+src="data:image/png;base64,', page))
    images = sum(len(p.images) for p in reader.pages)
    assert figures >= 1 and images >= figures, (figures, images)
    text = re.sub(r"\s", "", pdf_text(pdf))
    folded = re.findall(r'<div class="screen-only">(.*?)</div><p class="print-only">(.*?)</p>', page, flags=re.S)
    assert folded, "no folded appendix in the HTML report"
    printed_elsewhere = re.sub(r'<div class="screen-only">.*?</div><p class="print-only">', "", page, flags=re.S)
    for blocks, note in folded:
        assert re.sub(r"\s", "", html_mod.unescape(note)) in text, note
    printout = [ln.strip() for pre in re.findall(r"<pre>(.*?)</pre>", folded[0][0], flags=re.S)
                for ln in html_mod.unescape(pre).splitlines() if len(ln.strip()) > 20]
    elsewhere = re.sub(r"\s", "", html_mod.unescape(re.sub(r"<[^>]+>", "", printed_elsewhere)))  # its visible text
    own = [ln for ln in printout if re.sub(r"\s", "", ln) not in elsewhere]  # only in appendix A
    assert own and not [ln for ln in own if re.sub(r"\s", "", ln) in text], "appendix A's printout is in the PDF"


KERNEL = "cnn-lab"  # the project's kernel, which make setup installs into the venv


def ensure_kernelspec() -> None:
    from jupyter_client.kernelspec import KernelSpecManager

    if KERNEL not in KernelSpecManager().find_kernel_specs():
        subprocess.run([sys.executable, "-m", "ipykernel", "install", "--sys-prefix", "--name", KERNEL,
                        "--display-name", "Python (cnn-lab)"], check=True, capture_output=True, timeout=120)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Api:
    def __init__(self, base: str, token: str):
        self.base, self.token = base, token

    def __call__(self, path: str, method: str = "GET", body: dict | None = None, timeout: float = 30):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Authorization": f"token {self.token}",
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
            return resp.status, (json.loads(raw) if raw else None)


@contextlib.contextmanager
def lab_server(root: Path, home: Path, args: Sequence[str] = (), env: Mapping[str, str] | None = None):
    """A JupyterLab server on a free port with a token, serving ``root``; its runtime files,
    log and settings in ``home``. Yields an ``Api`` (REST calls with the token)."""
    port, token = free_port(), secrets.token_hex(16)
    log = open(home / "lab.log", "w")
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(home / "runtime"), **(env or {})}
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         "--port-retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
         "--ServerApp.open_browser=False", *(["--allow-root"] if os.geteuid() == 0 else []), *args],
        cwd=root, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    api = Api(f"http://127.0.0.1:{port}", token)
    try:
        deadline = time.time() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"jupyter lab exited: {(home / 'lab.log').read_text()[-2000:]}")
            try:
                status, _ = api("/api/status", timeout=5)
                if status == 200:
                    break
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            if time.time() > deadline:
                pytest.fail(f"jupyter lab did not answer: {(home / 'lab.log').read_text()[-2000:]}")
            time.sleep(0.5)
        yield api
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


@pytest.fixture(scope="session")
def rendered(tmp_path_factory):
    """The analysis notebook executed on the smoke fixtures (tests/fixtures/smoke) and exported
    to HTML: (executed notebook, report.html)."""
    import papermill

    from cnn_lab.export import export_html

    out = tmp_path_factory.mktemp("rendered")
    root = Path(__file__).parents[1]
    papermill.execute_notebook(str(root / "notebooks" / "analysis.ipynb"), str(out / "report.ipynb"),
                               parameters={"reports_dir": str((root / "tests" / "fixtures" / "smoke").resolve())},
                               kernel_name=KERNEL, cwd=str(root / "notebooks"), progress_bar=False)
    return out / "report.ipynb", export_html(out / "report.ipynb", out / "report.html")


def write_archive(path: Path, members: dict[str, bytes]) -> Path:
    """A .tar.gz with ``members`` (name -> bytes), in sorted order."""
    with tarfile.open(path, "w:gz") as tar:
        for name in sorted(members):
            info = tarfile.TarInfo(name)
            info.size = len(members[name])
            tar.addfile(info, io.BytesIO(members[name]))
    return path


@pytest.fixture(autouse=True)
def _no_committed_reference(request, monkeypatch):
    """Reports built in tests see no reference runs unless a test passes its own folder or is
    marked ``committed_reference``: the committed runs (reports/reference/) would otherwise
    change every fixture report's table 1, 2.8 table and tally whenever they are republished.
    The notebooks (nbval, the export and browser tests) run in their own kernels and read them."""
    if request.node.get_closest_marker("committed_reference") is None:
        from cnn_lab.report import load

        monkeypatch.setattr(load, "REFERENCE_DIR", "tests/fixtures/no-reference-here")


FIXTURES = Path(__file__).parent / "fixtures" / "smoke"  # real smoke runs of every variant (tests/make_fixtures.py)


@pytest.fixture(scope="module")
def res():
    """The fixture runs, loaded once per test module (read only)."""
    from cnn_lab import report as R

    return R.load_results(FIXTURES)


@pytest.fixture
def copy(tmp_path):
    """A copy of the fixture runs that a test may edit."""
    dst = tmp_path / "reports"
    shutil.copytree(FIXTURES, dst)
    return dst
