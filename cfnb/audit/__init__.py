"""Spurious-correlation audits: which factors does a classifier really rely on, how much, and for which classes?

``spurious(classifier, images, factors, ...)`` intervenes on each factor alone and measures how the decisions move
(flip rate = reliance score, with bootstrap intervals), with group figures (accuracy per label x factor group,
worst-group accuracy) and counterfactuals split by factor; it returns an ``AuditReport`` (table, summary, Plotly
charts, gallery, ``to_html``, JSON). ``AuditSettings`` holds how an audit runs (sizes, bootstrap, seed, gallery).
``run_config(path)`` runs one from a JSON (or TOML) file (the ``cfnb audit`` command).

Modules: ``spurious`` (the audit, stage by stage), ``factors`` (interventions), ``shares`` (counterfactual edits
split by factor), ``statistics`` (streaming bootstrap figures), ``stream`` (data as batches), ``report`` (the
``AuditReport`` data model), ``report_charts`` / ``report_html`` / ``report_json`` (its renderings), ``config``
(``cfnb audit CONFIG``) and ``planted`` (factors for cfnb's data sets with planted truths).
"""
from __future__ import annotations

from pathlib import Path

from .factors import EditorInterventions, Factor, Reconstruction, TransformInterventions, latent_factor
from .report import AuditReport, GalleryPair
from .report_charts import counterfactual_share_chart, group_accuracy_chart, reliance_chart
from .spurious import FLAG_THRESHOLD, AuditSettings, spurious
from .statistics import Estimate

__all__ = [
    "spurious", "AuditSettings", "AuditReport", "Estimate", "Factor", "GalleryPair", "latent_factor",
    "Reconstruction", "EditorInterventions", "TransformInterventions", "reliance_chart", "group_accuracy_chart",
    "counterfactual_share_chart", "FLAG_THRESHOLD", "run_config",
]


def run_config(path: str | Path, out: str | Path | None = None) -> int:
    """Run the audit a JSON (or TOML) config describes and write its HTML report (see ``cfnb.audit.config``)."""
    from .config import run_config as run

    return run(path, out)
