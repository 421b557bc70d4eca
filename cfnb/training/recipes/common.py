"""What every recipe shares: the recipe registry, ``TrainedModel``, saving weights with their card, and the
Mirror-CFE decoder recipe that several classifiers use."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from ...models import load
from ...models.registry import REGISTRY_PATH, WEIGHTS_DIR, ModelCard, sha256_of, write_card
from ..fitting import fit_mirror_decoder, measure_decoder


@dataclass
class TrainedModel:
    model: nn.Module
    architecture: str
    kwargs: dict[str, Any]
    data: str
    quality: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)


class Recipe(Protocol):
    """A training recipe: ``recipe(seed)`` trains a shipped model; each recipe has its own default seed."""

    def __call__(self, seed: int = ...) -> TrainedModel: ...


RECIPES: dict[str, Recipe] = {}


def recipe(name: str):
    """Register a training recipe under a shipped model's name."""
    def wrap(function: Recipe) -> Recipe:
        RECIPES[name] = function
        return function
    return wrap


def mirror_decoder_recipe(classifier_name: str, images: torch.Tensor, test_images: torch.Tensor, epochs: int,
                    seed: int, multilabel: bool = False, **options) -> TrainedModel:
    classifier = load(classifier_name)
    fitted = fit_mirror_decoder(classifier, images, epochs=epochs, seed=seed, multilabel=multilabel, validation=0,
                                **options)
    measured = measure_decoder(classifier, fitted.model, test_images, multilabel)
    quality = {("test_recon_l1" if key == "recon_l1" else key): value for key, value in measured.items()}
    return TrainedModel(fitted.model, fitted.card.architecture, fitted.card.kwargs, f"features of {classifier_name}",
                        quality, extra={"classifier": classifier_name})


def train_and_save(name: str, weights_dir: Path = WEIGHTS_DIR, seed: int | None = None) -> ModelCard:
    """Run the recipe for ``name``, save ``<name>.safetensors`` and its card in ``weights_dir``'s registry."""
    if name not in RECIPES:
        raise KeyError(f"no training recipe named {name!r}; known: {', '.join(sorted(RECIPES))}")
    start = time.perf_counter()
    trained = RECIPES[name]() if seed is None else RECIPES[name](seed)
    return save_trained(name, trained, time.perf_counter() - start, weights_dir)


def save_trained(name: str, trained: TrainedModel, seconds: float, weights_dir: Path = WEIGHTS_DIR) -> ModelCard:
    """Write a trained model's weights (safetensors) and its card (with the training time) into the registry."""
    from safetensors.torch import save_file

    weights_dir.mkdir(parents=True, exist_ok=True)
    path = weights_dir / f"{name}.safetensors"
    state = {k: v.detach().contiguous().cpu() for k, v in trained.model.state_dict().items()}
    save_file(state, str(path))
    quality = dict(trained.quality, train_seconds=round(seconds, 1), train_threads=torch.get_num_threads())
    card = ModelCard(
        name=name, architecture=trained.architecture, kwargs=trained.kwargs, data=trained.data, quality=quality,
        sha256=sha256_of(path), file=path.name, extra=trained.extra,
    )
    write_card(card, weights_dir / REGISTRY_PATH.name)
    return card

