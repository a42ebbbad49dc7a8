"""Refresh the reference outputs that nbval compares, after a deliberate change.

    make nbval-refresh        (or .venv/bin/python tests/refresh_notebook_outputs.py)

- notebooks/analysis.ipynb: executed top to bottom on tests/fixtures/smoke; outputs kept
  only on its ``# NBVAL_CHECK_OUTPUT`` cells (what nbval compares; no figures committed).
- notebooks/train_variant.ipynb: executed without its ``nbval-skip`` cells (training,
  curves, final table: they would write runs/ and their output changes with the machine);
  outputs are kept only on the cells nbval compares (tag ``nbval-check-output``: the
  resolved config and the model printout), so the committed notebook stays a clean template.
"""
from __future__ import annotations

import copy
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def _execute(nb: nbformat.NotebookNode) -> None:
    # nbval runs a notebook's kernel in the notebook's folder; so does this
    NotebookClient(nb, timeout=600, kernel_name="cnn-lab", resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()


def _keep_checked_outputs(nb: nbformat.NotebookNode, ran: nbformat.NotebookNode, checked) -> None:
    """Outputs (and the execution counts nbval wants beside them) only on the compared cells."""
    by_id = {c.id: c for c in ran.cells}
    for c in nb.cells:
        if c.cell_type != "code":
            continue
        keep = checked(c)
        c.outputs = by_id[c.id].outputs if keep else []
        c.execution_count = by_id[c.id].execution_count if keep else None
        c.metadata.pop("execution", None)


def refresh_analysis(path: Path = NOTEBOOKS / "analysis.ipynb") -> None:
    nb = nbformat.read(path, as_version=4)
    ran = copy.deepcopy(nb)
    _execute(ran)
    _keep_checked_outputs(nb, ran, lambda c: "NBVAL_CHECK_OUTPUT" in c.source)
    nbformat.write(nb, path)


def refresh_train_variant(path: Path = NOTEBOOKS / "train_variant.ipynb") -> None:
    nb = nbformat.read(path, as_version=4)
    run = copy.deepcopy(nb)
    run.cells = [c for c in run.cells if "nbval-skip" not in c.metadata.get("tags", [])]
    _execute(run)
    _keep_checked_outputs(nb, run, lambda c: "nbval-check-output" in c.metadata.get("tags", []))
    nbformat.write(nb, path)


if __name__ == "__main__":
    refresh_train_variant()
    refresh_analysis()
    print("refreshed", ", ".join(str(p.relative_to(NOTEBOOKS.parent)) for p in sorted(NOTEBOOKS.glob("*.ipynb"))))
