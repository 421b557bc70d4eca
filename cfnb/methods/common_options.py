"""Options several methods share, declared once (each method picks its own defaults)."""
from __future__ import annotations

from .registry import Option


def steps(default: int) -> Option:
    return Option("steps", "int", default, "optimisation steps at most (a sample stops once it has the margin)",
                  low=1, span=(1, 1000), main=True)


def learning_rate(default: float) -> Option:
    return Option("lr", "float", default, "step size of the optimiser", low=0, low_open=True, span=(1e-4, 1.0),
                  log=True)


def lam(default: float) -> Option:
    return Option("lam", "float", default, "weight λ of the classification loss towards the target", low=0,
                  low_open=True, span=(1e-3, 1e3), log=True, main=True)


def norm(default: float) -> Option:
    return Option("p", "float", default, "norm of the proximity term, mean of |x − x'|^p per pixel", low=0,
                  low_open=True, span=(0.5, 2.0))


def kappa(default: float, what: str = "image") -> Option:
    return Option("kappa", "float", default, f"logit margin the target must lead by in the {what} to stop", low=0,
                  span=(0.0, 10.0), main=True)


def residual(what: str) -> Option:
    return Option("residual", "bool", False, f"add back x − {what}(x), keeping details it cannot draw")
