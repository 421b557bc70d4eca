# cfnb developer commands. Needs only Python 3 (with venv) and pip; everything else goes into .venv.
#
#   make demo    explain held-out MNIST digits with the shipped models (writes artifacts/demo/*.html)
#   make test    lint, then the whole suite: tests/, the notebooks (nbval) and the real-browser checks
#   make lint    ruff (lint + import order) and mypy over the package
#   make lab     JupyterLab on notebooks/
#   make bench   every benchmarks/*.py
#   make train   retrain every shipped model (MODELS="a b" for a few)

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.cfnb-installed

# torch first, pinned: pip then never resolves another (multi-GB) torch build for the rest.
TORCH_PINS := torch==2.14.1 torchvision==0.29.1

# Playwright drives Debian's /usr/bin/chromium; it must never fetch a browser of its own.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

# Notebooks run by nbval: outputs compared only in cells marked NBVAL_CHECK_OUTPUT; 300 s per cell.
# tests/ and notebooks/ come from pyproject's testpaths, so a missing notebooks/ folder is no error.
NBVAL_ARGS := --nbval-lax --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg --nbval-cell-timeout=300
PYTEST_ARGS ?=
MODELS ?=

# JupyterLab refuses to start as root unless told to.
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: venv demo lint test lab bench train

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install $(TORCH_PINS)
	$(PY) -m pip install -e ".[test]"
	touch $@

demo: venv
	$(PY) -m cfnb demo --out artifacts/demo/cfnb-demo.html

lint: venv
	$(VENV)/bin/ruff check cfnb tests benchmarks
	$(VENV)/bin/mypy

test: lint
	$(PY) -m pytest $(NBVAL_ARGS) $(PYTEST_ARGS)

lab: venv
	$(VENV)/bin/jupyter lab $(ALLOW_ROOT) --ServerApp.root_dir=notebooks

bench: venv
	shopt -s nullglob; scripts=(benchmarks/*.py); \
	if [ $${#scripts[@]} -eq 0 ]; then echo "no benchmarks/*.py to run"; exit 0; fi; \
	for script in "$${scripts[@]}"; do echo "== $$script"; $(PY) "$$script"; done

train: venv
	models="$(MODELS)"; \
	if [ -z "$$models" ]; then models=$$($(PY) -c 'from cfnb.training.recipes import RECIPES; print(" ".join(sorted(RECIPES)))'); fi; \
	for name in $$models; do echo "== cfnb train $$name"; $(VENV)/bin/cfnb train "$$name"; done
