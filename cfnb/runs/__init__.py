"""Whole data sets explained to disk: ``explain_dataset`` writes a resumable, shardable run; ``load_run`` reads it.

Modules, one job each: ``plan`` (inputs checked, configuration), ``fingerprint`` (what determines the results),
``folder`` (the output folder's layout and ``config.json``), ``atomic`` (crash-safe writes), ``shards`` (one
batch on disk), ``rows`` (the CSV table), ``moments`` (FID from running sums), ``batch`` (one batch explained),
``summary`` and ``finish`` (the figures, added up shard by shard), ``runner``
(``explain_dataset``), ``load`` (``load_run``), ``config_file`` (``cfnb explain CONFIG``).
"""
from .folder import RunFolder, RunMismatchError
from .load import Run, load_run
from .runner import explain_dataset
from .summary import RunSummary

__all__ = ["explain_dataset", "load_run", "Run", "RunSummary", "RunFolder", "RunMismatchError"]
