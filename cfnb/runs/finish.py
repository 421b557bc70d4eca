"""The end of a run: stream the shards once to merge their rows into ``rows.csv`` and add up the summary."""
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from .atomic import write_atomic
from .folder import RunFolder
from .rows import merge, read_rows
from .shards import done_batches, read_stats
from .summary import RunSummary, Tally


def finish(folder: RunFolder, n: int, batches: int, method: str, fingerprint: str,
           fid_network: str | None) -> RunSummary:
    """Merge the rows of every shard into ``rows.csv`` (sorted by index), write ``real_features.safetensors`` and
    ``summary.json``, and return the summary. One shard is in memory at a time.

    Raises:
        RuntimeError: a shard is missing (the run is unfinished: call ``explain_dataset`` again), or the shards do
            not hold ``n`` rows.
    """
    missing = sorted(set(range(batches)) - done_batches(folder, batches))
    if missing:
        raise RuntimeError(f"{len(missing)} of {batches} shards are missing in {folder.root} (batches "
                           f"{missing[:8]}{'...' if len(missing) > 8 else ''}); run the same call again to finish")
    tally = Tally()

    def shard_rows() -> Iterator[Path]:
        for batch in range(batches):
            path = folder.shard_rows(batch)
            meta, counterfactual, real = read_stats(folder, batch)
            tally.add(read_rows(path), float(meta.get("seconds", 0.0)), counterfactual, real)
            yield path

    count = merge(shard_rows(), folder.rows)
    if count != n or tally.count != n:
        raise RuntimeError(f"the shards of {folder.root} hold {count} rows for {n} images; delete the folder (or "
                           "pass overwrite=True) and run again")
    if tally.real is not None:
        from safetensors.torch import save

        write_atomic(folder.real_features, save(tally.real.to_tensors("fid.real"),
                                                metadata={"cfnb": json.dumps({"network": fid_network})}))
    fid = tally.fid()
    summary = RunSummary(
        out=folder.root, n=n, method=method, batches=batches, validity=tally.mean("valid") or 0.0,
        oracle_validity=tally.mean("oracle"), mean_l1=tally.mean("l1") or 0.0, fid=fid,
        fid_network=fid_network if fid is not None else None, mnac=tally.mean("mnac"),
        already_target=tally.mean("already_target") or 0.0, mean_steps=tally.mean("steps") or 0.0,
        seconds=tally.seconds, fingerprint=fingerprint)
    write_atomic(folder.summary, json.dumps(summary.to_json(), indent=2) + "\n")
    return summary
