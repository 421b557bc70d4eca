"""Shards: one batch's results on disk, a safetensors file then its rows file, each written atomically.

The tensor file holds ``counterfactual`` (n, C, H, W), ``index`` (n,) and the FID sums of the batch's
counterfactuals (``fid.counterfactual.*``) and real images (``fid.real.*``); its metadata (``cfnb``, JSON) the
batch number and the seconds ``cfnb.explain`` took. The rows file is written last, so a shard whose rows file
exists is complete; a tensor file alone is the trace of a writer killed in between, and the shard is redone.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import torch

from .atomic import atomic_path, write_atomic
from .folder import RunFolder
from .moments import Moments

COUNTERFACTUAL = "counterfactual"
INDEX = "index"
FID_COUNTERFACTUAL = "fid.counterfactual"
FID_REAL = "fid.real"


@dataclass
class Shard:
    """One explained batch, ready to write.

    Attributes:
        batch: the batch number k (indices ``[k * batch_size, (k + 1) * batch_size)``).
        counterfactual: (n, C, H, W) on the CPU.
        index: (n,) positions in the data.
        rows: the batch's rows as CSV text (``rows.to_csv``).
        seconds: what ``cfnb.explain`` took.
        fid_counterfactual / fid_real: the batch's feature sums (None without a feature network).
    """

    batch: int
    counterfactual: torch.Tensor
    index: torch.Tensor
    rows: str
    seconds: float
    fid_counterfactual: Moments | None = None
    fid_real: Moments | None = None


def write_shard(folder: RunFolder, shard: Shard) -> None:
    """Write ``shard``: its tensor file, then its rows file (each atomically)."""
    from safetensors.torch import save_file

    tensors = {COUNTERFACTUAL: shard.counterfactual.contiguous(), INDEX: shard.index.long().contiguous()}
    for prefix, moments in ((FID_COUNTERFACTUAL, shard.fid_counterfactual), (FID_REAL, shard.fid_real)):
        if moments is not None:
            tensors.update(moments.to_tensors(prefix))
    metadata = {"cfnb": json.dumps({"batch": shard.batch, "seconds": shard.seconds})}
    with atomic_path(folder.shard_tensors(shard.batch)) as temporary:
        save_file(tensors, str(temporary), metadata=metadata)
    write_atomic(folder.shard_rows(shard.batch), shard.rows)


def is_done(folder: RunFolder, batch: int) -> bool:
    """Whether shard ``batch`` is complete (its rows file, written last, exists beside its tensor file)."""
    return folder.shard_rows(batch).is_file() and folder.shard_tensors(batch).is_file()


def done_batches(folder: RunFolder, count: int) -> set[int]:
    """The complete shards among batches ``0 .. count - 1``."""
    return {k for k in range(count) if is_done(folder, k)}


def read_stats(folder: RunFolder, batch: int) -> tuple[dict[str, Any], Moments | None, Moments | None]:
    """A shard's metadata and its FID sums (counterfactuals, real images), without reading its images."""
    from safetensors import safe_open

    with safe_open(str(folder.shard_tensors(batch)), framework="pt") as handle:
        meta = json.loads((handle.metadata() or {}).get("cfnb", "{}"))
        keys = set(handle.keys())
        found = []
        for prefix in (FID_COUNTERFACTUAL, FID_REAL):
            names = [f"{prefix}.count", f"{prefix}.total", f"{prefix}.outer"]
            found.append(Moments.from_tensors({k: handle.get_tensor(k) for k in names}, prefix)
                         if all(k in keys for k in names) else None)
    return meta, found[0], found[1]


def read_counterfactuals(folder: RunFolder, batch: int, positions: list[int]) -> torch.Tensor:
    """Counterfactuals at ``positions`` within shard ``batch`` (only those are read)."""
    from safetensors import safe_open

    with safe_open(str(folder.shard_tensors(batch)), framework="pt") as handle:
        pictures = handle.get_slice(COUNTERFACTUAL)
        return torch.stack([pictures[p:p + 1][0] for p in positions]) if positions else torch.empty(0)
