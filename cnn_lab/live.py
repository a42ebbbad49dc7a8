"""The training cell's live view, for a person watching the notebook in JupyterLab.

``has_frontend()`` says whether the cell runs for a person: its request came from a frontend
that could answer ``input()`` (JupyterLab, Notebook, VS Code). papermill, nbconvert and nbval
run cells with ``allow_stdin`` false, so under them the training cell prints its plain lines
as before and its outputs stay deterministic.

``LiveView(cfg)`` (a context manager: an error or Ctrl-C is said on the progress line) shows
three outputs under the cell and updates each in place through its IPython display handle (no
widgets, nothing on stderr):

- the progress line: the epoch's batches done, images per second, the time left for the epoch
  and for the whole variant (``bar`` is the training loop's ``ProgressHook``);
- a small figure of loss and accuracy by epoch, training and test set, one line per seed,
  redrawn after each epoch;
- the epoch table, every seed's rows as written to metrics.csv, growing by one each epoch.

The figure and the table are read from the run directories, so a resumed run shows its earlier
epochs too. ``log`` is the loop's log: a line logged as an epoch is saved is that epoch's row,
which the table now shows; any other line (a resumption, a warning) is printed.
"""
from __future__ import annotations

import time
from typing import Any, Mapping

import pandas as pd
from IPython.display import display
from tqdm import tqdm

from . import runio
from .config import RunConfig
from .report import figure_image, seed_curves, setup_plotting
from .runcheck import DamagedRunFile, read_table

UPDATE_EVERY_S = 0.5  # the progress line's refresh interval within an epoch (and after its first and last batch)
TABLE_COLUMNS = ("seed", *runio.METRIC_COLUMNS)


def has_frontend() -> bool:
    """Whether this code runs in a notebook cell sent by a frontend that lets the person answer
    ``input()``: the execute request's ``allow_stdin`` (false under papermill, nbconvert, nbval)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    kernel = getattr(get_ipython(), "kernel", None)
    if kernel is None:  # a terminal IPython, or plain Python
        return False
    return bool(kernel.get_parent().get("content", {}).get("allow_stdin"))


def _duration(seconds: float) -> str:
    return tqdm.format_interval(max(seconds, 0))


class EpochBar:
    """One epoch's progress, drawn on the view's progress line: ``update`` after each step."""

    def __init__(self, view: "LiveView", cfg: RunConfig, epoch: int, steps: int):
        self.view, self.cfg, self.epoch, self.steps = view, cfg, epoch, steps
        self.done, self.started, self.shown = 0, time.perf_counter(), 0.0
        view.say(f"{cfg.exp_name} 种子 {cfg.seed} · epoch {epoch}/{cfg.epochs} · 批次 0/{steps}")

    def update(self, n: int = 1) -> None:
        self.done += n
        now = time.perf_counter()
        if self.done in (1, self.steps) or now - self.shown >= UPDATE_EVERY_S:
            self.shown = now
            self.view.say(self.line(now - self.started))

    def line(self, elapsed: float) -> str:
        per_step = elapsed / self.done
        epoch_left = per_step * (self.steps - self.done)
        epoch_time = self.view.last_epoch_seconds or per_step * self.steps
        run_left = epoch_left + epoch_time * self.view.epochs_after(self.cfg.seed, self.epoch)
        head = (f"{self.cfg.exp_name} 种子 {self.cfg.seed} · epoch {self.epoch}/{self.cfg.epochs} · "
                f"批次 {self.done}/{self.steps} · {self.done * self.cfg.batch_size / elapsed:,.0f} 张图/s · ")
        if self.done == self.steps:
            return head + f"在测试集上评估…… · 全部还需约 {_duration(run_left)}"
        return head + f"本 epoch 还需 {_duration(epoch_left)} · 全部还需约 {_duration(run_left)}"

    def close(self) -> None:
        """The epoch's training ended; its row arrives with the log line that follows."""


class LiveView:
    """The progress line, the curves and the epoch table of one variant's training, in place."""

    def __init__(self, cfg: RunConfig):
        setup_plotting()
        self.cfg, self.seeds = cfg, cfg.seed_list()
        self.metrics = pd.DataFrame(columns=TABLE_COLUMNS)
        self.progress = display({"text/plain": f"{cfg.exp_name}：载入数据、准备模型……"}, raw=True, display_id=True)
        self.figure = display({"text/plain": "（每个 epoch 结束后，在这里画出损失和准确率曲线）"}, raw=True,
                              display_id=True)
        self.table = display({"text/plain": "（每个 epoch 结束后，在这里加一行）"}, raw=True, display_id=True)
        self.refresh()

    # ------------------------------------------------ the training loop's hooks

    def bar(self, cfg: RunConfig, epoch: int, steps: int) -> EpochBar:
        return EpochBar(self, cfg, epoch, steps)

    def log(self, line: str) -> None:
        if not self.refresh():
            print(line)

    def __enter__(self) -> "LiveView":
        return self

    def __exit__(self, kind, err, tb) -> None:
        """Training stopped by an error or Ctrl-C: the progress line says so (no time left to promise)."""
        if kind is not None:
            self.refresh()
            self.say(f"{self.cfg.exp_name}：训练在 {len(self.metrics)} 个 epoch 后停止（{kind.__name__}，见下方消息）")

    def finish(self, records: list[Mapping[str, Any]]) -> None:
        """The final state: the last curves and rows, and how each seed ended."""
        self.refresh()
        statuses = "、".join(f"种子 {r['seed']} {r.get('status')}" for r in records)
        seconds = pd.to_numeric(self.metrics["seconds"], errors="coerce").sum()
        self.say(f"{self.cfg.exp_name}：训练结束（{statuses}），{len(self.metrics)} 个 epoch，"
                 f"训练与评估共 {_duration(seconds)}")

    # ------------------------------------------------ what it shows

    def say(self, line: str) -> None:
        self.progress.update({"text/plain": line}, raw=True)

    @property
    def last_epoch_seconds(self) -> float | None:
        """How long the last recorded epoch took (training and evaluation), the measure of the ones to come."""
        return float(self.metrics["seconds"].iloc[-1]) if len(self.metrics) else None

    def epochs_after(self, seed: int, epoch: int) -> int:
        """Epochs still to train after ``epoch`` of ``seed``: its own, and those the later seeds lack."""
        done = self.metrics.groupby("seed")["epoch"].max().to_dict()
        later = self.seeds[self.seeds.index(seed) + 1:] if seed in self.seeds else []
        return self.cfg.epochs - epoch + sum(self.cfg.epochs - int(done.get(s, 0)) for s in later)

    def read_metrics(self) -> pd.DataFrame:
        """Every seed's metrics.csv rows so far, with its seed (a file not yet written, or mid-write, has none)."""
        frames = []
        for seed in self.seeds:
            path = self.cfg.run_dir(seed) / runio.METRICS
            try:
                frames.append(read_table(path, runio.METRIC_COLUMNS).assign(seed=seed) if path.exists() else None)
            except DamagedRunFile:
                continue  # the training loop says what it does with it
        frames = [f for f in frames if f is not None and len(f)]
        if not frames:
            return pd.DataFrame(columns=TABLE_COLUMNS)
        df = pd.concat(frames, ignore_index=True)
        return df[[c for c in TABLE_COLUMNS if c in df]]

    def refresh(self) -> bool:
        """Read the run directories again; redraw the curves and the table if an epoch was added."""
        metrics = self.read_metrics()
        added = len(metrics) > len(self.metrics)
        changed = not metrics.equals(self.metrics)
        self.metrics = metrics
        if changed and len(metrics):
            self.draw()
        return added

    def draw(self) -> None:
        import matplotlib.pyplot as plt

        fig = seed_curves(self.metrics, self.cfg.exp_name)
        self.figure.update(figure_image(fig))
        plt.close(fig)
        self.table.update(self.metrics.round(4))
