"""A run's plan: its inputs checked once, before anything is written, and the configuration that fingerprints it."""
from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .. import methods
from ..checks import (
    check_classifier,
    check_classifier_images,
    check_logits,
    check_positive_int,
    class_names_of,
    model_dtype,
)
from ..data.sources import ImageSource, image_source
from ..metrics.fid import PenultimateFeatures, PooledFeatures, domain_features
from ..modes import frozen
from .fingerprint import model_identity, plain, tensor_digest
from .targets import check_target

FRAMES = 2
"""Trajectory frames asked of ``cfnb.explain``: a run keeps only the counterfactuals, so the fewest there can be."""

HELPER_ROLES = ("generator", "decoder", "editor", "attribute_classifier")


@dataclass
class RunPlan:
    """Everything a run needs, checked.

    Attributes:
        classifier: the explained classifier.
        source: the data, as an ``ImageSource``.
        n: images explained (the data's length, cut at ``limit``).
        batch_size: images per batch and shard.
        seed: batch k is explained with seed ``seed + k``.
        method / options: what ``cfnb.explain`` runs.
        helpers: the helper models (role -> model): those given and those the method finds for itself.
        rule: the target class index, or ``"runner-up"`` / ``"next"``.
        class_names: the classifier's K class names.
        device: where everything runs.
        oracle: judges the counterfactuals (or None).
        mnac_model: the attribute classifier MNAC is measured with (data with attributes), or None.
        features: the FID feature extractor (None when no network gives features), its name, and the network it
            reads (``feature_network``).
        config: what determines the results (JSON data), for ``config.json``.
    """

    classifier: nn.Module
    source: ImageSource
    n: int
    batch_size: int
    seed: int
    method: str
    options: dict[str, Any]
    helpers: dict[str, Any]
    rule: int | str
    class_names: list[str]
    device: torch.device
    oracle: Callable[[torch.Tensor], torch.Tensor] | None = None
    mnac_model: Callable[[torch.Tensor], torch.Tensor] | None = None
    features: nn.Module | None = None
    feature_name: str | None = None
    feature_network: nn.Module | None = None
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def batches(self) -> int:
        return math.ceil(self.n / self.batch_size)

    def indices(self, batch: int) -> torch.Tensor:
        """The data positions of batch ``batch``."""
        return torch.arange(batch * self.batch_size, min((batch + 1) * self.batch_size, self.n))

    @property
    def models(self) -> list[Any]:
        """Every model the run calls, each once (to be frozen on the device for the run)."""
        found = [self.classifier, *self.helpers.values(), self.oracle, self.mnac_model, self.feature_network]
        unique: dict[int, Any] = {id(model): model for model in found if model is not None}
        return list(unique.values())


def make_plan(classifier: nn.Module, data: Any, target: Any, method: str, *, labels: Any, helpers: dict[str, Any],
              oracle: Any, fid_network: nn.Module | None, batch_size: int, seed: int, limit: int | None,
              device: torch.device, options: dict[str, Any]) -> RunPlan:
    """Check a run's inputs and plan it.

    Raises:
        ValueError / TypeError: an empty data set, a classifier whose outputs disagree with the data's classes,
            an unknown target rule or class, an unknown method or option, missing helper models, bad numbers.
    """
    check_classifier(classifier)
    check_positive_int("batch_size", batch_size)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if limit is not None:
        check_positive_int("limit", limit)
    spec = methods.get(method)
    chosen = spec.resolve(options)
    given = spec.find_helpers(classifier, {role: model for role, model in helpers.items() if model is not None})
    spec.check_helpers(classifier, given)
    source = image_source(data, labels=labels)
    if len(source) == 0:
        raise ValueError("the data set is empty: there is nothing to explain")
    n = len(source) if limit is None else min(len(source), limit)
    first_images, first_targets = source.batch(torch.arange(min(batch_size, n)))
    check_classifier_images(classifier, first_images, "the data's images")
    outputs = _outputs(classifier, first_images[:1], device)
    if source.class_names is not None and len(source.class_names) != outputs:
        raise ValueError(f"the classifier has {outputs} outputs but the data has {len(source.class_names)} classes "
                         f"({', '.join(source.class_names[:12])}); explain it on data of its own classes")
    names = class_names_of(classifier, outputs, None if getattr(classifier, "class_names", None)
                           else source.class_names)
    rule = check_target(target, names)
    mnac_model = given.get("attribute_classifier") if source.has_attributes else None
    network, features = _feature_network(fid_network, oracle, classifier)
    feature_name = features.name if features is not None else None
    plan = RunPlan(classifier, source, n, batch_size, seed, method, dict(options), given, rule, names, device,
                   oracle, mnac_model, features, feature_name, network)
    sample = hashlib.sha256(tensor_digest(first_images).encode())
    sample.update(tensor_digest(first_targets).encode() if first_targets is not None else b"")
    plan.config = plain({
        "method": method, "options": chosen, "target": rule, "seed": seed, "batch_size": batch_size,
        "limit": limit, "frames": FRAMES, "class_names": names,
        "data": {"description": source.description, "length": len(source), "n": n,
                 "first_batch_sha256": sample.hexdigest()},
        "classifier": model_identity(classifier), "oracle": model_identity(oracle),
        "fid_network": {"name": feature_name, "model": model_identity(fid_network)},
        **{role: model_identity(given.get(role)) for role in HELPER_ROLES},
    })
    return plan


def _outputs(classifier: nn.Module, image: torch.Tensor, device: torch.device) -> int:
    """The classifier's number of outputs, from one image."""
    with frozen([classifier], device), torch.no_grad():
        dtype = model_dtype(classifier) or image.dtype
        logits = check_logits("the classifier", classifier(image.to(device, dtype)), 1)
    return int(logits.shape[1])


def _feature_network(fid_network: nn.Module | None, oracle: Any,
                     classifier: nn.Module) -> tuple[nn.Module | None, PooledFeatures | PenultimateFeatures | None]:
    """FID's feature network and extractor: ``fid_network`` if given (errors propagate), else the oracle, else the
    classifier; (None, None) when neither gives features."""
    if fid_network is not None:
        return fid_network, domain_features(fid_network)
    for network in (oracle, classifier):
        if isinstance(network, nn.Module):
            try:
                return network, domain_features(network)
            except TypeError:
                continue
    return None, None
