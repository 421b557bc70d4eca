"""Reference architectures and the shipped, SHA-256-checked weights; this package only builds and loads models.

``load(name)`` returns a ready model in eval mode (with its class or attribute names); ``available()`` lists the
model cards. Training lives in ``cfnb.training``.
"""
from __future__ import annotations

from pathlib import Path

from torch import nn

from .architectures import (
    AttributeEditor,
    ConvVAE,
    FeatureDecoder,
    GAPClassifier,
    GeneratorFeatureDecoder,
    LeNetClassifier,
)
from .gap import GAPView, gap_view
from .generators import ColourGenerator, PatchGenerator
from .registry import ModelCard, companion, load_card, read_folder_card, read_registry
from .wrappers import AttributeClassifier

__all__ = [
    "load", "available", "companion", "ModelCard", "GAPClassifier", "LeNetClassifier", "ConvVAE", "AttributeEditor",
    "FeatureDecoder", "GeneratorFeatureDecoder", "AttributeClassifier", "ColourGenerator", "PatchGenerator",
    "GAPView", "gap_view",
]


def available() -> list[ModelCard]:
    """Model cards of every shipped model: name, architecture, training data, measured quality, SHA-256."""
    return list(read_registry().values())


def load(name: str | Path) -> nn.Module:
    """Load a model, verifying its SHA-256: a shipped one by name (see ``available()``), or a model folder written
    by ``cfnb.training`` / ``cfnb fit`` (its ``card.json`` and weights) by path.

    Raises:
        KeyError: neither a shipped model's name nor an existing path (the message lists the shipped names).
    """
    cards = read_registry()
    if isinstance(name, str) and name in cards:
        return load_card(cards[name])
    if Path(name).expanduser().exists():
        return load_card(read_folder_card(name))
    raise KeyError(f"no shipped model named {name!r} and no such model folder; shipped: "
                   f"{', '.join(sorted(cards)) or 'none'}")
