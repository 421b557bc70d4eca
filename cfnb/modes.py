"""Eval mode for a block of computation, with every submodule's own mode restored afterwards."""
from __future__ import annotations

import contextlib
from typing import Any, Iterator, Sequence

from torch import nn


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
