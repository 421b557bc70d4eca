"""Audited data as a stream of batches: a tensor, a ``Dataset`` or a ``DataLoader``, cut at ``limit`` images.

Each batch carries its images, and where known their labels, attributes and positions in the data (``index``), so
that per-image inputs given beside the data (labels, attributes, factor values) line up with the images.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, SequentialSampler


@dataclass
class AuditBatch:
    """One batch of audited data.

    Attributes:
        images: (n, C, H, W).
        index: (n,) positions of the images in the audited data.
        labels: (n,) long, or None.
        attributes: (n, K) float in the data's attribute order, or None.
        factor_values: factor -> (n,) long values given with the data.
    """

    images: torch.Tensor
    index: torch.Tensor
    labels: torch.Tensor | None = None
    attributes: torch.Tensor | None = None
    factor_values: dict[str, torch.Tensor] = field(default_factory=dict)


def _aligned(name: str, value: Any, count: int | None) -> torch.Tensor | None:
    if value is None:
        return None
    tensor = torch.as_tensor(value)
    if count is not None and tensor.shape[0] != count:
        raise ValueError(f"{name} has {tensor.shape[0]} entries but the data has {count} images; give one per image")
    return tensor


def data_size(data: Any) -> int | None:
    """Number of images in ``data`` when it can be known without iterating."""
    if torch.is_tensor(data):
        return int(data.shape[0])
    if isinstance(data, DataLoader):
        dataset: Any = data.dataset  # a Dataset need not define __len__ (an IterableDataset does not)
        try:
            return len(dataset)
        except TypeError:
            return None
    try:
        return len(data)
    except TypeError:
        return None


def data_attribute_names(data: Any) -> list[str] | None:
    """The attribute names a dataset (or a loader's dataset) declares, if any."""
    dataset = data.dataset if isinstance(data, DataLoader) else data
    names = getattr(dataset, "attribute_names", None)
    return list(names) if names else None


def _split(batch: Any) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """(images, labels, attributes) from a loader's batch: a tensor, (images, labels-or-attributes, ...) or a dict."""
    if torch.is_tensor(batch):
        return batch, None, None
    if isinstance(batch, Mapping):
        if "images" not in batch:
            raise ValueError(f"a dict batch needs an 'images' key; got keys {sorted(batch)}")
        return batch["images"], batch.get("labels"), batch.get("attributes")
    if isinstance(batch, (tuple, list)) and batch and torch.is_tensor(batch[0]):
        images, labels, attributes = batch[0], None, None
        for extra in batch[1:]:
            if not torch.is_tensor(extra):
                continue
            if extra.ndim == 1 and labels is None and not extra.is_floating_point():
                labels = extra
            elif extra.ndim == 2 and attributes is None:
                attributes = extra
        return images, labels, attributes
    raise TypeError("each batch must be an images tensor, a tuple (images, labels or attributes, ...) or a dict with "
                    f"'images'; got {type(batch).__name__}")


def stream(data: Any, *, labels: Any = None, attributes: Any = None,
           factor_values: Mapping[str, Any] | None = None, batch_size: int = 256,
           limit: int | None = None) -> Iterator[AuditBatch]:
    """Yield ``AuditBatch``es over ``data``, stopping after ``limit`` images.

    Args:
        data: (N, C, H, W) tensor, a ``Dataset`` (read in order) or a ``DataLoader``.
        labels / attributes / factor_values: per-image inputs aligned with the data's order (need an unshuffled
            loader), used where a batch does not carry its own.
        batch_size: images per batch for tensors and datasets.
        limit: stop after this many images.

    Raises:
        ValueError: misaligned per-image inputs, or aligned inputs with a shuffling loader.
    """
    count = data_size(data)
    labels = _aligned("labels", labels, count)
    attributes = _aligned("attributes", attributes, count)
    values = {name: _aligned(f"factor_values[{name!r}]", v, count) for name, v in (factor_values or {}).items()}
    if torch.is_tensor(data):
        loader: Any = None
    elif isinstance(data, DataLoader):
        loader = data
        aligned = labels is not None or attributes is not None or values
        if aligned and not isinstance(data.sampler, SequentialSampler):
            raise ValueError("labels, attributes or factor_values given beside a DataLoader that does not read in "
                             "order (shuffle=True or a custom sampler): they cannot be matched to its images; pass "
                             "shuffle=False, or let the loader's batches carry them")
    elif isinstance(data, Dataset) or (hasattr(data, "__getitem__") and hasattr(data, "__len__")):
        loader = DataLoader(data, batch_size=batch_size, shuffle=False)
    else:
        raise TypeError(f"images must be a tensor (N, C, H, W), a Dataset or a DataLoader, got {type(data).__name__}")
    offset = 0
    batches = (data[s:s + batch_size] for s in range(0, data.shape[0], batch_size)) if loader is None else iter(loader)
    for raw in batches:
        if limit is not None and offset >= limit:
            return
        images, batch_labels, batch_attributes = _split(raw)
        n = images.shape[0]
        if limit is not None and offset + n > limit:
            n = limit - offset
            images = images[:n]
            batch_labels = batch_labels[:n] if batch_labels is not None else None
            batch_attributes = batch_attributes[:n] if batch_attributes is not None else None
        index = torch.arange(offset, offset + n)
        if labels is not None:
            batch_labels = labels[offset:offset + n]
        if attributes is not None:
            batch_attributes = attributes[offset:offset + n]
        given = {name: v[offset:offset + n] for name, v in values.items() if v is not None}
        yield AuditBatch(images, index, batch_labels, batch_attributes, given)
        offset += n


def reorder_attributes(attributes: torch.Tensor, source: Sequence[str] | None, target: Sequence[str]) -> torch.Tensor:
    """Attributes given in the data's order ``source`` (or already in ``target``'s order when None) as ``target``'s."""
    if source is None or list(source) == list(target):
        if attributes.shape[1] != len(target):
            raise ValueError(f"attributes have {attributes.shape[1]} columns but the editor has {len(target)} "
                             f"attributes ({', '.join(target)}); give them in the editor's order")
        return attributes
    missing = [name for name in target if name not in source]
    if missing:
        raise ValueError(f"the data's attributes lack {missing}, which the editor needs; the data has {list(source)}")
    return attributes[:, [list(source).index(name) for name in target]]
