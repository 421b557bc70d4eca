"""One batched forward pass for every caller: a model over many images in chunks, without gradients."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from .checks import check_positive_int, model_device, model_dtype
from .modes import eval_mode

DEFAULT_BATCH = 256


def forward_in_batches(model: Callable[[torch.Tensor], Any], images: torch.Tensor,
                       batch_size: int = DEFAULT_BATCH) -> torch.Tensor:
    """``model(images)`` in chunks of ``batch_size``, in eval mode and without gradients.

    ``images`` may have any leading batch shape (..., C, H, W); the output keeps it. Each chunk is moved to the
    model's device and floating dtype (for an ``nn.Module`` with parameters); the concatenated output comes back on
    the images' device.

    Raises:
        TypeError: the model returns something other than a tensor.
    """
    check_positive_int("batch_size", batch_size)
    lead = images.shape[:-3]
    flat = images.reshape(-1, *images.shape[-3:])
    device = model_device(model) or images.device
    dtype = model_dtype(model) or images.dtype
    with torch.no_grad(), eval_mode([model]):
        outputs = [model(chunk.to(device=device, dtype=dtype)) for chunk in flat.split(batch_size)]
    for output in outputs:
        if not torch.is_tensor(output):
            raise TypeError(f"the model must return a tensor, got {type(output).__name__}")
    joined = torch.cat(outputs).to(images.device)
    return joined.reshape(*lead, *joined.shape[1:])


def probabilities(classifier: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor,
                  batch_size: int = DEFAULT_BATCH) -> torch.Tensor:
    """Softmax class probabilities of ``classifier`` over any leading batch shape (..., C, H, W) -> (..., K)."""
    return torch.softmax(forward_in_batches(classifier, images, batch_size), -1)
