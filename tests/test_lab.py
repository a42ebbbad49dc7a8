"""JupyterLab serves the project: its kernel, both notebooks, and a kernel that imports cnn_lab."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from conftest import Api, ensure_kernelspec, lab_server

ROOT = Path(__file__).resolve().parent.parent
KERNEL = "cnn-lab"  # the project's kernel (make setup installs it into the venv)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    pytest.importorskip("jupyterlab")
    ensure_kernelspec()
    with lab_server(ROOT, tmp_path_factory.mktemp("lab-home")) as api:
        yield api


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
            run = json.loads((tmp_path / "cnn_baseline_adam" / "seed0" / "run.json").read_text())
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
