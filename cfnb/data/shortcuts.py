"""MNIST with planted shortcuts: coloured digits (colour tied to the class) and patched digits (a corner square tied
to one class). Both know how they were made, so ``set_shortcut`` is the ground-truth intervention on the shortcut.

``correlation`` is the probability that an image's shortcut agrees with its class:

- ``colored_mnist``: with probability ``correlation`` a digit is drawn in its class's colour (``DIGIT_COLOURS``),
  otherwise in one of the other nine colours, uniformly.
- ``patched_mnist``: the patch is present with probability ``correlation`` on ``patch_class`` digits and with
  probability ``1 - correlation`` on every other digit.

``correlation=None`` (and the split ``"test-shuffled"``, which ignores ``correlation``) gives data where the shortcut
carries no information about the class (colour uniform over all ten; patch present with probability 1/2 on every
digit); ``correlation=0.0`` gives the reversed split.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import torch

from ..checks import check_images
from .base import ImageDataset, announce, check_split
from .mnist import MNIST_CLASSES, load_mnist

SPLITS = ("train", "test", "test-shuffled")

DIGIT_COLOURS = torch.tensor([
    [1.0, 0.0, 0.0],  # 0 red
    [0.0, 1.0, 0.0],  # 1 green
    [0.0, 0.0, 1.0],  # 2 blue
    [1.0, 1.0, 0.0],  # 3 yellow
    [1.0, 0.0, 1.0],  # 4 magenta
    [0.0, 1.0, 1.0],  # 5 cyan
    [1.0, 0.5, 0.0],  # 6 orange
    [0.5, 0.0, 1.0],  # 7 violet
    [1.0, 1.0, 1.0],  # 8 white
    [0.0, 0.5, 1.0],  # 9 azure
])
"""Colour of each digit class in ``colored_mnist`` (RGB, each with its largest channel at 1.0)."""
COLOUR_NAMES = ("red", "green", "blue", "yellow", "magenta", "cyan", "orange", "violet", "white", "azure")

PATCH_SIZE = 4
PATCH_OFFSET = 1
"""The patch of ``patched_mnist``: a white PATCH_SIZE x PATCH_SIZE square whose top-left pixel is at
(PATCH_OFFSET, PATCH_OFFSET), in the top-left corner where MNIST digits have no ink."""

_SPLIT_STREAM = {"train": 0, "test": 1, "test-shuffled": 2}


def _check_correlation(correlation: float | None) -> None:
    if correlation is None:
        return
    if isinstance(correlation, bool) or not isinstance(correlation, (int, float)) or not 0.0 <= correlation <= 1.0:
        raise ValueError(
            f"correlation must be a probability in [0, 1] (or None for no shortcut information), got {correlation!r}"
        )


def _values(value: int | Sequence[int] | torch.Tensor, n: int, high: int, what: str) -> torch.Tensor:
    """One int64 value per image, checked to lie in [0, high)."""
    values = torch.as_tensor(value)
    if values.is_floating_point() and not bool((values == values.round()).all()):
        raise ValueError(f"{what} must be whole numbers, got {values}")
    values = values.long()
    if values.ndim == 0:
        values = values.expand(n)
    if values.shape != (n,):
        raise ValueError(f"{what} must be one int or one per image ({n}), got shape {tuple(values.shape)}")
    if bool(((values < 0) | (values >= high)).any()):
        raise ValueError(f"{what} must lie in 0..{high - 1}, got {values.unique().tolist()}")
    return values


def _check_images(images: torch.Tensor, channels: tuple[int, ...]) -> None:
    check_images(images, channels=channels, unit_range=False, finite=False)  # edited images may leave [0, 1]
    if images.shape[2] < PATCH_OFFSET + PATCH_SIZE or images.shape[3] < PATCH_OFFSET + PATCH_SIZE:
        raise ValueError(f"images of {images.shape[2]}x{images.shape[3]} are too small")


class ShortcutDataset(ImageDataset, ABC):
    """Digits with a planted shortcut.

    Attributes:
        spurious: (N,) int64 shortcut value of each image.
        correlation: probability that the shortcut agrees with the class (``None``: uninformative).
        seed: seed of the shortcut draws.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, spurious: torch.Tensor,
                 correlation: float | None, seed: int, source: str):
        super().__init__(images, labels, MNIST_CLASSES, source)
        self.spurious = spurious.long().contiguous()
        self.correlation = correlation
        self.seed = seed

    @abstractmethod
    def shortcut_for_class(self, labels: torch.Tensor) -> torch.Tensor:
        """The shortcut value that agrees with each class in ``labels``."""

    @property
    def aligned(self) -> torch.Tensor:
        """(N,) bool: the image's shortcut agrees with its class."""
        return self.spurious == self.shortcut_for_class(self.labels)

    @abstractmethod
    def set_shortcut(self, images: torch.Tensor, value: int | Sequence[int] | torch.Tensor) -> torch.Tensor:
        """Re-render ``images`` with the shortcut set to ``value`` (one int, or one per image)."""


class ColoredMNIST(ShortcutDataset):
    """Coloured digits: ``images`` (N, 3, 28, 28), ``spurious`` the colour index (see ``DIGIT_COLOURS``)."""

    def shortcut_for_class(self, labels: torch.Tensor) -> torch.Tensor:
        return labels.long()

    def set_shortcut(self, images: torch.Tensor, value: int | Sequence[int] | torch.Tensor) -> torch.Tensor:
        """Recolour ``images`` (coloured or grey, also edited ones) in colour ``value`` (0..9).

        The digit's intensity is the largest channel (``images.amax(1)``), so only the colour changes.

        Returns:
            (N, 3, H, W) images, on the device and dtype of ``images``.

        Raises:
            ValueError: images not (N, 1 or 3, H, W), or a colour outside 0..9.
        """
        _check_images(images, (1, 3))
        colours = _values(value, images.shape[0], len(DIGIT_COLOURS), "colour")
        return colourise(images.amax(1, keepdim=True), colours)


class PatchedMNIST(ShortcutDataset):
    """Digits with an optional white corner square: ``images`` (N, 1, 28, 28), ``spurious`` 1 where it is present.

    Attributes:
        patch_class: the class the patch is tied to.
    """

    def __init__(self, *args, patch_class: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.patch_class = patch_class

    def shortcut_for_class(self, labels: torch.Tensor) -> torch.Tensor:
        return (labels == self.patch_class).long()

    def set_shortcut(self, images: torch.Tensor, value: int | Sequence[int] | torch.Tensor) -> torch.Tensor:
        """Paint the patch square white (``value`` 1) or black, i.e. MNIST's background (``value`` 0).

        Only the PATCH_SIZE x PATCH_SIZE pixels of the patch change.

        Returns:
            A new tensor like ``images``.

        Raises:
            ValueError: images not (N, C, H, W), or a value other than 0 or 1.
        """
        _check_images(images, tuple(range(1, 5)))
        present = _values(value, images.shape[0], 2, "patch value")
        return add_patch(images, present)


def colourise(grey: torch.Tensor, colours: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) intensities times the RGB of each colour index in ``colours`` (N,): (N, 3, H, W)."""
    palette = DIGIT_COLOURS.to(device=grey.device, dtype=grey.dtype)
    return grey * palette[colours.to(grey.device)][:, :, None, None]


def add_patch(images: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """Copy of ``images`` with the corner square set to 1 where ``present`` (N,) is 1 and to 0 elsewhere."""
    out = images.clone()
    fill = present.to(device=images.device, dtype=images.dtype)[:, None, None, None]
    rows = slice(PATCH_OFFSET, PATCH_OFFSET + PATCH_SIZE)
    out[:, :, rows, rows] = fill.expand(-1, images.shape[1], PATCH_SIZE, PATCH_SIZE)
    return out


def _generator(seed: int, split: str, salt: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed) * 1_000 + _SPLIT_STREAM[split] * 10 + salt)


def colored_mnist(split: str = "train", correlation: float | None = 0.9, seed: int = 0,
                  source: str = "embedded") -> ColoredMNIST:
    """MNIST digits coloured by class, the colour agreeing with the class with probability ``correlation``.

    Args:
        split: ``"train"``, ``"test"`` or ``"test-shuffled"`` (test digits, colour independent of the class,
            whatever ``correlation`` says).
        correlation: probability that a digit wears its class's colour; otherwise one of the other nine colours,
            uniformly. ``None``: every colour equally likely for every digit; ``0.0``: the reversed split.
        seed: seed of the colour draws (the digits are ``load_mnist``'s).
        source: passed to ``load_mnist`` (``"embedded"``: the 5,000-digit subset, offline).

    Returns:
        A ``ColoredMNIST`` with ``images`` (N, 3, 28, 28), ``labels``, ``spurious`` (colour index) and
        ``set_shortcut``.

    Raises:
        ValueError: unknown split, or a correlation outside [0, 1].
    """
    check_split(split, SPLITS)
    _check_correlation(correlation)
    if split == "test-shuffled":
        correlation = None
    digits = load_mnist("train" if split == "train" else "test", source=source)
    labels = digits.labels
    g = _generator(seed, split, 1)
    if correlation is None:
        colours = torch.randint(0, 10, labels.shape, generator=g)
    else:
        other = (labels + torch.randint(1, 10, labels.shape, generator=g)) % 10
        keep = torch.rand(labels.shape, generator=g) < correlation
        colours = torch.where(keep, labels, other)
    images = colourise(digits.images, colours)
    announce(f"coloured MNIST {split}: {len(labels)} digits, colour-class correlation {correlation}, seed {seed}")
    return ColoredMNIST(images, labels, colours, correlation, seed, source=f"colored MNIST ({digits.source})")


def patched_mnist(split: str = "train", correlation: float | None = 0.9, patch_class: int = 0, seed: int = 0,
                  source: str = "embedded") -> PatchedMNIST:
    """MNIST digits with a white corner square tied to ``patch_class``.

    Args:
        split: ``"train"``, ``"test"`` or ``"test-shuffled"`` (test digits, patch independent of the class).
        correlation: the patch is present with probability ``correlation`` on ``patch_class`` digits and with
            probability ``1 - correlation`` on all others. ``None``: present with probability 1/2 on every digit;
            ``0.0``: the reversed split (never on ``patch_class``, always on the others).
        patch_class: the digit class the patch signals (0..9).
        seed: seed of the patch draws.
        source: passed to ``load_mnist``.

    Returns:
        A ``PatchedMNIST`` with ``images`` (N, 1, 28, 28), ``labels``, ``spurious`` (1 = patch present) and
        ``set_shortcut``.

    Raises:
        ValueError: unknown split, a correlation outside [0, 1], or a patch class outside 0..9.
    """
    check_split(split, SPLITS)
    _check_correlation(correlation)
    if isinstance(patch_class, bool) or not isinstance(patch_class, int) or not 0 <= patch_class <= 9:
        raise ValueError(f"patch_class must be a digit class 0..9, got {patch_class!r}")
    if split == "test-shuffled":
        correlation = None
    digits = load_mnist("train" if split == "train" else "test", source=source)
    labels = digits.labels
    g = _generator(seed, split, 2)
    draw = torch.rand(labels.shape, generator=g)
    if correlation is None:
        present = draw < 0.5
    else:
        probability = torch.where(labels == patch_class, torch.tensor(float(correlation)),
                                  torch.tensor(1.0 - correlation))
        present = draw < probability
    images = add_patch(digits.images, present.long())
    announce(f"patched MNIST {split}: {len(labels)} digits, patch on class {patch_class} with correlation "
             f"{correlation}, seed {seed}")
    return PatchedMNIST(images, labels, present.long(), correlation, seed, source=f"patched MNIST ({digits.source})",
                        patch_class=patch_class)
