"""Images from anywhere as one kind of data set: a tensor, a torch ``Dataset`` or ``DataLoader``, or a spec string
naming an image folder (torchvision's ``ImageFolder`` layout), ``celeba:ROOT`` or an ``.npz`` file.

``image_source(data, ...)`` turns any of them into an ``ImageSource``: a map-style ``Dataset`` of
``(image, target)`` pairs that knows its channels, image size, class or attribute names and how to read a batch
of indices at once, loading files only when they are read (memory stays flat however large the folder).
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..checks import check_images

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


class ImageSource(Dataset):
    """A data set of images in [0, 1] with optional labels or attributes.

    ``source[i]`` is ``(image (C, H, W) float32, target)`` where ``target`` is the label (int64), the attribute
    vector (float32, K) or -1 when the data has neither.

    Attributes:
        channels: 1 or 3.
        image_size: (H, W) of every image.
        class_names: the classes' names (labelled data), else None.
        attribute_names: the attributes' names (attribute data), else None.
        description: where the images come from, for model cards and logs.
    """

    channels: int
    image_size: tuple[int, int]
    class_names: list[str] | None = None
    attribute_names: list[str] | None = None
    description: str = ""

    def __len__(self) -> int:
        raise NotImplementedError

    def images(self, index: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) float32 images at ``index``."""
        raise NotImplementedError

    def targets(self, index: torch.Tensor) -> torch.Tensor | None:
        """(B,) labels or (B, K) attributes at ``index``; None for unlabelled data."""
        return None

    @property
    def has_labels(self) -> bool:
        return self.class_names is not None

    @property
    def has_attributes(self) -> bool:
        return self.attribute_names is not None

    def batch(self, index: torch.Tensor | Sequence[int]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Images and targets at ``index`` in one call (the fast path for training and explaining)."""
        index = torch.as_tensor(index, dtype=torch.long)
        return self.images(index), self.targets(index)

    def subset(self, index: torch.Tensor | Sequence[int]) -> ImageSource:
        """The images at ``index`` (in that order) as a source of their own, e.g. a held-out split."""
        return SubsetSource(self, torch.as_tensor(index, dtype=torch.long))

    def split(self, fraction: float, seed: int = 0) -> tuple[ImageSource, ImageSource]:
        """``(rest, held_out)``: a seeded random ``fraction`` of the images held out (at least one of each)."""
        if not 0 < fraction < 1:
            raise ValueError(f"the held-out fraction must be in (0, 1), got {fraction!r}")
        if len(self) < 2:
            raise ValueError("at least 2 images are needed to hold some out")
        order = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))
        held = min(max(1, round(fraction * len(self))), len(self) - 1)
        return self.subset(order[held:].sort().values), self.subset(order[:held].sort().values)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        images, targets = self.batch(torch.tensor([int(i)]))
        target = targets[0] if targets is not None else torch.tensor(-1)
        return images[0], target

    def __repr__(self) -> str:
        what = (f"classes={len(self.class_names)}" if self.class_names is not None else
                f"attributes={len(self.attribute_names)}" if self.attribute_names is not None else "unlabelled")
        return (f"{type(self).__name__}(n={len(self)}, image={self.channels}x{self.image_size[0]}x"
                f"{self.image_size[1]}, {what}, {self.description!r})")


class _BatchSource(ImageSource):
    """A source that reads images and targets together: ``images`` and ``targets`` are halves of ``batch``."""

    def images(self, index: torch.Tensor) -> torch.Tensor:
        return self.batch(index)[0]

    def targets(self, index: torch.Tensor) -> torch.Tensor | None:
        return self.batch(index)[1]


class SubsetSource(_BatchSource):
    """Some of another source's images, by index."""

    def __init__(self, parent: ImageSource, index: torch.Tensor):
        if len(index) and (int(index.min()) < 0 or int(index.max()) >= len(parent)):
            raise IndexError(f"subset indices out of range for {len(parent)} images")
        self.parent, self.index = parent, index
        self.channels, self.image_size = parent.channels, parent.image_size
        self.class_names, self.attribute_names = parent.class_names, parent.attribute_names
        self.description = f"{len(index)} of {parent.description}"

    def __len__(self) -> int:
        return len(self.index)

    def batch(self, index: torch.Tensor | Sequence[int]) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.parent.batch(self.index[torch.as_tensor(index, dtype=torch.long)])

    @property
    def has_labels(self) -> bool:
        return self.parent.has_labels


class TensorSource(ImageSource):
    """Images held in one (N, C, H, W) tensor, with (N,) labels or (N, K) attributes."""

    def __init__(self, images: torch.Tensor, labels: Any = None, attributes: Any = None,
                 class_names: Sequence[str] | None = None, attribute_names: Sequence[str] | None = None,
                 description: str = "a tensor of images"):
        check_images(images, channels=(1, 3))
        self._images = images
        self.channels, self.image_size = int(images.shape[1]), (int(images.shape[2]), int(images.shape[3]))
        self.description = description
        self._labels = _checked_labels(labels, len(images), class_names) if labels is not None else None
        if self._labels is not None:
            self.class_names = (list(class_names) if class_names is not None
                                else [str(k) for k in range(int(self._labels.max()) + 1)])
        self._attributes = None
        if attributes is not None:
            self._attributes = torch.as_tensor(attributes).float()
            width = self._attributes.shape[1] if self._attributes.ndim == 2 else -1
            if self._attributes.shape[0] != len(images) or width < 1:
                raise ValueError(f"attributes must be (N, K) with N = {len(images)}, got "
                                 f"{tuple(self._attributes.shape)}")
            self.attribute_names = (list(attribute_names) if attribute_names is not None
                                    else [f"attribute {k}" for k in range(width)])
            if len(self.attribute_names) != width:
                raise ValueError(f"{len(self.attribute_names)} attribute names for {width} attribute columns")

    def __len__(self) -> int:
        return len(self._images)

    def images(self, index: torch.Tensor) -> torch.Tensor:
        return self._images[index].float()

    def targets(self, index: torch.Tensor) -> torch.Tensor | None:
        if self._labels is not None:
            return self._labels[index]
        return self._attributes[index] if self._attributes is not None else None


class DatasetSource(_BatchSource):
    """A map-style torch ``Dataset`` whose items are an image, ``(image, target, ...)`` or a dict with ``images``."""

    def __init__(self, dataset: Dataset, class_names: Sequence[str] | None = None,
                 attribute_names: Sequence[str] | None = None, description: str | None = None):
        if not hasattr(dataset, "__getitem__") or not hasattr(dataset, "__len__"):
            raise TypeError(f"{type(dataset).__name__} is not a map-style Dataset (it needs __len__ and "
                            "__getitem__); iterable data sets cannot be read in a reproducible order")
        if len(dataset) == 0:
            raise ValueError("the data set is empty")
        self._dataset = dataset
        first, target = _split_item(dataset[0])
        check_images(first[None], "the data set's images", channels=(1, 3))
        self.channels, self.image_size = int(first.shape[0]), (int(first.shape[1]), int(first.shape[2]))
        names = class_names if class_names is not None else getattr(dataset, "class_names", None) or getattr(
            dataset, "classes", None)
        if target is not None and target.ndim == 0:
            self.class_names = list(names) if names is not None else None
        elif target is not None:
            self.attribute_names = list(attribute_names or getattr(dataset, "attribute_names", None)
                                        or [f"attribute {k}" for k in range(target.shape[0])])
        self._labelled = target is not None
        self.description = description or f"{type(dataset).__name__} ({len(dataset)} images)"

    def __len__(self) -> int:
        return len(self._dataset)

    def batch(self, index: torch.Tensor | Sequence[int]) -> tuple[torch.Tensor, torch.Tensor | None]:
        items = [_split_item(self._dataset[int(i)]) for i in torch.as_tensor(index).tolist()]
        images = torch.stack([image for image, _ in items]).float()
        if images.shape[1:] != (self.channels, *self.image_size):
            raise ValueError(f"the data set's images are not all {self.channels}x{self.image_size[0]}x"
                             f"{self.image_size[1]} (found {tuple(images.shape[1:])}): resize them to one size")
        if not self._labelled:
            return images, None
        targets = torch.stack([torch.as_tensor(t) for _, t in items])
        return images, targets.long() if targets.ndim == 1 and not targets.is_floating_point() else targets.float()

    @property
    def has_labels(self) -> bool:
        return self._labelled and self.attribute_names is None


class FileSource(ImageSource):
    """Image files read when needed (PIL), each made square by a centre crop when ``size`` is given and resized."""

    def __init__(self, files: Sequence[Path], size: int | None, targets: torch.Tensor | None,
                 class_names: Sequence[str] | None, attribute_names: Sequence[str] | None, description: str):
        from PIL import Image, UnidentifiedImageError

        if not files:
            raise ValueError(f"no images in {description}: expected files ending in {', '.join(IMAGE_SUFFIXES)}")
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or not 8 <= size <= 1024):
            raise ValueError(f"size must be an int in [8, 1024] pixels, got {size!r}")
        self.files = list(files)
        self.size = size
        modes, sizes = set(), set()
        for path in self.files:  # headers only: cheap even for large folders
            try:
                with Image.open(path) as image:
                    modes.add("L" if image.mode in ("L", "1", "I;16", "I") else "RGB")
                    sizes.add(image.size)
            except (OSError, UnidentifiedImageError) as error:
                raise ValueError(f"cannot read {path} as an image ({error}); remove or replace it") from None
        self.mode = "L" if modes == {"L"} else "RGB"
        if size is None and len(sizes) > 1:
            listed = ", ".join(f"{w}x{h}" for w, h in sorted(sizes)[:4])
            raise ValueError(f"the images of {description} have different sizes ({listed}...): pass size=N to resize "
                             "them all to N x N")
        width, height = next(iter(sizes)) if size is None else (size, size)
        self.channels, self.image_size = (1 if self.mode == "L" else 3), (height, width)
        self._targets = targets
        self.class_names = list(class_names) if class_names is not None else None
        self.attribute_names = list(attribute_names) if attribute_names is not None else None
        self.description = description

    def __len__(self) -> int:
        return len(self.files)

    def _read(self, path: Path) -> np.ndarray:
        from PIL import Image

        with Image.open(path) as image:
            image = image.convert(self.mode)
            if self.size is not None:
                width, height = image.size
                side = min(width, height)
                left, top = (width - side) // 2, (height - side) // 2
                image = image.crop((left, top, left + side, top + side)).resize((self.size, self.size),
                                                                                Image.Resampling.BICUBIC)
            array = np.asarray(image, dtype=np.uint8)
        return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)

    def images(self, index: torch.Tensor) -> torch.Tensor:
        pixels = np.stack([self._read(self.files[int(i)]) for i in index.tolist()])
        return torch.from_numpy(pixels).float().div_(255)

    def targets(self, index: torch.Tensor) -> torch.Tensor | None:
        return self._targets[index] if self._targets is not None else None


def image_folder(root: str | Path, size: int | None = None) -> FileSource:
    """An image folder in torchvision's ``ImageFolder`` layout (``root/<class>/<image>``): the class folders,
    sorted, are the labels.

    Raises:
        FileNotFoundError: no such folder. ValueError: no class folder or no image in it, an unreadable image, or
        images of different sizes without ``size``.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"no folder {root}")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise ValueError(f"{root} has no class folders: expected the ImageFolder layout root/<class>/<image files>")
    files, labels = [], []
    for label, name in enumerate(classes):
        found = sorted(p for p in (root / name).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        files += found
        labels += [label] * len(found)
    return FileSource(files, size, torch.tensor(labels, dtype=torch.long), classes, None,
                      f"image folder {root} ({len(files)} images, {len(classes)} classes)")


def celeba_source(root: str | Path, split: str = "train", size: int = 64, limit: int | None = None) -> FileSource:
    """CelebA's aligned faces in their published layout (see ``cfnb.data.load_celeba``) with their 40 attributes,
    read when needed."""
    from .celeba import IMAGE_FOLDER, read_celeba_index

    folder, files, attributes, names, how = read_celeba_index(root, split)
    if limit is not None:
        files, attributes = files[:limit], attributes[:limit]
    paths = [folder / IMAGE_FOLDER / name for name in files]
    return FileSource(paths, size, attributes.float(), None, names, f"CelebA {split} from {folder} ({how})")


def npz_source(path: str | Path) -> TensorSource:
    """An ``.npz`` file with ``images`` ((N, H, W), (N, H, W, C) or (N, C, H, W); uint8 0-255 or floats in [0, 1]),
    optional ``labels`` (N,) and optional ``class_names``."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"no file {path}")
    with np.load(path, allow_pickle=False) as archive:
        if "images" not in archive:
            raise ValueError(f"{path} has no 'images' array (it has {', '.join(archive.files) or 'nothing'})")
        images = np.asarray(archive["images"])
        labels = np.asarray(archive["labels"]) if "labels" in archive else None
        class_names = [str(n) for n in archive["class_names"]] if "class_names" in archive else None
    if images.ndim == 3:
        images = images[:, None]
    elif images.ndim == 4 and images.shape[-1] in (1, 3) and images.shape[1] not in (1, 3):
        images = images.transpose(0, 3, 1, 2)
    tensor = torch.from_numpy(np.ascontiguousarray(images))
    tensor = tensor.float().div_(255) if tensor.dtype == torch.uint8 else tensor.float()
    return TensorSource(tensor, torch.from_numpy(labels) if labels is not None else None, None, class_names, None,
                        f"{path.name} ({len(tensor)} images)")


def open_data(spec: str | os.PathLike, *, size: int | None = None, split: str = "train") -> ImageSource:
    """The images a spec names: ``celeba:ROOT``, a ``.npz`` file, or an image folder (``ImageFolder`` layout).

    Args:
        spec: what to read.
        size: resize every image to size x size (a centre crop first); required for folders of mixed sizes.
        split: CelebA's split (``train``, ``valid`` or ``test``).
    """
    text = os.fspath(spec)
    if text.startswith("celeba:"):
        return celeba_source(text[len("celeba:"):], split, size or 64)
    if text.endswith(".npz"):
        source = npz_source(text)
        if size is not None and source.image_size != (size, size):
            raise ValueError(f"{text} holds {source.image_size[0]}x{source.image_size[1]} images; resize them "
                             f"before saving (size={size} is for folders and CelebA)")
        return source
    return image_folder(text, size)


def image_source(data: Any, labels: Any = None, attributes: Any = None, *, size: int | None = None,
                 class_names: Sequence[str] | None = None,
                 attribute_names: Sequence[str] | None = None) -> ImageSource:
    """Any supported data as an ``ImageSource``: an ``ImageSource``, a spec (``open_data``), a tensor (with
    ``labels`` or ``attributes``, and ``class_names``/``attribute_names`` for them), a cfnb data set with
    ``.images``, a map-style ``Dataset`` or a ``DataLoader`` (its data set is read; its batch size is the caller's
    to reuse)."""
    if isinstance(data, ImageSource):
        return data
    if isinstance(data, (str, os.PathLike)):
        return open_data(data, size=size)
    if isinstance(data, DataLoader):
        data = data.dataset
    if torch.is_tensor(getattr(data, "images", None)):  # cfnb's ImageDataset, AttributeDataset and the like
        labels = getattr(data, "labels", None) if labels is None else labels
        attributes = getattr(data, "attributes", None) if attributes is None and labels is None else attributes
        names = class_names or getattr(data, "class_names", None)
        return TensorSource(data.images, labels, attributes, names if labels is not None else None,
                            getattr(data, "attribute_names", None), getattr(data, "source", "a cfnb data set"))
    if torch.is_tensor(data):
        return TensorSource(data, labels, attributes, class_names, attribute_names)
    if labels is not None or attributes is not None:
        raise ValueError("labels= and attributes= go with a tensor of images; a Dataset carries its own targets")
    return DatasetSource(data, class_names)


def _split_item(item: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    if isinstance(item, dict):
        image, target = item.get("images", item.get("image")), item.get("labels", item.get("attributes"))
    elif isinstance(item, (tuple, list)):
        image, target = item[0], (item[1] if len(item) > 1 else None)
    else:
        image, target = item, None
    if not torch.is_tensor(image):
        raise TypeError(f"the data set's items must hold image tensors (C, H, W), got {type(image).__name__}; "
                        "add transforms.ToTensor() to an image data set")
    return image, (torch.as_tensor(target) if target is not None else None)


def _checked_labels(labels: Any, n: int, class_names: Sequence[str] | None) -> torch.Tensor:
    labels = torch.as_tensor(labels)
    if labels.shape != (n,) or labels.is_floating_point():
        raise ValueError(f"labels must be (N,) integers with N = {n}, got shape {tuple(labels.shape)} and dtype "
                         f"{labels.dtype}")
    labels = labels.long()
    top = len(class_names) if class_names is not None else None
    if bool((labels < 0).any()) or (top is not None and bool((labels >= top).any())):
        bad = sorted(set(labels[(labels < 0) | (labels >= (top or 1 << 62))].tolist()))[:5]
        raise ValueError(f"labels out of range: {bad} (there are {top if top is not None else 'no'} class names); "
                         "labels must be 0..K-1")
    return labels
