"""``load_run``: read a finished run back (its rows, summary, configuration and any image's counterfactual)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import torch

from .folder import RunFolder
from .rows import Row, read_rows
from .shards import read_counterfactuals
from .summary import RunSummary


@dataclass(frozen=True)
class Run:
    """A finished run on disk.

    Attributes:
        folder: its files.
        summary: its figures.
        config: what determined its results (``config.json``'s ``config``).
    """

    folder: RunFolder
    summary: RunSummary
    config: dict[str, Any]

    def __len__(self) -> int:
        return self.summary.n

    @property
    def batch_size(self) -> int:
        return int(self.config["batch_size"])

    @cached_property
    def rows(self) -> list[Row]:
        """Every row of ``rows.csv`` (sorted by index), values typed (int, float, bool)."""
        return read_rows(self.folder.rows)

    def counterfactual(self, index: int) -> torch.Tensor:
        """The (C, H, W) counterfactual of image ``index`` (read from its shard alone)."""
        return self.counterfactuals([index])[0]

    def counterfactuals(self, indices: Sequence[int]) -> torch.Tensor:
        """The (M, C, H, W) counterfactuals of images ``indices``, in that order."""
        wanted = [int(i) for i in indices]
        bad = [i for i in wanted if not 0 <= i < len(self)]
        if bad:
            raise IndexError(f"indices {bad[:5]} are outside the run's {len(self)} images (0..{len(self) - 1})")
        found: dict[int, torch.Tensor] = {}
        for batch in sorted({i // self.batch_size for i in wanted}):
            members = sorted({i for i in wanted if i // self.batch_size == batch})
            pictures = read_counterfactuals(self.folder, batch, [i - batch * self.batch_size for i in members])
            found.update(zip(members, pictures))
        return torch.stack([found[i] for i in wanted]) if wanted else torch.empty(0)

    def __repr__(self) -> str:
        return f"Run({str(self.folder.root)!r}: {self.summary})"


def load_run(out: str | Path) -> Run:
    """The finished run in folder ``out`` (written by ``explain_dataset``).

    Raises:
        FileNotFoundError: no run there, or an unfinished one (call ``explain_dataset`` again to finish it).
    """
    folder = RunFolder(Path(out).expanduser())
    if not folder.config.is_file():
        raise FileNotFoundError(f"no cfnb run in {folder.root} (no {folder.config.name})")
    if not folder.summary.is_file() or not folder.rows.is_file():
        raise FileNotFoundError(f"the run in {folder.root} is unfinished; call explain_dataset with the same "
                                "arguments (or run cfnb explain again) to finish it")
    return Run(folder, RunSummary.read(folder.root), folder.read_config()["config"])
