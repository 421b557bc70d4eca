"""The rows table: one row per explained image, as CSV (one file per shard, merged into ``rows.csv``).

Columns, in this order, those of a run only: ``index`` (position in the data), ``source`` (prediction on the
original), ``target``, ``prediction`` (on the counterfactual), ``valid``, ``oracle`` (the oracle also predicts the
target; with an oracle), ``l1`` (mean absolute change), ``steps``, ``already_target`` (the original already was
the target: left unchanged), ``label`` (the true label; labelled data), ``mnac`` (attributes changed; data with
attributes and an attribute classifier). Booleans are written ``True``/``False``, floats in full precision.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .atomic import atomic_file

KINDS: dict[str, type] = {"index": int, "source": int, "target": int, "prediction": int, "valid": bool,
                          "oracle": bool, "l1": float, "steps": int, "already_target": bool, "label": int, "mnac": int}
"""Every column a run may have, in table order, with its type."""

Row = dict[str, Any]


def columns_for(oracle: bool, labels: bool, mnac: bool) -> list[str]:
    """The columns of a run with (or without) an oracle, true labels and MNAC."""
    optional = {"oracle": oracle, "label": labels, "mnac": mnac}
    return [name for name in KINDS if optional.get(name, True)]


def _text(value: Any, kind: type) -> str:
    if kind is bool:
        return str(bool(value))
    if kind is float:
        return repr(float(value))
    return str(int(value))


def _value(text: str, kind: type) -> Any:
    if kind is bool:
        if text not in ("True", "False"):
            raise ValueError(f"expected True or False, got {text!r}")
        return text == "True"
    return kind(text)


def to_csv(columns: Sequence[str], values: Mapping[str, Sequence[Any]]) -> str:
    """CSV text (header first) of per-column value lists of one length."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    count = len(values[columns[0]])
    for i in range(count):
        writer.writerow([_text(values[name][i], KINDS[name]) for name in columns])
    return buffer.getvalue()


def parse_csv(text: Iterable[str]) -> list[Row]:
    """Rows of CSV text written by ``to_csv`` (or a merged ``rows.csv``), with their types."""
    reader = csv.reader(text)
    header = next(reader, None)
    if header is None:
        return []
    unknown = [name for name in header if name not in KINDS]
    if unknown:
        raise ValueError(f"unknown row column(s) {unknown}")
    return [{name: _value(cell, KINDS[name]) for name, cell in zip(header, line)} for line in reader if line]


def read_rows(path: Path) -> list[Row]:
    """The rows of one CSV file."""
    with open(path, encoding="utf-8", newline="") as handle:
        return parse_csv(handle)


def merge(parts: Iterable[Path], path: Path) -> int:
    """Concatenate CSV files of the same columns into ``path`` (atomically), one header; return the row count.

    The parts are read one at a time, line by line: memory stays flat however many rows there are."""
    count = 0
    header: str | None = None
    with atomic_file(path, text=True) as out:
        for part in parts:
            with open(part, encoding="utf-8", newline="") as handle:
                first = handle.readline()
                if header is None:
                    header = first
                    out.write(first)
                elif first != header:
                    raise ValueError(f"{part} has columns {first.strip()!r}, the others {header.strip()!r}")
                for line in handle:
                    if line.strip():
                        out.write(line)
                        count += 1
    return count
