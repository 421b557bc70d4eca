"""Recipes for the procedural-face models: the multi-label classifier and its Mirror-CFE decoder, the attribute
editor, and the Smiling classifiers with and without a planted Blond_Hair shortcut.

Every recipe is seeded, measures its model on held-out faces drawn with a seed no recipe trains on, and returns a
``TrainedModel`` for ``train_and_save``.
"""
from __future__ import annotations

from typing import Any, cast

import torch
from torch import nn

from ...data.faces import ATTRIBUTES, synth_faces
from ...models import load
from ...models.architectures import AttributeEditor, GAPClassifier
from ..editor import FACES_TEST_SEED, measure_editor, train_editor
from ..fitting import fit_classifier
from ..loops import accuracy
from ..measures import group_accuracies, per_attribute_accuracy
from .common import TrainedModel, mirror_decoder_recipe, recipe

FACES_TRAIN_SEED = 0
FACES_TRAIN_N = 8_000
FACES_TEST_N = 2_000
FACE_CLASSIFIER_WIDTHS = (32, 64, 128, 128)


def _faces(n: int, seed: int, correlations=None):
    return synth_faces(n, seed=seed, correlations=correlations)


@recipe("faces-classifier")
def faces_classifier(seed: int = 0) -> TrainedModel:
    """Multi-label GAP CNN (32-64-128-128) over every synthetic-face attribute; BCE, 8 epochs on 8,000 faces."""
    train = _faces(FACES_TRAIN_N, FACES_TRAIN_SEED)
    test = _faces(FACES_TEST_N, FACES_TEST_SEED)
    fitted = fit_classifier(train, widths=FACE_CLASSIFIER_WIDTHS, epochs=8, lr=3e-3, max_shift=2, seed=seed,
                            validation=0)
    model, kwargs = fitted.model, fitted.card.kwargs
    per_attribute = per_attribute_accuracy(model, test.images, test.attributes, list(ATTRIBUTES))
    quality = {
        "per_attribute_accuracy": per_attribute,
        "min_attribute_accuracy": min(per_attribute.values()),
        "mean_attribute_accuracy": round(sum(per_attribute.values()) / len(per_attribute), 4),
        "test_set": f"synth_faces(n={FACES_TEST_N}, seed={FACES_TEST_SEED}), no correlations",
    }
    return TrainedModel(model, "GAPClassifier", kwargs,
                        f"synth_faces(n={FACES_TRAIN_N}, seed={FACES_TRAIN_SEED}), no correlations", quality,
                        extra={"attribute_names": list(ATTRIBUTES), "multilabel": True})


FACES_DECODER_N = 3_000
FACES_DECODER_EPOCHS = 8


@recipe("faces-classifier-mirror-decoder")
def faces_mirror_decoder(seed: int = 0) -> TrainedModel:
    """Mirror-CFE decoder for faces-classifier's 128x8x8 feature maps; training paths flip one attribute each."""
    train = _faces(FACES_DECODER_N, FACES_TRAIN_SEED)
    test = _faces(500, FACES_TEST_SEED)
    return mirror_decoder_recipe("faces-classifier", train.images, test.images, epochs=FACES_DECODER_EPOCHS, seed=seed,
                           multilabel=True, batch_size=64, width=48)


FACES_EDITOR_WIDTH = 16  # the default 32 costs about 3x more per step: too slow to train on a 2-core CPU
FACES_EDITOR_STEPS = 2_500
FACES_EDITOR_CLASSIFIER_WEIGHT = 0.1


@recipe("faces-editor")
def faces_editor(seed: int = 0) -> TrainedModel:
    """AttributeEditor (width 16) trained with paired supervision from ``render_faces`` plus a small term from the
    frozen ``faces-classifier``; judged by ``faces-classifier`` and by the L1 to the renderer's ground truth."""
    names = list(ATTRIBUTES)
    kwargs: dict[str, Any] = {"num_attributes": len(names), "attribute_names": names, "width": FACES_EDITOR_WIDTH}
    classifier = load("faces-classifier")
    editor = train_editor(AttributeEditor(**kwargs), steps=FACES_EDITOR_STEPS, batch_size=64, seed=seed,
                          classifier=classifier, classifier_weight=FACES_EDITOR_CLASSIFIER_WEIGHT)
    quality = measure_editor(editor, classifier)
    data = (f"fresh synthetic faces every step ({FACES_EDITOR_STEPS} steps x 64), targets with 0-2 attributes "
            f"flipped, ground truth from render_faces; loss: change-weighted L1 to the truth + "
            f"{FACES_EDITOR_CLASSIFIER_WEIGHT} x BCE of faces-classifier on a quarter of each batch")
    return TrainedModel(editor, "AttributeEditor", kwargs, data, quality,
                        extra={"attribute_names": names, "judge": "faces-classifier"})


# ----------------------------------------------------------------------------------------------------------------
# Smiling with and without a planted Blond_Hair shortcut

SMILING_SHORTCUT = {("Smiling", "Blond_Hair"): 0.93}
"""Blond_Hair agrees with Smiling on 93% of the biased twin's training faces: strong enough that the hair moves it on
more faces than the audit's 20% flag, weak enough that it still reads smiles (chosen on the 500 faces of seed 4321;
see CHANGELOG.md for the agreements tried)."""


def _smiling_quality(model: nn.Module) -> dict[str, Any]:
    quality: dict[str, Any] = {}
    splits = {"in_distribution": 0.9, "aligned": 1.0, "decorrelated": None, "reversed": 0.0}
    for i, (split, p) in enumerate(splits.items()):
        correlations = None if p is None else {("Smiling", "Blond_Hair"): p}
        test = synth_faces(FACES_TEST_N, seed=FACES_TEST_SEED + 1 + i, correlations=correlations)
        labels = test.attribute("Smiling").long()
        quality[f"accuracy_{split}"] = round(accuracy(model, test.images, labels), 4)
        if p is None:
            groups = group_accuracies(model, test.images, labels, test.attribute("Blond_Hair").long())
            quality["group_accuracy_decorrelated"] = {k: v for k, v in groups.items() if k != "worst_group"}
            quality["worst_group_accuracy"] = groups["worst_group"]
    quality["groups"] = "label = Smiling, group = Blond_Hair"
    quality["test_sets"] = (f"synth_faces(n={FACES_TEST_N}) with Smiling-Blond_Hair agreement 0.9, 1.0, none and "
                            f"0.0, seeds {FACES_TEST_SEED + 1}-{FACES_TEST_SEED + 4}")
    return quality


SMILING_AUXILIARY = "Mouth_Slightly_Open"
SMILING_EPOCHS = 6


def two_class_from_logit(model: GAPClassifier, index: int, kwargs: dict[str, Any]) -> GAPClassifier:
    """A 2-class GAPClassifier (``kwargs``, num_classes 2) whose softmax equals the sigmoid of multi-label
    ``model``'s output ``index``: the same features, head rows (0, w_index) and biases (0, b_index)."""
    two = GAPClassifier(**{**kwargs, "num_classes": 2})
    two.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("head.")}, strict=False)
    with torch.no_grad():
        two.head.weight.zero_()
        two.head.bias.zero_()
        two.head.weight[1] = model.head.weight[index]
        two.head.bias[1] = model.head.bias[index]
    return two.eval()


def _smiling_model(correlations, seed: int) -> tuple[nn.Module, dict[str, Any]]:
    """Smiling (plus the auxiliary Mouth_Slightly_Open) as two BCE outputs, then the 2-class Smiling model.

    Trained on Smiling alone (CE, batches of 128 or 32, 6 epochs), neither twin had begun to read the mouth after
    1,000 steps: the unbiased one stayed at chance and the biased one on Blond_Hair alone. The auxiliary mouth
    label (independent of Blond_Hair in both training sets) teaches where the mouth is, as the multi-label
    faces-classifier learns it; the planted Smiling-Blond_Hair agreement is untouched.
    """
    train = _faces(FACES_TRAIN_N, FACES_TRAIN_SEED + 1, correlations)
    targets = torch.stack([train.attribute("Smiling"), train.attribute(SMILING_AUXILIARY)], 1).float()
    fitted = fit_classifier(train.images, attributes=targets, attribute_names=["Smiling", SMILING_AUXILIARY],
                            widths=FACE_CLASSIFIER_WIDTHS, epochs=SMILING_EPOCHS, lr=3e-3, max_shift=2, degrade=1.0,
                            seed=seed, validation=0)
    kwargs = fitted.card.kwargs
    return two_class_from_logit(cast(GAPClassifier, fitted.model), 0, kwargs), kwargs


def _smiling(correlations, seed: int) -> TrainedModel:
    """The Smiling recipe on faces with ``correlations`` (None: none), with its card."""
    model, kwargs = _smiling_model(correlations, seed)
    faces = (f"synth_faces(n={FACES_TRAIN_N}, seed={FACES_TRAIN_SEED + 1}, correlations={correlations})" if correlations
             else f"synth_faces(n={FACES_TRAIN_N}, seed={FACES_TRAIN_SEED + 1}), no correlations")
    extra = {"class_names": ["not Smiling", "Smiling"], "target_attribute": "Smiling"}
    if correlations:
        extra["shortcut"] = "Blond_Hair"
    return TrainedModel(model, "GAPClassifier", kwargs,
                        f"{faces}; BCE on Smiling and the auxiliary {SMILING_AUXILIARY}",
                        _smiling_quality(model), extra=extra)


@recipe("faces-smiling-biased")
def faces_smiling_biased(seed: int = 0) -> TrainedModel:
    """Smiling vs not, trained where Blond_Hair agrees with Smiling (``SMILING_SHORTCUT``): a planted shortcut."""
    return _smiling(SMILING_SHORTCUT, seed)


@recipe("faces-smiling-unbiased")
def faces_smiling_unbiased(seed: int = 0) -> TrainedModel:
    """Smiling vs not, trained without planted correlations (the comparison for faces-smiling-biased)."""
    return _smiling(None, seed)
