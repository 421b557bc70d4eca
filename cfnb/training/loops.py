"""Training loops shared by every trainer: supervised classifiers, multi-label classifiers and VAEs.

All loops are seeded, train on the model's device (``cfnb.training.fit_*`` choose CUDA when present), read any data
``cfnb.data.image_source`` takes, can checkpoint and resume (``cfnb.training.checkpoints``), and use light
augmentation (random shifts) where it helps.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, TypeVar

import torch
import torch.nn.functional as F
from torch import nn

from ..checks import model_device
from ..data.sources import image_source
from ..progress import Progress, Reporter
from .checkpoints import Checkpointer

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


BatchReader = Callable[[torch.Tensor], tuple[torch.Tensor, Any]]


def batch_reader(data: Any, targets: Any = None) -> tuple[BatchReader, int]:
    """``(read, n)``: ``read(index)`` gives the images (and targets) at ``index`` of any data ``image_source`` takes;
    a tensor is indexed directly (with ``targets`` beside it)."""
    if torch.is_tensor(data):
        return (lambda index: (data[index], targets[index] if targets is not None else None)), len(data)
    source = image_source(data)
    return source.batch, len(source)


def default_device() -> torch.device:
    """Where training runs unless told otherwise: CUDA when present, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class MixedPrecision:
    """``autocast`` (bfloat16 on the CPU, float16 on CUDA) and, for float16, a gradient scaler; a no-op when off."""

    def __init__(self, device: torch.device, enabled: bool):
        self.device, self.enabled = device, enabled
        self.dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
        self.scaler = torch.amp.GradScaler(device.type, enabled=enabled and self.dtype == torch.float16)

    def autocast(self) -> Any:
        return torch.autocast(self.device.type, dtype=self.dtype, enabled=self.enabled)

    def step(self, loss: torch.Tensor, optimiser: torch.optim.Optimizer) -> None:
        """Back-propagate ``loss`` and step ``optimiser`` (scaled when float16 needs it)."""
        self.scaler.scale(loss).backward()
        self.scaler.step(optimiser)
        self.scaler.update()


def one_cycle(optimiser: torch.optim.Optimizer, lr: float, total_steps: int,
              pct_start: float) -> torch.optim.lr_scheduler.LRScheduler:
    """A one-cycle schedule (warm-up over ``pct_start`` of the steps, then annealing) that also suits short runs:
    the warm-up lasts at least two steps, and runs of fewer than four steps keep ``lr`` constant."""
    if total_steps < 4:
        return torch.optim.lr_scheduler.LambdaLR(optimiser, lambda step: 1.0)
    warm = max(pct_start, 2.0 / total_steps)
    return torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=lr, total_steps=total_steps, pct_start=warm)


def fit(
    model: ModelT,
    n: int,
    batch_loss: Callable[[torch.Tensor, torch.Generator, int], torch.Tensor],
    *,
    epochs: int,
    lr: float,
    batch_size: int = 128,
    seed: int = 0,
    optimiser: str = "adam",
    betas: tuple[float, float] = (0.9, 0.999),
    pct_start: float = 0.1,
    log_every: int = 1,
    log: Callable[[str], None] | None = print,
    progress: Progress = True,
    checkpoints: Checkpointer | None = None,
    amp: MixedPrecision | None = None,
    extra_state: dict[str, Any] | None = None,
) -> ModelT:
    """The loop every trainer shares: seeded shuffling, Adam(W) with a one-cycle schedule,
    ``batch_loss(index, rng, step)`` per batch of sample indices (``step`` counts from 0 over the whole run), a log
    line every ``log_every`` epochs, ``progress`` over the steps (True: a bar, False: none, or a callable
    ``(done, total)``); returns the model in eval mode.

    With ``checkpoints`` the whole state (weights, optimiser, schedule, random generators, the epoch's order and
    position) is saved every few steps and, when resuming, restored first: the run continues where it stopped and
    ends with the weights an uninterrupted run gives. ``amp`` runs each step under mixed precision.
    ``extra_state`` names more objects with a ``state_dict`` (e.g. a discriminator that ``batch_loss`` updates, and
    its optimiser) that the checkpoints keep beside the model's. ``betas`` are Adam's (adversarial training takes
    (0.5, 0.999)).
    """
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    params = model.parameters()
    opt = (torch.optim.AdamW(params, lr=lr, betas=betas, weight_decay=1e-4) if optimiser == "adamw"
           else torch.optim.Adam(params, lr=lr, betas=betas))
    per_epoch = math.ceil(n / batch_size)
    total_steps = epochs * per_epoch
    schedule = one_cycle(opt, lr, total_steps, pct_start)
    stateful: dict[str, Any] = {"model": model, "optimiser": opt, "schedule": schedule, **(extra_state or {})}
    if amp is not None:
        stateful["scaler"] = amp.scaler
    generators = {"data": generator}
    position = checkpoints.restore(stateful, generators) if checkpoints is not None else None
    first_epoch, first_batch = (position["epoch"], position["batch"]) if position else (0, 0)
    order: torch.Tensor | None = position["order"] if position else None
    total = position["loss_sum"] if position else 0.0
    start = time.perf_counter()
    done = first_epoch * per_epoch + first_batch
    with Reporter(progress, total_steps, "training", unit="step") as reporter:
        if done:  # resumed: the bar starts where the run stopped
            reporter.update(done, total_steps)
        for epoch in range(first_epoch, epochs):
            model.train()
            if order is None:
                order, total = torch.randperm(n, generator=generator), 0.0
            for batch in range(first_batch, per_epoch):
                index = order[batch * batch_size:(batch + 1) * batch_size]
                opt.zero_grad(set_to_none=True)
                if amp is None:
                    value = batch_loss(index, generator, done)
                    value.backward()
                    opt.step()
                else:
                    with amp.autocast():
                        value = batch_loss(index, generator, done)
                    amp.step(value, opt)
                schedule.step()
                total += value.item() * len(index)
                done += 1
                reporter.update(done, total_steps)
                if checkpoints is not None and checkpoints.due(done, total_steps):
                    checkpoints.save(stateful, generators,
                                     {"epoch": epoch, "batch": batch + 1, "order": order, "loss_sum": total})
            if (epoch + 1) % log_every == 0 or epoch == epochs - 1:
                reporter.say(f"  epoch {epoch + 1:3d}/{epochs}  loss {total / n:.4f}  "
                             f"({time.perf_counter() - start:.0f}s)", log)
            order, first_batch = None, 0
    model.eval()
    return model


def train_supervised(
    model: ModelT,
    images: Any,
    targets: torch.Tensor | None = None,
    *,
    loss: str = "ce",
    epochs: int = 20,
    lr: float = 2e-3,
    batch_size: int = 128,
    max_shift: int = 2,
    degrade: float = 0.0,
    seed: int = 0,
    device: str | torch.device | None = None,
    log: Callable[[str], None] | None = print,
    progress: Progress = True,
    checkpoints: Checkpointer | None = None,
    amp: bool = False,
) -> ModelT:
    """Train a classifier with AdamW and a one-cycle schedule (``log``, ``progress`` and ``checkpoints`` as for
    ``fit``).

    Args:
        images: an (N, C, H, W) tensor with ``targets`` beside it, or any data ``cfnb.data.image_source`` takes
            (carrying its own labels or attributes).
        loss: ``"ce"`` (targets are class indices) or ``"bce"`` (targets are (N, K) multi-label 0/1).
        max_shift: random-shift augmentation in pixels (0 disables it).
        degrade: strength of the blur-and-noise augmentation (``random_degrade``; 0 disables it).
        device: where to train (default: the model's device).
        amp: mixed precision (bfloat16 on the CPU, float16 on CUDA).
    """
    criterion = nn.CrossEntropyLoss() if loss == "ce" else nn.BCEWithLogitsLoss()
    read, n = batch_reader(images, targets)
    run_on = torch.device(device) if device is not None else (model_device(model) or torch.device("cpu"))
    model.to(run_on)

    def batch_loss(index: torch.Tensor, generator: torch.Generator, step: int) -> torch.Tensor:
        pictures, wanted = read(index)
        if wanted is None:
            raise ValueError("training a classifier needs labels or attributes: pass targets=..., or data that "
                             "carries them")
        batch = random_degrade(random_shift(pictures, max_shift, generator), degrade, generator)
        wanted = wanted.float() if loss == "bce" else wanted
        return criterion(model(batch.to(run_on)), wanted.to(run_on))

    return fit(model, n, batch_loss, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, optimiser="adamw",
               pct_start=0.15, log=log, progress=progress, checkpoints=checkpoints,
               amp=MixedPrecision(run_on, True) if amp else None)


def _elbo_terms(mean: torch.Tensor, logvar: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A reparameterised sample of the code and the KL divergence to N(0, I), per batch (summed, averaged)."""
    sample = mean + torch.randn_like(mean) * (0.5 * logvar).exp()
    kl = -0.5 * torch.sum(1 + logvar - mean.pow(2) - logvar.exp()) / len(mean)
    return sample, kl


def train_vae(
    vae: nn.Module,
    images: Any,
    *,
    epochs: int = 60,
    lr: float = 2e-3,
    batch_size: int = 128,
    beta: float = 1.0,
    seed: int = 0,
    device: str | torch.device | None = None,
    log: Callable[[str], None] | None = print,
    progress: Progress = True,
    checkpoints: Checkpointer | None = None,
    amp: bool = False,
) -> nn.Module:
    """Train a VAE with a Bernoulli (binary cross-entropy) likelihood and KL weight ``beta``; ``images`` is a tensor
    or any data ``cfnb.data.image_source`` takes (``device``, ``log``, ``progress``, ``checkpoints`` and ``amp`` as
    for ``train_supervised``)."""
    model: Any = vae  # any VAE with encode_distribution() and decode(), not only ConvVAE
    read, n = batch_reader(images)
    run_on = torch.device(device) if device is not None else (model_device(vae) or torch.device("cpu"))
    vae.to(run_on)

    def batch_loss(index: torch.Tensor, generator: torch.Generator, step: int) -> torch.Tensor:
        batch = read(index)[0].to(run_on)
        z, kl = _elbo_terms(*model.encode_distribution(batch))
        drawn = model.decode(z).float()
        return F.binary_cross_entropy(drawn, batch, reduction="sum") / len(batch) + beta * kl

    return fit(vae, n, batch_loss, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, log_every=5, log=log,
               progress=progress, checkpoints=checkpoints, amp=MixedPrecision(run_on, True) if amp else None)


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
