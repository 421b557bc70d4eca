"""Training loops shared by every recipe: supervised classifiers, multi-label classifiers and VAEs.

All loops are seeded, run on the CPU by default, and use light augmentation (random shifts) where it helps.
"""
from __future__ import annotations

import math
import time
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn


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


def _batches(n: int, batch_size: int, generator: torch.Generator):
    order = torch.randperm(n, generator=generator)
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]


def _log(log: Callable[[str], None] | None, message: str) -> None:
    if log is not None:
        log(message)


def train_supervised(
    model: nn.Module,
    images: torch.Tensor,
    targets: torch.Tensor,
    *,
    loss: str = "ce",
    epochs: int = 20,
    lr: float = 2e-3,
    batch_size: int = 128,
    max_shift: int = 2,
    seed: int = 0,
    log: Callable[[str], None] | None = print,
) -> nn.Module:
    """Train a classifier with AdamW and a cosine schedule.

    Args:
        loss: ``"ce"`` (targets are class indices) or ``"bce"`` (targets are (N, K) multi-label 0/1).
        max_shift: random-shift augmentation in pixels (0 disables it).
    """
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * math.ceil(len(images) / batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=lr, total_steps=steps, pct_start=0.15)
    criterion = nn.CrossEntropyLoss() if loss == "ce" else nn.BCEWithLogitsLoss()
    start = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        total = 0.0
        for index in _batches(len(images), batch_size, generator):
            batch = random_shift(images[index], max_shift, generator)
            value = criterion(model(batch), targets[index])
            optimiser.zero_grad(set_to_none=True)
            value.backward()
            optimiser.step()
            schedule.step()
            total += value.item() * len(index)
        _log(log, f"  epoch {epoch + 1:3d}/{epochs}  loss {total / len(images):.4f}  ({time.perf_counter() - start:.0f}s)")
    model.eval()
    return model


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
) -> nn.Module:
    """Train a VAE with a Bernoulli (binary cross-entropy) likelihood and KL weight ``beta``."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    optimiser = torch.optim.Adam(vae.parameters(), lr=lr)
    steps = epochs * math.ceil(len(images) / batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=lr, total_steps=steps, pct_start=0.1)
    start = time.perf_counter()
    for epoch in range(epochs):
        vae.train()
        total = 0.0
        for index in _batches(len(images), batch_size, generator):
            batch = images[index]
            mean, logvar = vae.encode_distribution(batch)
            z = mean + torch.randn_like(mean) * (0.5 * logvar).exp()
            recon = vae.decode(z)
            nll = F.binary_cross_entropy(recon, batch, reduction="sum") / len(batch)
            kl = -0.5 * torch.sum(1 + logvar - mean.pow(2) - logvar.exp()) / len(batch)
            value = nll + beta * kl
            optimiser.zero_grad(set_to_none=True)
            value.backward()
            optimiser.step()
            schedule.step()
            total += value.item() * len(index)
        if epoch % 5 == 4 or epoch == epochs - 1:
            _log(log, f"  epoch {epoch + 1:3d}/{epochs}  -elbo {total / len(images):.2f}  ({time.perf_counter() - start:.0f}s)")
    vae.eval()
    return vae


@torch.no_grad()
def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 500) -> float:
    """Top-1 accuracy of ``model`` on ``images``."""
    model.eval()
    correct = 0
    for start in range(0, len(images), batch_size):
        correct += (model(images[start:start + batch_size]).argmax(1) == labels[start:start + batch_size]).sum().item()
    return correct / len(images)


@torch.no_grad()
def predict_in_batches(model: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """``model(images)`` computed in chunks and concatenated."""
    return torch.cat([model(images[s:s + batch_size]) for s in range(0, len(images), batch_size)])
