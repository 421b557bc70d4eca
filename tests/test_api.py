"""One consistent public API: the method registry read by every entry point, keyword-only helper models, one name
for method options, one progress contract, class names on every shipped classifier, any floating dtype in."""
from __future__ import annotations

import inspect

import pytest
import torch
from tiny_models import intensity_bands

import cfnb
from cfnb.methods import MethodOutput, Option, available, get, register, unregister
from cfnb.methods.base import interpolate
from cfnb.widgets import AttributePanel, ExplainerPanel

HELPER_ROLES = {"generator", "decoder", "editor", "attribute_classifier", "oracle"}


@pytest.fixture
def brighten():
    """A toy method with a two-option schema, registered for one test: moves each pixel towards white."""

    @register("brighten", summary="toy: move every pixel towards white",
              options=[Option("amount", "float", 0.5, "share of the way to white per round", low=0, high=1, main=True),
                       Option("rounds", "int", 2, "how many rounds", low=1, high=5)])
    def run(problem, *, amount, rounds):
        x = problem.images
        out = x
        for _ in range(rounds):
            out = out + amount * (1 - out)
        return MethodOutput(out, interpolate(x, out, problem.frames), torch.full((len(x),), rounds))

    yield run
    unregister("brighten")


def test_a_registered_method_appears_everywhere(brighten, tiny_classifier, tiny_images):
    assert "brighten" in [method.name for method in available()]
    assert get("brighten").defaults() == {"amount": 0.5, "rounds": 2}
    result = cfnb.explain(tiny_classifier, tiny_images, 2, method="brighten", amount=0.25, progress=False)
    changed = ~result.extras["already_target"]
    expected = tiny_images + 0.25 * (1 - tiny_images)
    expected = expected + 0.25 * (1 - expected)
    assert torch.allclose(result.counterfactual[changed], expected[changed])
    assert result.settings["amount"] == 0.25 and result.settings["rounds"] == 2
    with pytest.raises(TypeError, match=r"method='brighten' has no option\(s\) \['strength'\]; its options are: "
                                        r"amount, rounds"):
        cfnb.explain(tiny_classifier, tiny_images, 2, method="brighten", strength=1.0)
    with pytest.raises(ValueError, match=r"amount must be a number in \[0, 1\], got 1.5"):
        cfnb.explain(tiny_classifier, tiny_images, 2, method="brighten", amount=1.5)
    with pytest.raises(ValueError, match=r"unknown method 'dim'; choose one of .*brighten"):
        cfnb.explain(tiny_classifier, tiny_images, 2, method="dim")

    images, labels = intensity_bands(6, seed=3)
    panel = ExplainerPanel(tiny_classifier, images, labels=labels, warm_up=False, animation=False)
    try:
        assert "brighten" in panel.method.options
        panel.method.value = "brighten"
        controls = panel.option_controls.controls
        assert list(controls) == ["amount", "rounds"]
        assert (controls["amount"].value, controls["rounds"].value) == (0.5, 2)
        assert (controls["rounds"].min, controls["rounds"].max) == (1, 5)
        controls["rounds"].value = 3
        shown = panel.explain(index=0, target=2)
        assert panel.error is None and shown.method == "brighten" and shown.settings["rounds"] == 3
    finally:
        panel.close()


def test_a_schema_that_disagrees_with_its_function_is_refused():
    with pytest.raises(ValueError, match=r"takes the keyword-only options \['amount'\] but the schema declares "
                                         r"\['strength'\]"):
        @register("broken", summary="x", options=[Option("strength", "float", 1.0, "x")])
        def run(problem, *, amount):
            return None
    assert "broken" not in [method.name for method in available()]


@pytest.mark.parametrize("entry", ["explain", "ExplainerPanel", "AttributePanel", "spurious"])
def test_helpers_are_keyword_only_and_images_come_second(entry):
    from cfnb.audit import spurious

    function = {"explain": cfnb.explain, "ExplainerPanel": ExplainerPanel.__init__,
                "AttributePanel": AttributePanel.__init__, "spurious": spurious}[entry]
    parameters = [p for p in inspect.signature(function).parameters.values() if p.name != "self"]
    assert [p.name for p in parameters[:2]] == ["classifier", "images"]
    helpers = [p for p in parameters if p.name in HELPER_ROLES]
    assert helpers and all(p.kind == p.KEYWORD_ONLY for p in helpers), [(p.name, p.kind) for p in helpers]


def test_one_name_for_method_options():
    from cfnb.audit import spurious

    assert inspect.signature(cfnb.explain).parameters["options"].kind == inspect.Parameter.VAR_KEYWORD
    for function in (ExplainerPanel.__init__, AttributePanel.__init__, spurious):
        names = inspect.signature(function).parameters
        assert "options" in names and not {"explain_options", "counterfactual_options"} & set(names)


def test_progress_contract(tiny_classifier, tiny_images, capsys):
    calls: list[tuple[int, int]] = []
    cfnb.explain(tiny_classifier, tiny_images, 2, method="pixel", steps=40, progress=lambda d, t: calls.append((d, t)))
    assert calls and calls[-1] == (40, 40) and all(t == 40 for _, t in calls)
    cfnb.explain(tiny_classifier, tiny_images, 2, method="pixel", steps=40, progress=True)
    assert "cfnb.explain (pixel)" in capsys.readouterr().err  # a tqdm bar (text outside notebooks)
    cfnb.explain(tiny_classifier, tiny_images, 2, method="pixel", steps=40, progress=False)
    assert capsys.readouterr().err == ""
    with pytest.raises(TypeError, match="progress must be True"):
        cfnb.explain(tiny_classifier, tiny_images, 2, method="pixel", progress="yes")


def test_training_loops_follow_the_progress_contract():
    from cfnb.training import train_supervised

    images, labels = intensity_bands(40, seed=1)
    seen: list[tuple[int, int]] = []
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3))
    train_supervised(model, images, labels, epochs=2, batch_size=16, log=None,
                     progress=lambda d, t: seen.append((d, t)))
    assert seen == [(k, 6) for k in range(1, 7)]


def test_every_shipped_classifier_names_its_outputs():
    from cfnb.models import available, load

    classifiers = [card for card in available() if card.architecture in ("GAPClassifier", "LeNetClassifier")]
    assert len(classifiers) == 9
    for card in classifiers:
        model = load(card.name)
        names = getattr(model, "class_names", None) or getattr(model, "attribute_names", None)
        assert names is not None and len(names) == card.kwargs["num_classes"], card.name


def test_a_shipped_classifiers_class_name_is_a_target():
    from cfnb.data import synth_faces
    from cfnb.models import load

    faces = synth_faces(4, seed=99)
    result = cfnb.explain(load("faces-smiling-biased"), faces.images, "Smiling", method="pgd", steps=2, progress=False)
    assert (result.target == 1).all() and result.class_names == ["not Smiling", "Smiling"]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_other_floating_dtypes_are_converted_to_the_classifiers(dtype, tiny_classifier, tiny_images):
    images = tiny_images.to(dtype)
    result = cfnb.explain(tiny_classifier, images, 2, method="pgd", steps=5, progress=False)
    reference = cfnb.explain(tiny_classifier, images.float(), 2, method="pgd", steps=5, progress=False)
    assert result.original.dtype == result.counterfactual.dtype == torch.float32
    assert torch.equal(result.counterfactual, reference.counterfactual)
