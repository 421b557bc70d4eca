"""Counterfactual methods, one module each, and the registry every entry point reads.

Built in: ``latent`` and ``attribute`` (GCI, ``gci.py``), ``mirror`` (Mirror-CFE, ``mirror.py``), ``causal``
(causal steering, ``causal.py``), ``pixel`` and ``pgd`` (baselines, ``baselines.py``). ``base.py`` holds what they
share (the ``Problem``, the batched optimisation loop, loss terms); ``registry.py`` the declarations.

``available()`` lists the methods; ``get(name)`` gives one with its options and helper models; ``register`` adds
a method, which ``cfnb.explain`` and the ExplainerPanel then offer with no other change.
"""
# isort: off
# Each module registers its methods on import, in the order ``available()`` lists them: most informative first.
from . import gci, mirror, causal, baselines  # noqa: F401
# isort: on
from .base import MethodOutput, Problem
from .registry import Helper, Method, Option, available, get, names, register, unregister

__all__ = ["available", "get", "names", "register", "unregister", "Method", "Option", "Helper", "Problem",
           "MethodOutput"]
