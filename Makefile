# Two commands do everything on a fresh machine: `make report` and `make test`.
# Each sets up .venv on first use (and again when pyproject.toml changes).
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
PROFILE ?= auto
STAMP  := $(VENV)/.installed

.PHONY: setup report test test-fast lab bench clean-reports

setup: $(STAMP)

# torch and torchvision are pinned in pyproject.toml; pip on Python 3.11 takes them from
# the local wheel cache where one exists and from the package index elsewhere.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	$(PY) -m ipykernel install --sys-prefix --name cnn-lab --display-name "Python (cnn-lab)" >/dev/null
	touch $(STAMP)

report: $(STAMP)
	$(PY) -m cnn_lab pipeline --profile $(PROFILE)

test: $(STAMP)
	$(PY) -m pytest -q -ra tests

test-fast: $(STAMP)
	$(PY) -m pytest -q -ra -m "not slow"

lab: $(STAMP)
	$(PY) -m jupyter lab --notebook-dir=.

bench: $(STAMP)
	$(PY) -m cnn_lab bench

clean-reports:
	rm -rf reports/smoke reports/cpu reports/full
