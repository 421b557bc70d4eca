"""Spurious-correlation audits: which factors does a classifier really rely on, how much, and for which classes?

``spurious(classifier, images, factors, ...)`` intervenes on each factor alone and measures how the decisions move
(flip rate = reliance score, with bootstrap intervals), with group figures (accuracy per label x factor group,
worst-group accuracy) and counterfactuals split by factor; it returns an ``AuditReport`` (table, summary, Plotly
charts, gallery, ``to_html``, JSON). ``run_config(path)`` runs one from a JSON file (the ``cfnb audit`` command).
"""
from __future__ import annotations

from .factors import EditorInterventions, Factor, Reconstruction, TransformInterventions, latent_factor
from .report import AuditReport, GalleryPair, counterfactual_share_chart, group_accuracy_chart, reliance_chart
from .spurious import FLAG_THRESHOLD, spurious
from .statistics import Estimate

__all__ = [
    "spurious", "AuditReport", "Estimate", "Factor", "GalleryPair", "latent_factor", "Reconstruction",
    "EditorInterventions", "TransformInterventions", "reliance_chart", "group_accuracy_chart",
    "counterfactual_share_chart", "FLAG_THRESHOLD", "run_config",
]


def run_config(path, out=None) -> int:
    """Run the audit a JSON config describes and write its HTML report (see ``cfnb.audit.config``)."""
    from .config import run_config as run

    return run(path, out)
