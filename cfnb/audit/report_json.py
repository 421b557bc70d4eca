"""``AuditReport`` as JSON and back: estimates as ``{"value", "low", "high", "n"}``, gallery images as PNG data URIs.

``AuditReport.to_dict`` / ``to_json`` / ``from_json`` call these functions.
"""
from __future__ import annotations

import base64
import io
from typing import Any

import torch

from ..viz.images import png_data_uri
from .report import AuditReport, GalleryPair, drawable
from .statistics import Estimate


def _out(estimate: Estimate | None) -> Any:
    return None if estimate is None else estimate.to_dict()


def _in(value: Any) -> Estimate | None:
    return None if value is None else Estimate.from_dict(value)


def _required(value: Any) -> Estimate:
    """A figure every report has; a missing one reads as ``Estimate.missing()``."""
    return Estimate.missing() if value is None else Estimate.from_dict(value)


def report_to_dict(report: AuditReport) -> dict[str, Any]:
    """JSON-ready dictionary of ``report`` (gallery images as PNG data URIs, two-channel images drawn as RGB)."""
    return {
        "classifier": report.classifier, "class_names": report.class_names, "factors": report.factors,
        "expected": report.expected, "n_images": report.n_images,
        "scores": {f: _out(e) for f, e in report.scores.items()},
        "figures": {f: {k: _out(e) for k, e in figs.items()} for f, figs in report.figures.items()},
        "per_class": {f: {c: _out(e) for c, e in rows.items()} for f, rows in report.per_class.items()},
        "groups": {f: [{**row, "accuracy": _out(row["accuracy"]), "flip_rate": _out(row["flip_rate"])}
                       for row in rows] for f, rows in report.groups.items()},
        "worst_group": {f: {**g, "accuracy": _out(g["accuracy"])} for f, g in report.worst_group.items()},
        "accuracy": _out(report.accuracy), "shares": {k: _out(e) for k, e in report.shares.items()},
        "counterfactual_validity": _out(report.counterfactual_validity), "flagged": report.flagged,
        "threshold": report.threshold, "settings": report.settings, "seconds": report.seconds, "notes": report.notes,
        "value_names": report.value_names, "redraw_agreement": _out(report.redraw_agreement),
        "gallery": [{"factor": p.factor, "kind": p.kind, "before": png_data_uri(drawable(p.before)),
                     "after": png_data_uri(drawable(p.after)), "before_class": p.before_class,
                     "after_class": p.after_class, "before_probability": p.before_probability,
                     "after_probability": p.after_probability, "score": p.score} for p in report.gallery],
    }


def report_from_dict(raw: dict[str, Any]) -> AuditReport:
    """The ``AuditReport`` that ``report_to_dict`` wrote (gallery images come back as (C, H, W) in [0, 1])."""
    return AuditReport(
        classifier=raw["classifier"], class_names=raw["class_names"], factors=raw["factors"],
        expected=raw["expected"], n_images=raw["n_images"],
        scores={f: _required(e) for f, e in raw["scores"].items()},
        figures={f: {k: _required(e) for k, e in figs.items()} for f, figs in raw["figures"].items()},
        per_class={f: {c: _required(e) for c, e in rows.items()} for f, rows in raw["per_class"].items()},
        groups={f: [{**row, "accuracy": _in(row["accuracy"]), "flip_rate": _in(row["flip_rate"])} for row in rows]
                for f, rows in raw["groups"].items()},
        worst_group={f: {**g, "accuracy": _in(g["accuracy"])} for f, g in raw["worst_group"].items()},
        accuracy=_in(raw["accuracy"]), shares={k: _required(e) for k, e in raw["shares"].items()},
        counterfactual_validity=_required(raw["counterfactual_validity"]), flagged=raw["flagged"],
        threshold=raw["threshold"], settings=raw["settings"], seconds=raw["seconds"], notes=raw["notes"],
        value_names=raw.get("value_names", {}), redraw_agreement=_in(raw.get("redraw_agreement")),
        gallery=[GalleryPair(g["factor"], g["kind"], image_from_data_uri(g["before"]),
                             image_from_data_uri(g["after"]), g["before_class"], g["after_class"],
                             g["before_probability"], g["after_probability"], g["score"]) for g in raw["gallery"]],
    )


def image_from_data_uri(uri: str) -> torch.Tensor:
    """The (C, H, W) float image in [0, 1] of a PNG data URI (as ``cfnb.viz.images.png_data_uri`` writes them)."""
    import numpy as np
    from PIL import Image

    picture = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
    array = torch.from_numpy(np.asarray(picture).copy()).float() / 255
    return array[None] if array.ndim == 2 else array.permute(2, 0, 1)
