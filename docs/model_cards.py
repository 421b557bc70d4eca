"""The model-cards page of the documentation site, written from the shipped registry on every build.

Each card of ``cfnb/models/weights/registry.json`` (what ``cfnb models`` prints) becomes one section: what the model
is and was trained on, then every measured figure, nested figures flattened to dotted names.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cfnb.models.registry import ModelCard, read_registry

HEADER = """# Model cards

The cards of the {count} shipped models, as `cfnb/models/weights/registry.json` holds them (`cfnb models` prints the
same; `cfnb.models.available()` returns them). How the models were trained and what the figures mean:
[Shipped models](../models.md).

"""


def _cell(value: Any) -> str:
    if isinstance(value, float):
        text = f"{value:g}"
    elif isinstance(value, (list, tuple)):
        text = ", ".join(str(v) for v in value)
    elif isinstance(value, dict):
        text = json.dumps(value)
    else:
        text = str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _flatten(values: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for key, value in values.items():
        if isinstance(value, dict) and value:
            rows += _flatten(value, f"{prefix}{key}.")
        else:
            rows.append((f"{prefix}{key}", value))
    return rows


def card_markdown(card: ModelCard) -> str:
    """One card as a Markdown section: a table of facts, then one of measured figures."""
    lines = [f"## `{card.name}`", "", "| | |", "| --- | --- |",
             f"| architecture | `{card.architecture}({', '.join(f'{k}={v!r}' for k, v in card.kwargs.items())})` |",
             f"| data | {_cell(card.data)} |",
             f"| weights | `{card.file}` |",
             f"| SHA-256 | `{card.sha256}` |"]
    lines += [f"| {_cell(key)} | {_cell(value)} |" for key, value in _flatten(card.extra)]
    if card.quality:
        lines += ["", "| measured | value |", "| --- | --- |"]
        lines += [f"| `{_cell(key)}` | {_cell(value)} |" for key, value in _flatten(card.quality)]
    return "\n".join(lines) + "\n"


def page(cards: dict[str, ModelCard]) -> str:
    """The whole page for ``cards`` (sorted by name).

    Raises:
        ValueError: without any card (the registry is missing or empty).
    """
    if not cards:
        raise ValueError("no model cards: cfnb/models/weights/registry.json is missing or empty "
                         "(`cfnb train all` writes it)")
    return HEADER.format(count=len(cards)) + "\n".join(card_markdown(cards[name]) for name in sorted(cards))


def write_page(path: Path) -> bool:
    """Write the page from the shipped registry; True when its content changed (untouched otherwise)."""
    text = page(read_registry())
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return True
