"""Quality of the counterfactual methods on the shipped MNIST models, held-out digits.

Figures measured with this file's samples (60 digits for (label+1)%10, 60 from the pairs 3<->8, 4<->9, 5<->6) are
in docs/benchmarks.md; thresholds sit a little below them. The oracle is only a judge: it never enters a search.
"""
from __future__ import annotations

import pytest
import torch

import cfnb
from cfnb.metrics import oracle_validity

PAIRS = {3: 8, 8: 3, 4: 9, 9: 4, 5: 6, 6: 5}


@pytest.fixture(scope="module")
def samples(mnist_test):
    every = torch.arange(0, 1000, 1000 // 60)[:60]
    in_pairs = torch.tensor([int(label) in PAIRS for label in mnist_test.labels]).nonzero().flatten()
    pair_index = in_pairs[torch.linspace(0, len(in_pairs) - 1, 60).long()]
    return {
        "all-targets": (mnist_test.images[every], (mnist_test.labels[every] + 1) % 10),
        "pairs": (mnist_test.images[pair_index],
                  torch.tensor([PAIRS[int(label)] for label in mnist_test.labels[pair_index]])),
    }


@pytest.fixture(scope="module")
def results(samples, mnist_models):
    from cfnb.models import load

    classifier = mnist_models["mnist-classifier"]
    helpers = {"latent": {"generator": load("mnist-vae")}, "mirror": {}, "pixel": {}}
    return {(method, name): cfnb.explain(classifier, images, target, method=method, **helpers[method])
            for method in helpers for name, (images, target) in samples.items()}


def oracle_of(results, mnist_models, method, name):
    result = results[method, name]
    return oracle_validity(mnist_models["mnist-oracle"], result.counterfactual, result.target)


@pytest.mark.parametrize("method, least", [("latent", 0.99), ("mirror", 0.99)])
@pytest.mark.parametrize("name", ["all-targets", "pairs"])
def test_validity(results, method, least, name):
    assert results[method, name].validity >= least


@pytest.mark.parametrize("name, least", [("pairs", 0.88), ("all-targets", 0.78)])
def test_latent_counterfactuals_convince_the_oracle(results, mnist_models, name, least):
    assert oracle_of(results, mnist_models, "latent", name) >= least


@pytest.mark.parametrize("name, least", [("pairs", 0.87), ("all-targets", 0.93)])
def test_mirror_oracle_validity(results, mnist_models, name, least):
    assert oracle_of(results, mnist_models, "mirror", name) >= least


@pytest.mark.parametrize("name", ["all-targets", "pairs"])
def test_pixel_baseline_fools_only_the_classifier(results, mnist_models, name):
    assert results["pixel", name].validity >= 0.95
    assert oracle_of(results, mnist_models, "pixel", name) <= 0.2
    assert oracle_of(results, mnist_models, "latent", name) >= oracle_of(results, mnist_models, "pixel", name) + 0.5


def test_mirror_probability_of_target_rises_along_the_path(results):
    from cfnb.metrics import path_monotonicity

    result = results["mirror", "pairs"]
    rises, monotone = path_monotonicity(result.trajectory_probabilities, result.target)
    assert rises.float().mean() >= 0.95 and monotone.float().mean() >= 0.9


def test_same_seed_same_counterfactuals_on_cpu(samples, mnist_models):
    from cfnb.models import load

    images, target = samples["pairs"][0][:8], samples["pairs"][1][:8]
    runs = [cfnb.explain(mnist_models["mnist-classifier"], images, target, method="latent", generator=load("mnist-vae"),
                         seed=3, device="cpu") for _ in range(2)]
    assert torch.equal(runs[0].counterfactual, runs[1].counterfactual)


def test_shipped_models_meet_their_bars(mnist_test, mnist_models):
    from cfnb.training import accuracy

    assert accuracy(mnist_models["mnist-classifier"], mnist_test.images, mnist_test.labels) >= 0.97
    assert accuracy(mnist_models["mnist-oracle"], mnist_test.images, mnist_test.labels) >= 0.97
    vae = mnist_models["mnist-vae"]
    assert vae.latent_dim >= 8
    with torch.no_grad():
        recon = vae(mnist_test.images)
    assert accuracy(mnist_models["mnist-classifier"], recon, mnist_test.labels) >= 0.90
