"""Colab's front-end pins (.ci/colab-requirements.txt) and the check that a test run uses them (.ci/colab_stack.py).

``make test-colab`` runs this file with .venv-colab's Python and ``CFNB_STACK=colab``; ``make test`` runs it with
.venv's. In each, the check must say which stack it is, so the second run can never silently test the first stack.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
CHECK = ROOT / ".ci" / "colab_stack.py"
COLAB = os.environ.get("CFNB_STACK") == "colab"


def _check_module():
    spec = importlib.util.spec_from_file_location("colab_stack", CHECK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _pins() -> dict[str, str]:
    return _check_module().read_pins()


def test_colab_pins_are_colabs_versions():
    pins = _pins()
    assert pins["ipywidgets"] == "7.7.1" and pins["plotly"] == "5.24.1", pins


def test_colab_pins_are_within_pyprojects_ranges():
    with open(ROOT / "pyproject.toml", "rb") as handle:
        dependencies = [Requirement(line) for line in tomllib.load(handle)["project"]["dependencies"]]
    pins = _pins()
    checked = 0
    for dependency in dependencies:
        name = canonicalize_name(dependency.name)
        if name in pins:
            checked += 1
            assert dependency.specifier.contains(Version(pins[name]), prereleases=True), (
                f".ci/colab-requirements.txt pins {name}=={pins[name]}, outside pyproject.toml's range {dependency}")
    assert checked >= 2, "ipywidgets and plotly are cfnb dependencies; the pins file should name both"


def test_read_pins_rejects_ranges_and_duplicates(tmp_path):
    read_pins = _check_module().read_pins
    path = tmp_path / "pins.txt"
    path.write_text("# Colab\nipywidgets==7.7.1  # pinned\n\nPlotly == 5.24.1\n")
    assert read_pins(path) == {"ipywidgets": "7.7.1", "plotly": "5.24.1"}
    path.write_text("plotly>=5\n")
    with pytest.raises(ValueError, match="not an exact pin"):
        read_pins(path)
    path.write_text("plotly==5.24.1\nPlotly==5.24.0\n")
    with pytest.raises(ValueError, match="pinned twice"):
        read_pins(path)


def test_this_interpreter_runs_the_stack_it_is_meant_to():
    """With CFNB_STACK=colab the check passes; in the main environment (ipywidgets 8) it fails and says why."""
    run = subprocess.run([sys.executable, str(CHECK)], capture_output=True, text=True, timeout=120)
    if COLAB:
        assert run.returncode == 0, run.stderr
        assert "ipywidgets 7.7.1" in run.stdout and "plotly 5.24.1" in run.stdout
        import ipywidgets
        import plotly
        import torch

        assert (ipywidgets.__version__, plotly.__version__) == ("7.7.1", "5.24.1")
        assert Path(sys.prefix).resolve() not in Path(torch.__file__).resolve().parents, "torch installed twice"
    else:
        assert run.returncode == 1, f"the Colab check passed in the main environment:\n{run.stdout}"
        assert "ipywidgets" in run.stderr and "pinned 7.7.1" in run.stderr, run.stderr
