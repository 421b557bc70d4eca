"""A run's figures: ``RunSummary``, and ``Tally``, which adds them up shard by shard (running sums only)."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from .folder import RunFolder
from .moments import Moments, frechet_from_moments
from .rows import Row


@dataclass(frozen=True)
class RunSummary:
    """The figures of a finished run and where its files are.

    Attributes:
        out: the run's folder.
        n: images explained.
        method: the method.
        batches: shards (batches) in the run.
        validity: share of counterfactuals the classifier labels as their target.
        oracle_validity: share the oracle labels as their target (None without an oracle).
        mean_l1: mean over images of the mean absolute change per pixel value.
        fid: Fréchet distance between the counterfactuals and the data's real images over ``fid_network``'s
            features (None without a feature network).
        fid_network: the feature network's name.
        mnac: mean number of attributes changed (None unless the data has attributes and an attribute
            classifier was given).
        already_target: share of images whose prediction already was the target (returned unchanged).
        mean_steps: mean optimisation steps (or path points) per image.
        seconds: ``cfnb.explain``'s time summed over the shards.
        fingerprint: SHA-256 of the run's configuration (``config.json``).
        computed: batches this call computed (the others were found on disk); not saved in ``summary.json``.
    """

    out: Path
    n: int
    method: str
    batches: int
    validity: float
    oracle_validity: float | None
    mean_l1: float
    fid: float | None
    fid_network: str | None
    mnac: float | None
    already_target: float
    mean_steps: float
    seconds: float
    fingerprint: str
    computed: int = field(default=0, compare=False)

    @property
    def folder(self) -> RunFolder:
        return RunFolder(self.out)

    @property
    def rows_path(self) -> Path:
        return self.folder.rows

    @property
    def summary_path(self) -> Path:
        return self.folder.summary

    @property
    def config_path(self) -> Path:
        return self.folder.config

    def to_json(self) -> dict[str, Any]:
        """The figures as ``summary.json`` holds them."""
        return {k: v for k, v in asdict(self).items() if k not in ("out", "computed")}

    @classmethod
    def read(cls, out: Path) -> RunSummary:
        """The summary of the finished run in ``out``."""
        data = json.loads(RunFolder(Path(out)).summary.read_text(encoding="utf-8"))
        known = {f.name for f in fields(cls)}
        return cls(out=Path(out), **{k: v for k, v in data.items() if k in known})

    def __str__(self) -> str:
        def show(value: float | None, digits: int = 3) -> str:
            return "-" if value is None else f"{value:.{digits}f}"

        return (f"{self.n} images, {self.batches} shards, method {self.method}: validity {show(self.validity)}, "
                f"oracle validity {show(self.oracle_validity)}, mean L1 {show(self.mean_l1, 4)}, FID "
                f"{show(self.fid, 2)} ({self.fid_network or 'no feature network'}), MNAC {show(self.mnac, 2)}, "
                f"already target {show(self.already_target)}; {self.seconds:.1f} s explaining")


class Tally:
    """Running sums of a run's rows and FID moments, added one shard at a time."""

    def __init__(self) -> None:
        self.count = 0
        self.sums: dict[str, float] = {}
        self.seconds = 0.0
        self.counterfactual: Moments | None = None
        self.real: Moments | None = None

    def add(self, rows: list[Row], seconds: float, counterfactual: Moments | None, real: Moments | None) -> None:
        """Add one shard: its rows, its explain time and its feature sums."""
        self.count += len(rows)
        self.seconds += seconds
        for row in rows:
            for name in ("valid", "oracle", "l1", "mnac", "already_target", "steps"):
                if name in row:
                    self.sums[name] = self.sums.get(name, 0.0) + float(row[name])
        for attribute, moments in (("counterfactual", counterfactual), ("real", real)):
            if moments is not None:
                kept = getattr(self, attribute)
                if kept is None:
                    setattr(self, attribute, Moments(moments.count, moments.total.clone(), moments.outer.clone()))
                else:
                    kept.add(moments)

    def mean(self, name: str) -> float | None:
        """Mean of a column over every row added (None when the run has no such column)."""
        return self.sums[name] / self.count if name in self.sums and self.count else None

    def fid(self) -> float | None:
        """FID between the counterfactuals and the real images (None without features or with < 2 images)."""
        if self.counterfactual is None or self.real is None or min(self.counterfactual.count, self.real.count) < 2:
            return None
        return frechet_from_moments(self.counterfactual, self.real)
