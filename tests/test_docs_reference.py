"""The documentation site's API reference describes every public function and class of cfnb's documented modules.

The site is built with Sphinx as ``make docs`` builds it, warnings as errors, but without running the notebooks
(``-D nb_execution_mode=off``, about 30 s); its object inventory (``objects.inv``) must then name each public object.
"""
from __future__ import annotations

import importlib
import inspect
import subprocess
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

# The modules whose public API the reference documents (docs/reference/<module>.md).
MODULES = ["cfnb", "cfnb.metrics", "cfnb.viz", "cfnb.audit", "cfnb.training"]
DESCRIBED_AS = {"py:function", "py:class", "py:exception", "py:data", "py:attribute", "py:method"}


def public_names(module: types.ModuleType) -> list[str]:
    """The module's public objects: its ``__all__`` (submodules left out), plus any function or class defined in
    the module itself whose name has no leading underscore."""
    names = list(getattr(module, "__all__", []))
    for name, value in vars(module).items():
        if not name.startswith("_") and (inspect.isfunction(value) or inspect.isclass(value)) \
                and value.__module__ == module.__name__ and name not in names:
            names.append(name)
    return [n for n in names if not isinstance(getattr(module, n), types.ModuleType)]


def missing_from(inventory: dict[str, dict], modules: list[str]) -> list[str]:
    """Fully qualified public names of ``modules`` that no entry of a Sphinx inventory describes."""
    described = {name for role, entries in inventory.items() if role in DESCRIBED_AS for name in entries}
    missing = []
    for module_name in modules:
        module = importlib.import_module(module_name)
        missing += [f"{module_name}.{n}" for n in public_names(module) if f"{module_name}.{n}" not in described]
    return missing


def read_inventory(path: Path) -> dict[str, dict]:
    from sphinx.util.inventory import InventoryFile

    with path.open("rb") as stream:
        inventory = InventoryFile.load(stream, "", lambda base, uri: uri)
    # Sphinx >= 8.2 returns an _Inventory object with .data; older versions a plain dict
    return dict(getattr(inventory, "data", inventory))


@pytest.fixture(scope="module")
def inventory(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    out = tmp_path_factory.mktemp("docs")
    command = [sys.executable, "-m", "sphinx", "-b", "html", "-W", "--keep-going", "-q",
               "-D", "nb_execution_mode=off", "-d", str(out / "doctrees"), str(DOCS), str(out / "html")]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"sphinx-build failed ({' '.join(command)}):\n{done.stdout[-3000:]}\n" \
                                 f"{done.stderr[-6000:]}"
    return read_inventory(out / "html" / "objects.inv")


def test_public_names_follow_all_and_leave_out_submodules():
    import cfnb

    names = public_names(cfnb)
    assert {"explain", "explain_dataset", "Counterfactuals", "ExplainerPanel", "animate"} <= set(names)
    assert "metrics" not in names and "viz" not in names  # submodules are documented on their own pages


def test_missing_from_names_what_an_inventory_lacks():
    import cfnb.viz

    everything = {"py:function": {f"cfnb.viz.{n}": None for n in public_names(cfnb.viz)}}
    assert missing_from(everything, ["cfnb.viz"]) == []
    del everything["py:function"]["cfnb.viz.animate"]
    assert missing_from(everything, ["cfnb.viz"]) == ["cfnb.viz.animate"]
    assert missing_from({"py:module": {"cfnb.viz.compare": None}}, ["cfnb.viz"])  # a module entry describes nothing


@pytest.mark.slow
def test_reference_describes_every_public_name(inventory):
    missing = missing_from(inventory, MODULES)
    assert not missing, ("public names missing from the API reference (docs/reference/): " + ", ".join(missing)
                         + "; give each a docstring and make sure its module's page documents it")
    for page_module in MODULES:
        assert page_module in inventory.get("py:module", {}), f"no reference page documents module {page_module}"
    explain = inventory["py:function"]["cfnb.explain"]
    assert (getattr(explain, "uri", None) or explain[2]).startswith("reference/cfnb.html")


@pytest.mark.slow
def test_site_has_guides_tutorials_and_model_cards(inventory):
    pages = set(inventory.get("std:doc", {}))
    guides = {p.stem for p in DOCS.glob("*.md")}
    assert guides <= pages, f"docs/*.md pages missing from the site: {sorted(guides - pages)}"
    notebooks = {f"tutorials/{p.relative_to(ROOT / 'notebooks').with_suffix('').as_posix()}"
                 for p in (ROOT / "notebooks").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts}
    assert notebooks and notebooks <= pages, f"notebooks missing from the site: {sorted(notebooks - pages)}"
    assert "reference/model-cards" in pages
