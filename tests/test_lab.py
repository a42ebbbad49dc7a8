"""JupyterLab serves the project: its kernel, both notebooks, and a kernel that imports cnn_lab."""
from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
KERNEL = "cnn-lab"

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_kernelspec() -> None:
    from jupyter_client.kernelspec import KernelSpecManager

    if KERNEL not in KernelSpecManager().find_kernel_specs():
        subprocess.run([sys.executable, "-m", "ipykernel", "install", "--sys-prefix", "--name", KERNEL,
                        "--display-name", "Python (cnn-lab)"], check=True, capture_output=True, timeout=120)


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


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    pytest.importorskip("jupyterlab")
    ensure_kernelspec()
    port, token = free_port(), secrets.token_hex(16)
    home = tmp_path_factory.mktemp("lab-home")
    log = open(home / "lab.log", "w")
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(home / "runtime")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         "--port-retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={ROOT}",
         "--ServerApp.open_browser=False", *(["--allow-root"] if os.geteuid() == 0 else [])],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
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


def test_kernelspec_listed(lab):
    status, specs = lab("/api/kernelspecs")
    assert status == 200
    assert KERNEL in specs["kernelspecs"]


@pytest.mark.parametrize("name", ["train_variant.ipynb", "analysis.ipynb"])
def test_notebooks_served(lab, name):
    if not (ROOT / "notebooks" / name).exists():
        pytest.skip(f"notebooks/{name} not written yet")
    status, model = lab(f"/api/contents/notebooks/{name}")
    assert status == 200 and model["type"] == "notebook"
    cells = model["content"]["cells"]
    assert any("parameters" in c["metadata"].get("tags", []) for c in cells)


async def _execute_over_websocket(api: Api, kernel_id: str, code: str, timeout: float = 120) -> tuple[dict, str]:
    """Send one execute_request on the kernel's channels websocket (tornado, a jupyter_server
    dependency); return the execute_reply content and the stream output."""
    import asyncio
    import uuid

    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    url = api.base.replace("http://", "ws://") + f"/api/kernels/{kernel_id}/channels"
    conn = await websocket_connect(HTTPRequest(url, headers={"Authorization": f"token {api.token}"}))
    msg_id, session = uuid.uuid4().hex, uuid.uuid4().hex
    await conn.write_message(json.dumps({
        "header": {"msg_id": msg_id, "username": "test", "session": session, "msg_type": "execute_request",
                   "version": "5.3", "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
        "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
        "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                    "allow_stdin": False, "stop_on_error": True},
    }))
    out: list[str] = []

    async def read_reply() -> tuple[dict, str]:
        # The reply comes on the shell channel, the stream output on iopub, in no fixed order:
        # the request is done only when both the execute_reply and iopub's status "idle" for
        # it have arrived (what every Jupyter client waits for).
        reply, idle = None, False
        while reply is None or not idle:
            raw = await conn.read_message()
            if raw is None:
                raise AssertionError("websocket closed before the reply")
            if isinstance(raw, bytes):
                continue
            m = json.loads(raw)
            if m.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            if m["msg_type"] == "stream":
                out.append(m["content"]["text"])
            elif m["msg_type"] == "execute_reply":
                reply = m["content"]
            elif m["msg_type"] == "status" and m["content"].get("execution_state") == "idle":
                idle = True
        return reply, "".join(out)

    try:
        return await asyncio.wait_for(read_reply(), timeout)
    finally:
        conn.close()


def test_kernel_runs_cell_through_server(lab):
    import asyncio

    status, kernel = lab("/api/kernels", method="POST", body={"name": KERNEL}, timeout=90)
    assert status == 201 and kernel["name"] == KERNEL
    try:
        reply, out = asyncio.run(_execute_over_websocket(
            lab, kernel["id"], "import os, cnn_lab; print(cnn_lab.__name__, os.path.basename(os.getcwd()))"))
        assert reply["status"] == "ok", reply
        assert out.split() == ["cnn_lab", ROOT.name]  # the kernel starts in the server's root_dir
    finally:
        status, _ = lab(f"/api/kernels/{kernel['id']}", method="DELETE")
        assert status == 204


@pytest.mark.parametrize("name", ["analysis.ipynb", "train_variant.ipynb"])
def test_notebook_runs_top_to_bottom_in_a_lab_session(lab, name, tmp_path):
    """What a user does in JupyterLab: open the notebook (a session: the kernel starts in
    notebooks/) and run every cell in order, as the notebook is."""
    import asyncio

    status, session = lab("/api/sessions", method="POST", timeout=90, body={
        "path": f"notebooks/{name}", "name": name, "type": "notebook", "kernel": {"name": KERNEL}})
    assert status == 201 and session["kernel"]["name"] == KERNEL
    kernel_id = session["kernel"]["id"]
    try:
        _, model = lab(f"/api/contents/notebooks/{name}")
        for cell in model["content"]["cells"]:
            if cell["cell_type"] != "code":
                continue
            src = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
            reply, out = asyncio.run(_execute_over_websocket(lab, kernel_id, src, timeout=300))
            assert reply["status"] == "ok", (src[:80], reply.get("ename"), reply.get("evalue"), out[-500:])
            if "parameters" in cell["metadata"].get("tags", []):
                # as papermill -p would: this test's own runs folder instead of the project's runs/
                reply, _ = asyncio.run(_execute_over_websocket(lab, kernel_id, f"out_dir = {str(tmp_path)!r}"))
                assert reply["status"] == "ok"
        if name == "train_variant.ipynb":
            run = json.loads((tmp_path / "cnn_baseline" / "seed0" / "run.json").read_text())
            assert run["status"] == "completed"
    finally:
        status, _ = lab(f"/api/sessions/{session['id']}", method="DELETE")
        assert status == 204


def test_kernel_imports_cnn_lab():
    """The project's kernel runs a cell importing cnn_lab (through jupyter_client)."""
    from jupyter_client.manager import start_new_kernel

    ensure_kernelspec()
    km, kc = start_new_kernel(kernel_name=KERNEL, cwd=str(ROOT / "notebooks"))
    try:
        out: list[str] = []
        reply = kc.execute_interactive(
            "import cnn_lab, cnn_lab.pipeline; print(cnn_lab.__name__, cnn_lab.pipeline.__name__)",
            timeout=120, output_hook=lambda m: out.append(m["content"].get("text", "")))
        assert reply["content"]["status"] == "ok"
        assert "cnn_lab cnn_lab.pipeline" in "".join(out)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
