"""Recipes that reproduce every shipped weight from the embedded data (``cfnb train NAME``).

Each recipe trains one model, seeded, on this machine's CPU in minutes, measures its quality on held-out data and
returns a ``TrainedModel``; ``train_and_save`` writes the safetensors file and the registry card.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from .architectures import ConvVAE, GAPClassifier, LeNetClassifier
from .registry import WEIGHTS_DIR, REGISTRY_PATH, ModelCard, sha256_of, write_card
from .training import accuracy, predict_in_batches, train_supervised, train_vae


@dataclass
class TrainedModel:
    model: nn.Module
    architecture: str
    kwargs: dict[str, Any]
    data: str
    quality: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)


RECIPES: dict[str, Callable[[int], TrainedModel]] = {}


def recipe(name: str):
    """Register a training recipe under a shipped model's name."""
    def wrap(function: Callable[[int], TrainedModel]) -> Callable[[int], TrainedModel]:
        RECIPES[name] = function
        return function
    return wrap


def _mnist():
    from ..data import load_mnist

    return load_mnist("train", source="embedded"), load_mnist("test", source="embedded")


def _mnist_classifier(architecture: type[nn.Module], kwargs: dict[str, Any], epochs: int, lr: float,
                      seed: int) -> TrainedModel:
    train, test = _mnist()
    model = train_supervised(architecture(**kwargs), train.images, train.labels, epochs=epochs, lr=lr, seed=seed)
    quality = {"test_accuracy": round(accuracy(model, test.images, test.labels), 4),
               "test_set": "embedded MNIST, 1,000 held-out digits"}
    return TrainedModel(model, architecture.__name__, kwargs, "embedded MNIST train (4,000 digits)", quality)


@recipe("mnist-classifier")
def mnist_classifier(seed: int = 0) -> TrainedModel:
    """GAP CNN (32-64-128, BatchNorm) with +-2 px shifts, 30 epochs on the 4,000 embedded training digits."""
    return _mnist_classifier(GAPClassifier, {"in_channels": 1, "num_classes": 10, "widths": [32, 64, 128]}, 30, 3e-3, seed)


@recipe("mnist-oracle")
def mnist_oracle(seed: int = 1) -> TrainedModel:
    """LeNet-style CNN, a different architecture and seed than mnist-classifier: the independent judge."""
    return _mnist_classifier(LeNetClassifier, {"in_channels": 1, "num_classes": 10, "image_size": 28}, 25, 2e-3, seed)


@recipe("mnist-vae")
def mnist_vae(seed: int = 2) -> TrainedModel:
    """16-d convolutional VAE, 60 epochs; quality: L1 of reconstructions and how often the classifier labels them right."""
    from . import load

    train, test = _mnist()
    kwargs = {"latent_dim": 16, "channels": 1, "hidden": 128}
    vae = train_vae(ConvVAE(**kwargs), train.images, epochs=60, seed=seed)
    recon = predict_in_batches(vae, test.images)
    classifier = load("mnist-classifier")
    quality = {
        "test_recon_l1": round((recon - test.images).abs().mean().item(), 4),
        "classifier_accuracy_on_recon": round(accuracy(classifier, recon, test.labels), 4),
        "test_set": "embedded MNIST, 1,000 held-out digits",
    }
    return TrainedModel(vae, "ConvVAE", kwargs, "embedded MNIST train (4,000 digits)", quality)


def _mirror_decoder(classifier_name: str, images: torch.Tensor, test_images: torch.Tensor, epochs: int,
                    seed: int, multilabel: bool = False, **options) -> TrainedModel:
    from ..mirror import train_decoder
    from . import load

    classifier = load(classifier_name)
    decoder = train_decoder(classifier, images, epochs=epochs, seed=seed, multilabel=multilabel, **options)
    with torch.no_grad():
        recon = predict_in_batches(lambda x: decoder(classifier.features(x)), test_images)
        before, after = predict_in_batches(classifier, test_images), predict_in_batches(classifier, recon)
        agree = (after > 0) == (before > 0) if multilabel else after.argmax(1) == before.argmax(1)
    kwargs = {"feature_channels": decoder.feature_channels, "image_channels": decoder.image_channels,
              "upsamplings": decoder.upsamplings, "width": decoder.width}
    quality = {"test_recon_l1": round((recon - test_images).abs().mean().item(), 4),
               ("attribute_agreement_on_recon" if multilabel else "classifier_agreement_on_recon"):
                   round(agree.float().mean().item(), 4)}
    return TrainedModel(decoder, "FeatureDecoder", kwargs, f"features of {classifier_name}", quality,
                        extra={"classifier": classifier_name})


@recipe("mnist-classifier-mirror-decoder")
def mnist_mirror_decoder(seed: int = 3) -> TrainedModel:
    """Mirror-CFE decoder for mnist-classifier's 128x7x7 feature maps (see ``cfnb.mirror.train_decoder``)."""
    train, test = _mnist()
    return _mirror_decoder("mnist-classifier", train.images, test.images, epochs=12, seed=seed)


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

from . import recipes_more  # noqa: E402,F401
