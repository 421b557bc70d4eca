"""cfnb: counterfactual explanations of image classifiers, made for notebooks.

Layers (each usable alone): ``cfnb.explain`` (defined in ``cfnb.engine``) and the methods (compute), ``cfnb.viz`` and ``cfnb.widgets``
(interactive), ``cfnb.audit`` (spurious-correlation audits). Heavy modules load on first use, so
``import cfnb`` stays fast.
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "explain": ("cfnb.engine", "explain"),
    "METHODS": ("cfnb.engine", "METHODS"),
    "Counterfactuals": ("cfnb.results", "Counterfactuals"),
    "animate": ("cfnb.viz", "animate"),
    "ExplainerPanel": ("cfnb.widgets", "ExplainerPanel"),
    "AttributePanel": ("cfnb.widgets", "AttributePanel"),
    "setup_notebook": ("cfnb.notebook", "setup_notebook"),
}
_SUBMODULES = {"data", "models", "metrics", "viz", "widgets", "audit", "mirror", "gci", "causal", "baselines",
               "generators", "results"}

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
