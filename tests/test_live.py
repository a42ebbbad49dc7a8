"""The training cell's live view, as a kernel sends it (jupyter_client, no browser).

The project's kernel runs the training notebook's own calls on a two-epoch smoke run: sent as
JupyterLab sends a cell (``allow_stdin`` true), the run shows three outputs, each updated in
place; sent as papermill and nbval send it (``allow_stdin`` false), it prints its plain lines.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import KERNEL, ensure_kernelspec

ROOT = Path(__file__).resolve().parent.parent

CELL = """from cnn_lab import notebook as N
cfg = N.notebook_config({{"profile": "smoke", "epochs": 2, "train_size": 640, "test_size": 200, "out_dir": {out!r}}})
records = N.train_and_check(cfg)"""


def run_cell(kc, code: str, allow_stdin: bool) -> list[dict]:
    """The iopub messages the cell sent, up to the kernel's idle; the cell must succeed."""
    msg_id = kc.execute(code, allow_stdin=allow_stdin)
    msgs = []
    while True:
        msg = kc.get_iopub_msg(timeout=300)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
        msgs.append(msg)
    reply = kc.get_shell_msg(timeout=60)
    while reply["parent_header"].get("msg_id") != msg_id:
        reply = kc.get_shell_msg(timeout=60)
    assert reply["content"]["status"] == "ok", [m["content"] for m in msgs if m["msg_type"] == "error"]
    return msgs


def test_the_loop_draws_each_epoch_on_the_bar_its_progress_hook_makes(tmp_path):
    from test_train import _as_if_killed_after_epoch_1, small

    from cnn_lab.train import train_run

    made, lines = [], []

    class Bar:
        def __init__(self, cfg, epoch, steps):
            self.epoch, self.steps, self.updates, self.closed = epoch, steps, 0, False
            made.append(self)

        def update(self, n=1):
            self.updates += n

        def close(self):
            self.closed = True

    train_run(small(tmp_path / "a"), progress=Bar, log=lines.append)
    assert [b.epoch for b in made] == [1, 2]
    assert all(b.steps == 300 // 50 and b.updates == b.steps and b.closed for b in made)  # a step an update
    made.clear()
    train_run(small(tmp_path / "b", epochs=1), progress=False, log=lines.append)
    _as_if_killed_after_epoch_1(tmp_path / "b" / "cnn_baseline" / "seed0", epochs=2)
    train_run(small(tmp_path / "b"), progress=Bar, log=lines.append)
    assert [b.epoch for b in made] == [2]  # the epochs it trains, not the one it resumes after


@pytest.fixture(scope="module")
def kernel():
    from jupyter_client.manager import start_new_kernel

    ensure_kernelspec()
    km, kc = start_new_kernel(kernel_name=KERNEL, cwd=str(ROOT / "notebooks"),
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        yield kc
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


@pytest.mark.slow
def test_live_view_updates_three_outputs_in_place(kernel, tmp_path):
    msgs = run_cell(kernel, CELL.format(out=str(tmp_path / "runs")), allow_stdin=True)
    assert not [m for m in msgs if m["msg_type"] == "stream" and m["content"]["name"] == "stderr"], \
        [m["content"]["text"] for m in msgs if m["msg_type"] == "stream"]
    printed = "".join(m["content"]["text"] for m in msgs if m["msg_type"] == "stream")
    assert "epoch 1/2:" not in printed, "the epoch lines are the table's rows, not printed"
    shown = [m for m in msgs if m["msg_type"] == "display_data"]
    assert len(shown) == 3 and all(m["content"]["transient"].get("display_id") for m in shown)  # one output each
    progress_id, figure_id, table_id = (m["content"]["transient"]["display_id"] for m in shown)
    updates = [m["content"] for m in msgs if m["msg_type"] == "update_display_data"]
    by_id: dict[str, list[dict]] = {}
    for u in updates:
        by_id.setdefault(u["transient"]["display_id"], []).append(u)
    assert set(by_id) == {progress_id, figure_id, table_id}

    lines = [u["data"]["text/plain"] for u in by_id[progress_id]]
    for epoch in (1, 2):
        within = [ln for ln in lines if f"epoch {epoch}/2 · 批次 " in ln and "张图/s" in ln]
        assert len(within) >= 2, "\n".join(lines)  # batches done, images/s and the time left, during the epoch
        assert all("还需" in ln for ln in within)
    assert "epoch 1/2 · 批次 1/" in "\n".join(lines) and "本 epoch 还需" in "\n".join(lines)
    assert "训练结束" in lines[-1] and "completed" in lines[-1]

    figures = by_id[figure_id]
    assert len(figures) >= 2 and all("image/png" in f["data"] for f in figures)  # redrawn after each epoch
    assert len({f["data"]["image/png"] for f in figures}) == len(figures)
    alt = figures[-1]["metadata"]["image/png"]["alt"]
    assert "cnn_baseline_adam" in alt and "1 个种子" in alt and "已完成 2 个 epoch" in alt

    rows = [t["data"]["text/html"].split("<tbody>")[1].count("<tr>") for t in by_id[table_id]]
    assert rows == [1, 2]  # it grew in place, a row an epoch


@pytest.mark.slow
def test_under_papermill_and_nbval_the_plain_lines_stay(kernel, tmp_path):
    msgs = run_cell(kernel, CELL.format(out=str(tmp_path / "runs")), allow_stdin=False)
    assert not [m for m in msgs if m["msg_type"] in ("display_data", "update_display_data")]
    text = "".join(m["content"]["text"] for m in msgs if m["msg_type"] == "stream" and m["content"]["name"] == "stdout")
    assert [ln.split(":")[0] for ln in text.splitlines() if " epoch " in ln] == [
        "cnn_baseline_adam seed 0 epoch 1/2", "cnn_baseline_adam seed 0 epoch 2/2"]
    assert not [m for m in msgs if m["msg_type"] == "stream" and m["content"]["name"] == "stderr"]


@pytest.mark.slow
def test_a_stopped_run_says_so_on_the_progress_line(kernel, tmp_path):
    code = CELL.format(out=str(tmp_path / "runs")).replace("records = N.train_and_check(cfg)", """from cnn_lab import live
try:
    with live.LiveView(cfg) as view:
        view.bar(cfg, 1, 10).update()
        raise KeyboardInterrupt  # Ctrl-C while the first epoch trains
except KeyboardInterrupt:
    pass""")
    msgs = run_cell(kernel, code, allow_stdin=True)
    progress_id = next(m for m in msgs if m["msg_type"] == "display_data")["content"]["transient"]["display_id"]
    lines = [m["content"]["data"]["text/plain"] for m in msgs if m["msg_type"] == "update_display_data"
             and m["content"]["transient"]["display_id"] == progress_id]
    assert "还需" in lines[-2] and lines[-1] == "cnn_baseline_adam：训练在 0 个 epoch 后停止（KeyboardInterrupt，见下方消息）"
