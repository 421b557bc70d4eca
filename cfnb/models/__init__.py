"""Reference models and their shipped, SHA-256-checked weights.

``load(name)`` returns a ready model in eval mode; ``available()`` lists the model cards.
"""
from __future__ import annotations

from torch import nn

from .architectures import AttributeEditor, ConvVAE, GAPClassifier, LeNetClassifier
from .registry import ModelCard, read_registry
from .wrappers import AttributeClassifier

__all__ = [
    "load", "available", "ModelCard", "GAPClassifier", "LeNetClassifier", "ConvVAE", "AttributeEditor",
    "AttributeClassifier",
]


def available() -> list[ModelCard]:
    """Model cards of every shipped model: name, architecture, training data, measured quality, SHA-256."""
    return list(read_registry().values())


def load(name: str) -> nn.Module:
    """Load a shipped model by name (see ``available()``), verifying its SHA-256.

    Raises:
        KeyError: unknown name (the message lists the known ones).
    """
    from .registry import load_card

    cards = read_registry()
    if name not in cards:
        raise KeyError(f"no shipped model named {name!r}; available: {', '.join(sorted(cards)) or 'none'}")
    return load_card(cards[name])
