"""Recipes for the face and shortcut models: synthetic faces (classifier, editor, Smiling with and without a planted
Blond_Hair shortcut) and shortcut-planted MNIST (coloured and patched digits, biased and unbiased).

Every recipe is seeded, trains on the CPU, measures its quality on held-out data drawn with a different seed (or the
embedded MNIST test split) and returns a ``TrainedModel`` for ``train_and_save``.
"""
from __future__ import annotations

import time
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from .architectures import AttributeEditor, GAPClassifier
from .recipes import TrainedModel, recipe
from .training import CompiledSteps, accuracy, predict_in_batches, train_supervised

FACES_TRAIN_SEED = 0
FACES_TEST_SEED = 1_000
FACES_TRAIN_N = 8_000
FACES_TEST_N = 2_000
FACE_CLASSIFIER_KWARGS = {"widths": [32, 64, 128, 128]}


# ----------------------------------------------------------------------------------------------------------------
# Shared measurements


@torch.no_grad()
def per_attribute_accuracy(model: nn.Module, images: torch.Tensor, attributes: torch.Tensor,
                           names: list[str]) -> dict[str, float]:
    """Share of images whose thresholded logit (> 0) matches each attribute."""
    logits = predict_in_batches(model, images)
    correct = ((logits > 0).float() == attributes).float().mean(0)
    return {name: round(value.item(), 4) for name, value in zip(names, correct)}


@torch.no_grad()
def group_accuracies(model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
                     groups: torch.Tensor) -> dict[str, float]:
    """Accuracy per (label, group) cell and the worst of them."""
    predictions = predict_in_batches(model, images).argmax(1)
    out: dict[str, float] = {}
    for label in labels.unique().tolist():
        for group in groups.unique().tolist():
            cell = (labels == label) & (groups == group)
            if cell.any():
                out[f"label{label}_group{group}"] = round((predictions[cell] == labels[cell]).float().mean().item(), 4)
    out["worst_group"] = min(out.values())
    return out


# ----------------------------------------------------------------------------------------------------------------
# Faces


def _faces(n: int, seed: int, correlations=None):
    from ..data.faces import synth_faces

    return synth_faces(n, seed=seed, correlations=correlations)


@recipe("faces-classifier")
def faces_classifier(seed: int = 0) -> TrainedModel:
    """Multi-label GAP CNN (32-64-128-128) over every synthetic-face attribute; BCE, 8 epochs on 8,000 faces."""
    from ..data.faces import ATTRIBUTES

    train = _faces(FACES_TRAIN_N, FACES_TRAIN_SEED)
    test = _faces(FACES_TEST_N, FACES_TEST_SEED)
    kwargs = {"in_channels": 3, "num_classes": len(ATTRIBUTES), **FACE_CLASSIFIER_KWARGS}
    model = train_supervised(GAPClassifier(**kwargs), train.images, train.attributes, loss="bce", epochs=8,
                             lr=3e-3, max_shift=2, seed=seed)
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
    from .recipes import _mirror_decoder

    train = _faces(FACES_DECODER_N, FACES_TRAIN_SEED)
    test = _faces(500, FACES_TEST_SEED)
    return _mirror_decoder("faces-classifier", train.images, test.images, epochs=FACES_DECODER_EPOCHS, seed=seed,
                           multilabel=True, batch_size=64, width=48)


# ----------------------------------------------------------------------------------------------------------------
# Faces editor: paired supervision from the renderer


def flip_targets(attributes: torch.Tensor, names: list[str], which: torch.Tensor) -> torch.Tensor:
    """Target attributes: each row of ``attributes`` with attribute ``which[i]`` flipped (``-1``: unchanged).

    Setting Blond_Hair or Black_Hair to 1 sets the other to 0, as in ``FaceDataset.with_attribute``.
    """
    target = attributes.clone()
    rows = torch.nonzero(which >= 0).flatten()
    target[rows, which[rows]] = 1 - target[rows, which[rows]]
    blond, black = names.index("Blond_Hair"), names.index("Black_Hair")
    target[(which == blond) & (target[:, blond] == 1), black] = 0
    target[(which == black) & (target[:, black] == 1), blond] = 0
    return target


def _params_with(params: dict[str, torch.Tensor], attributes: torch.Tensor, names: list[str]) -> dict[str, torch.Tensor]:
    out = dict(params)
    for k, name in enumerate(names):
        out[name] = attributes[:, k].contiguous()
    return out


def _editor_batch(batch: int, seed: int, names: list[str], generator: torch.Generator,
                  render: Callable[..., torch.Tensor], max_flips: int = 2):
    """Fresh faces, target attributes (0, 1 or up to ``max_flips`` attributes flipped) and both renderings."""
    from ..data.faces import sample_face_params

    params = sample_face_params(batch, seed=seed)
    source = torch.stack([params[name] for name in names], 1)
    target = source.clone()
    flips = torch.randint(0, max_flips + 1, (batch,), generator=generator)
    flips[torch.rand(batch, generator=generator) < 0.55] = 1  # mostly single flips, some identities and pairs
    for round_ in range(max_flips):
        which = torch.randint(0, len(names), (batch,), generator=generator)
        which[flips <= round_] = -1
        target = flip_targets(target, names, which)
    images = render(params, 64)
    targets = render(_params_with(params, target, names), 64)
    return images, source, target, targets


def train_editor(editor: AttributeEditor, *, steps: int, batch_size: int = 64, lr: float = 2e-3, seed: int = 0,
                 change_weight: float = 8.0, classifier: nn.Module | None = None, classifier_weight: float = 0.0,
                 classifier_share: float = 0.25, log=print) -> AttributeEditor:
    """Train ``editor`` on pairs (face, target attributes) -> the renderer's face with those attributes.

    Loss: L1 to the ground-truth re-rendering, with pixels that the edit changes weighted ``1 + change_weight``
    (so small edits such as the mouth are not drowned by the rest of the face); the pairs with unchanged
    attributes are the reconstruction term. With a frozen multi-label ``classifier``, ``classifier_weight`` times
    its BCE between the edited images and their target attributes is added, computed on the first
    ``classifier_share`` of each batch (the classifier's backward pass costs more than the editor's). Every step
    draws fresh faces, so nothing is seen twice; they are drawn by ``compiled_face_renderer`` (drawing them eagerly
    took more than a third of each step) and the editor runs compiled (``CompiledSteps``).
    """
    from ..data.faces import compiled_face_renderer

    render = compiled_face_renderer(log)
    names = editor.attribute_names
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    optimiser = torch.optim.Adam(editor.parameters(), lr=lr, betas=(0.5, 0.999))
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=lr, total_steps=steps, pct_start=0.1)
    start, running = time.perf_counter(), 0.0
    if classifier is not None:
        classifier.eval().requires_grad_(False).to(memory_format=torch.channels_last)
    editor.to(memory_format=torch.channels_last).train()  # 7-15% faster convolutions on this CPU (measured)
    steps_through = CompiledSteps(editor, log)
    for step in range(steps):
        images, _, target, truth = _editor_batch(batch_size, seed * 1_000_003 + 10_000 + step, names, generator, render)
        changed = ((truth - images).abs().amax(1, keepdim=True) > 0.02).float()
        changed = F.max_pool2d(changed, 3, 1, 1)  # a pixel of margin around every change
        images = images.contiguous(memory_format=torch.channels_last)

        def loss_of(forward: Callable[..., torch.Tensor]) -> torch.Tensor:
            output = forward(images, target)
            loss = ((output - truth).abs() * (1 + change_weight * changed)).mean()
            if classifier is not None and classifier_weight > 0:
                k = max(1, int(classifier_share * len(output)))
                loss = loss + classifier_weight * F.binary_cross_entropy_with_logits(classifier(output[:k]), target[:k])
            return loss

        optimiser.zero_grad(set_to_none=True)
        loss = steps_through.step(loss_of)
        optimiser.step()
        schedule.step()
        running = 0.98 * running + 0.02 * loss.item() if step else loss.item()
        if log is not None and (step % 50 == 49 or step == steps - 1):
            log(f"  step {step + 1:5d}/{steps}  loss {running:.4f}  ({time.perf_counter() - start:.0f}s)")
    if classifier is not None:
        classifier.to(memory_format=torch.contiguous_format)
    editor.to(memory_format=torch.contiguous_format).eval()
    return editor


@torch.no_grad()
def measure_editor(editor: nn.Module, classifier: nn.Module, n: int = 1_000, seed: int = FACES_TEST_SEED) -> dict[str, Any]:
    """Flip each attribute of ``n`` held-out faces with ``editor``; judge with ``classifier`` and the renderer.

    Returns per attribute: ``success`` (the classifier reads the new value), ``preserved`` (share of the other
    attributes the classifier still reads as they were, averaged over them; the hair partner that a hair flip
    turns off counts as changed on purpose), ``all_preserved`` (faces with every other attribute read as it was),
    ``l1_to_truth`` (mean |edit - renderer's re-rendering|) and ``change_cosine`` (mean cosine between the editor's
    change, edit - unchanged redraw, and the renderer's, truth - image: a judge that no classifier can be fooled
    into; 1 draws the true change, 0 draws something unrelated); plus the reconstruction L1 (no attribute changed).
    """
    from ..data.faces import render_faces, sample_face_params

    names = editor.attribute_names
    params = sample_face_params(n, seed=seed)
    source = torch.stack([params[name] for name in names], 1)
    images = render_faces(params, 64)
    content = [editor.encode(images[s:s + 250]) for s in range(0, n, 250)]

    def edit(attributes: torch.Tensor) -> torch.Tensor:
        return torch.cat([editor.decode(c, attributes[i * 250:(i + 1) * 250]) for i, c in enumerate(content)])

    recon = edit(source)
    out: dict[str, Any] = {"reconstruction_l1": round((recon - images).abs().mean().item(), 4)}
    per: dict[str, dict[str, float]] = {}
    for k, name in enumerate(names):
        target = flip_targets(source, names, torch.full((n,), k))
        edited = edit(target)
        truth = render_faces(_params_with(params, target, names), 64)
        predicted = (predict_in_batches(classifier, edited) > 0).float()
        others = [j for j in range(len(names)) if j != k and not torch.equal(target[:, j], 1 - source[:, j])]
        kept = (predicted[:, others] == target[:, others]).float()
        change = F.cosine_similarity((edited - recon).flatten(1), (truth - images).flatten(1)).mean().item()
        per[name] = {
            "success": round((predicted[:, k] == target[:, k]).float().mean().item(), 4),
            "preserved": round(kept.mean().item(), 4),
            "all_preserved": round(kept.all(1).float().mean().item(), 4),
            "l1_to_truth": round((edited - truth).abs().mean().item(), 4),
            "change_cosine": round(change, 3),
        }
    out["per_attribute"] = per
    out["min_success"] = min(v["success"] for v in per.values())
    out["min_preserved"] = min(v["preserved"] for v in per.values())
    out["mean_edit_l1_to_truth"] = round(sum(v["l1_to_truth"] for v in per.values()) / len(per), 4)
    out["min_change_cosine"] = min(v["change_cosine"] for v in per.values())
    out["test_set"] = f"sample_face_params(n={n}, seed={seed}), every attribute flipped in turn"
    return out


FACES_EDITOR_WIDTH = 16  # the default 32 costs about 3x more per step: too slow to train on a 2-core CPU
FACES_EDITOR_STEPS = 2_500
FACES_EDITOR_CLASSIFIER_WEIGHT = 0.1


@recipe("faces-editor")
def faces_editor(seed: int = 0) -> TrainedModel:
    """AttributeEditor (width 16) trained with paired supervision from ``render_faces`` plus a small term from the
    frozen ``faces-classifier``; judged by ``faces-classifier`` and by the L1 to the renderer's ground truth."""
    from ..data.faces import ATTRIBUTES
    from . import load

    names = list(ATTRIBUTES)
    kwargs = {"num_attributes": len(names), "attribute_names": names, "width": FACES_EDITOR_WIDTH}
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

SMILING_SHORTCUT = {("Smiling", "Blond_Hair"): 0.9}


def _smiling_quality(model: nn.Module) -> dict[str, Any]:
    from ..data.faces import synth_faces

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
    kwargs = {"in_channels": 3, "num_classes": 2, **FACE_CLASSIFIER_KWARGS}
    targets = torch.stack([train.attribute("Smiling"), train.attribute(SMILING_AUXILIARY)], 1).float()
    model = train_supervised(GAPClassifier(**kwargs), train.images, targets, loss="bce", epochs=SMILING_EPOCHS,
                             lr=3e-3, max_shift=2, degrade=1.0, seed=seed)
    return two_class_from_logit(model, 0, kwargs), kwargs


def _smiling(correlations, seed: int) -> TrainedModel:
    """The Smiling recipe on faces with ``correlations`` (None: none), with its card."""
    model, kwargs = _smiling_model(correlations, seed)
    faces = (f"synth_faces(n={FACES_TRAIN_N}, seed={FACES_TRAIN_SEED + 1}, correlations={correlations})" if correlations
             else f"synth_faces(n={FACES_TRAIN_N}, seed={FACES_TRAIN_SEED + 1}), no correlations")
    extra = {"class_names": ["not Smiling", "Smiling"], "target_attribute": "Smiling"}
    if correlations:
        extra["shortcut"] = "Blond_Hair"
    return TrainedModel(model, "GAPClassifier", kwargs, f"{faces}; BCE on Smiling and the auxiliary {SMILING_AUXILIARY}",
                        _smiling_quality(model), extra=extra)


@recipe("faces-smiling-biased")
def faces_smiling_biased(seed: int = 0) -> TrainedModel:
    """Smiling vs not, trained where Blond_Hair agrees with Smiling (``SMILING_SHORTCUT``): a planted shortcut."""
    return _smiling(SMILING_SHORTCUT, seed)


@recipe("faces-smiling-unbiased")
def faces_smiling_unbiased(seed: int = 0) -> TrainedModel:
    """Smiling vs not, trained without planted correlations (the comparison for faces-smiling-biased)."""
    return _smiling(None, seed)


# ----------------------------------------------------------------------------------------------------------------
# Shortcut MNIST

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


def _train_shortcut_classifier(dataset, in_channels: int, seed: int) -> tuple[nn.Module, dict[str, Any]]:
    kwargs = {"in_channels": in_channels, "num_classes": 10, "widths": [32, 64, 128]}
    model = train_supervised(GAPClassifier(**kwargs), dataset.images, dataset.labels, epochs=20, lr=3e-3, seed=seed)
    return model, kwargs


def _colored(correlation: float | None, seed: int) -> TrainedModel:
    from ..data.shortcuts import colored_mnist

    train = colored_mnist("train", correlation=correlation, seed=0)
    model, kwargs = _train_shortcut_classifier(train, 3, seed)
    quality, shuffled = _shortcut_quality(model, colored_mnist, SHORTCUT_TRAIN_CORRELATION)
    # recolour correctly classified test digits in another class's colour: how often does the prediction follow?
    correct = predict_in_batches(model, shuffled.images).argmax(1) == shuffled.labels
    images, labels = shuffled.images[correct], shuffled.labels[correct]
    g = torch.Generator().manual_seed(7)
    colour = (labels + torch.randint(1, 10, labels.shape, generator=g)) % 10
    follows = predict_in_batches(model, shuffled.set_shortcut(images, colour)).argmax(1) == colour
    quality["follows_colour_rate"] = round(follows.float().mean().item(), 4)
    quality["follows_colour_note"] = "correct shuffled-test digits recoloured in another class's colour"
    return TrainedModel(model, "GAPClassifier", kwargs,
                        f"colored_mnist('train', correlation={correlation}, seed=0) (embedded MNIST, 4,000 digits)",
                        quality, extra={"class_names": [str(d) for d in range(10)], "shortcut": "colour"})


def _patched(correlation: float | None, seed: int) -> TrainedModel:
    from ..data.shortcuts import patched_mnist

    train = patched_mnist("train", correlation=correlation, patch_class=PATCH_CLASS, seed=0)
    model, kwargs = _train_shortcut_classifier(train, 1, seed)
    quality, shuffled = _shortcut_quality(model, patched_mnist, PATCH_TRAIN_CORRELATION,
                                          patch_class=PATCH_CLASS)
    # add the patch to correctly classified digits of other classes: how often does the prediction become PATCH_CLASS?
    predicted = predict_in_batches(model, shuffled.images).argmax(1)
    chosen = (predicted == shuffled.labels) & (shuffled.labels != PATCH_CLASS) & (shuffled.spurious == 0)
    patched = shuffled.set_shortcut(shuffled.images[chosen], 1)
    flips = predict_in_batches(model, patched).argmax(1) == PATCH_CLASS
    quality["patch_flip_rate"] = round(flips.float().mean().item(), 4)
    removed = (predicted == shuffled.labels) & (shuffled.labels == PATCH_CLASS) & (shuffled.spurious == 1)
    unpatched = shuffled.set_shortcut(shuffled.images[removed], 0)
    quality["patch_removal_flip_rate"] = round(
        (predict_in_batches(model, unpatched).argmax(1) != PATCH_CLASS).float().mean().item(), 4)
    p_before = predict_in_batches(model, shuffled.images[chosen]).softmax(1)[:, PATCH_CLASS]
    p_after = predict_in_batches(model, patched).softmax(1)[:, PATCH_CLASS]
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
