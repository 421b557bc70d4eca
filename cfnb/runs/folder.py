"""A run's output folder: where each file lives, and ``config.json``, which ties the folder to one configuration.

Layout::

    OUT/config.json                     what determines the results, and its fingerprint
    OUT/shards/shard-000000.safetensors batch 0's counterfactuals, indices and feature sums (FID)
    OUT/shards/shard-000000.csv         batch 0's rows; written last: a shard is done when this file exists
    OUT/rows.csv                        every shard's rows, sorted by index (written at the end)
    OUT/real_features.safetensors       the real images' feature sums over the whole data set (at the end)
    OUT/summary.json                    the run's figures (at the end)
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .atomic import TEMPORARY_SUFFIX, remove_temporary, write_atomic

FORMAT = "cfnb-run/1"
CONFIG = "config.json"
ROWS = "rows.csv"
SUMMARY = "summary.json"
REAL_FEATURES = "real_features.safetensors"
SHARDS = "shards"
RUN_FILES = (CONFIG, ROWS, SUMMARY, REAL_FEATURES)


class RunMismatchError(ValueError):
    """The output folder holds the results of another configuration (or files that are not a run)."""


@dataclass(frozen=True)
class RunFolder:
    """The paths of one run's files (see the module docstring)."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / CONFIG

    @property
    def rows(self) -> Path:
        return self.root / ROWS

    @property
    def summary(self) -> Path:
        return self.root / SUMMARY

    @property
    def real_features(self) -> Path:
        return self.root / REAL_FEATURES

    @property
    def shards(self) -> Path:
        return self.root / SHARDS

    def shard_tensors(self, batch: int) -> Path:
        return self.shards / f"shard-{batch:06d}.safetensors"

    def shard_rows(self, batch: int) -> Path:
        return self.shards / f"shard-{batch:06d}.csv"

    def read_config(self) -> dict[str, Any]:
        """The folder's ``config.json``."""
        record: dict[str, Any] = json.loads(self.config.read_text(encoding="utf-8"))
        return record

    def clear(self) -> None:
        """Delete this run's files (only those a run writes)."""
        shutil.rmtree(self.shards, ignore_errors=True)
        for name in RUN_FILES:
            (self.root / name).unlink(missing_ok=True)
        remove_temporary(self.root)


def config_record(config: dict[str, Any], fingerprint: str) -> dict[str, Any]:
    """What ``config.json`` holds."""
    return {"format": FORMAT, "fingerprint": fingerprint, "config": config}


def prepare(folder: RunFolder, record: dict[str, Any], overwrite: bool) -> None:
    """Make ``folder`` ready for the run of ``record``: create it and write ``config.json``, or find it holding the
    same configuration (its finished shards are kept; temporary files of killed writers are removed).

    Raises:
        RunMismatchError: the folder holds another configuration's results (without ``overwrite``, which clears
            them), or files that are not a cfnb run.
    """
    root = folder.root
    if root.exists() and not root.is_dir():
        raise RunMismatchError(f"{root} is a file, not a folder; choose a folder for the run's output")
    root.mkdir(parents=True, exist_ok=True)
    if folder.config.is_file():
        stored = _read_record(folder)
        if stored.get("fingerprint") != record["fingerprint"]:
            if not overwrite:
                raise RunMismatchError(
                    f"{root} holds the results of a different configuration (differs in: "
                    f"{', '.join(_differences(stored.get('config', {}), record['config'])) or 'format'}); pass "
                    "overwrite=True (cfnb explain --overwrite) to replace them, or choose another folder")
            folder.clear()
    else:
        strangers = sorted(p.name for p in root.iterdir()
                           if p.name not in (SHARDS, *RUN_FILES) and not p.name.endswith(TEMPORARY_SUFFIX))
        leftovers = folder.shards.is_dir() and any(folder.shards.iterdir())
        if strangers:
            raise RunMismatchError(f"{root} holds files that are not a cfnb run ({', '.join(strangers[:5])}); choose "
                                   "an empty or new folder")
        if leftovers and not overwrite:
            raise RunMismatchError(f"{root} holds shards without a config.json; pass overwrite=True (cfnb explain "
                                   "--overwrite) to replace them, or choose another folder")
        folder.clear()
    folder.shards.mkdir(exist_ok=True)
    remove_temporary(root)
    remove_temporary(folder.shards)
    if not folder.config.is_file():
        write_atomic(folder.config, json.dumps(record, indent=2, sort_keys=True) + "\n")


def _read_record(folder: RunFolder) -> dict[str, Any]:
    try:
        record = folder.read_config()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise RunMismatchError(f"{folder.config} is not a cfnb run's config (not valid JSON); choose another "
                               "folder or delete it") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise RunMismatchError(f"{folder.config} is not a cfnb run's config (format {FORMAT!r}); choose another "
                               "folder or delete it")
    return record


def _differences(stored: Any, wanted: dict[str, Any]) -> list[str]:
    if not isinstance(stored, dict):
        return sorted(wanted)
    return sorted(key for key in set(stored) | set(wanted) if stored.get(key) != wanted.get(key))
