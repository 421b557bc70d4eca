"""cfnb.audit against planted truths, with the shipped models: a biased classifier's shortcut is found and scored far
above its unbiased twin's, and an unbiased classifier raises no false alarm.

Thresholds come from the measurements in docs/audits.md (the same calls; the faces on 300 instead of 200 images);
each sits well inside the gap between the biased and the unbiased figure, so a broken intervention, a broken
statistic or a swapped model fails them.
"""
from __future__ import annotations

import pytest

from cfnb.audit import FLAG_THRESHOLD, spurious
from cfnb.audit.planted import renderer_factors, shortcut_factor, shortcut_generator
from cfnb.data import colored_mnist, patched_mnist, synth_faces
from cfnb.models import load

N_DIGITS = 400
N_COUNTERFACTUALS = 48


def _shortcut_audit(data, name: str, counterfactuals: int = 0, **overrides):
    return spurious(load(name), data.images, [shortcut_factor(data)], labels=data.labels,
                    generator=shortcut_generator(data) if counterfactuals else None, expected=["shape"],
                    limit=N_DIGITS, counterfactuals=counterfactuals, progress=False, bootstrap=200, **overrides)


@pytest.fixture(scope="module")
def colour_audits():
    data = colored_mnist("test-shuffled")  # colour independent of the class: a fair test
    return {kind: _shortcut_audit(data, f"colored-mnist-{kind}", N_COUNTERFACTUALS) for kind in ("biased", "unbiased")}


@pytest.fixture(scope="module")
def patch_audits():
    data = patched_mnist("test-shuffled", patch_class=0)
    return {kind: _shortcut_audit(data, f"patched-mnist-{kind}", N_COUNTERFACTUALS) for kind in ("biased", "unbiased")}


def test_colour_reliance_of_the_biased_model_is_far_above_the_unbiased_ones(colour_audits):
    """Measured on these 400 digits: flip rate 0.67 (interval 0.62-0.72) against 0.01 (0.00-0.02)."""
    biased, unbiased = colour_audits["biased"], colour_audits["unbiased"]
    assert biased.scores["colour"].value >= 0.5 and biased.scores["colour"].low >= 0.4
    assert unbiased.scores["colour"].value <= 0.05
    assert biased.shortcuts == ["colour"] and unbiased.flagged == []
    # worst group: digits whose colour belongs to another class (measured 0.35 against 0.96)
    worst = {k: r.worst_group["colour"]["accuracy"].value for k, r in (("biased", biased), ("unbiased", unbiased))}
    assert worst["biased"] <= 0.6 <= 0.9 <= worst["unbiased"]


def test_colour_alone_carries_the_biased_models_counterfactuals_only(colour_audits):
    """Sufficiency: the counterfactual's colour change alone reaches the other class in 27% of the biased model's
    counterfactuals, 0% of the unbiased one's. (Pixel shares hardly differ, 26% against 29%: a recolouring changes
    every stroke pixel, so shares are not what separates them; see docs/audits.md.)"""
    biased, unbiased = colour_audits["biased"], colour_audits["unbiased"]
    assert biased.counterfactual_validity.value >= 0.95 and unbiased.counterfactual_validity.value >= 0.95
    sufficient = {k: r.figures["colour"]["counterfactual_sufficient"].value for k, r in colour_audits.items()}
    assert sufficient["biased"] >= 0.12 and sufficient["unbiased"] <= 0.06
    assert sufficient["biased"] >= 3 * sufficient["unbiased"]


def test_patch_reliance_of_the_biased_model_is_far_above_the_unbiased_ones(patch_audits):
    """Measured on these 400 digits: flip rate 0.29 (0.25-0.33) against 0.003; the patched zeros lose their class
    without the patch; sufficiency 0.25 against 0."""
    biased, unbiased = patch_audits["biased"], patch_audits["unbiased"]
    assert biased.scores["patch"].value >= 0.2 and unbiased.scores["patch"].value <= 0.02
    assert biased.shortcuts == ["patch"] and unbiased.flagged == []
    assert biased.per_class["patch"]["0"].value >= 0.5
    assert biased.worst_group["patch"]["accuracy"].value <= 0.5
    assert unbiased.worst_group["patch"]["accuracy"].value >= 0.85
    sufficient = {k: r.figures["patch"]["counterfactual_sufficient"].value for k, r in patch_audits.items()}
    assert sufficient["biased"] >= 0.1 and sufficient["unbiased"] <= 0.03
    assert biased.shares["patch"].value > unbiased.shares["patch"].value + 0.05


N_FACES = 500  # at 200 faces the lesser attributes' flip rates (0.02-0.17) are too noisy to rank
FACE_SEED = 4_321  # no recipe trains or measures on this seed


@pytest.fixture(scope="module")
def face_audits():
    """Each Smiling model audited over all eleven attributes twice: through the renderer (the truth: each face
    redrawn with one attribute flipped) and through the learned faces-editor (what a user without a renderer gets)."""
    faces = synth_faces(N_FACES, seed=FACE_SEED)  # attributes independent of each other
    names = list(faces.attribute_names)
    labels = faces.attribute("Smiling").long()
    truth_factors = renderer_factors(faces, names)
    editor, reader = load("faces-editor"), load("faces-classifier")
    audits = {}
    for kind in ("biased", "unbiased"):
        model = load(f"faces-smiling-{kind}")
        common = dict(labels=labels, expected=["Smiling"], counterfactuals=0, progress=False, batch_size=100)
        audits[kind] = {
            "truth": spurious(model, faces.images, truth_factors, **common),
            "editor": spurious(model, faces.images, names, editor=editor, attribute_classifier=reader, **common),
        }
    return names, audits


def _scores(report, names):
    return [report.scores[name].value for name in names]


def test_renderer_audit_finds_the_planted_factor_and_no_false_alarm(face_audits):
    """Exact interventions (the renderer). Measured on these 500 faces (docs/audits.md): the biased model flips on
    Blond_Hair 0.608 (0.565-0.647), more than on the label's own Smiling (0.438), and the unbiased one 0.00; every
    other attribute leaves the unbiased model unmoved while Smiling flips it always. Turning Black_Hair on turns a
    blond face's hair black, so the biased model also follows Black_Hair (0.278); it reacts to Mouth_Slightly_Open
    (0.22), which the renderer draws where the smile is: that is the truth about this model, not an audit error."""
    names, audits = face_audits
    biased, unbiased = audits["biased"]["truth"], audits["unbiased"]["truth"]
    assert biased.scores["Blond_Hair"].value >= 0.45 and unbiased.scores["Blond_Hair"].value <= 0.01
    assert biased.scores["Blond_Hair"].low > FLAG_THRESHOLD
    assert "Blond_Hair" in biased.shortcuts and biased.ranking()[0] == "Blond_Hair"
    assert biased.scores["Smiling"].low > FLAG_THRESHOLD  # it learned the smile too
    assert unbiased.flagged == ["Smiling"] and unbiased.shortcuts == []
    assert unbiased.scores["Smiling"].value >= 0.97
    assert max(unbiased.scores[n].value for n in names if n != "Smiling") <= 0.02


def test_editor_audit_ranks_attributes_like_the_renderer(face_audits):
    """Through the learned faces-editor, the biased model's attribute ranking follows the renderer's: Spearman
    0.943 on these 500 faces (on five fresh sets of 500: benchmarks/bench_faithfulness.py, docs/benchmarks.md). The
    planted Blond_Hair comes first at 0.542 against the renderer's 0.608, then Smiling and Black_Hair as there."""
    from scipy.stats import spearmanr

    names, audits = face_audits
    truth, editor = audits["biased"]["truth"], audits["biased"]["editor"]
    rho = spearmanr(_scores(truth, names), _scores(editor, names)).statistic
    assert rho >= 0.85, rho
    assert editor.ranking()[:3] == ["Blond_Hair", "Smiling", "Black_Hair"]
    assert abs(editor.scores["Blond_Hair"].value - truth.scores["Blond_Hair"].value) <= 0.12
    assert "Blond_Hair" in editor.shortcuts and editor.scores["Blond_Hair"].low > FLAG_THRESHOLD
    assert editor.scores["Blond_Hair"].low > audits["unbiased"]["editor"].scores["Blond_Hair"].high


def test_editor_audit_raises_no_false_alarm_for_the_unbiased_twin(face_audits):
    """Through the editor, the unbiased twin is flagged on its label's Smiling alone (measured 0.788: the editor's
    smiles convince this independently trained model, which took no part in the editor's training, four times in
    five); every other attribute 0.012-0.05."""
    names, audits = face_audits
    unbiased = audits["unbiased"]["editor"]
    assert unbiased.flagged == ["Smiling"] and unbiased.shortcuts == []
    assert unbiased.scores["Smiling"].value >= 0.7
    assert max(unbiased.scores[n].value for n in names if n != "Smiling") <= 0.08


def test_editor_audit_warns_when_the_classifier_misreads_the_redraws(face_audits):
    """faces-smiling-biased keeps its decision on 90% of the editor's unchanged redraws (interval 0.876-0.924), so
    editor flips are partly artefacts; below 0.95 the report must say so rather than present them as reliance.
    The unbiased twin keeps 96.6% (0.950-0.982): no warning."""
    _, audits = face_audits
    biased, unbiased = audits["biased"]["editor"], audits["unbiased"]["editor"]
    assert biased.redraw_agreement.value <= 0.95
    assert "unchanged redraws" in biased.summary()
    assert unbiased.redraw_agreement.value >= 0.95 and "unchanged redraws" not in unbiased.summary()
    assert audits["unbiased"]["truth"].redraw_agreement is None  # renderer interventions compare with the image
