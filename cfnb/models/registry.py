"""Shipped weights: a JSON registry of names, architectures, training data, measured quality and SHA-256."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from . import architectures

WEIGHTS_DIR = Path(__file__).parent / "weights"
REGISTRY_PATH = WEIGHTS_DIR / "registry.json"


@dataclass(frozen=True)
class ModelCard:
    """What ``cfnb.models.available()`` tells about one shipped model."""

    name: str
    architecture: str
    kwargs: dict[str, Any]
    data: str
    quality: dict[str, Any]
    sha256: str
    file: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return WEIGHTS_DIR / self.file


def read_registry() -> dict[str, ModelCard]:
    """All model cards in the shipped registry, by name."""
    if not REGISTRY_PATH.exists():
        return {}
    raw = json.loads(REGISTRY_PATH.read_text())
    return {name: ModelCard(name=name, **card) for name, card in raw.items()}


def write_card(card: ModelCard, registry_path: Path = REGISTRY_PATH) -> None:
    """Add or replace one card in the registry file (kept sorted by name)."""
    raw = json.loads(registry_path.read_text()) if registry_path.exists() else {}
    entry = {k: v for k, v in card.__dict__.items() if k != "name"}
    raw[card.name] = entry
    registry_path.write_text(json.dumps(dict(sorted(raw.items())), indent=2) + "\n")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def build(architecture: str, kwargs: dict[str, Any]) -> nn.Module:
    """Instantiate an architecture from ``cfnb.models.architectures`` by class name."""
    try:
        cls = getattr(architectures, architecture)
    except AttributeError:
        raise ValueError(f"unknown architecture {architecture!r} in the model registry") from None
    return cls(**kwargs)


def load_card(card: ModelCard) -> nn.Module:
    """Build the model of ``card``, check its file's SHA-256, load its weights, return it in eval mode."""
    from safetensors.torch import load_file

    if not card.path.exists():
        raise FileNotFoundError(f"weights of {card.name!r} missing at {card.path}; run `cfnb train {card.name}`")
    actual = sha256_of(card.path)
    if actual != card.sha256:
        raise RuntimeError(
            f"SHA-256 of {card.path.name} is {actual}, registry says {card.sha256}: the file is corrupt or was "
            f"changed; reinstall cfnb or run `cfnb train {card.name}`"
        )
    # Any: torch types Module.__setattr__ for tensors and modules only, and plain attributes are set below
    model: Any = build(card.architecture, card.kwargs)
    model.load_state_dict(load_file(str(card.path)))
    model.eval()
    model.cfnb_name = card.name  # lets methods find companion models (e.g. a Mirror-CFE decoder)
    for key in ("class_names", "attribute_names"):  # what the outputs mean, as the card says
        if key in card.extra and not hasattr(model, key):
            setattr(model, key, list(card.extra[key]))
    return model


def companion(name: str, architecture: str, cards: dict[str, ModelCard] | None = None) -> str | None:
    """The shipped model of ``architecture`` made for the shipped model ``name`` (its card's ``extra["classifier"]``),
    e.g. the Mirror-CFE decoder of a classifier; None when there is none."""
    cards = read_registry() if cards is None else cards
    for card in cards.values():
        if card.architecture == architecture and card.extra.get("classifier") == name:
            return card.name
    return None
