# cfnb developer commands. Needs only Python 3 (with venv) and pip; everything else goes into .venv.
#
#   make demo    explain held-out MNIST digits with the shipped models (writes artifacts/demo/*.html)
#   make test    lint, make docs, then the whole suite: tests/, the notebooks (nbval) and the real-browser checks
#   make docs    the documentation site, notebooks executed, into docs/_build/html (warnings are errors)
#   make test-colab  widget, figure, panel and notebook tests under Colab's ipywidgets 7.7 and Plotly 5 (make test
#                runs it after the suite)
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
DOCS_ARGS ?=

# JupyterLab refuses to start as root unless told to.
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: venv demo lint test lab bench train

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install $(TORCH_PINS)
	$(PY) -m pip install -e ".[test,docs]"
	touch $@

demo: venv
	$(PY) -m cfnb demo --out artifacts/demo/cfnb-demo.html

lint: venv
	$(VENV)/bin/ruff check cfnb tests benchmarks docs .ci
	$(VENV)/bin/mypy

test: lint docs
	status=0; $(PY) -m pytest $(NBVAL_ARGS) $(PYTEST_ARGS) || status=$$?; \
	$(MAKE) --no-print-directory test-colab || status=$$(( status ? status : 1 )); exit $$status

.PHONY: docs
# Sphinx + MyST-NB: README, docs/*.md, the API reference, the model cards and every notebook, run during the build.
docs: venv
	$(PY) -m sphinx -b html -W --keep-going $(DOCS_ARGS) docs docs/_build/html
	@echo "docs site: docs/_build/html/index.html"

# Colab's front-end stack (ipywidgets 7.7, Plotly 5) in a second environment: the pins of .ci/colab-requirements.txt
# installed without dependencies; everything else, torch included, comes from .venv's site-packages, which a .pth
# file puts on sys.path after .venv-colab's own (so the pins shadow .venv's newer versions). .ci/colab_stack.py
# fails the build and every run when the interpreter does not give exactly the pinned versions.
COLAB_VENV := .venv-colab
COLAB_PY := $(COLAB_VENV)/bin/python
COLAB_PINS := .ci/colab-requirements.txt
COLAB_STAMP := $(COLAB_VENV)/.cfnb-installed
# What the front-end stack can change: widgets, figures, the headless panel tests and the notebooks (Colab has no
# JupyterLab, and ipywidgets 7's lab extension does not load in JupyterLab 4: no browser tests here).
COLAB_TESTS := tests/test_widgets.py tests/test_viz.py $(wildcard tests/test_*panel*.py) tests/test_colab_stack.py \
	notebooks
SITE_PACKAGES := import sysconfig; print(sysconfig.get_path("purelib"))

.PHONY: venv-colab test-colab
venv-colab: $(COLAB_STAMP)

$(COLAB_STAMP): $(STAMP) $(COLAB_PINS)
	rm -rf $(COLAB_VENV)
	$(PY) -m venv --without-pip $(COLAB_VENV)
	$(PY) -m pip --python $(COLAB_PY) install --no-deps -r $(COLAB_PINS)
	main=$$($(PY) -c '$(SITE_PACKAGES)'); colab=$$($(COLAB_PY) -c '$(SITE_PACKAGES)'); \
	echo "import site; site.addsitedir('$$main')" > "$$colab/cfnb-main-venv.pth"
	$(COLAB_PY) .ci/colab_stack.py
	touch $@

test-colab: venv-colab
	$(COLAB_PY) .ci/colab_stack.py
	started=$$SECONDS; CFNB_STACK=colab $(COLAB_PY) -m pytest $(NBVAL_ARGS) $(PYTEST_ARGS) $(COLAB_TESTS); \
	echo "test-colab: the Colab stack's tests took $$((SECONDS - started)) s"

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
