"""cfnb.metrics: known values on hand-made tensors and hand-built models, error cases, and the LPIPS weight guard."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import scipy.linalg
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from tiny_models import TinyGAP
from torch import nn

from cfnb.forward import forward_in_batches
from cfnb.metrics import (
    FIDResult,
    LPIPSUnavailable,
    cout,
    domain_features,
    evaluate,
    fid,
    frechet_distance,
    im1,
    im2,
    lpips_distance,
    mnac,
    oracle_agrees,
    oracle_validity,
    proximity,
    sparsity,
    validity,
)
from cfnb.metrics.lpips import backbone_checkpoint, lpips_model
from cfnb.models import LeNetClassifier
from cfnb.results import Counterfactuals


# --- hand-built models -----------------------------------------------------------------------------------------------
class MeanIntensityClassifier(nn.Module):
    """Two classes: logit(1) - logit(0) = scale * (mean pixel - offset)."""

    def __init__(self, scale: float = 20.0, offset: float = 0.25):
        super().__init__()
        self.scale, self.offset = scale, offset
        self.register_buffer("unused", torch.zeros(1))  # gives the model a device and dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        margin = self.scale * (x.flatten(1).mean(1) - self.offset)
        return torch.stack([-margin / 2, margin / 2], dim=1)


class OnePixelClassifier(nn.Module):
    """Two classes decided by one pixel: logit(1) - logit(0) = 40 * (x[row, col] - 0.5)."""

    def __init__(self, row: int, col: int):
        super().__init__()
        self.row, self.col = row, col

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        margin = 40 * (x[:, 0, self.row, self.col] - 0.5)
        return torch.stack([-margin / 2, margin / 2], dim=1)


class QuadrantAttributes(nn.Module):
    """Linear multi-label classifier on 1 x side x side images: attribute a (0..3) is present when quadrant a
    (top-left, top-right, bottom-left, bottom-right) is bright. Logit a = 10 * (mean of quadrant a - 0.5).
    """

    def __init__(self, side: int = 4):
        super().__init__()
        self.linear = nn.Linear(side * side, 4)
        half = side // 2
        with torch.no_grad():
            weight = torch.zeros(4, 1, side, side)
            for a, (r, c) in enumerate([(0, 0), (0, half), (half, 0), (half, half)]):
                weight[a, 0, r:r + half, c:c + half] = 10 / half**2
            self.linear.weight.copy_(weight.flatten(1))
            self.linear.bias.fill_(-5.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1))


class ModeRecorder(nn.Module):
    """Records whether it was in training mode and whether grad was enabled when called."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(1, 2)
        self.calls: list[tuple[bool, bool]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append((self.training, torch.is_grad_enabled()))
        return self.linear(x.flatten(1).mean(1, keepdim=True))


def pooled_classifier(channels: int, classes: int = 3, seed: int = 0) -> nn.Module:
    """Any-size image classifier: average pool then a seeded linear layer."""
    generator = torch.Generator().manual_seed(seed)
    model = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, classes))
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 3)
    return model


def scaling_autoencoder(factor: float):
    return lambda x: x * factor


def make_result(original: torch.Tensor, counterfactual: torch.Tensor, source: torch.Tensor, target: torch.Tensor,
                prediction: torch.Tensor, classes: int = 2) -> Counterfactuals:
    n = original.shape[0]
    probabilities = torch.nn.functional.one_hot(prediction, classes).float()
    original_probabilities = torch.nn.functional.one_hot(source, classes).float()
    return Counterfactuals(
        original=original, counterfactual=counterfactual, source=source, target=target, prediction=prediction,
        probabilities=probabilities, original_probabilities=original_probabilities, valid=prediction == target,
        trajectory=torch.stack([original, counterfactual]),
        trajectory_probabilities=torch.stack([original_probabilities, probabilities]),
        steps_used=torch.ones(n, dtype=torch.long), seconds=0.0, method="hand-made", settings={},
        class_names=[f"class{k}" for k in range(classes)],
    )


@pytest.fixture
def generator() -> torch.Generator:
    return torch.Generator().manual_seed(0)


@pytest.fixture
def pair(generator) -> tuple[torch.Tensor, torch.Tensor]:
    original = torch.rand(5, 1, 6, 6, generator=generator)
    return original, torch.rand(5, 1, 6, 6, generator=generator)


# --- validity --------------------------------------------------------------------------------------------------------
def test_validity_from_labels_logits_and_result():
    predictions = torch.tensor([1, 2, 1, 0])
    target = torch.tensor([1, 1, 1, 1])
    assert validity(predictions, target) == 0.5
    assert validity(predictions, 1) == 0.5
    logits = torch.nn.functional.one_hot(predictions, 3).float() * 5
    assert validity(logits, target) == 0.5
    images = torch.zeros(4, 1, 2, 2)
    result = make_result(images, images, torch.zeros(4, dtype=torch.long), target, predictions, classes=3)
    assert validity(result) == 0.5


def test_validity_errors():
    with pytest.raises(ValueError, match="target is required"):
        validity(torch.tensor([1, 0]))
    with pytest.raises(ValueError, match="shape"):
        validity(torch.tensor([1, 0]), torch.tensor([1, 0, 1]))
    with pytest.raises(ValueError, match="NaN"):
        validity(torch.tensor([[0.1, float("nan")]]), 0)
    with pytest.raises(TypeError, match="Counterfactuals or a tensor"):
        validity([1, 0], 1)
    with pytest.raises(TypeError, match="integer"):
        validity(torch.tensor([1, 0]), torch.tensor([1.0, 0.0]))
    images = torch.zeros(1, 1, 2, 2)
    one = torch.ones(1, dtype=torch.long)
    with pytest.raises(ValueError, match="either"):
        validity(make_result(images, images, one, one, one), one)


# --- proximity and sparsity -----------------------------------------------------------------------------------------
def test_proximity_of_constant_shifts():
    original = torch.zeros(3, 2, 4, 5)
    shifts = torch.tensor([0.0, 0.1, 0.5])
    counterfactual = original + shifts.view(3, 1, 1, 1)
    torch.testing.assert_close(proximity(original, counterfactual, p=1), shifts)
    torch.testing.assert_close(proximity(original, counterfactual, p=2), shifts)
    torch.testing.assert_close(proximity(original, original - shifts.view(3, 1, 1, 1), p=1), shifts)


def test_proximity_l1_is_mean_absolute_and_l2_is_root_mean_square():
    original = torch.zeros(1, 1, 2, 2)
    counterfactual = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])  # one pixel changed by 1 out of 4
    torch.testing.assert_close(proximity(original, counterfactual, p=1), torch.tensor([0.25]))
    torch.testing.assert_close(proximity(original, counterfactual, p=2), torch.tensor([0.5]))  # sqrt(1/4)
    torch.testing.assert_close(proximity(original, counterfactual, p=math.inf), torch.tensor([1.0]))


@pytest.mark.parametrize("k", [0, 1, 7, 20])
def test_sparsity_counts_changed_pixels(k):
    original = torch.full((2, 3, 4, 5), 0.5)
    counterfactual = original.clone()
    flat = counterfactual.view(2, 3, 20)
    flat[0, 1, :k] += 0.3          # sample 0: k pixels changed in one channel only
    flat[1, :, :k] -= 0.05         # sample 1: k pixels changed below the threshold
    torch.testing.assert_close(sparsity(original, counterfactual, threshold=0.1), torch.tensor([k / 20, 0.0]))
    torch.testing.assert_close(sparsity(original, counterfactual, threshold=0.01), torch.tensor([k / 20, k / 20]))


@pytest.mark.parametrize("function", [proximity, sparsity])
def test_pixel_metrics_reject_bad_input(function):
    good = torch.zeros(2, 1, 3, 3)
    with pytest.raises(ValueError, match="same shape"):
        function(good, torch.zeros(2, 1, 3, 4))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        function(torch.zeros(2, 3, 3), torch.zeros(2, 3, 3))
    with pytest.raises(ValueError, match="NaN"):
        function(good, good.clone().fill_(float("nan")))
    with pytest.raises(TypeError, match="floating-point"):
        function(good.long(), good.long())
    with pytest.raises(TypeError, match="torch.Tensor"):
        function(np.zeros((2, 1, 3, 3)), good)
    with pytest.raises(ValueError, match="empty"):
        function(torch.zeros(0, 1, 3, 3), torch.zeros(0, 1, 3, 3))


def test_proximity_and_sparsity_reject_bad_parameters(pair):
    with pytest.raises(ValueError, match="p must be"):
        proximity(*pair, p=0)
    with pytest.raises(TypeError, match="p must be a number"):
        proximity(*pair, p="2")
    with pytest.raises(ValueError, match="threshold"):
        sparsity(*pair, threshold=-0.1)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 4), channels=st.sampled_from([1, 3]), height=st.integers(2, 7), width=st.integers(2, 7),
       seed=st.integers(0, 2**16))
def test_shapes_and_ranges_for_any_batch(n, channels, height, width, seed):
    """Per-sample metrics return (N,) in range for any batch and image size; RMS >= mean |d| (power means)."""
    generator = torch.Generator().manual_seed(seed)
    original = torch.rand(n, channels, height, width, generator=generator)
    counterfactual = torch.rand(n, channels, height, width, generator=generator)
    l1, l2 = proximity(original, counterfactual, 1), proximity(original, counterfactual, 2)
    share = sparsity(original, counterfactual, 0.0)
    assert l1.shape == l2.shape == share.shape == (n,)
    assert bool(((l1 >= 0) & (l2 <= 1) & (l2 >= l1 - 1e-6)).all())
    changed = (original != counterfactual).any(1).flatten(1).float().mean(1)
    torch.testing.assert_close(share, changed)
    classifier = pooled_classifier(channels)
    source = torch.randint(0, 3, (n,), generator=generator)
    scores = cout(classifier, original, counterfactual, source, (source + 1) % 3, steps=5, batch_size=4)
    assert scores.shape == (n,) and bool((scores.abs() <= 1).all())


# --- oracle validity -------------------------------------------------------------------------------------------------
def test_oracle_agrees_with_a_known_oracle():
    images = torch.tensor([0.0, 0.1, 0.5, 0.9]).view(4, 1, 1, 1).expand(4, 1, 3, 3).contiguous()
    oracle = MeanIntensityClassifier(scale=20, offset=0.3)  # class 1 when the mean exceeds 0.3
    agrees = oracle_agrees(oracle, images, 1)
    assert agrees.dtype == torch.bool
    assert agrees.tolist() == [False, False, True, True]
    assert oracle_validity(oracle, images, torch.tensor([0, 0, 1, 0])) == 0.75  # predictions 0, 0, 1, 1


def test_oracle_rejects_labels_beyond_its_classes():
    with pytest.raises(ValueError, match="outside"):
        oracle_agrees(MeanIntensityClassifier(), torch.zeros(2, 1, 2, 2), 2)
    with pytest.raises(TypeError, match="callable"):
        oracle_agrees("oracle", torch.zeros(2, 1, 2, 2), 1)


# --- COUT ------------------------------------------------------------------------------------------------------------
def test_cout_of_unchanged_images_is_the_constant_probability_gap(pair):
    """x' = x: every frame is x, so COUT = p_target(x) - p_source(x); 0 when the classifier is undecided."""
    original, _ = pair
    classifier = MeanIntensityClassifier()
    probabilities = classifier(original).softmax(1)
    torch.testing.assert_close(cout(classifier, original, original, 0, 1), probabilities[:, 1] - probabilities[:, 0])
    undecided = torch.full((2, 1, 4, 4), 0.25)  # mean == offset: p = (0.5, 0.5)
    torch.testing.assert_close(cout(classifier, undecided, undecided.clone(), 0, 1), torch.zeros(2))


def test_cout_matches_the_hand_computed_insertion_curve():
    """Black to white, 16 pixels, 4 steps: frame k has mean k/4, so p_target = sigmoid(20 (k/4 - 0.25))."""
    original, counterfactual = torch.zeros(1, 1, 4, 4), torch.ones(1, 1, 4, 4)
    fraction = torch.arange(5) / 4
    p_target = torch.sigmoid(20 * (fraction - 0.25))
    expected = np.trapezoid((p_target - (1 - p_target)).numpy(), dx=0.25)
    score = cout(MeanIntensityClassifier(), original, counterfactual, 0, 1, steps=4)
    assert score.item() == pytest.approx(expected, abs=1e-6)
    assert score.item() > 0.4


def test_cout_inserts_the_most_changed_pixels_first():
    """Pixel (0, 0) changes most: a classifier reading it flips at the first step (COUT near 1); one reading the
    least-changed pixel flips only at the last step (COUT near -1)."""
    original = torch.zeros(1, 1, 5, 5)
    counterfactual = torch.linspace(0.6, 0.55, 25).view(1, 1, 5, 5)
    counterfactual[0, 0, 0, 0] = 1.0
    first = cout(OnePixelClassifier(0, 0), original, counterfactual, 0, 1, steps=25).item()
    last = cout(OnePixelClassifier(4, 4), original, counterfactual, 0, 1, steps=25).item()
    assert first > 0.9
    assert last < -0.9


def test_cout_is_the_same_per_sample_and_in_chunks(pair):
    original, counterfactual = pair
    classifier = TinyGAP(seed=0)
    source, target = torch.tensor([0, 1, 2, 0, 1]), torch.tensor([1, 2, 0, 2, 0])
    together = cout(classifier, original, counterfactual, source, target, steps=10, batch_size=1000)
    chunked = cout(classifier, original, counterfactual, source, target, steps=10, batch_size=7)
    alone = torch.cat([cout(classifier, original[i:i + 1], counterfactual[i:i + 1], source[i:i + 1],
                            target[i:i + 1], steps=10) for i in range(5)])
    torch.testing.assert_close(together, chunked)
    torch.testing.assert_close(together, alone)
    assert not together.requires_grad


def test_cout_errors(pair):
    original, counterfactual = pair
    with pytest.raises(ValueError, match="steps"):
        cout(MeanIntensityClassifier(), original, counterfactual, 0, 1, steps=0)
    with pytest.raises(ValueError, match="below the classifier's 2 classes"):
        cout(MeanIntensityClassifier(), original, counterfactual, 0, 2)
    with pytest.raises(ValueError, match=r"shape \(5,\)"):
        cout(MeanIntensityClassifier(), original, counterfactual, torch.zeros(4, dtype=torch.long), 1)
    with pytest.raises(ValueError, match="logits of shape"):
        cout(lambda x: x.mean((1, 2, 3)), original, counterfactual, 0, 1)


# --- MNAC ------------------------------------------------------------------------------------------------------------
def test_mnac_counts_flipped_attributes():
    original = torch.zeros(3, 1, 4, 4)
    original[:, :, :2, :2] = 1.0                     # attribute 0 present in all
    counterfactual = original.clone()
    counterfactual[0, :, :2, 2:] = 1.0               # sample 0: attribute 1 appears
    counterfactual[1, :, :2, :2] = 0.0               # sample 1: attribute 0 disappears ...
    counterfactual[1, :, 2:, 2:] = 1.0               # ... and attribute 3 appears
    counterfactual[2, :, 2:, :2] = 0.3               # sample 2: attribute 2 stays absent (logit -2)
    classifier = QuadrantAttributes()
    counts = mnac(classifier, original, counterfactual)
    assert counts.tolist() == [1, 2, 0]
    assert mnac(classifier, original, counterfactual, exclude=3).tolist() == [1, 1, 0]
    assert mnac(classifier, original, counterfactual, exclude=[0, 1]).tolist() == [0, 1, 0]
    assert mnac(classifier, original, counterfactual, threshold=0.05).tolist() == [1, 2, 1]  # sigmoid(-2) = 0.12


def test_mnac_errors():
    images = torch.zeros(1, 1, 4, 4)
    with pytest.raises(ValueError, match="outside"):
        mnac(QuadrantAttributes(), images, images, exclude=4)
    with pytest.raises(ValueError, match="threshold"):
        mnac(QuadrantAttributes(), images, images, threshold=1.5)


# --- IM1 / IM2 -------------------------------------------------------------------------------------------------------
def test_im1_below_one_when_the_target_autoencoder_reconstructs_better(generator):
    x_cf = torch.rand(3, 1, 4, 4, generator=generator) + 0.1
    autoencoders = {0: scaling_autoencoder(0.5), 1: scaling_autoencoder(0.9)}  # residuals 0.5 x and 0.1 x
    scores = im1(autoencoders, x_cf, target=1, source=0)
    torch.testing.assert_close(scores, torch.full((3,), 0.01 / 0.25))
    assert bool((scores < 1).all())
    reversed_scores = im1(autoencoders, x_cf, target=0, source=1)
    torch.testing.assert_close(reversed_scores, torch.full((3,), 25.0))


def test_im1_picks_each_samples_autoencoders(generator):
    x_cf = torch.rand(3, 1, 4, 4, generator=generator) + 0.1
    autoencoders = {0: scaling_autoencoder(0.5), 1: scaling_autoencoder(0.9), 2: scaling_autoencoder(0.8)}
    scores = im1(autoencoders, x_cf, target=torch.tensor([1, 2, 0]), source=torch.tensor([0, 0, 2]))
    torch.testing.assert_close(scores, torch.tensor([0.01 / 0.25, 0.04 / 0.25, 0.25 / 0.04]))


def test_im2_by_hand(generator):
    x_cf = torch.rand(2, 1, 4, 4, generator=generator)
    autoencoders = {1: scaling_autoencoder(0.9)}
    scores = im2(autoencoders, scaling_autoencoder(0.7), x_cf, target=1, eps=0.0)
    expected = (0.2 * x_cf).flatten(1).square().sum(1) / x_cf.flatten(1).abs().sum(1)
    torch.testing.assert_close(scores, expected)


def test_interpretability_errors():
    x_cf = torch.rand(2, 1, 4, 4)
    with pytest.raises(ValueError, match=r"no autoencoder for source class\(es\) \[3\]"):
        im1({0: scaling_autoencoder(1.0)}, x_cf, target=0, source=3)
    with pytest.raises(ValueError, match="must return images of shape"):
        im1({0: lambda x: x[:, :, :2], 1: scaling_autoencoder(1.0)}, x_cf, target=0, source=1)
    with pytest.raises(TypeError, match="mapping"):
        im2(scaling_autoencoder(1.0), scaling_autoencoder(1.0), x_cf, target=0)
    with pytest.raises(ValueError, match="eps"):
        im1({0: scaling_autoencoder(1.0)}, x_cf, target=0, source=0, eps=-1.0)


# --- Fréchet distance and FID ---------------------------------------------------------------------------------------
def test_frechet_distance_of_identical_sets_is_zero(generator):
    features = torch.randn(200, 8, generator=generator) @ torch.randn(8, 8, generator=generator)
    assert frechet_distance(features, features.clone()) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_of_shifted_sets_is_the_squared_shift(generator):
    features = torch.randn(100, 5, generator=generator, dtype=torch.float64)
    features = features @ torch.randn(5, 5, generator=generator, dtype=torch.float64)
    shift = torch.tensor([1.0, -2.0, 0.5, 0.0, 3.0], dtype=torch.float64)
    assert frechet_distance(features, features + shift) == pytest.approx(float(shift.square().sum()), rel=1e-9)


def test_frechet_distance_of_diagonal_gaussians_by_hand():
    """Rows (+-1, +-1) scaled by sigma have mean 0 and covariance diag(sigma^2 * 4/3) exactly, so
    d = |mu_a - mu_b|^2 + sum_i (sqrt(var_a_i) - sqrt(var_b_i))^2."""
    corners = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]], dtype=torch.float64)
    sigma_a, sigma_b = torch.tensor([1.0, 2.0], dtype=torch.float64), torch.tensor([3.0, 0.5], dtype=torch.float64)
    mu_a, mu_b = torch.tensor([0.0, 1.0], dtype=torch.float64), torch.tensor([2.0, -1.0], dtype=torch.float64)
    a, b = corners * sigma_a + mu_a, corners * sigma_b + mu_b
    variance = 4 / 3
    expected = float((mu_a - mu_b).square().sum()
                     + ((sigma_a * math.sqrt(variance) - sigma_b * math.sqrt(variance)) ** 2).sum())
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-12)


def test_frechet_distance_agrees_with_scipy_sqrtm(generator):
    mixing = torch.randn(6, 6, generator=generator, dtype=torch.float64)
    a = torch.randn(300, 6, generator=generator, dtype=torch.float64) @ mixing
    b = torch.randn(250, 6, generator=generator, dtype=torch.float64) * 2 + 1
    mu_a, mu_b = a.mean(0).numpy(), b.mean(0).numpy()
    cov_a, cov_b = np.cov(a.numpy(), rowvar=False), np.cov(b.numpy(), rowvar=False)
    root = scipy.linalg.sqrtm(cov_a @ cov_b).real
    expected = ((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(root)
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-9)
    assert frechet_distance(a.float(), b.float()) == pytest.approx(expected, rel=1e-4)


def test_frechet_distance_with_singular_covariances_is_finite(generator):
    a, b = torch.randn(4, 16, generator=generator), torch.randn(5, 16, generator=generator)  # D > M: rank-deficient
    distance = frechet_distance(a, b)
    assert math.isfinite(distance) and distance >= 0


def test_frechet_distance_errors():
    with pytest.raises(ValueError, match="at least 2 rows"):
        frechet_distance(torch.zeros(1, 3), torch.zeros(4, 3))
    with pytest.raises(ValueError, match="same size D"):
        frechet_distance(torch.zeros(4, 3), torch.zeros(4, 2))
    with pytest.raises(ValueError, match=r"\(M, D\)"):
        frechet_distance(torch.zeros(4, 3, 1), torch.zeros(4, 3))
    with pytest.raises(ValueError, match="NaN"):
        frechet_distance(torch.full((4, 3), float("nan")), torch.zeros(4, 3))


def test_fid_names_its_network_and_uses_its_features(generator):
    classifier = TinyGAP(seed=0)
    images_a = torch.rand(12, 1, 8, 8, generator=generator)
    images_b = torch.rand(10, 1, 8, 8, generator=generator) * 0.5
    extractor = domain_features(classifier)
    result = fid(images_a, images_b, extractor, extractor.name, batch_size=5)
    assert isinstance(result, FIDResult) and result.network == "TinyGAP.features+GAP"
    with torch.no_grad():
        pooled_a, pooled_b = classifier.features(images_a).mean((2, 3)), classifier.features(images_b).mean((2, 3))
    expected = frechet_distance(pooled_a, pooled_b)
    assert result.value == pytest.approx(expected, rel=1e-6)
    assert float(result) == result.value > 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.value = 0.0
    with pytest.raises(TypeError, match="name"):
        fid(images_a, images_b, extractor, "")


def test_domain_features_uses_the_penultimate_layer_without_features(generator):
    torch.manual_seed(0)
    oracle = LeNetClassifier(image_size=8)
    oracle.train()  # dropout active in training mode: the extractor must switch to eval and switch back
    images = torch.rand(3, 1, 8, 8, generator=generator)
    extractor = domain_features(oracle)
    assert extractor.name == "LeNetClassifier.penultimate(classifier.4)"
    result = fid(images, images.flip(0), extractor, extractor.name)
    assert result.value == pytest.approx(0.0, abs=1e-6)  # same set in another order, deterministic features
    assert oracle.training and all(module.training for module in oracle.modules())
    oracle.eval()
    with torch.no_grad():
        expected = oracle.classifier[:4](oracle.body(images))
    oracle.train()
    torch.testing.assert_close(forward_in_batches(extractor, images, 2), expected)


def test_domain_features_needs_features_or_a_linear_layer():
    with pytest.raises(TypeError, match="neither"):
        domain_features(nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU()))
    with pytest.raises(TypeError, match="nn.Module"):
        domain_features(lambda x: x)


# --- LPIPS -----------------------------------------------------------------------------------------------------------
def _forbid_downloads(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)


def test_lpips_without_backbone_weights_raises_before_building(tmp_path, monkeypatch):
    import lpips

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    _forbid_downloads(monkeypatch)
    monkeypatch.setattr(lpips, "LPIPS", lambda *a, **k: pytest.fail("LPIPS was built without its weights"))
    images = torch.rand(2, 1, 32, 32)
    with pytest.raises(LPIPSUnavailable) as raised:
        lpips_distance(images, images)
    message = str(raised.value)
    assert "alexnet-owt-7be5be79.pth" in message
    assert str(tmp_path / "hub" / "checkpoints") in message
    assert 'torchvision.models.alexnet(weights="IMAGENET1K_V1")' in message
    assert isinstance(raised.value, RuntimeError)
    result = make_result(images, images, torch.zeros(2, dtype=torch.long), torch.ones(2, dtype=torch.long),
                         torch.ones(2, dtype=torch.long))
    with pytest.raises(LPIPSUnavailable):
        evaluate(result, lpips=True)


@pytest.fixture(scope="module")
def stand_in_alexnet_home(tmp_path_factory):
    """A TORCH_HOME holding a *randomly initialised* AlexNet saved under the ImageNet checkpoint's file name."""
    import torchvision

    home = tmp_path_factory.mktemp("torch_home")
    checkpoints = home / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    torch.manual_seed(0)
    checkpoint = checkpoints / "alexnet-owt-7be5be79.pth"
    torch.save(torchvision.models.alexnet().state_dict(), checkpoint)
    yield home
    checkpoint.unlink()  # 240 MB: do not leave it in pytest's kept temporary directories


def test_lpips_plumbing_with_stand_in_backbone_weights(stand_in_alexnet_home, monkeypatch, generator):
    """Plumbing only: with a random AlexNet standing in for the ImageNet weights, LPIPS builds from disk without
    downloading, returns (N,) non-negative distances, 0 for identical images, more for more different images.
    (These numbers are not real LPIPS values.)"""
    monkeypatch.setenv("TORCH_HOME", str(stand_in_alexnet_home))
    _forbid_downloads(monkeypatch)
    assert backbone_checkpoint("alex").is_file()
    images = torch.rand(3, 1, 28, 28, generator=generator)
    noise = torch.randn(3, 1, 28, 28, generator=generator)
    near = (images + 0.02 * noise).clamp(0, 1)
    far = (images + 0.5 * noise).clamp(0, 1)
    same = lpips_distance(images, images.clone())
    small, large = lpips_distance(images, near), lpips_distance(images, far, batch_size=2)
    assert same.shape == small.shape == (3,)
    torch.testing.assert_close(same, torch.zeros(3))
    assert bool((small > 0).all()) and bool((large > small).all())
    as_rgb = lpips_distance(images.expand(-1, 3, -1, -1), far.expand(-1, 3, -1, -1))
    torch.testing.assert_close(lpips_distance(images, far), as_rgb)


def test_lpips_scales_unit_images_to_the_lpips_range(stand_in_alexnet_home, monkeypatch, generator):
    monkeypatch.setenv("TORCH_HOME", str(stand_in_alexnet_home))
    _forbid_downloads(monkeypatch)
    a, b = torch.rand(2, 3, 64, 64, generator=generator), torch.rand(2, 3, 64, 64, generator=generator)
    with torch.no_grad():
        expected = lpips_model("alex")(2 * a - 1, 2 * b - 1).flatten()
    torch.testing.assert_close(lpips_distance(a, b), expected)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        lpips_distance(a * 2 - 1, b)
    with pytest.raises(ValueError, match="1- or 3-channel"):
        lpips_distance(torch.rand(1, 2, 64, 64), torch.rand(1, 2, 64, 64))


# --- evaluate --------------------------------------------------------------------------------------------------------
@pytest.fixture
def digit_like_result(generator) -> Counterfactuals:
    original = torch.rand(6, 1, 8, 8, generator=generator) * 0.3
    counterfactual = (original + 0.5 * torch.rand(6, 1, 8, 8, generator=generator)).clamp(0, 1)
    source = torch.zeros(6, dtype=torch.long)
    target = torch.ones(6, dtype=torch.long)
    prediction = torch.tensor([1, 1, 0, 1, 1, 1])
    return make_result(original, counterfactual, source, target, prediction)


def test_evaluate_without_models_gives_only_model_free_metrics(digit_like_result):
    scores = evaluate(digit_like_result)
    assert set(scores) == {"validity", "l1", "l2", "sparsity"}
    assert scores["validity"] == pytest.approx(5 / 6)
    x, x_cf = digit_like_result.original, digit_like_result.counterfactual
    assert scores["l1"] == pytest.approx(proximity(x, x_cf, 1).mean().item())
    assert scores["l2"] == pytest.approx(proximity(x, x_cf, 2).mean().item())
    assert scores["sparsity"] == pytest.approx(sparsity(x, x_cf).mean().item())
    assert all(isinstance(value, float) for value in scores.values())


def test_evaluate_with_every_model_matches_the_single_metrics(digit_like_result, generator):
    result = digit_like_result
    x, x_cf = result.original, result.counterfactual
    classifier = MeanIntensityClassifier()
    torch.manual_seed(0)
    oracle = LeNetClassifier(num_classes=2, image_size=8).train()
    attributes = QuadrantAttributes(side=8)
    autoencoders = {0: scaling_autoencoder(0.5), 1: scaling_autoencoder(0.9)}
    reference = torch.rand(9, 1, 8, 8, generator=generator)
    scores = evaluate(result, classifier=classifier, oracle=oracle, attribute_classifier=attributes,
                      autoencoders=autoencoders, autoencoder=scaling_autoencoder(0.7), fid_reference=reference,
                      fid_network=oracle, mnac_exclude=0, cout_steps=10)
    assert set(scores) == {"validity", "l1", "l2", "sparsity", "oracle_validity", "cout", "mnac", "im1", "im2", "fid"}
    assert oracle.training  # restored after the calls, which ran in eval mode (deterministic below)
    assert scores["oracle_validity"] == oracle_validity(oracle, x_cf, result.target)
    assert scores["cout"] == pytest.approx(cout(classifier, x, x_cf, 0, 1, steps=10).mean().item())
    assert scores["mnac"] == pytest.approx(mnac(attributes, x, x_cf, exclude=0).float().mean().item())
    assert scores["im1"] == pytest.approx(0.04)
    assert scores["im2"] == pytest.approx(im2(autoencoders, scaling_autoencoder(0.7), x_cf, 1).mean().item())
    extractor = domain_features(oracle)
    assert scores["fid"] == pytest.approx(fid(x_cf, reference, extractor, extractor.name).value)


def test_evaluate_runs_models_in_eval_mode_without_gradients(digit_like_result):
    recorder = ModeRecorder().train()
    evaluate(digit_like_result, classifier=recorder, oracle=recorder, cout_steps=3)
    assert recorder.calls and set(recorder.calls) == {(False, False)}
    assert recorder.training


def test_evaluate_errors(digit_like_result):
    with pytest.raises(TypeError, match="Counterfactuals"):
        evaluate({"original": torch.zeros(1)})
    with pytest.raises(ValueError, match="feature network"):
        evaluate(digit_like_result, fid_reference=torch.rand(4, 1, 8, 8))
    with pytest.raises(ValueError, match="class autoencoders"):
        evaluate(digit_like_result, autoencoder=scaling_autoencoder(1.0))
    with pytest.raises(ValueError, match="no autoencoder"):
        evaluate(digit_like_result, autoencoders={1: scaling_autoencoder(1.0)})
    with pytest.raises(ValueError, match="no counterfactuals"):
        evaluate(digit_like_result[[]])
