"""Model cards: a model's name, architecture, training data, measured quality and the SHA-256 of its weights.

The shipped models' cards live in one JSON registry beside their weights; a model trained with ``cfnb.training``
is a folder holding ``card.json`` and its safetensors file, which ``cfnb.models.load(folder)`` reads the same way.
"""
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


CARD_FILE = "card.json"


@dataclass(frozen=True)
class ModelCard:
    """What ``cfnb.models.available()`` tells about a model.

    Attributes:
        name: the model's name.
        architecture: a class of ``cfnb.models.architectures``, built with ``kwargs``.
        data: what it was trained on.
        quality: measured figures (on held-out data).
        sha256: of the weights file.
        file: the weights file's name, in ``folder``.
        extra: what the outputs mean (``class_names``, ``attribute_names``) and other facts.
        folder: where the weights are (default: the shipped weights' folder).
    """

    name: str
    architecture: str
    kwargs: dict[str, Any]
    data: str
    quality: dict[str, Any]
    sha256: str
    file: str
    extra: dict[str, Any] = field(default_factory=dict)
    folder: Path | None = field(default=None, compare=False)

    @property
    def path(self) -> Path:
        return (self.folder or WEIGHTS_DIR) / self.file

    def to_json(self) -> dict[str, Any]:
        """The card as a registry entry (without name and folder)."""
        return {k: v for k, v in self.__dict__.items() if k not in ("name", "folder")}


def read_registry() -> dict[str, ModelCard]:
    """All model cards in the shipped registry, by name."""
    if not REGISTRY_PATH.exists():
        return {}
    raw = json.loads(REGISTRY_PATH.read_text())
    return {name: ModelCard(name=name, **card) for name, card in raw.items()}


def write_card(card: ModelCard, registry_path: Path = REGISTRY_PATH) -> None:
    """Add or replace one card in the registry file (kept sorted by name)."""
    raw = json.loads(registry_path.read_text()) if registry_path.exists() else {}
    raw[card.name] = card.to_json()
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


def write_folder_card(card: ModelCard, folder: Path) -> Path:
    """Write ``card`` as ``folder/card.json`` (the card of a model trained outside the shipped registry)."""
    path = Path(folder) / CARD_FILE
    path.write_text(json.dumps({"name": card.name, **card.to_json()}, indent=2) + "\n")
    return path


def read_folder_card(path: str | Path) -> ModelCard:
    """The card of a model folder (or of the ``card.json`` or weights file inside it).

    Raises:
        FileNotFoundError: no ``card.json`` there.
        ValueError: a card that is not valid JSON or lacks a field.
    """
    path = Path(path).expanduser()
    folder = path if path.is_dir() else path.parent
    card_path = folder / CARD_FILE
    if not card_path.is_file():
        raise FileNotFoundError(f"no {CARD_FILE} in {folder}: a model folder written by cfnb.training (or `cfnb fit`) "
                                "holds card.json beside its weights")
    try:
        raw = json.loads(card_path.read_text())
        return ModelCard(**raw, folder=folder)
    except (json.JSONDecodeError, TypeError) as error:
        raise ValueError(f"{card_path} is not a valid model card: {error}") from None


def load_card(card: ModelCard) -> nn.Module:
    """Build the model of ``card``, check its file's SHA-256, load its weights, return it in eval mode."""
    from safetensors.torch import load_file

    if not card.path.exists():
        hint = f"run `cfnb train {card.name}`" if card.folder is None else "the model folder is incomplete"
        raise FileNotFoundError(f"weights of {card.name!r} missing at {card.path}; {hint}")
    actual = sha256_of(card.path)
    if actual != card.sha256:
        fix = f"reinstall cfnb or run `cfnb train {card.name}`" if card.folder is None else "retrain it"
        raise RuntimeError(f"SHA-256 of {card.path.name} is {actual}, its card says {card.sha256}: the file is corrupt "
                           f"or was changed; {fix}")
    # Any: torch types Module.__setattr__ for tensors and modules only, and plain attributes are set below
    model: Any = build(card.architecture, card.kwargs)
    model.load_state_dict(load_file(str(card.path)))
    model.eval()
    model.cfnb_name = card.name  # lets methods find companion models (e.g. a Mirror-CFE decoder)
    for key in ("class_names", "attribute_names"):  # what the outputs mean, as the card says
        if key in card.extra and not hasattr(model, key):
            setattr(model, key, list(card.extra[key]))
    return model


def companion(name: str, architecture: str | tuple[str, ...],
              cards: dict[str, ModelCard] | None = None) -> str | None:
    """The shipped model of ``architecture`` (or of any of several) made for the shipped model ``name`` (its card's
    ``extra["classifier"]``), e.g. the Mirror-CFE decoder of a classifier; None when there is none."""
    cards = read_registry() if cards is None else cards
    kinds = (architecture,) if isinstance(architecture, str) else architecture
    for card in cards.values():
        if card.architecture in kinds and card.extra.get("classifier") == name:
            return card.name
    return None
