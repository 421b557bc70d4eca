"""Sharpening a VAE into a VAE-GAN (Larsen et al., 2016) whose drawings stay realistic wherever a counterfactual
search takes its code.

A plain VAE's decoder is trained only on codes of real images and judged pixel by pixel, so it blurs, and codes
between or beyond those of real digits decode to smudges. Here a PatchGAN discriminator (``PatchDiscriminator``,
hinge loss) judges three kinds of drawings: reconstructions, samples of the prior, and codes on the segment between
the codes of two different images (the kind of path a latent counterfactual follows from its source towards its
target class). The decoder also matches the discriminator's features of the real image (Larsen et al.'s learned
similarity, with feature matching's stabilising effect), while the pixel likelihood and the KL term of the VAE stay,
so reconstructions stay faithful and the code stays a standard normal.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..checks import model_device
from ..progress import Progress
from .attgan import PatchDiscriminator, critic_hinge_loss
from .checkpoints import Checkpointer
from .loops import _elbo_terms, batch_reader, fit


@dataclass(frozen=True)
class VAEGANWeights:
    """Weights of the losses beside the VAE's per-image negative log-likelihood (BCE summed over the pixels); the
    feature-matching L1 and the adversarial score are means, scaled by the pixel count to the same footing."""

    kl: float = 1.0
    feature_matching: float = 1.0
    adversarial: float = 0.05


def _discriminator_features(critic: PatchDiscriminator, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The critic's last hidden map and its patch scores."""
    hidden = critic.net[:-1](images * 2 - 1)
    return hidden, critic.net[-1](hidden)


def _mixed_codes(mean: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Codes on the segment between each code and another image's code, at a uniform position."""
    partner = mean[torch.randperm(len(mean), generator=generator).to(mean.device)]
    t = torch.rand(len(mean), 1, generator=generator).to(mean)
    return (1 - t) * mean + t * partner


def train_vae_gan(
    vae: nn.Module,
    images: Any,
    *,
    epochs: int = 20,
    lr: float = 1e-3,
    critic_lr: float = 2e-4,
    batch_size: int = 128,
    weights: VAEGANWeights = VAEGANWeights(),
    critic_width: int = 32,
    seed: int = 0,
    device: str | torch.device | None = None,
    log: Callable[[str], None] | None = print,
    progress: Progress = True,
    checkpoints: Checkpointer | None = None,
) -> nn.Module:
    """Train ``vae`` (``encode_distribution``/``decode``; usually a VAE trained by ``train_vae`` first) further as a
    VAE-GAN (see the module docstring) on the shared loop (``cfnb.training.loops.fit``): Adam (betas 0.5, 0.999)
    for both networks, one critic step per batch, a one-cycle schedule for the VAE. With ``checkpoints`` the critic
    and its optimiser are saved beside the VAE's state, so a resumed run ends with an uninterrupted run's weights.

    Args:
        images: an (N, C, H, W) tensor in [0, 1], or any data ``cfnb.data.image_source`` takes.
        weights: the loss weights (``VAEGANWeights``).
        critic_width: channels of the critic's first layer (two stride-2 stages, then one score per patch).

    Returns:
        The VAE, in eval mode.
    """
    model: Any = vae
    read, n = batch_reader(images)
    run_on = torch.device(device) if device is not None else (model_device(vae) or torch.device("cpu"))
    vae.to(run_on)
    torch.manual_seed(seed)
    channels = read(torch.arange(1))[0].shape[1]
    critic = PatchDiscriminator(channels, width=critic_width, depth=2).to(run_on)  # new modules are in train mode
    critic_opt = torch.optim.Adam(critic.parameters(), lr=critic_lr, betas=(0.5, 0.999))

    def batch_loss(index: torch.Tensor, generator: torch.Generator, step: int) -> torch.Tensor:
        x = read(index)[0].to(run_on)
        mean, logvar = model.encode_distribution(x)
        z, kl = _elbo_terms(mean, logvar)
        prior = torch.randn(mean.shape, generator=generator).to(mean)
        drawn = model.decode(torch.cat([z, prior, _mixed_codes(mean.detach(), generator)])).float()

        critic_loss = critic_hinge_loss(critic, x, drawn)
        critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        critic_opt.step()

        real_hidden, _ = _discriminator_features(critic, x)
        fake_hidden, fake_scores = _discriminator_features(critic, drawn)
        likelihood = F.binary_cross_entropy(drawn[: len(x)], x, reduction="sum") / len(x)
        matching = F.l1_loss(fake_hidden[: len(x)], real_hidden.detach()) * x[0].numel()
        adversarial = -fake_scores.mean() * x[0].numel()
        return likelihood + weights.kl * kl + weights.feature_matching * matching + weights.adversarial * adversarial

    fit(vae, n, batch_loss, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, betas=(0.5, 0.999), log=log,
        progress=progress, checkpoints=checkpoints, extra_state={"critic": critic, "critic_optimiser": critic_opt})
    return vae
