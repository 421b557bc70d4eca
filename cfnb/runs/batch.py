"""One batch of a run: read it, explain it with ``cfnb.explain``, measure it, and turn it into a ``Shard``.

Batch k is computed the same way whichever process runs it and whenever: its images are fixed (indices
``[k * batch_size, (k + 1) * batch_size)``), and ``cfnb.explain`` is seeded with ``seed + k``.
"""
from __future__ import annotations

from ..engine import explain
from ..forward import forward_in_batches, probabilities
from ..metrics.core import mnac, oracle_agrees, proximity
from .moments import Moments
from .plan import FRAMES, RunPlan
from .rows import columns_for, to_csv
from .shards import Shard
from .targets import targets_for

CHUNK = 256  # images per forward pass of the measuring models


def explain_batch(plan: RunPlan, batch: int) -> Shard:
    """Explain batch ``batch`` of ``plan``; the models must already be on ``plan.device`` in eval mode."""
    index = plan.indices(batch)
    images, truth = plan.source.batch(index)
    on_device = images.to(plan.device)
    targets = plan.rule if isinstance(plan.rule, int) else targets_for(
        plan.rule, probabilities(plan.classifier, on_device, CHUNK))
    result = explain(plan.classifier, images, targets, plan.method, **plan.helpers, device=plan.device,
                     seed=plan.seed + batch, frames=FRAMES, progress=False, class_names=plan.class_names,
                     **plan.options)
    counterfactual = result.counterfactual.to(plan.device)
    values: dict[str, list] = {
        "index": index.tolist(), "source": result.source.tolist(), "target": result.target.tolist(),
        "prediction": result.prediction.tolist(), "valid": result.valid.tolist(),
        "l1": proximity(result.original, result.counterfactual, p=1).tolist(),
        "steps": result.steps_used.tolist(), "already_target": result.extras["already_target"].tolist(),
    }
    if plan.oracle is not None:
        values["oracle"] = oracle_agrees(plan.oracle, counterfactual, result.target.to(plan.device), CHUNK).tolist()
    if plan.source.has_labels and truth is not None:
        values["label"] = truth.long().tolist()
    if plan.mnac_model is not None:
        values["mnac"] = mnac(plan.mnac_model, result.original.to(plan.device), counterfactual,
                              batch_size=CHUNK).tolist()
    columns = columns_for(plan.oracle is not None, plan.source.has_labels, plan.mnac_model is not None)
    shard = Shard(batch, result.counterfactual, index, to_csv(columns, values), result.seconds)
    if plan.features is not None:
        shard.fid_counterfactual = Moments.of(forward_in_batches(plan.features, counterfactual, CHUNK))
        shard.fid_real = Moments.of(forward_in_batches(plan.features, on_device, CHUNK))
    return shard
