"""Dataset containers shared by every loader: whole tensors plus the ``Dataset`` protocol."""
from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch.utils.data import Dataset

logger = logging.getLogger("cfnb.data")


def announce(message: str) -> None:
    """Say which source a loader used (one line, on the ``cfnb.data`` logger and stdout)."""
    logger.info(message)
    print(f"[cfnb.data] {message}")


class ImageDataset(Dataset):
    """Labelled images held as whole tensors.

    Attributes:
        images: (N, C, H, W) float32 in [0, 1].
        labels: (N,) int64.
        class_names: one name per class.
        source: where the data came from (for logs and reports).
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, class_names: Sequence[str], source: str):
        if images.ndim != 4:
            raise ValueError(f"images must be (N, C, H, W), got shape {tuple(images.shape)}")
        if labels.shape != (images.shape[0],):
            raise ValueError(f"labels must be ({images.shape[0]},), got {tuple(labels.shape)}")
        self.images = images.float().contiguous()
        self.labels = labels.long().contiguous()
        self.class_names = list(class_names)
        self.source = source

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int):
        return self.images[index], self.labels[index]

    def __repr__(self) -> str:
        shape = "x".join(str(s) for s in self.images.shape[1:])
        return (f"{type(self).__name__}(n={len(self)}, image={shape}, classes={len(self.class_names)}, "
                f"source={self.source!r})")


class AttributeDataset(Dataset):
    """Images with binary attributes held as whole tensors.

    Attributes:
        images: (N, C, H, W) float32 in [0, 1].
        attributes: (N, K) float32 in {0, 1}.
        attribute_names: K names (CelebA's spelling).
        source: where the data came from.
    """

    def __init__(self, images: torch.Tensor, attributes: torch.Tensor, attribute_names: Sequence[str], source: str):
        if images.ndim != 4:
            raise ValueError(f"images must be (N, C, H, W), got shape {tuple(images.shape)}")
        if attributes.shape != (images.shape[0], len(attribute_names)):
            raise ValueError(
                f"attributes must be ({images.shape[0]}, {len(attribute_names)}), got {tuple(attributes.shape)}"
            )
        self.images = images.float().contiguous()
        self.attributes = attributes.float().contiguous()
        self.attribute_names = list(attribute_names)
        self.source = source

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int):
        return self.images[index], self.attributes[index]

    def attribute(self, name: str) -> torch.Tensor:
        """The (N,) column of one attribute, by name."""
        return self.attributes[:, self.attribute_index(name)]

    def attribute_index(self, name: str) -> int:
        """Column of ``name``; raises ``KeyError`` listing the known names."""
        try:
            return self.attribute_names.index(name)
        except ValueError:
            raise KeyError(f"unknown attribute {name!r}; known: {', '.join(self.attribute_names)}") from None

    def __repr__(self) -> str:
        shape = "x".join(str(s) for s in self.images.shape[1:])
        return (f"{type(self).__name__}(n={len(self)}, image={shape}, attributes={len(self.attribute_names)}, "
                f"source={self.source!r})")


def check_split(split: str, allowed: Sequence[str]) -> None:
    """Raise ``ValueError`` for a split name outside ``allowed``."""
    if split not in allowed:
        raise ValueError(f"unknown split {split!r}; use one of {', '.join(repr(a) for a in allowed)}")


def cache_dir() -> Path:
    """Folder for derived caches (``$CFNB_CACHE`` or ``~/.cache/cfnb``)."""
    root = Path(os.environ.get("CFNB_CACHE", Path.home() / ".cache" / "cfnb"))
    root.mkdir(parents=True, exist_ok=True)
    return root
