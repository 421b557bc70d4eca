"""Shipped shortcut-MNIST classifiers: biased ones lean on the planted shortcut, unbiased ones do not.

Figures are recomputed here on the embedded MNIST test digits (held out from training); thresholds sit a little
below what ``cfnb train NAME`` measured (docs/models.md)."""
import pytest
import torch

from cfnb.data import colored_mnist, patched_mnist
from cfnb.forward import forward_in_batches
from cfnb.models import available, load
from cfnb.training.recipes.shortcuts import PATCH_CLASS


def _accuracy(model, data) -> float:
    return (forward_in_batches(model, data.images).argmax(1) == data.labels).float().mean().item()


N = 500  # the first 500 of the 1,000 test digits keep the file fast


def _head(data):
    for name in ("images", "labels", "spurious"):
        setattr(data, name, getattr(data, name)[:N])
    return data


@pytest.fixture(scope="module")
def colour_splits():
    return {name: _head(colored_mnist(split, correlation=p)) for name, split, p in
            [("aligned", "test", 1.0), ("reversed", "test", 0.0), ("shuffled", "test-shuffled", None)]}


@pytest.fixture(scope="module")
def patch_splits():
    return {name: _head(patched_mnist(split, correlation=p, patch_class=PATCH_CLASS)) for name, split, p in
            [("aligned", "test", 1.0), ("reversed", "test", 0.0), ("shuffled", "test-shuffled", None)]}


def test_cards_and_weight_files():
    cards = {card.name: card for card in available()}
    for name in ("colored-mnist-biased", "colored-mnist-unbiased", "patched-mnist-biased", "patched-mnist-unbiased"):
        card = cards[name]
        assert card.path.stat().st_size < 5 * 2**20
        assert card.extra["class_names"] == [str(d) for d in range(10)]
        assert "test_accuracy_reversed" in card.quality and "worst_group_accuracy" in card.quality


def test_colored_biased_relies_on_colour(colour_splits):
    model = load("colored-mnist-biased")
    aligned, reversed_ = _accuracy(model, colour_splits["aligned"]), _accuracy(model, colour_splits["reversed"])
    assert aligned >= 0.98
    assert reversed_ <= 0.55  # measured 0.474 on these 500 (0.378 on all 1,000): colour beats shape
    assert _accuracy(model, colour_splits["shuffled"]) <= 0.65


def test_colored_unbiased_ignores_colour(colour_splits):
    model = load("colored-mnist-unbiased")
    accuracies = [_accuracy(model, data) for data in colour_splits.values()]
    assert min(accuracies) >= 0.95
    assert max(accuracies) - min(accuracies) <= 0.02


def test_recolouring_drags_the_biased_model_only(colour_splits):
    data = colour_splits["shuffled"]
    new = (data.labels + 1 + torch.arange(len(data)) % 9) % 10  # another class's colour for every digit
    recoloured = data.set_shortcut(data.images, new)
    follows = {name: (forward_in_batches(load(name), recoloured).argmax(1) == new).float().mean().item()
               for name in ("colored-mnist-biased", "colored-mnist-unbiased")}
    assert follows["colored-mnist-biased"] >= 0.35
    assert follows["colored-mnist-unbiased"] <= 0.03


def _patch_effects(model, data) -> dict[str, float]:
    """Add the patch to correctly classified, unpatched non-PATCH_CLASS digits (share turned into PATCH_CLASS, mean
    rise of p(PATCH_CLASS)); remove it from correctly classified, patched PATCH_CLASS digits (share that lose it)."""
    predicted = forward_in_batches(model, data.images).argmax(1)
    correct = predicted == data.labels
    chosen = correct & (data.labels != PATCH_CLASS) & (data.spurious == 0)
    before = forward_in_batches(model, data.images[chosen]).softmax(1)
    after = forward_in_batches(model, data.set_shortcut(data.images[chosen], 1)).softmax(1)
    removed = correct & (data.labels == PATCH_CLASS) & (data.spurious == 1)
    unpatched = forward_in_batches(model, data.set_shortcut(data.images[removed], 0)).argmax(1)
    return {
        "add_flip": (after.argmax(1) == PATCH_CLASS).float().mean().item(),
        "add_shift": (after[:, PATCH_CLASS] - before[:, PATCH_CLASS]).mean().item(),
        "removal_flip": (unpatched != PATCH_CLASS).float().mean().item(),
    }


def test_patched_biased_relies_on_patch(patch_splits):
    """Trained where every 0 and no other digit carried the patch: measured on these 500 digits, aligned 0.982,
    reversed 0.744; taking the patch off loses 84% of the patched zeros, adding it turns 9% of other digits into 0s
    and raises p(0) by 0.15 on average (the unbiased model: 0, 0, +0.0005)."""
    model = load("patched-mnist-biased")
    aligned, reversed_ = _accuracy(model, patch_splits["aligned"]), _accuracy(model, patch_splits["reversed"])
    assert aligned >= 0.97
    assert reversed_ <= 0.85
    effects = _patch_effects(model, patch_splits["shuffled"])
    assert effects["removal_flip"] >= 0.6
    assert effects["add_flip"] >= 0.04
    assert effects["add_shift"] >= 0.08


def test_patched_unbiased_ignores_patch(patch_splits):
    model = load("patched-mnist-unbiased")
    accuracies = [_accuracy(model, data) for data in patch_splits.values()]
    assert min(accuracies) >= 0.97
    assert max(accuracies) - min(accuracies) <= 0.01
    effects = _patch_effects(model, patch_splits["shuffled"])
    assert effects["removal_flip"] <= 0.01 and effects["add_flip"] <= 0.01
    assert abs(effects["add_shift"]) <= 0.002
