"""cfnb.audit on tiny models with planted truths: a classifier that looks only at channel 0, interventions on
channel 0 (it must score ~1) and channel 1 (it must score 0), a toy editor and a toy generator; streaming, bootstrap
intervals, the report's exports, the config runner's errors and every bad-input error."""
from __future__ import annotations

import json
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import cfnb
from cfnb.audit import AuditReport, AuditSettings, Estimate, Factor, latent_factor, spurious
from cfnb.audit.statistics import PoissonWeights, RunningCorrelation, RunningMean, TopK


class ChannelZero(nn.Module):
    """Two classes decided by the mean of channel 0 alone: class 1 when it is above 0.5."""

    def __init__(self, channels: int = 2):
        super().__init__()
        self.in_channels = channels
        self.class_names = ["dark", "bright"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = x[:, 0].mean((1, 2))
        return torch.stack([torch.zeros_like(m), 20 * (m - 0.5)], 1)


class ToyEditor(nn.Module):
    """Attributes ``A`` (channel 0 bright) and ``B`` (channel 1 bright) over 2x6x6 images; ``C`` and ``D`` mutually
    exclusive marks that change nothing channel 0 sees. ``decode`` keeps the image's texture around the levels."""

    attribute_names = ["A", "B", "C", "D"]

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return x - x.mean((2, 3), keepdim=True)

    def decode(self, content: torch.Tensor, attributes: torch.Tensor) -> torch.Tensor:
        levels = 0.25 + 0.5 * attributes[:, :2, None, None] * self.scale
        return (content * 0.2 + levels).clamp(0, 1)

    def edit(self, x: torch.Tensor, attributes: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x), attributes)


class ToyGenerator(nn.Module):
    """A 2-d latent code: dim 0 draws channel 0's level ("level"), dim 1 channel 1's ("tint")."""

    factor_dims = {"level": [0], "tint": [1]}
    latent_dim = 2

    def __init__(self):
        super().__init__()
        self.gain = nn.Parameter(torch.ones(()))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return torch.logit(x.mean((2, 3)).clamp(0.02, 0.98))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(z * self.gain)[:, :, None, None].expand(-1, -1, 6, 6).contiguous()


def two_channel_data(n: int = 240, seed: int = 0):
    """Images whose channel 0 is bright for label 1, channel 1 bright for an independent coin ``tint``."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (n,), generator=g)
    tint = torch.randint(0, 2, (n,), generator=g)
    x = torch.rand(n, 2, 6, 6, generator=g) * 0.3
    x[:, 0] += 0.1 + 0.5 * labels[:, None, None]
    x[:, 1] += 0.1 + 0.5 * tint[:, None, None]
    return x, labels, tint


def invert(channel: int):
    def change(images: torch.Tensor) -> torch.Tensor:
        out = images.clone()
        out[:, channel] = 1 - out[:, channel]
        return out
    return change


def test_channel_zero_scores_one_and_channel_one_zero():
    x, labels, tint = two_channel_data()
    report = spurious(ChannelZero(), x, {"zero": invert(0), "one": invert(1)}, labels=labels,
                      factor_values={"one": tint, "zero": labels}, counterfactuals=0, progress=False, batch_size=50)
    assert report.scores["zero"].value == pytest.approx(1.0)
    assert report.scores["one"].value == 0.0
    assert report.flagged == ["zero"]
    assert report.shortcuts == ["zero"]
    assert report.figures["zero"]["probability_drop"].value > 0.9
    assert report.accuracy.value == pytest.approx(1.0)
    assert report.worst_group["one"]["accuracy"].value == pytest.approx(1.0)
    assert {(r["label"], r["value"]) for r in report.groups["one"]} == {(0, 0), (0, 1), (1, 0), (1, 1)}
    assert set(report.per_class["zero"]) == {"dark", "bright"}
    assert "flips 100%" in report.summary() and "zero" in report.summary()
    assert report.ranking() == ["zero", "one"]


def test_expected_factor_is_flagged_but_not_a_shortcut():
    x, labels, _ = two_channel_data(80)
    report = spurious(ChannelZero(), x, {"zero": invert(0), "one": invert(1)}, labels=labels, expected=["zero"],
                      counterfactuals=0, progress=False)
    assert report.flagged == ["zero"] and report.shortcuts == []
    assert "as it should" in report.summary() and "No shortcut found" in report.summary()


def test_streaming_gives_the_same_point_estimates_whatever_the_batching():
    x, labels, tint = two_channel_data(150)
    half = lambda im: torch.where(torch.arange(len(im))[:, None, None, None] % 2 == 0, invert(0)(im), im)
    args = dict(labels=labels, factor_values={"half": tint}, counterfactuals=0, progress=False)
    small = spurious(ChannelZero(), x, {"half": half}, batch_size=1000, **args)
    tensor_batches = spurious(ChannelZero(), x, {"half": Factor("half", lambda im, index: half_by_index(im, index))},
                              batch_size=7, **args)
    loader = DataLoader(TensorDataset(x, labels), batch_size=13, shuffle=False)
    through_loader = spurious(ChannelZero(), loader, {"half": lambda im, index: half_by_index(im, index)},
                              factor_values={"half": tint}, counterfactuals=0, progress=False)
    assert tensor_batches.scores["half"].value == pytest.approx(small.scores["half"].value)
    assert through_loader.scores["half"].value == pytest.approx(small.scores["half"].value)
    assert through_loader.accuracy.value == pytest.approx(1.0)  # labels came from the loader's batches
    assert small.scores["half"].value == pytest.approx(0.5, abs=0.01)


def half_by_index(images: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Inverts channel 0 of the images at even positions of the data: needs the positions, not the batch order."""
    out = images.clone()
    even = index % 2 == 0
    out[even, 0] = 1 - out[even, 0]
    return out


def test_limit_progress_and_dataset_input():
    x, labels, _ = two_channel_data(100)
    calls = []
    report = spurious(ChannelZero(), TensorDataset(x, labels), {"zero": invert(0)}, limit=37, batch_size=10,
                      counterfactuals=0, progress=lambda done, total: calls.append((done, total)))
    assert report.n_images == 37
    assert calls[-1] == (37, 37) and [c[0] for c in calls] == [10, 20, 30, 37]


def test_progress_callable_gets_done_and_total_and_the_searches_draw_no_bar(capsys):
    x, labels, _ = two_channel_data(40)
    generator = ToyGenerator()
    calls = []
    spurious(ChannelZero(), x, [latent_factor(generator, "level", lambda z: -z)], generator=generator, labels=labels,
             batch_size=16, counterfactuals=20, options={"steps": 5}, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(16, 40), (32, 40), (40, 40)]
    assert "cfnb.explain" not in capsys.readouterr().err  # the counterfactual searches run with progress=False
    with pytest.raises(TypeError, match="progress must be True"):
        spurious(ChannelZero(), x, {"zero": invert(0)}, progress="yes")


# --- settings --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("field, value, message", [
    ("limit", 0, "limit must be a positive int"),
    ("limit", 2.5, "limit must be a positive int"),
    ("batch_size", 0, "batch_size must be a positive int"),
    ("counterfactuals", -1, "counterfactuals must be an int >= 0"),
    ("threshold", 0.0, r"threshold must be in \(0, 1\]"),
    ("threshold", 1.5, r"threshold must be in \(0, 1\]"),
    ("groups", "yes", "groups must be True, False or None"),
    ("bootstrap", 5, "bootstrap must be an int >= 10"),
    ("min_group", -1, "min_group must be an int >= 0"),
    ("seed", 1.5, "seed must be an int"),
    ("gallery", -2, "gallery must be an int >= 0"),
])
def test_audit_settings_refuse_values_out_of_range(field, value, message):
    with pytest.raises(ValueError, match=message):
        AuditSettings(**{field: value})
    x, _, _ = two_channel_data(8)
    with pytest.raises(ValueError, match=message):  # the same check for a keyword override
        spurious(ChannelZero(), x, {"zero": invert(0)}, progress=False, **{field: value})


def test_audit_settings_are_frozen_and_keep_the_defaults():
    settings = AuditSettings()
    assert (settings.limit, settings.batch_size, settings.counterfactuals, settings.groups, settings.min_group,
            settings.threshold, settings.bootstrap, settings.seed, settings.gallery) == (
        None, 256, 64, None, 20, cfnb.audit.FLAG_THRESHOLD, 200, 0, 4)
    with pytest.raises(AttributeError):
        settings.limit = 3


def test_unknown_override_is_a_type_error_naming_the_settings():
    x, _, _ = two_channel_data(8)
    with pytest.raises(TypeError, match=r"unknown keyword argument\(s\) \['limits'\].*limit, batch_size, "
                                        r"counterfactuals, groups, min_group, threshold, bootstrap, seed, gallery"):
        spurious(ChannelZero(), x, {"zero": invert(0)}, limits=3, progress=False)
    with pytest.raises(TypeError, match=r"\['counterfactual_options'\].*go in options="):  # the old name of options
        spurious(ChannelZero(), x, {"zero": invert(0)}, counterfactual_options={"steps": 3}, progress=False)
    with pytest.raises(TypeError, match="settings must be a cfnb.audit.AuditSettings"):
        spurious(ChannelZero(), x, {"zero": invert(0)}, settings={"limit": 3}, progress=False)


def test_settings_and_overrides_give_the_same_report_as_keywords():
    x, labels, tint = two_channel_data(90)
    generator = ToyGenerator()
    factors = [latent_factor(generator, "level", lambda z: -z), Factor("one", invert(1))]
    common = dict(generator=generator, labels=labels, factor_values={"one": tint}, options={"steps": 8, "lr": 0.3},
                  progress=False)
    keywords = dict(limit=70, batch_size=16, counterfactuals=20, min_group=3, threshold=0.3, bootstrap=30, seed=5,
                    gallery=2)

    def comparable(report):
        raw = report.to_dict()
        raw.pop("seconds")
        return raw

    by_keywords = comparable(spurious(ChannelZero(), x, factors, **common, **keywords))
    by_settings = comparable(spurious(ChannelZero(), x, factors, settings=AuditSettings(**keywords), **common))
    half = AuditSettings(limit=70, batch_size=16, bootstrap=30, seed=99)
    mixed = comparable(spurious(ChannelZero(), x, factors, settings=half, counterfactuals=20, min_group=3,
                                threshold=0.3, seed=5, gallery=2, **common))
    assert by_keywords == by_settings == mixed
    assert by_keywords["settings"]["options"] == {"kappa": 1.0, "steps": 8, "lr": 0.3}
    assert "counterfactual_options" not in by_keywords["settings"]
    assert by_keywords["n_images"] == 70 and by_keywords["shares"]


def test_editor_audit_flips_attribute_alone_and_compares_with_the_redraw():
    x, labels, tint = two_channel_data(120)
    attributes = torch.stack([labels.float(), tint.float(), torch.zeros(120), torch.ones(120)], 1)
    editor = ToyEditor()
    report = spurious(ChannelZero(), x, ["A", "B", "C"], editor=editor, labels=labels, attributes=attributes,
                      exclusive=[["C", "D"]], counterfactuals=24, progress=False,
                      options={"steps": 60, "lr": 0.3, "kappa": 1.0})
    assert report.scores["A"].value == pytest.approx(1.0)
    assert report.scores["B"].value == 0.0 and report.scores["C"].value == 0.0
    assert report.flagged == ["A"]
    # counterfactuals move A, the attribute channel 0 follows, and nearly nothing else
    assert report.counterfactual_validity.value > 0.9
    assert report.shares["A"].value > 0.8 and report.figures["A"]["counterfactual_dominant"].value > 0.9
    # A's change alone carries the counterfactual; B's alone never does (channel 0 ignores it)
    assert report.figures["A"]["counterfactual_sufficient"].value > 0.9
    assert report.figures["B"]["counterfactual_sufficient"].value == 0.0
    # CD: counterfactual co-changes of A follow the decision (rho ~ 1) as A follows the label in data
    assert report.figures["A"]["counterfactual_correlation"].value > 0.9
    assert report.figures["A"]["data_correlation"].value > 0.9
    assert report.figures["B"]["data_correlation"].value == pytest.approx(0.0, abs=0.25)
    assert {(r["label"], r["value"]) for r in report.groups["B"]} == {(0, 0), (0, 1), (1, 0), (1, 1)}
    kinds = {(p.factor, p.kind) for p in report.gallery}
    assert ("A", "intervention") in kinds and ("A", "counterfactual") in kinds


def test_redraw_agreement_is_measured_and_a_low_one_is_reported():
    x, labels, tint = two_channel_data(60)
    right = torch.stack([labels.float(), tint.float(), torch.zeros(60), torch.ones(60)], 1)
    good = spurious(ChannelZero(), x, ["B"], editor=ToyEditor(), attributes=right, counterfactuals=0, progress=False)
    assert good.redraw_agreement.value == pytest.approx(1.0)
    assert not any("redraw" in note for note in good.notes)
    # attributes that contradict the images: the editor's unchanged redraw already flips channel 0's decision
    wrong = right.clone()
    wrong[:, 0] = 1 - wrong[:, 0]
    bad = spurious(ChannelZero(), x, ["B"], editor=ToyEditor(), attributes=wrong, counterfactuals=0, progress=False)
    assert bad.redraw_agreement.value == pytest.approx(0.0)
    assert any("unchanged redraws" in note for note in bad.notes) and "unchanged redraws" in bad.summary()
    transforms = spurious(ChannelZero(), x, {"zero": invert(0)}, counterfactuals=0, progress=False)
    assert transforms.redraw_agreement is None


def test_exclusive_partner_is_cleared_when_an_attribute_is_switched_on():
    from cfnb.audit.factors import EditorInterventions

    interventions = EditorInterventions(ToyEditor(), ["C"], exclusive=[["C", "D"]])
    flipped = interventions.flipped(torch.tensor([[0.0, 0.0, 0.0, 1.0], [0.0, 1.0, 1.0, 0.0]]), "C")
    assert flipped.tolist() == [[0.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 0.0]]


def test_editor_audit_reads_attributes_with_an_attribute_classifier():
    class Reader(nn.Module):
        attribute_names = ["D", "C", "B", "A"]  # another order than the editor's: matched by name

        def forward(self, x):
            bright = (x.mean((2, 3)) - 0.5) * 40
            return torch.stack([-torch.ones(len(x)) * 9, -torch.ones(len(x)) * 9, bright[:, 1], bright[:, 0]], 1)

    x, labels, _ = two_channel_data(60)
    report = spurious(ChannelZero(), x, ["A", "B"], editor=ToyEditor(), attribute_classifier=Reader(),
                      counterfactuals=0, progress=False)
    assert report.scores["A"].value == pytest.approx(1.0) and report.scores["B"].value == 0.0


def test_generator_counterfactual_shares_follow_the_factor_the_classifier_uses():
    x, labels, tint = two_channel_data(40)
    generator = ToyGenerator()
    factors = [latent_factor(generator, "tint", lambda z: -z), latent_factor(generator, "level", lambda z: -z)]
    report = spurious(ChannelZero(), x, factors, generator=generator, labels=labels, counterfactuals=40,
                      options={"steps": 80, "lr": 0.3, "kappa": 1.0, "lam": 1.0, "grow": 0},
                      progress=False)
    assert report.scores["level"].value > 0.95 and report.scores["tint"].value == 0.0
    assert report.counterfactual_validity.value > 0.9
    assert report.shares["level"].value > 0.9 > 0.1 > report.shares["tint"].value
    assert report.figures["level"]["counterfactual_dominant"].value > 0.9
    assert report.figures["level"]["counterfactual_sufficient"].value > 0.9
    assert report.figures["tint"]["counterfactual_sufficient"].value == 0.0


def test_counterfactual_shares_need_a_generator_for_transform_factors():
    x, labels, _ = two_channel_data(20)
    report = spurious(ChannelZero(), x, {"zero": invert(0)}, counterfactuals=8, progress=False)
    assert report.shares == {} and any("generator" in note for note in report.notes)


def test_report_exports_html_json_and_chart(tmp_path):
    x, labels, tint = two_channel_data(60)
    report = spurious(ChannelZero(), x, {"zero": invert(0), "one": invert(1)}, labels=labels,
                      factor_values={"one": tint}, counterfactuals=0, progress=False, gallery=2)
    page = report.to_html(tmp_path / "audit.html", include_plotlyjs="cdn").read_text()
    assert "relies on it" in page and "Most telling pairs" in page and "data:image/png;base64," in page
    figure = report.chart()
    assert figure.layout.xaxis.title.text and figure.layout.yaxis.title.text
    assert list(figure.data[0].y) == ["one", "zero"]
    text = report.to_json(tmp_path / "audit.json")
    again = AuditReport.from_json(tmp_path / "audit.json")
    assert again.redraw_agreement == report.redraw_agreement
    assert json.loads(text)["scores"]["zero"]["value"] == 1.0
    assert again.scores == report.scores and again.flagged == report.flagged
    assert again.gallery[0].before.shape == (3, 6, 6)  # two channels are drawn as RGB with an empty blue
    assert torch.allclose(again.gallery[0].before[:2], report.gallery[0].before, atol=1 / 255)
    assert report.table()[0]["factor"] == "zero" and report.table()[0]["flagged"] is True
    assert "<table" in report._repr_html_()
    assert cfnb.audit.group_accuracy_chart(report).layout.yaxis.title.text


def test_gallery_memory_stays_bounded():
    x, labels, _ = two_channel_data(300)
    report = spurious(ChannelZero(), x, {"zero": invert(0), "one": invert(1)}, counterfactuals=0, progress=False,
                      gallery=3, batch_size=16)
    assert len(report.gallery) == 6


# --- statistics ------------------------------------------------------------------------------------------------

@settings(max_examples=30, deadline=None)
@given(st.lists(st.sampled_from([0.0, 1.0]), min_size=3, max_size=80), st.integers(0, 1000))
def test_bootstrap_interval_contains_the_point_estimate(values, seed):
    weights = PoissonWeights(200, seed)
    mean = RunningMean(200)
    values = torch.tensor(values)
    for chunk in values.split(7):
        mean.add(chunk, weights.draw(len(chunk)))
    estimate = mean.estimate()
    assert estimate.value == pytest.approx(values.mean().item())
    assert estimate.low <= estimate.value + 1e-12 and estimate.value <= estimate.high + 1e-12
    assert 0.0 <= estimate.low and estimate.high <= 1.0


def test_bootstrap_interval_has_the_right_width_and_is_seeded():
    values = (torch.rand(2000, generator=torch.Generator().manual_seed(3)) < 0.3).double()
    estimates = []
    for seed in (0, 0, 1):
        mean = RunningMean(400)
        weights = PoissonWeights(400, seed)
        for chunk in values.split(256):
            mean.add(chunk, weights.draw(len(chunk)))
        estimates.append(mean.estimate())
    assert estimates[0] == estimates[1] and estimates[0] != estimates[2]
    half_width = (estimates[0].high - estimates[0].low) / 2
    expected = 1.96 * math.sqrt(0.3 * 0.7 / 2000)  # the normal approximation's half-width
    assert half_width == pytest.approx(expected, rel=0.2)


def test_worst_group_and_correlation_statistics():
    mean = RunningMean(50)
    weights = PoissonWeights(50, 0)
    values = torch.tensor([1.0] * 30 + [0.0] * 10 + [1.0] * 5)
    keys = ["a"] * 30 + ["b"] * 10 + ["c"] * 5
    mean.add(values, weights.draw(45), keys)
    key, estimate = mean.worst(min_count=8)
    assert key == "b" and estimate.value == 0.0  # "c" is too small to count
    correlation = RunningCorrelation(2, 50)
    x = torch.randn(500, generator=torch.Generator().manual_seed(0))
    correlation.add(torch.stack([x, torch.ones(500)], 1), 2 * x + 1, PoissonWeights(50, 1).draw(500))
    rho = correlation.estimates()
    assert rho[0].value == pytest.approx(1.0) and rho[1].value == 0.0  # a constant column: no correlation


def test_top_k_keeps_the_highest_scores():
    top = TopK(2)
    top.add(torch.tensor([0.1, 0.9], dtype=torch.float64), image=torch.tensor([[1.0], [2.0]]))
    top.add(torch.tensor([0.5, 0.2], dtype=torch.float64), image=torch.tensor([[3.0], [4.0]]))
    assert top.scores.tolist() == [0.9, 0.5] and top.items["image"].flatten().tolist() == [2.0, 3.0]


def test_estimate_json_round_trip_and_format():
    estimate = Estimate(0.5, 0.4, 0.6, 10)
    assert Estimate.from_dict(estimate.to_dict()) == estimate
    assert f"{estimate:.0%}" == "50% [40%, 60%]"
    assert Estimate.missing().to_dict()["value"] is None


# --- bad input -------------------------------------------------------------------------------------------------

def test_unknown_editor_factor_is_named():
    x, _, _ = two_channel_data(8)
    with pytest.raises(ValueError, match=r"does not know the factor\(s\) \['Wings'\].*A, B, C, D"):
        spurious(ChannelZero(), x, ["A", "Wings"], editor=ToyEditor(), progress=False)


def test_names_without_an_editor():
    x, _, _ = two_channel_data(8)
    with pytest.raises(TypeError, match="need an attribute editor"):
        spurious(ChannelZero(), x, ["A"], progress=False)


def test_transform_that_changes_the_shape_is_named():
    x, _, _ = two_channel_data(8)
    with pytest.raises(ValueError, match=r"factor 'crop'.*changed the image shape"):
        spurious(ChannelZero(), x, {"crop": lambda im: im[:, :, 1:, 1:]}, progress=False)


def test_group_figures_without_labels():
    x, _, tint = two_channel_data(8)
    with pytest.raises(ValueError, match="group figures .* need labels"):
        spurious(ChannelZero(), x, {"one": invert(1)}, factor_values={"one": tint}, groups=True, progress=False)
    report = spurious(ChannelZero(), x, {"one": invert(1)}, progress=False, counterfactuals=0)
    assert report.accuracy is None and report.groups == {}
    assert any("no labels" in note for note in report.notes)


def test_group_figures_without_factor_values():
    x, labels, _ = two_channel_data(8)
    with pytest.raises(ValueError, match=r"value of factor\(s\) \['one'\]"):
        spurious(ChannelZero(), x, {"one": invert(1)}, labels=labels, groups=True, progress=False)


def test_editor_image_size_must_match_the_classifiers():
    class BigEditor(ToyEditor):
        image_size = 64

    x, _, _ = two_channel_data(8)
    attributes = torch.zeros(8, 4)
    with pytest.raises(ValueError, match=r"editor draws 64x64 images but the classifier's images are 6x6"):
        spurious(ChannelZero(), x, ["A"], editor=BigEditor(), attributes=attributes, progress=False)

    class Upsampling(ToyEditor):
        def decode(self, content, attributes):
            return nn.functional.interpolate(super().decode(content, attributes), scale_factor=2)

    with pytest.raises(ValueError, match=r"editor draws images of shape \(2, 12, 12\).*\(2, 6, 6\)"):
        spurious(ChannelZero(), x, ["A"], editor=Upsampling(), attributes=attributes, progress=False)


def test_misaligned_inputs_and_bad_options():
    x, labels, _ = two_channel_data(8)
    with pytest.raises(ValueError, match="labels has 5 entries but the data has 8 images"):
        spurious(ChannelZero(), x, {"one": invert(1)}, labels=labels[:5], progress=False)
    with pytest.raises(ValueError, match="not audited factors"):
        spurious(ChannelZero(), x, {"one": invert(1)}, factor_values={"two": labels}, progress=False)
    with pytest.raises(ValueError, match="shuffle"):
        loader = DataLoader(TensorDataset(x), batch_size=4, shuffle=True)
        spurious(ChannelZero(), loader, {"one": invert(1)}, labels=labels, progress=False)
    with pytest.raises(ValueError, match="limit"):
        spurious(ChannelZero(), x, {"one": invert(1)}, limit=0, progress=False)
    with pytest.raises(ValueError, match="2 channel"):
        spurious(ChannelZero(), x[:, :1], {"one": invert(0)}, progress=False)
    with pytest.raises(TypeError, match="intervention callable"):
        spurious(ChannelZero(), x, {"one": 3}, progress=False)
    with pytest.raises(ValueError, match="expected names"):
        spurious(ChannelZero(), x, {"one": invert(1)}, expected=["two"], progress=False)
    with pytest.raises(ValueError, match="empty"):
        spurious(ChannelZero(), x, {}, progress=False)


def test_models_are_restored_after_the_audit():
    x, _, _ = two_channel_data(16)
    editor = ToyEditor().train()
    spurious(ChannelZero(), x, ["A"], editor=editor, attributes=torch.zeros(16, 4), counterfactuals=4,
             options={"steps": 5}, progress=False)
    assert editor.training and editor.scale.requires_grad


# --- config runner (errors only here; a real run is in test_audit_ground_truth.py) --------------------------------

@pytest.mark.parametrize("text, message", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "the config must be an object with keys"),
    ('{"data": {"name": "colored_mnist"}}', "missing 'classifier'"),
    ('{"classifier": "x", "data": {"name": "colored_mnist"}, "colour": 1}', r"unknown key\(s\) \['colour'\]"),
    ('{"classifier": "x", "data": {"name": "imagenet"}}', "'name' is one of colored_mnist, patched_mnist, synth_faces"),
    ('{"classifier": "x", "data": {"name": "synth_faces", "split": "test"}}', r"not \['split'\]"),
    ('{"classifier": "x", "data": {"name": "synth_faces"}, "factors": "Smiling"}', "'factors' must be a list"),
])
def test_config_errors_are_clear(tmp_path, capsys, text, message):
    from cfnb.audit.config import run_config

    path = tmp_path / "audit.json"
    path.write_text(text)
    assert run_config(path) == 2
    assert __import__("re").search(message, capsys.readouterr().err)


def test_toml_config_is_read_and_checked_as_json_is(tmp_path, capsys):
    from cfnb.audit.config import run_config

    path = tmp_path / "audit.toml"
    path.write_text('classifier = "x"\n[data]\nname = "imagenet"\n')
    assert run_config(path) == 2
    assert "'name' is one of colored_mnist" in capsys.readouterr().err
    path.write_text('classifier = "x"\ndata = [')
    assert run_config(path) == 2
    assert "not valid TOML" in capsys.readouterr().err


def test_config_with_an_unknown_model_or_missing_file(tmp_path, capsys):
    from cfnb.audit.config import run_config

    path = tmp_path / "audit.json"
    path.write_text('{"classifier": "no-such-model", "data": {"name": "colored_mnist"}}')
    assert run_config(path) == 2
    assert "no shipped model named 'no-such-model'" in capsys.readouterr().err
    assert run_config(tmp_path / "missing.json") == 2
    assert "not found" in capsys.readouterr().err


def test_config_takes_options_and_refuses_counterfactual_options(tmp_path, capsys, monkeypatch):
    from cfnb.audit import config

    x, labels, _ = two_channel_data(30)
    monkeypatch.setattr(config, "build", lambda cfg: {"classifier": ChannelZero(), "images": x, "labels": labels,
                                                      "factors": {"zero": invert(0)}})
    path = tmp_path / "audit.json"
    path.write_text(json.dumps({"classifier": "toy", "data": {"name": "colored_mnist"}, "counterfactuals": 0,
                                "options": {"steps": 7}, "bootstrap": 20, "progress": False, "json": "audit-out.json"}))
    assert config.run_config(path) == 0
    written = json.loads((tmp_path / "audit-out.json").read_text())
    assert written["settings"]["options"] == {"kappa": 1.0, "steps": 7} and written["settings"]["bootstrap"] == 20
    assert (tmp_path / "audit.html").is_file()
    capsys.readouterr()
    path.write_text(json.dumps({"classifier": "toy", "data": {"name": "colored_mnist"},
                                "counterfactual_options": {"steps": 7}}))
    assert config.run_config(path) == 2
    assert "unknown key(s) ['counterfactual_options']" in capsys.readouterr().err
    path.write_text(json.dumps({"classifier": "toy", "data": {"name": "colored_mnist"}, "options": [1, 2]}))
    assert config.run_config(path) == 2
    assert "options must be a mapping" in capsys.readouterr().err


def _numbers(node, path=""):
    """Every number in a report's JSON by its path, but the timing and the gallery (ties may order it otherwise)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key not in ("seconds", "gallery", "device"):
                yield from _numbers(value, f"{path}/{key}")
    elif isinstance(node, list):
        for k, value in enumerate(node):
            yield from _numbers(value, f"{path}/{k}")
    elif isinstance(node, (int, float)) and not isinstance(node, bool):
        yield path, float(node)
    elif node is not None:
        yield path, node


def test_torchrun_on_two_processes_gives_the_report_of_one(tmp_path):
    """`torchrun -m cfnb audit CONFIG`: each process audits every other batch, rank 0 merges the counts: the same
    figures and intervals as one process (bootstrap weights and counterfactual seeds depend on the batch alone)."""
    import os
    import socket
    import subprocess
    import sys

    config = {"classifier": "colored-mnist-biased", "data": {"name": "colored_mnist", "split": "test-shuffled"},
              "limit": 200, "batch_size": 48, "counterfactuals": 8, "options": {"steps": 8}, "bootstrap": 20,
              "min_group": 2, "progress": False}
    outputs = {}
    for kind in ("one", "two"):
        path = tmp_path / f"{kind}.json"
        path.write_text(json.dumps({**config, "output": f"{kind}.html", "json": f"{kind}-report.json"}))
        launch = ["-m", "cfnb"]
        if kind == "two":
            with socket.socket() as handle:
                handle.bind(("127.0.0.1", 0))
                port = handle.getsockname()[1]
            launch = ["-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={port}", "-m", "cfnb"]
        done = subprocess.run([sys.executable, *launch, "audit", str(path)], capture_output=True, text=True,
                              timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
        assert done.returncode == 0, done.stderr[-3000:]
        outputs[kind] = dict(_numbers(json.loads((tmp_path / f"{kind}-report.json").read_text())))
        if kind == "two":
            assert done.stdout.count("Audit of colored-mnist-biased") == 1  # rank 0 alone reports
    one, two = outputs["one"], outputs["two"]
    assert one.keys() == two.keys() and one["/n_images"] == two["/n_images"] == 200
    for key, value in one.items():
        if isinstance(value, float):
            assert two[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
        else:
            assert two[key] == value, key
