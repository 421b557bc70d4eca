"""Shortcut MNIST: the planted correlation is what it says, the interventions change the shortcut only, errors."""
import pytest
import torch
from scipy.stats import chisquare

from cfnb.data import ColoredMNIST, ImageDataset, PatchedMNIST, colored_mnist, load_mnist, patched_mnist
from cfnb.data.shortcuts import DIGIT_COLOURS, PATCH_OFFSET, PATCH_SIZE


@pytest.fixture(scope="module")
def grey_train() -> ImageDataset:
    return load_mnist("train", source="embedded")


@pytest.fixture(scope="module")
def coloured() -> ColoredMNIST:
    return colored_mnist("train", correlation=0.9, seed=0)


@pytest.fixture(scope="module")
def patched() -> PatchedMNIST:
    return patched_mnist("train", correlation=0.9, patch_class=3, seed=0)


def test_palette_is_ten_distinct_colours_with_full_max_channel():
    assert DIGIT_COLOURS.shape == (10, 3)
    assert torch.equal(DIGIT_COLOURS.amax(1), torch.ones(10))
    assert len({tuple(c.tolist()) for c in DIGIT_COLOURS}) == 10
    distances = torch.cdist(DIGIT_COLOURS, DIGIT_COLOURS) + torch.eye(10) * 9
    assert distances.min() >= 0.5


def test_coloured_digits_keep_the_grey_digit(coloured, grey_train):
    assert isinstance(coloured, ImageDataset)
    assert coloured.images.shape == (4000, 3, 28, 28)
    assert torch.equal(coloured.labels, grey_train.labels)
    assert torch.allclose(coloured.images.amax(1, keepdim=True), grey_train.images)
    # each image is its grey digit times its colour
    assert torch.allclose(coloured.images, grey_train.images * DIGIT_COLOURS[coloured.spurious][:, :, None, None])


@pytest.mark.parametrize("p", [0.9, 0.5, 0.0, 1.0])
def test_colour_correlation_is_planted(p):
    data = colored_mnist("train", correlation=p, seed=1)
    agree = (data.spurious == data.labels).float().mean().item()
    assert abs(agree - p) < 0.02
    assert torch.equal(data.aligned, data.spurious == data.labels)
    if p < 1:
        # disagreeing colours spread uniformly over the other nine: offsets 1..9 about equally often
        offsets = ((data.spurious - data.labels) % 10)[~data.aligned]
        counts = torch.bincount(offsets, minlength=10)[1:]
        assert chisquare(counts.numpy()).pvalue > 1e-3


@pytest.mark.parametrize("kwargs", [{"split": "test", "correlation": None}, {"split": "test-shuffled"},
                                    {"split": "test-shuffled", "correlation": 0.99}])
def test_uninformative_colour(kwargs):
    data = colored_mnist(**kwargs)
    assert data.correlation is None
    assert abs((data.spurious == data.labels).float().mean().item() - 0.1) < 0.035
    assert len(data.spurious.unique()) == 10


def test_colour_draws_are_seeded_and_split_dependent():
    a, b = colored_mnist("test", 0.5, seed=3), colored_mnist("test", 0.5, seed=3)
    assert torch.equal(a.spurious, b.spurious) and torch.equal(a.images, b.images)
    assert not torch.equal(colored_mnist("test", 0.5, seed=4).spurious, a.spurious)
    assert not torch.equal(colored_mnist("test-shuffled", seed=3).spurious,
                           colored_mnist("test", None, seed=3).spurious)


def test_set_colour_changes_the_colour_only(coloured):
    images = coloured.images[:50]
    for colour in (0, 7):
        out = coloured.set_shortcut(images, colour)
        assert torch.allclose(out.amax(1), images.amax(1))
        ink = images.amax(1) > 0.5
        ratio = out.permute(0, 2, 3, 1)[ink] / images.amax(1)[ink][:, None]  # (ink pixels, 3)
        assert torch.allclose(ratio, DIGIT_COLOURS[colour].expand_as(ratio), atol=1e-5)
    per_image = torch.arange(50) % 10
    out = coloured.set_shortcut(images, per_image)
    assert torch.allclose(out, images.amax(1, keepdim=True) * DIGIT_COLOURS[per_image][:, :, None, None])
    # round trip: back to the original colours gives the original images
    assert torch.allclose(coloured.set_shortcut(out, coloured.spurious[:50]), images)


def test_set_colour_on_edited_and_grey_images(coloured):
    edited = torch.rand(4, 3, 28, 28, generator=torch.Generator().manual_seed(0))
    out = coloured.set_shortcut(edited, 2)
    assert torch.allclose(out, edited.amax(1, keepdim=True) * DIGIT_COLOURS[2][:, None, None])
    grey = torch.rand(4, 1, 28, 28)
    assert coloured.set_shortcut(grey, 1).shape == (4, 3, 28, 28)


def test_patch_rates_follow_the_documented_rule(patched):
    assert patched.images.shape == (4000, 1, 28, 28)
    on_class = patched.spurious[patched.labels == 3].float().mean().item()
    on_others = patched.spurious[patched.labels != 3].float().mean().item()
    assert abs(on_class - 0.9) < 0.04 and abs(on_others - 0.1) < 0.015
    corner = patched.images[:, 0, PATCH_OFFSET:PATCH_OFFSET + PATCH_SIZE, PATCH_OFFSET:PATCH_OFFSET + PATCH_SIZE]
    assert torch.equal(corner.flatten(1).amin(1) == 1, patched.spurious == 1)
    assert torch.equal(patched.aligned, patched.spurious == (patched.labels == 3).long())
    reversed_ = patched_mnist("test", correlation=0.0, patch_class=3)
    assert reversed_.spurious[reversed_.labels == 3].sum() == 0
    assert reversed_.spurious[reversed_.labels != 3].eq(1).all()
    shuffled = patched_mnist("test-shuffled", patch_class=3)
    assert abs(shuffled.spurious.float().mean().item() - 0.5) < 0.06
    assert abs(shuffled.spurious[shuffled.labels == 3].float().mean().item()
               - shuffled.spurious[shuffled.labels != 3].float().mean().item()) < 0.15


def test_set_patch_changes_only_the_patch_pixels(patched, grey_train):
    images = patched.images[:100]
    on, off = patched.set_shortcut(images, 1), patched.set_shortcut(images, 0)
    changed = (on != off).any(0)[0]
    assert changed.sum() == PATCH_SIZE * PATCH_SIZE
    mask = torch.zeros(28, 28, dtype=torch.bool)
    mask[PATCH_OFFSET:PATCH_OFFSET + PATCH_SIZE, PATCH_OFFSET:PATCH_OFFSET + PATCH_SIZE] = True
    assert torch.equal(changed, mask)
    assert torch.equal(on[:, :, ~mask], images[:, :, ~mask]) and torch.equal(off[:, :, ~mask], images[:, :, ~mask])
    assert torch.allclose(off, grey_train.images[:100] * (~mask))  # the corner of these digits has no ink
    per_image = patched.set_shortcut(images, torch.arange(100) % 2)
    assert torch.equal(per_image[1::2], on[1::2]) and torch.equal(per_image[::2], off[::2])
    edited = torch.rand(3, 1, 28, 28)
    assert torch.equal(patched.set_shortcut(edited, 1)[:, :, ~mask], edited[:, :, ~mask])


@pytest.mark.parametrize("make", [colored_mnist, patched_mnist])
def test_errors(make):
    with pytest.raises(ValueError, match="unknown split 'valid'"):
        make("valid")
    for bad in (-0.1, 1.2, "high"):
        with pytest.raises(ValueError, match=r"correlation must be a probability in \[0, 1\]"):
            make("train", correlation=bad)


def test_intervention_errors(coloured, patched):
    with pytest.raises(ValueError, match="colour must lie in 0..9"):
        coloured.set_shortcut(coloured.images[:2], 10)
    with pytest.raises(ValueError, match="one per image"):
        coloured.set_shortcut(coloured.images[:2], torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        coloured.set_shortcut(coloured.images[0], 1)
    with pytest.raises(ValueError, match="patch value must lie in 0..1"):
        patched.set_shortcut(patched.images[:2], 2)
    with pytest.raises(ValueError, match="patch_class"):
        patched_mnist("train", patch_class=10)
