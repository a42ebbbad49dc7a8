# Two commands do everything on a fresh machine: `make report` and `make test`.
# Each sets up .venv on first use (and again when pyproject.toml changes).
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
PROFILE ?= auto
STAMP  := $(VENV)/.installed

.PHONY: setup system-deps report test test-fast nbval nbval-refresh lab bench clean-reports

# The venv (pip) and what pip cannot install (Chromium, Noto CJK fonts, poppler: see
# scripts/system-deps.sh, which installs them with apt-get where this user may, and
# otherwise says in one line what to install).
setup: $(STAMP) system-deps

system-deps:
	@bash scripts/system-deps.sh

# torch and torchvision are pinned in pyproject.toml; pip on Python 3.11 takes them from
# the local wheel cache where one exists and from the package index elsewhere.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	$(PY) -m ipykernel install --sys-prefix --name cnn-lab --display-name "Python (cnn-lab)" >/dev/null
	touch $(STAMP)

report: setup
	$(PY) -m cnn_lab pipeline --profile $(PROFILE)

# The suite plus nbval on both notebooks' reference outputs: the analysis notebook's
# NBVAL_CHECK_OUTPUT cells (model printouts, parameter counts, tables and text from
# tests/fixtures) and the training notebook's nbval-check-output cells (resolved default
# config, model printout and parameter count; its training cells are nbval-skip).
NBVAL := --nbval-lax --nbval-sanitize-with tests/nbval_sanitize.cfg notebooks/analysis.ipynb notebooks/train_variant.ipynb

test: setup
	$(PY) -m pytest -q -ra tests $(NBVAL)

test-fast: $(STAMP)
	$(PY) -m pytest -q -ra -m "not slow" tests

nbval: $(STAMP)
	$(PY) -m pytest -q -ra $(NBVAL)

# After a deliberate change to the report or the models: re-record those reference outputs.
nbval-refresh: $(STAMP)
	$(PY) tests/refresh_notebook_outputs.py

# JupyterLab with the project's environment as the kernel "Python (cnn-lab)".
# Jupyter refuses to run as root unless told; containers often run as root.
LAB_ARGS ?=
lab: $(STAMP)
	$(PY) -m jupyter lab --notebook-dir=. $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

BENCH_ARGS ?=
bench: $(STAMP)
	$(PY) -m cnn_lab bench $(BENCH_ARGS)

clean-reports:
	rm -rf reports/smoke reports/cpu reports/full
