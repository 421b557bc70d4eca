"""What determines a run's results, as plain JSON, and its SHA-256 fingerprint.

Models are identified by their ``cfnb_name`` (shipped and folder models) or class name plus a hash of their
``state_dict``; option values that are tensors by their hash; data by its description, length and a hash of the
first batch's pixels.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn


def tensor_digest(tensor: torch.Tensor) -> str:
    """SHA-256 of a tensor's dtype, shape and bytes."""
    flat = tensor.detach().cpu().contiguous().reshape(-1)
    digest = hashlib.sha256(f"{flat.dtype}{tuple(tensor.shape)}".encode())
    digest.update(flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b"")
    return digest.hexdigest()


def state_digest(module: nn.Module) -> str:
    """SHA-256 over a module's ``state_dict``: every name with its tensor's digest, in name order."""
    digest = hashlib.sha256()
    for name, value in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor_digest(value).encode() if torch.is_tensor(value) else repr(value).encode())
    return digest.hexdigest()


def model_identity(model: Any) -> dict[str, Any] | None:
    """``{"name": ..., "state_sha256": ...}`` for a model (None for None); a plain callable has no state."""
    if model is None:
        return None
    if isinstance(model, nn.Module):
        name = getattr(model, "cfnb_name", None) or type(model).__name__
        return {"name": str(name), "state_sha256": state_digest(model)}
    return {"name": getattr(model, "__qualname__", type(model).__name__), "state_sha256": None}


def plain(value: Any) -> Any:
    """``value`` as JSON-serialisable data: tuples become lists, tensors their digest, other objects their repr."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if torch.is_tensor(value):
        return {"tensor_sha256": tensor_digest(value), "shape": list(value.shape)}
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    return repr(value)


def fingerprint(config: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of ``config``."""
    return hashlib.sha256(json.dumps(plain(config), sort_keys=True).encode()).hexdigest()
