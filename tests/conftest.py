"""Shared fixtures: tiny seeded models for fast unit tests; shipped models and data for quality tests."""
from __future__ import annotations

import copy

import pytest
import torch
from tiny_models import TinyGenerator, intensity_bands, trained_tiny_classifier

torch.set_num_threads(max(1, min(2, torch.get_num_threads())))


@pytest.fixture(scope="session")
def _tiny_classifier_trained():
    return trained_tiny_classifier()


@pytest.fixture
def tiny_classifier(_tiny_classifier_trained):
    return copy.deepcopy(_tiny_classifier_trained)


@pytest.fixture
def tiny_generator() -> TinyGenerator:
    return TinyGenerator()


@pytest.fixture
def tiny_images() -> torch.Tensor:
    return intensity_bands(6, seed=2)[0]


@pytest.fixture(scope="session")
def mnist_test():
    from cfnb.data import load_mnist

    return load_mnist("test", source="embedded")


@pytest.fixture(scope="session")
def mnist_models():
    from cfnb.models import load

    return {name: load(name) for name in ("mnist-classifier", "mnist-oracle", "mnist-vae")}


@pytest.fixture
def fake_celeba(tmp_path):
    """A folder holding a tiny fake CelebA (six faces, all six files of the release)."""
    from fake_celeba import write_fake_celeba

    write_fake_celeba(tmp_path / "celeba-fake")
    return tmp_path / "celeba-fake"


@pytest.fixture
def torch_compile_fails(monkeypatch):
    """``torch.compile`` that builds a function raising ``RuntimeError("no C++ compiler")`` on its first call, as
    compiling does on a machine without a C++ compiler."""
    def broken(function, **options):
        def fail(*args, **kwargs):
            raise RuntimeError("no C++ compiler")
        return fail

    monkeypatch.setattr(torch, "compile", broken)
