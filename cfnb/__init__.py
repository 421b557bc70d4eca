"""cfnb: counterfactual explanations of image classifiers, made for notebooks.

The package is layered, each layer importing only those below it::

    checks, forward, modes, progress  ->  data  ->  models  ->  methods  ->  results, engine (explain), comparison
        ->  metrics, viz  ->  widgets, audit, runs  ->  training, cli

``cfnb.explain`` runs any registered method (``cfnb.methods.available()``); ``cfnb.viz`` draws results;
``cfnb.widgets`` holds the panels; ``cfnb.audit`` the spurious-correlation audits; ``cfnb.runs`` whole data sets
explained to disk (``cfnb.explain_dataset``); ``cfnb.training`` the training loops and the recipes of the shipped
models. Heavy modules load on first use, so ``import cfnb`` stays fast.
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "explain": ("cfnb.engine", "explain"),
    "explain_dataset": ("cfnb.runs", "explain_dataset"),
    "Counterfactuals": ("cfnb.results", "Counterfactuals"),
    "animate": ("cfnb.viz", "animate"),
    "ExplainerPanel": ("cfnb.widgets", "ExplainerPanel"),
    "AttributePanel": ("cfnb.widgets", "AttributePanel"),
    "ComparePanel": ("cfnb.widgets", "ComparePanel"),
    "compare_classifiers": ("cfnb.comparison", "compare_classifiers"),
    "setup_notebook": ("cfnb.notebook", "setup_notebook"),
}
_SUBMODULES = {"checks", "data", "models", "methods", "results", "metrics", "viz", "widgets", "audit", "runs",
               "training"}

__all__ = sorted(_LAZY) + sorted(_SUBMODULES)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attribute = _LAZY[name]
        value = getattr(importlib.import_module(module), attribute)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"cfnb.{name}")
    raise AttributeError(f"module 'cfnb' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
