"""Target rules of a run: one class for every image, ``"runner-up"`` or ``"next"``."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from ..checks import class_index

RULES = {
    "runner-up": "each image's second most likely class",
    "next": "(prediction + 1) mod K",
}


def check_target(target: Any, class_names: Sequence[str]) -> int | str:
    """A class index (from an index or a class name) or the name of a rule.

    Raises:
        ValueError: an unknown rule or class name, or a class out of range.
        TypeError: neither an int nor a str.
    """
    if isinstance(target, str) and target in RULES:
        if target == "runner-up" and len(class_names) < 2:
            raise ValueError("target='runner-up' needs a classifier with at least 2 classes")
        return target
    if isinstance(target, str) and target not in class_names:
        rules = ", ".join(f"{name!r} ({meaning})" for name, meaning in RULES.items())
        raise ValueError(f"unknown target {target!r}: give a class index, a class name "
                         f"({', '.join(map(str, class_names))}) or a rule: {rules}")
    if isinstance(target, bool) or not isinstance(target, (int, str)):
        raise TypeError(f"target must be a class index, a class name, 'runner-up' or 'next', got "
                        f"{type(target).__name__}")
    return class_index(target, class_names)


def targets_for(rule: int | str, probabilities: torch.Tensor) -> torch.Tensor:
    """(n,) targets of a batch from the classifier's (n, K) probabilities on its originals."""
    n, classes = probabilities.shape
    if isinstance(rule, int):
        return torch.full((n,), rule, dtype=torch.long)
    if rule == "runner-up":
        return probabilities.topk(2, dim=1).indices[:, 1].cpu()
    return ((probabilities.argmax(1) + 1) % classes).cpu()
