"""Training loops shared by every recipe: supervised classifiers, multi-label classifiers and VAEs.

All loops are seeded, run on the CPU by default, and use light augmentation (random shifts) where it helps.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, TypeVar

import torch
import torch.nn.functional as F
from torch import nn

from ..progress import Progress, Reporter

ModelT = TypeVar("ModelT", bound=nn.Module)


def random_shift(images: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Shift each image by its own random integer offset in [-max_shift, max_shift] pixels (zero fill)."""
    if max_shift <= 0:
        return images
    n, _, h, w = images.shape
    shifts = torch.randint(-max_shift, max_shift + 1, (n, 2), generator=generator)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = 1
    theta[:, 1, 1] = 1
    theta[:, 0, 2] = shifts[:, 0].float() * 2 / w
    theta[:, 1, 2] = shifts[:, 1].float() * 2 / h
    grid = F.affine_grid(theta.to(images), list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="nearest", padding_mode="zeros", align_corners=False)


def random_degrade(images: torch.Tensor, strength: float, generator: torch.Generator) -> torch.Tensor:
    """Blend each image with its 3x3 box blur by its own random weight w in [0, ``strength``] and add Gaussian
    noise of std 0.02·w: the softness of a generator's redraw, so a classifier trained with it also reads
    redrawn images (an audit through an editor compares redraws)."""
    if strength <= 0:
        return images
    n = images.shape[0]
    w = (torch.rand(n, 1, 1, 1, generator=generator) * strength).to(images)
    blurred = F.avg_pool2d(F.pad(images, (1, 1, 1, 1), mode="replicate"), 3, 1)
    noise = torch.randn(images.shape, generator=generator).to(images)
    return (1 - w) * images + w * blurred + 0.02 * w * noise


def _batches(n: int, batch_size: int, generator: torch.Generator):
    order = torch.randperm(n, generator=generator)
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]


def fit(
    model: ModelT,
    n: int,
    batch_loss: Callable[[torch.Tensor, torch.Generator], torch.Tensor],
    *,
    epochs: int,
    lr: float,
    batch_size: int = 128,
    seed: int = 0,
    optimiser: str = "adam",
    pct_start: float = 0.1,
    log_every: int = 1,
    log: Callable[[str], None] | None = print,
    progress: Progress = True,
) -> ModelT:
    """The loop every recipe shares: seeded shuffling, Adam(W) with a one-cycle schedule, ``batch_loss(index, rng)``
    per batch of sample indices, a log line every ``log_every`` epochs, ``progress`` over the steps (True: a bar,
    False: none, or a callable ``(done, total)``); returns the model in eval mode."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    params = model.parameters()
    opt = (torch.optim.AdamW(params, lr=lr, weight_decay=1e-4) if optimiser == "adamw"
           else torch.optim.Adam(params, lr=lr))
    total_steps = epochs * math.ceil(n / batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=total_steps, pct_start=pct_start)
    start = time.perf_counter()
    done = 0
    with Reporter(progress, total_steps, "training", unit="step") as reporter:
        for epoch in range(epochs):
            model.train()
            total = 0.0
            for index in _batches(n, batch_size, generator):
                value = batch_loss(index, generator)
                opt.zero_grad(set_to_none=True)
                value.backward()
                opt.step()
                schedule.step()
                total += value.item() * len(index)
                done += 1
                reporter.update(done, total_steps)
            if (epoch + 1) % log_every == 0 or epoch == epochs - 1:
                reporter.say(f"  epoch {epoch + 1:3d}/{epochs}  loss {total / n:.4f}  "
                             f"({time.perf_counter() - start:.0f}s)", log)
    model.eval()
    return model


def train_supervised(
    model: ModelT,
    images: torch.Tensor,
    targets: torch.Tensor,
    *,
    loss: str = "ce",
    epochs: int = 20,
    lr: float = 2e-3,
    batch_size: int = 128,
    max_shift: int = 2,
    degrade: float = 0.0,
    seed: int = 0,
    log: Callable[[str], None] | None = print,
    progress: Progress = True,
) -> ModelT:
    """Train a classifier with AdamW and a one-cycle schedule (``log`` and ``progress`` as for ``fit``).

    Args:
        loss: ``"ce"`` (targets are class indices) or ``"bce"`` (targets are (N, K) multi-label 0/1).
        max_shift: random-shift augmentation in pixels (0 disables it).
        degrade: strength of the blur-and-noise augmentation (``random_degrade``; 0 disables it).
    """
    criterion = nn.CrossEntropyLoss() if loss == "ce" else nn.BCEWithLogitsLoss()

    def batch_loss(index: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        batch = random_degrade(random_shift(images[index], max_shift, generator), degrade, generator)
        return criterion(model(batch), targets[index])

    return fit(model, len(images), batch_loss, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed,
               optimiser="adamw", pct_start=0.15, log=log, progress=progress)


def _elbo_terms(mean: torch.Tensor, logvar: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A reparameterised sample of the code and the KL divergence to N(0, I), per batch (summed, averaged)."""
    sample = mean + torch.randn_like(mean) * (0.5 * logvar).exp()
    kl = -0.5 * torch.sum(1 + logvar - mean.pow(2) - logvar.exp()) / len(mean)
    return sample, kl


def train_vae(
    vae: nn.Module,
    images: torch.Tensor,
    *,
    epochs: int = 60,
    lr: float = 2e-3,
    batch_size: int = 128,
    beta: float = 1.0,
    seed: int = 0,
    log: Callable[[str], None] | None = print,
    progress: Progress = True,
) -> nn.Module:
    """Train a VAE with a Bernoulli (binary cross-entropy) likelihood and KL weight ``beta`` (``log`` and
    ``progress`` as for ``fit``)."""
    model: Any = vae  # any VAE with encode_distribution() and decode(), not only ConvVAE

    def batch_loss(index: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        batch = images[index]
        z, kl = _elbo_terms(*model.encode_distribution(batch))
        return F.binary_cross_entropy(model.decode(z), batch, reduction="sum") / len(batch) + beta * kl

    return fit(vae, len(images), batch_loss, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, log_every=5,
               log=log, progress=progress)


@torch.no_grad()
def accuracy(model: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, labels: torch.Tensor,
             batch_size: int = 500) -> float:
    """Top-1 accuracy of ``model`` (a module, put in eval mode, or any logits function) on ``images``."""
    if isinstance(model, nn.Module):
        model.eval()
    correct = 0
    for start in range(0, len(images), batch_size):
        correct += int((model(images[start:start + batch_size]).argmax(1) == labels[start:start + batch_size]).sum())
    return correct / len(images)
