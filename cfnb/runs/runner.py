"""``explain_dataset``: explain a whole data set to disk, batch by batch, resumable and shardable over processes."""
from __future__ import annotations

import ctypes
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..checks import check_classifier, resolve_device
from ..distributed import Ranks, gather_failures, join, leave, local_device, on_main
from ..modes import frozen
from ..progress import Progress, Reporter, check_progress
from .batch import explain_batch
from .fingerprint import fingerprint
from .finish import finish
from .folder import RunFolder, RunMismatchError, config_record, prepare
from .plan import RunPlan, make_plan
from .shards import done_batches, write_shard
from .summary import RunSummary


def explain_dataset(
    classifier: nn.Module,
    data: Any,
    target: int | str,
    method: str = "latent",
    *,
    out: str | Path,
    generator: nn.Module | None = None,
    decoder: nn.Module | None = None,
    editor: nn.Module | None = None,
    attribute_classifier: nn.Module | None = None,
    oracle: nn.Module | None = None,
    batch_size: int = 64,
    seed: int = 0,
    device: str | torch.device | None = None,
    progress: Progress = True,
    overwrite: bool = False,
    fid_network: nn.Module | None = None,
    limit: int | None = None,
    labels: Any = None,
    **options: Any,
) -> RunSummary:
    """Explain every image of a data set with ``cfnb.explain`` and write the results to ``out``, shard by shard.

    Batch k (images ``[k * batch_size, (k + 1) * batch_size)``) is explained with seed ``seed + k`` and written
    as one shard (counterfactuals and feature sums in a safetensors file, then its rows in a CSV file, each
    atomically); memory stays flat however large the data. At the end the rows are merged into ``out/rows.csv``
    (sorted by index) and the figures into ``out/summary.json``. Read a finished run with ``load_run(out)``.

    Called again with the same configuration, it explains only the batches without a finished shard (a killed
    run resumes; a half-written shard is redone). Under ``torchrun`` each process takes the batches k with
    ``k % world_size == rank``; rank 0 writes ``config.json`` first and merges at the end.

    Args:
        classifier: the PyTorch classifier to explain (logits (N, K)).
        data: anything ``cfnb.data.image_source`` takes: a tensor (with ``labels``), a ``Dataset``, a
            ``DataLoader``, an ``ImageSource`` or a spec (image folder, ``celeba:ROOT``, ``.npz`` file).
        target: a class index or name for every image, ``"runner-up"`` (each image's second most likely class)
            or ``"next"`` ((prediction + 1) mod K).
        method: a registered method (``cfnb.methods.available()``).
        out: the run's folder (created if needed).
        generator / decoder / editor / attribute_classifier: helper models for the method (as ``cfnb.explain``).
        oracle: an independent classifier judging the counterfactuals (rows' ``oracle``, ``oracle_validity``).
        batch_size: images per batch and per shard.
        seed: batch k is explained with seed ``seed + k``.
        device: where to compute (default: the classifier's device; ``"cuda"`` under torchrun means each
            process's own GPU).
        progress: True (a bar, on rank 0), False, or a callable ``(done, total)`` counting this process's images.
        overwrite: clear ``out`` when it holds another configuration's results instead of refusing.
        fid_network: the network whose features FID is computed over (default: the oracle, else the classifier).
        limit: explain only the first ``limit`` images.
        labels: true labels (N,) when ``data`` is a tensor; a ``Dataset`` brings its own.
        **options: the method's options (e.g. ``steps``).

    Returns:
        The run's ``RunSummary`` (figures and paths).

    Raises:
        ValueError / TypeError: an empty data set, a classifier whose outputs disagree with the data's classes, an
            unknown target rule or class, an unknown method or option, missing helper models.
        RunMismatchError: ``out`` holds another configuration's results (without ``overwrite``).
    """
    check_progress(progress)
    check_classifier(classifier)
    run_on = local_device(resolve_device(device, classifier))
    plan = make_plan(classifier, data, target, method, labels=labels,
                     helpers={"generator": generator, "decoder": decoder, "editor": editor,
                              "attribute_classifier": attribute_classifier},
                     oracle=oracle, fid_network=fid_network, batch_size=batch_size, seed=seed, limit=limit,
                     device=run_on, options=options)
    folder = RunFolder(Path(out).expanduser())
    ranks = join(run_on)
    try:
        return _run(plan, folder, ranks, progress, overwrite)
    finally:
        leave(ranks)


def _run(plan: RunPlan, folder: RunFolder, ranks: Ranks, progress: Progress, overwrite: bool) -> RunSummary:
    record = config_record(plan.config, fingerprint(plan.config))
    on_main(ranks, lambda: _prepare(plan, folder, record, overwrite))
    if folder.read_config().get("fingerprint") != record["fingerprint"]:
        raise RunMismatchError(f"rank {ranks.rank}'s configuration differs from rank 0's ({folder.config}); start "
                               "every process with the same arguments")
    failure: Exception | None = None
    computed = 0
    try:
        computed = _explain_batches(plan, folder, ranks, progress)
    except Exception as error:
        failure = error
    others = gather_failures(ranks, failure)
    if failure is not None:
        raise failure
    if others:
        raise RuntimeError(f"the run stopped: {'; '.join(others)}")
    on_main(ranks, lambda: finish(folder, plan.n, plan.batches, plan.method, record["fingerprint"],
                                  plan.feature_name))
    return replace(RunSummary.read(folder.root), computed=computed)


def _prepare(plan: RunPlan, folder: RunFolder, record: dict[str, Any], overwrite: bool) -> None:
    """Ready the folder (``folder.prepare``); an unfinished run's merged files are removed until it finishes."""
    prepare(folder, record, overwrite)
    if len(done_batches(folder, plan.batches)) < plan.batches:
        folder.summary.unlink(missing_ok=True)
        folder.rows.unlink(missing_ok=True)


def _explain_batches(plan: RunPlan, folder: RunFolder, ranks: Ranks, progress: Progress) -> int:
    """Explain and write this process's batches that have no finished shard; return how many."""
    mine = [k for k in range(plan.batches) if ranks.takes(k)]
    done = done_batches(folder, plan.batches)
    todo = [k for k in mine if k not in done]
    total = sum(len(plan.indices(k)) for k in mine)
    finished = total - sum(len(plan.indices(k)) for k in todo)
    shown = progress if ranks.main or progress is not True else False
    with Reporter(shown, total, f"cfnb.explain_dataset ({plan.method})", unit="image") as reporter, \
            frozen(plan.models, plan.device):
        reporter.update(finished, total)
        for batch in todo:
            write_shard(folder, explain_batch(plan, batch))
            finished += len(plan.indices(batch))
            reporter.update(finished, total)
            release_freed_memory()
    return len(todo)


def release_freed_memory() -> None:
    """Hand the memory freed by the last batch back to the system (glibc's ``malloc_trim``; elsewhere nothing).

    glibc keeps freed blocks for reuse, so without this a long run's resident size creeps up batch after batch
    although no batch's data is kept: with it, peak RSS stays flat however many images a run explains."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):  # not glibc (e.g. musl): nothing to trim
            pass
