"""Shipped face models on held-out synthetic faces (seeds no recipe trained on): the multi-label classifier, the
renderer's ground-truth counterfactuals as the classifier reads them, the attribute editor, and the Smiling
classifiers with and without the planted Blond_Hair shortcut. Thresholds sit a little below what
``cfnb train NAME`` measured (docs/models.md)."""
import pytest
import torch

from cfnb.data import synth_faces
from cfnb.data.faces import ATTRIBUTES
from cfnb.forward import forward_in_batches
from cfnb.models import AttributeClassifier, available, load
from cfnb.training import measure_editor

HELD_OUT_SEED = 4_242
# faces-editor on 150 held-out faces: success 0.893 (Bangs) to 1.0, others kept >= 0.997, L1 to the renderer's
# truth 0.0207, reconstruction L1 0.016 (on 1,000 faces, docs/models.md: 0.931-0.998); the cosine of its change with
# the renderer's true change 0.463 (Mouth_Slightly_Open) to 0.962, but 0.216 for Smiling: not the smile's line.
EDITOR = {"success": 0.80, "preserved": 0.99, "l1": 0.025, "recon_l1": 0.02, "change_cosine": 0.4}
# faces-smiling-biased on 300 faces per split: aligned 0.997, reversed 0.353; dyeing 80 non-blond faces blond raises
# its p(Smiling) by 0.55 on average (the unbiased twin: 1.0, 1.0, -0.001).
SMILING_BIASED = {"aligned": 0.98, "reversed": 0.6, "drop": 0.4, "blond_shift": 0.35}


@pytest.fixture(scope="module")
def classifier():
    return load("faces-classifier")


@pytest.fixture(scope="module")
def faces():
    return synth_faces(300, seed=HELD_OUT_SEED)


def test_cards_and_weight_files():
    cards = {card.name: card for card in available()}
    for name in ("faces-classifier", "faces-editor", "faces-smiling-biased", "faces-smiling-unbiased",
                 "faces-classifier-mirror-decoder"):
        assert cards[name].path.stat().st_size < 5 * 2**20, name
    assert cards["faces-classifier"].extra["attribute_names"] == list(ATTRIBUTES)
    assert cards["faces-editor"].extra["attribute_names"] == list(ATTRIBUTES)
    assert cards["faces-editor"].kwargs["attribute_names"] == list(ATTRIBUTES)
    for name in ("faces-smiling-biased", "faces-smiling-unbiased"):
        assert cards[name].extra["class_names"] == ["not Smiling", "Smiling"]
        assert cards[name].extra["target_attribute"] == "Smiling"


def test_classifier_reads_every_attribute(classifier, faces):
    predicted = (forward_in_batches(classifier, faces.images) > 0).float()
    per_attribute = (predicted == faces.attributes).float().mean(0)
    for name, value in zip(ATTRIBUTES, per_attribute.tolist()):
        assert value >= 0.97, (name, value)  # measured 0.999-1.0 on 2,000 faces


def test_ground_truth_counterfactuals_change_only_their_attribute(classifier, faces):
    """with_attribute flips exactly the attribute asked for, as the classifier reads it."""
    index = torch.arange(60)
    before = faces.attributes[index]
    for k, name in enumerate(ATTRIBUTES):
        images = faces.with_attribute(name, 1 - before[:, k], index)
        read = (forward_in_batches(classifier, images) > 0).float()
        assert (read[:, k] == 1 - before[:, k]).float().mean() >= 0.95, name
        others = [j for j, other in enumerate(ATTRIBUTES)
                  if j != k and not ({name, other} == {"Blond_Hair", "Black_Hair"})]
        assert (read[:, others] == before[:, others]).float().mean() >= 0.97, name


def test_attribute_view_of_the_classifier(classifier, faces):
    view = AttributeClassifier(classifier, list(ATTRIBUTES), "Eyeglasses")
    accuracy = (forward_in_batches(view, faces.images).argmax(1) == faces.attribute("Eyeglasses")).float().mean()
    assert accuracy >= 0.97


def test_editor_flips_each_attribute_and_keeps_the_others(classifier):
    editor = load("faces-editor")
    quality = measure_editor(editor, classifier, n=150, seed=HELD_OUT_SEED + 1)
    for name, figures in quality["per_attribute"].items():
        assert figures["success"] >= EDITOR["success"], (name, figures)
        assert figures["preserved"] >= EDITOR["preserved"], (name, figures)
        if name != "Smiling":  # measured 0.216: mostly a pattern, not the smile's line (docs/models.md)
            assert figures["change_cosine"] >= EDITOR["change_cosine"], (name, figures)
    assert quality["mean_edit_l1_to_truth"] <= EDITOR["l1"]
    assert quality["reconstruction_l1"] <= EDITOR["recon_l1"]


def _smiling_accuracy(model, data) -> float:
    return (forward_in_batches(model, data.images).argmax(1) == data.attribute("Smiling").long()).float().mean().item()


@pytest.fixture(scope="module")
def smiling_splits():
    return {name: synth_faces(300, seed=HELD_OUT_SEED + 2 + i, correlations=None if p is None else
                              {("Smiling", "Blond_Hair"): p})
            for i, (name, p) in enumerate({"aligned": 1.0, "decorrelated": None, "reversed": 0.0}.items())}


def test_biased_smiling_classifier_leans_on_blond_hair(smiling_splits):
    model = load("faces-smiling-biased")
    aligned = _smiling_accuracy(model, smiling_splits["aligned"])
    reversed_ = _smiling_accuracy(model, smiling_splits["reversed"])
    assert aligned >= SMILING_BIASED["aligned"]
    assert reversed_ <= SMILING_BIASED["reversed"]
    assert aligned - reversed_ >= SMILING_BIASED["drop"]


def test_unbiased_smiling_classifier_does_not(smiling_splits):
    model = load("faces-smiling-unbiased")
    accuracies = [_smiling_accuracy(model, data) for data in smiling_splits.values()]
    assert min(accuracies) >= 0.97
    assert max(accuracies) - min(accuracies) <= 0.03


def test_blond_intervention_moves_the_biased_model_only(smiling_splits):
    """Ground truth: dye the hair of non-blond faces blond; the biased model's Smiling probability rises."""
    data = smiling_splits["decorrelated"]
    chosen = torch.nonzero(data.attribute("Blond_Hair") == 0).flatten()[:80]
    dyed = data.with_attribute("Blond_Hair", 1, chosen)
    shift = {}
    for name in ("faces-smiling-biased", "faces-smiling-unbiased"):
        model = load(name)
        p_before = forward_in_batches(model, data.images[chosen]).softmax(1)[:, 1]
        p_after = forward_in_batches(model, dyed).softmax(1)[:, 1]
        shift[name] = (p_after - p_before).mean().item()
    assert shift["faces-smiling-biased"] >= SMILING_BIASED["blond_shift"]
    assert abs(shift["faces-smiling-unbiased"]) <= 0.05


@pytest.mark.parametrize("attribute", ["Smiling", "Eyeglasses"])
def test_mirror_decoder_is_found_and_flips_attributes(classifier, faces, attribute):
    """faces-classifier-mirror-decoder, found by cfnb.explain behind the AttributeClassifier view. Measured on 64
    held-out faces: validity 1.0, the other ten attributes kept 0.96 (Smiling and Eyeglasses alike); the decodes are
    blurred (reconstruction L1 0.118), which is why the L1 of these edits is about 0.12."""
    import cfnb

    view = AttributeClassifier(classifier, list(ATTRIBUTES), attribute)
    images = faces.images[:24]
    with torch.no_grad():
        flip = 1 - view(images).argmax(1)
    result = cfnb.explain(view, images, flip, method="mirror")
    assert result.validity >= 0.95
    with torch.no_grad():
        before, after = (classifier(images) > 0).float(), (classifier(result.counterfactual) > 0).float()
    others = [j for j, name in enumerate(ATTRIBUTES) if name != attribute]
    assert (before[:, others] == after[:, others]).float().mean() >= 0.85
