"""Metrics for counterfactual explanations: pure functions over batched tensors, and ``evaluate`` for a result.

- ``core``: validity, proximity (L1/L2), sparsity, oracle validity, MNAC.
- ``transition``: COUT (Khorram & Li, CVPR 2022) and the monotonicity of a path's target probability.
- ``interpretability``: IM1 / IM2 (Van Looveren & Klaise, 2021).
- ``fid``: FID over a named domain network's features. ``lpips``: LPIPS through the ``lpips`` package.
- ``evaluate``: every metric the given models allow, for a ``Counterfactuals``.

Functions that run a model take it first, then ``original`` and ``counterfactual``; input checks come from
``cfnb.checks``.
"""
from .core import mnac, oracle_agrees, oracle_validity, proximity, sparsity, validity
from .evaluate import evaluate
from .fid import FIDResult, domain_features, fid, frechet_distance
from .interpretability import im1, im2
from .lpips import LPIPSUnavailable, lpips_distance
from .transition import cout, path_monotonicity

__all__ = [
    "validity", "proximity", "sparsity", "oracle_agrees", "oracle_validity", "cout", "path_monotonicity", "mnac",
    "im1", "im2",
    "frechet_distance", "fid", "FIDResult", "domain_features", "lpips_distance", "LPIPSUnavailable", "evaluate",
]
