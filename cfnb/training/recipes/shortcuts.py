"""Recipes for shortcut-planted MNIST: coloured and patched digits, each with a biased and an unbiased twin."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ...data.shortcuts import colored_mnist, patched_mnist
from ...forward import forward_in_batches
from ..fitting import fit_classifier
from ..loops import accuracy
from ..measures import group_accuracies
from .common import TrainedModel, recipe

SHORTCUT_TRAIN_CORRELATION = 0.95
PATCH_CLASS = 0
# The patch marks one class of ten, so at 0.95 it is weak evidence (P(class 0 | patch) = 0.68): a model trained so
# relied on it for 1% of decisions (flip rate when the patch alone changes). At 1.0 (every 0 and no other digit
# patched) it is a clean shortcut: 23% of decisions flip, 77% of zeros lose their class without it.
PATCH_TRAIN_CORRELATION = 1.0


@torch.no_grad()
def _shortcut_quality(model: nn.Module, make, in_distribution: float, **kwargs) -> tuple[dict[str, Any], Any]:
    """Accuracy on aligned (1.0), in-distribution (the biased twin's training correlation), shuffled (None) and
    reversed (0.0) test splits, worst group on the shuffled split; also returns the shuffled test set."""
    quality: dict[str, Any] = {}
    for split, p in {"aligned": 1.0, "in_distribution": in_distribution, "reversed": 0.0}.items():
        test = make("test", correlation=p, **kwargs)
        quality[f"test_accuracy_{split}"] = round(accuracy(model, test.images, test.labels), 4)
    shuffled = make("test-shuffled", **kwargs)
    quality["test_accuracy_shuffled"] = round(accuracy(model, shuffled.images, shuffled.labels), 4)
    groups = group_accuracies(model, shuffled.images, shuffled.labels, shuffled.aligned.long())
    quality["worst_group_accuracy"] = groups["worst_group"]
    quality["groups"] = "label x (shortcut agrees with the label), on test-shuffled"
    return quality, shuffled


def _train_shortcut_classifier(dataset, seed: int) -> tuple[nn.Module, dict[str, Any]]:
    fitted = fit_classifier(dataset, widths=(32, 64, 128), epochs=20, lr=3e-3, seed=seed, validation=0)
    return fitted.model, fitted.card.kwargs


def _colored(correlation: float | None, seed: int) -> TrainedModel:
    train = colored_mnist("train", correlation=correlation, seed=0)
    model, kwargs = _train_shortcut_classifier(train, seed)
    quality, shuffled = _shortcut_quality(model, colored_mnist, SHORTCUT_TRAIN_CORRELATION)
    # recolour correctly classified test digits in another class's colour: how often does the prediction follow?
    correct = forward_in_batches(model, shuffled.images, 500).argmax(1) == shuffled.labels
    images, labels = shuffled.images[correct], shuffled.labels[correct]
    g = torch.Generator().manual_seed(7)
    colour = (labels + torch.randint(1, 10, labels.shape, generator=g)) % 10
    follows = forward_in_batches(model, shuffled.set_shortcut(images, colour), 500).argmax(1) == colour
    quality["follows_colour_rate"] = round(follows.float().mean().item(), 4)
    quality["follows_colour_note"] = "correct shuffled-test digits recoloured in another class's colour"
    return TrainedModel(model, "GAPClassifier", kwargs,
                        f"colored_mnist('train', correlation={correlation}, seed=0) (embedded MNIST, 4,000 digits)",
                        quality, extra={"class_names": [str(d) for d in range(10)], "shortcut": "colour"})


def _patched(correlation: float | None, seed: int) -> TrainedModel:
    train = patched_mnist("train", correlation=correlation, patch_class=PATCH_CLASS, seed=0)
    model, kwargs = _train_shortcut_classifier(train, seed)
    quality, shuffled = _shortcut_quality(model, patched_mnist, PATCH_TRAIN_CORRELATION,
                                          patch_class=PATCH_CLASS)
    # add the patch to correctly classified digits of other classes: how often does the prediction become PATCH_CLASS?
    predicted = forward_in_batches(model, shuffled.images, 500).argmax(1)
    chosen = (predicted == shuffled.labels) & (shuffled.labels != PATCH_CLASS) & (shuffled.spurious == 0)
    patched = shuffled.set_shortcut(shuffled.images[chosen], 1)
    flips = forward_in_batches(model, patched, 500).argmax(1) == PATCH_CLASS
    quality["patch_flip_rate"] = round(flips.float().mean().item(), 4)
    removed = (predicted == shuffled.labels) & (shuffled.labels == PATCH_CLASS) & (shuffled.spurious == 1)
    unpatched = shuffled.set_shortcut(shuffled.images[removed], 0)
    quality["patch_removal_flip_rate"] = round(
        (forward_in_batches(model, unpatched, 500).argmax(1) != PATCH_CLASS).float().mean().item(), 4)
    p_before = forward_in_batches(model, shuffled.images[chosen], 500).softmax(1)[:, PATCH_CLASS]
    p_after = forward_in_batches(model, patched, 500).softmax(1)[:, PATCH_CLASS]
    quality["patch_probability_shift"] = round((p_after - p_before).mean().item(), 4)
    quality["flip_note"] = (f"patch added to correct, unpatched non-{PATCH_CLASS} shuffled-test digits (-> predicted "
                            f"{PATCH_CLASS}; probability_shift: mean rise of p({PATCH_CLASS})); removal: patch taken "
                            f"off correct patched {PATCH_CLASS}s")
    return TrainedModel(model, "GAPClassifier", kwargs,
                        f"patched_mnist('train', correlation={correlation}, patch_class={PATCH_CLASS}, seed=0) "
                        f"(embedded MNIST, 4,000 digits)", quality,
                        extra={"class_names": [str(d) for d in range(10)], "shortcut": "patch",
                               "patch_class": PATCH_CLASS})


@recipe("colored-mnist-biased")
def colored_mnist_biased(seed: int = 0) -> TrainedModel:
    """GAP CNN on coloured MNIST whose colour agrees with the class 95% of the time."""
    return _colored(SHORTCUT_TRAIN_CORRELATION, seed)


@recipe("colored-mnist-unbiased")
def colored_mnist_unbiased(seed: int = 0) -> TrainedModel:
    """GAP CNN on coloured MNIST whose colour says nothing about the class."""
    return _colored(None, seed)


@recipe("patched-mnist-biased")
def patched_mnist_biased(seed: int = 0) -> TrainedModel:
    """GAP CNN on MNIST with a corner patch on every digit of the patch class and on no other."""
    return _patched(PATCH_TRAIN_CORRELATION, seed)


@recipe("patched-mnist-unbiased")
def patched_mnist_unbiased(seed: int = 0) -> TrainedModel:
    """GAP CNN on MNIST with the patch on half of all digits, whatever their class."""
    return _patched(None, seed)
