"""Modes for a block of computation: eval mode, and models frozen on a device, each restored afterwards."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import nn

from .checks import model_device


@contextlib.contextmanager
def eval_mode(models: Sequence[Any]) -> Iterator[None]:
    """Put the ``nn.Module``s among ``models`` in eval mode for the block (other callables are left alone).

    Modes are restored submodule by submodule: a wrapper in train mode around an eval model (e.g. a freshly built
    ``AttributeClassifier`` view) must not come back with the wrapped model switched to train mode."""
    modules = [model for model in models if isinstance(model, nn.Module)]
    modes = [(module, module.training) for model in modules for module in model.modules()]
    for model in modules:
        model.eval()
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training


@contextlib.contextmanager
def frozen(models: Sequence[Any], device: torch.device) -> Iterator[None]:
    """Models in eval mode on ``device`` with gradients off for the block; mode, device and flags restored after."""
    modules = [model for model in models if isinstance(model, nn.Module)]
    saved = []
    for model in modules:
        saved.append((model, [p.requires_grad for p in model.parameters()], model_device(model)))
        model.requires_grad_(False)
        model.to(device)
    try:
        with eval_mode(modules):
            yield
    finally:
        for model, flags, home in saved:
            for param, flag in zip(model.parameters(), flags):
                param.requires_grad_(flag)
            if home is not None:
                model.to(home)
