"""Reference architectures and the shipped, SHA-256-checked weights; this package only builds and loads models.

``load(name)`` returns a ready model in eval mode (with its class or attribute names); ``available()`` lists the
model cards. Training lives in ``cfnb.training``.
"""
from __future__ import annotations

from torch import nn

from .architectures import AttributeEditor, ConvVAE, FeatureDecoder, GAPClassifier, LeNetClassifier
from .generators import ColourGenerator, PatchGenerator
from .registry import ModelCard, companion, load_card, read_registry
from .wrappers import AttributeClassifier

__all__ = [
    "load", "available", "companion", "ModelCard", "GAPClassifier", "LeNetClassifier", "ConvVAE", "AttributeEditor",
    "FeatureDecoder", "AttributeClassifier", "ColourGenerator", "PatchGenerator",
]


def available() -> list[ModelCard]:
    """Model cards of every shipped model: name, architecture, training data, measured quality, SHA-256."""
    return list(read_registry().values())


def load(name: str) -> nn.Module:
    """Load a shipped model by name (see ``available()``), verifying its SHA-256.

    Raises:
        KeyError: unknown name (the message lists the known ones).
    """
    cards = read_registry()
    if name not in cards:
        raise KeyError(f"no shipped model named {name!r}; available: {', '.join(sorted(cards)) or 'none'}")
    return load_card(cards[name])
