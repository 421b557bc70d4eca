"""Generators with named factors, built from a shape VAE: the latent spaces causal steering and audits move in.

``ColourGenerator`` and ``PatchGenerator`` describe coloured / patched digits by a VAE code for the digit's shape
plus explicit nuisance dimensions (colour, patch), and say which dimensions those are in ``factor_dims``.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn


class ColourGenerator(nn.Module):
    """Coloured digits as ``shape VAE code (d) + RGB colour (3)``: decode(z) = VAE.decode(z[:, :d]) · colour.

    Assumes the data's convention that a coloured digit is its grey digit times a colour whose largest channel is
    1 (``cfnb.data.colored_mnist``), so the grey digit is ``x.amax(1)``.

    Args:
        shape_vae: a 1-channel generator with ``encode``/``decode`` (e.g. ``cfnb.models.load("mnist-vae")``).
    """

    shape_vae: Any  # any 1-channel generator with encode()/decode() and latent_dim

    def __init__(self, shape_vae: nn.Module):
        super().__init__()
        self.shape_vae = shape_vae
        self.shape_dim = int(self.shape_vae.latent_dim)
        self.latent_dim = self.shape_dim + 3
        self.factor_dims = {"shape": list(range(self.shape_dim)), "colour": [self.shape_dim + i for i in range(3)]}
        self.in_channels = 3

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] != 3:
            raise ValueError(f"ColourGenerator encodes RGB images (N, 3, H, W), got {tuple(x.shape)}")
        grey = x.amax(1, keepdim=True)
        weight = grey.pow(2)
        colour = (x * weight).flatten(2).sum(2) / weight.flatten(2).sum(2).clamp_min(1e-6)
        colour = colour / colour.amax(1, keepdim=True).clamp_min(1e-6)
        return torch.cat([self.shape_vae.encode(grey), colour], 1)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        grey = self.shape_vae.decode(z[:, : self.shape_dim])
        return grey * z[:, self.shape_dim:, None, None].clamp(0, 1)


class PatchGenerator(nn.Module):
    """Patched digits as ``shape VAE code (d) + patch intensity (1)``: the patch region is drawn on top.

    Args:
        shape_vae: a 1-channel generator with ``encode``/``decode``.
        patch_mask: (1, 1, H, W) 0/1 tensor marking the patch square (``cfnb.data`` exposes it as ``patch_mask``).
    """

    shape_vae: Any  # any 1-channel generator with encode()/decode() and latent_dim
    patch_mask: torch.Tensor  # a buffer, registered in __init__

    def __init__(self, shape_vae: nn.Module, patch_mask: torch.Tensor):
        super().__init__()
        if patch_mask.ndim != 4 or patch_mask.shape[:2] != (1, 1):
            raise ValueError(f"patch_mask must be (1, 1, H, W), got {tuple(patch_mask.shape)}")
        self.shape_vae = shape_vae
        self.register_buffer("patch_mask", patch_mask.float())
        self.shape_dim = int(self.shape_vae.latent_dim)
        self.latent_dim = self.shape_dim + 1
        self.factor_dims = {"shape": list(range(self.shape_dim)), "patch": [self.shape_dim]}
        self.in_channels = 1

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        mask = self.patch_mask
        intensity = (x * mask).flatten(1).sum(1, keepdim=True) / mask.sum()
        return torch.cat([self.shape_vae.encode(x * (1 - mask)), intensity], 1)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        digit = self.shape_vae.decode(z[:, : self.shape_dim])
        mask = self.patch_mask
        return digit * (1 - mask) + z[:, self.shape_dim:, None, None].clamp(0, 1) * mask
