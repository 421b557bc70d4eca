"""Tiny seeded models for millisecond unit tests."""
from __future__ import annotations

import torch
from torch import nn


class TinyGAP(nn.Module):
    """A GAP + linear classifier small enough for millisecond tests."""

    def __init__(self, in_channels: int = 1, num_classes: int = 3, seed: int = 0):
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.body = nn.Sequential(nn.Conv2d(in_channels, 8, 3, padding=1), nn.ReLU())
        self.head = nn.Linear(8, num_classes)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=generator) * 0.5)
        self.in_channels = in_channels

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean((2, 3)))


class TinyGenerator(nn.Module):
    """Linear encoder / sigmoid decoder over 1x8x8 images with a 6-d code."""

    def __init__(self, channels: int = 1, side: int = 8, latent: int = 6, seed: int = 1):
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.enc = nn.Linear(channels * side * side, latent)
        self.dec = nn.Linear(latent, channels * side * side)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=generator) * 0.3)
        self.shape = (channels, side, side)
        self.latent_dim = latent

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.enc(x.flatten(1))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.dec(z)).view(-1, *self.shape)


def intensity_bands(n: int, seed: int = 0, side: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """A 3-class toy task: class k images have pixel values in the k-th third of [0, 1]."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 3
    images = (labels.float()[:, None, None, None] + torch.rand(n, 1, side, side, generator=generator)) / 3
    return images, labels


def trained_tiny_classifier(seed: int = 0) -> TinyGAP:
    """TinyGAP fitted to ``intensity_bands`` in ~0.2 s, so every class is reachable by an edit."""
    torch.manual_seed(seed)
    model = TinyGAP(seed=seed)
    images, labels = intensity_bands(96, seed)
    optimiser = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(150):
        loss = nn.functional.cross_entropy(model(images), labels)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    model.zero_grad(set_to_none=True)
    model.eval()
    return model
