"""Reference architectures. Every classifier named ``*GAP*`` ends in global average pooling + one linear layer,
the structure Mirror-CFE needs: ``features(x)`` is the spatial map before pooling and ``head`` the linear layer."""
from __future__ import annotations

import torch
from torch import nn


def _conv_block(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


class GAPClassifier(nn.Module):
    """CNN whose logits are ``head(features(x).mean((2, 3)))``.

    Args:
        in_channels: image channels (1 for MNIST, 3 for faces and coloured digits).
        num_classes: outputs of the linear head (classes, or attributes for multi-label use).
        widths: channels of each stage; every stage after the first halves the resolution, and a last 3x3 block
            at the final width follows.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, widths: tuple[int, ...] = (32, 64, 128)):
        super().__init__()
        layers: list[nn.Module] = []
        cin = in_channels
        for i, width in enumerate(widths):
            layers.append(_conv_block(cin, width, stride=1 if i == 0 else 2))
            cin = width
        layers.append(_conv_block(cin, cin))  # one more stage at the final resolution widens the receptive field
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(cin, num_classes)
        self.in_channels = in_channels
        self.num_classes = num_classes

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Spatial feature map (N, D, h, w) before global average pooling."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3)))


class LeNetClassifier(nn.Module):
    """LeNet-style CNN (two 5x5 convs with max-pooling, FC 256, dropout 0.5), as the oracle in C3LT.

    A different architecture from ``GAPClassifier`` on purpose: an independent judge of counterfactuals.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, image_size: int = 28):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        )
        side = image_size // 4
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(64 * side * side, 256), nn.ReLU(), nn.Dropout(0.5), nn.Linear(256, num_classes)
        )
        self.in_channels = in_channels
        self.num_classes = num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.body(x))


def vae_stages(image_size: int) -> int:
    """Stride-2 stages of a ``ConvVAE`` for square images of ``image_size`` pixels (the smallest map is 4-8 px).

    Raises:
        ValueError: a size outside 16-256 pixels, or one the stages do not divide.
    """
    if isinstance(image_size, bool) or not isinstance(image_size, int) or not 16 <= image_size <= 256:
        raise ValueError(f"image_size must be an int in [16, 256] pixels, got {image_size!r}")
    stages = 2 if image_size <= 32 else 3 if image_size <= 64 else 4 if image_size <= 128 else 5
    if image_size % 2**stages:
        raise ValueError(f"image_size {image_size} is not divisible by {2**stages} (the VAE's {stages} stride-2 "
                         f"stages); resize the images, e.g. to {image_size // 2**stages * 2**stages}")
    return stages


def _vae_widths(image_size: int) -> tuple[list[int], int]:
    """Channels of each stride-2 stage of a ``ConvVAE`` and the side of its smallest map."""
    stages = vae_stages(image_size)
    return [32, 64, 128, 128, 128][:stages], image_size // 2**stages


def vae_decoder(latent_dim: int, channels: int, hidden: int, image_size: int) -> nn.Sequential:
    """A ``ConvVAE``'s decoder (its ``decoder`` attribute): code (N, latent_dim) to images in [0, 1]."""
    widths, side = _vae_widths(image_size)
    layers: list[nn.Module] = [nn.Linear(latent_dim, hidden), nn.ReLU(),
                               nn.Linear(hidden, widths[-1] * side * side), nn.ReLU(),
                               nn.Unflatten(1, (widths[-1], side, side))]
    for cin, cout in zip(widths[::-1], widths[::-1][1:]):
        layers += [nn.ConvTranspose2d(cin, cout, 4, 2, 1), nn.BatchNorm2d(cout), nn.ReLU()]
    layers += [nn.ConvTranspose2d(widths[0], channels, 4, 2, 1), nn.Sigmoid()]
    return nn.Sequential(*layers)


class ConvVAE(nn.Module):
    """Convolutional VAE for square images of 16-256 px; ``encode``/``decode`` make it a generator for GCI's latent
    method.

    Each stride-2 stage halves the image (two stages for up to 32 px, three up to 64, four up to 128, five beyond),
    with 32, 64, 128, 128, 128 channels, down to a 4-8 px map that a ``hidden``-unit layer summarises.

    Args:
        latent_dim: size of the latent code.
        channels: image channels.
        hidden: units between the convolutions and the code.
        image_size: image side in pixels (28 for MNIST).
    """

    def __init__(self, latent_dim: int = 16, channels: int = 1, hidden: int = 128, image_size: int = 28):
        super().__init__()
        self.latent_dim = latent_dim
        self.channels = channels
        self.image_size = image_size
        widths, side = _vae_widths(image_size)
        encoder: list[nn.Module] = [nn.Conv2d(channels, widths[0], 4, 2, 1), nn.LeakyReLU(0.2)]
        for cin, cout in zip(widths, widths[1:]):
            encoder += [nn.Conv2d(cin, cout, 4, 2, 1), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2)]
        encoder += [nn.Flatten(), nn.Linear(widths[-1] * side * side, hidden), nn.LeakyReLU(0.2)]
        self.encoder = nn.Sequential(*encoder)
        self.to_mean = nn.Linear(hidden, latent_dim)
        self.to_logvar = nn.Linear(hidden, latent_dim)
        self.decoder = vae_decoder(latent_dim, channels, hidden, image_size)

    def encode_distribution(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and log-variance, each (N, latent_dim)."""
        hidden = self.encoder(x)
        return self.to_mean(hidden), self.to_logvar(hidden)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Posterior mean (N, latent_dim): the deterministic code a counterfactual search starts from."""
        return self.encode_distribution(x)[0]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images (N, C, image_size, image_size) in [0, 1] from codes (N, latent_dim)."""
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


class AttributeEditor(nn.Module):
    """Attribute-conditioned encoder-decoder in the spirit of AttGAN, for images whose sides are multiples of 8
    (the shipped faces editor: 64x64 RGB).

    ``encode(x)`` gives a content map that should not carry the attributes; ``decode(content, attributes)`` draws
    the image with the (continuous, 0..1) attributes asked for; ``edit(x, attributes)`` does both. One skip
    connection at half resolution keeps the identity details, as in AttGAN.
    """

    def __init__(self, num_attributes: int, attribute_names: list[str] | None = None, width: int = 32,
                 channels: int = 3):
        super().__init__()
        w = width
        self.num_attributes = num_attributes
        self.channels = channels
        self.attribute_names = list(attribute_names or [f"attr{i}" for i in range(num_attributes)])
        self.enc1 = nn.Sequential(nn.Conv2d(channels, w, 4, 2, 1), nn.BatchNorm2d(w), nn.LeakyReLU(0.2))  # 1/2
        self.enc2 = nn.Sequential(nn.Conv2d(w, 2 * w, 4, 2, 1), nn.BatchNorm2d(2 * w), nn.LeakyReLU(0.2))  # 1/4
        self.enc3 = nn.Sequential(nn.Conv2d(2 * w, 4 * w, 4, 2, 1), nn.BatchNorm2d(4 * w), nn.LeakyReLU(0.2))  # 1/8
        a = num_attributes
        self.dec3 = nn.Sequential(nn.ConvTranspose2d(4 * w + a, 2 * w, 4, 2, 1), nn.BatchNorm2d(2 * w),  # 1/4
                                  nn.ReLU())
        self.dec2 = nn.Sequential(nn.ConvTranspose2d(2 * w + a, w, 4, 2, 1), nn.BatchNorm2d(w), nn.ReLU())  # 1/2
        self.dec1 = nn.Sequential(nn.ConvTranspose2d(2 * w + a, w, 4, 2, 1), nn.BatchNorm2d(w), nn.ReLU(),
                                  nn.Conv2d(w, channels, 3, 1, 1), nn.Sigmoid())  # full size

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Content (deep map at 1/8 of the size, skip map at 1/2) for ``decode``."""
        if x.shape[-1] % 8 or x.shape[-2] % 8:
            raise ValueError(f"the attribute editor needs image sides that are multiples of 8, got "
                             f"{x.shape[-2]}x{x.shape[-1]}; resize the images (e.g. size=64)")
        skip = self.enc1(x)
        return self.enc3(self.enc2(skip)), skip

    @staticmethod
    def _tile(attributes: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return attributes[:, :, None, None].expand(-1, -1, like.shape[2], like.shape[3])

    def decode(self, content: tuple[torch.Tensor, torch.Tensor], attributes: torch.Tensor) -> torch.Tensor:
        """Images (N, C, H, W) in [0, 1] drawn from ``content`` with ``attributes`` (N, K) in [0, 1]."""
        deep, skip = content
        h = self.dec3(torch.cat([deep, self._tile(attributes, deep)], 1))
        h = self.dec2(torch.cat([h, self._tile(attributes, h)], 1))
        return self.dec1(torch.cat([h, skip, self._tile(attributes, h)], 1))

    def edit(self, images: torch.Tensor, attributes: torch.Tensor) -> torch.Tensor:
        """Redraw ``images`` with ``attributes`` (N, K): keeps the face, changes the attributes asked for."""
        return self.decode(self.encode(images), attributes)

    def forward(self, images: torch.Tensor, attributes: torch.Tensor) -> torch.Tensor:
        return self.edit(images, attributes)


class FeatureDecoder(nn.Module):
    """Feature-map-to-image decoder: (D, h, w) -> (C, h·2^u, w·2^u) through ``u`` upsampling stages, resized to
    ``image_size`` (H, W) at the end when given and different (classifiers whose maps do not divide the image by a
    power of two)."""

    def __init__(self, feature_channels: int, image_channels: int, upsamplings: int, width: int = 64,
                 image_size: list[int] | tuple[int, int] | None = None):
        super().__init__()
        self.feature_channels, self.image_channels, self.upsamplings = feature_channels, image_channels, upsamplings
        self.width = width
        self.image_size = tuple(image_size) if image_size is not None else None
        layers: list[nn.Module] = [nn.Conv2d(feature_channels, 2 * width, 3, 1, 1), nn.BatchNorm2d(2 * width),
                                   nn.ReLU()]
        channels = 2 * width
        for i in range(upsamplings):
            out = max(width // (2 ** i), 16)
            layers += [nn.ConvTranspose2d(channels, out, 4, 2, 1), nn.BatchNorm2d(out), nn.ReLU()]
            channels = out
        layers += [nn.Conv2d(channels, image_channels, 3, 1, 1), nn.Sigmoid()]
        self.net = nn.Sequential(*layers)

    def forward(self, feature_map: torch.Tensor) -> torch.Tensor:
        images = self.net(feature_map)
        if self.image_size is not None and tuple(images.shape[-2:]) != self.image_size:
            images = nn.functional.interpolate(images, size=self.image_size, mode="bilinear", align_corners=False)
        return images


MIRROR_DECODERS = ("FeatureDecoder", "GeneratorFeatureDecoder")  # the decoder kinds train_decoder makes


class GeneratorFeatureDecoder(nn.Module):
    """Feature-map-to-image decoder that draws through a frozen generator: ``G(mapper(feature_map))``.

    The ``mapper`` (a convolution and two linear layers) turns a (D, h, w) map into a code of a ``ConvVAE``
    built from ``generator_kwargs``; ``drawer`` is a frozen copy of that VAE's decoder (only the mapper is trained,
    by ``cfnb.training.train_decoder(..., generator=...)``). Every decode is then one of the generator's drawings,
    so the edited maps along a Mirror-CFE path decode to images of the data's kind rather than to what a free
    decoder makes of maps no real image has.
    """

    feature_size: tuple[int, ...]
    generator_kwargs: dict[str, int]

    def __init__(self, feature_channels: int, feature_size: list[int] | tuple[int, int],
                 generator_kwargs: dict[str, int], hidden: int = 256, width: int = 64):
        super().__init__()
        self.feature_channels, self.feature_size = feature_channels, tuple(feature_size)
        self.generator_kwargs, self.hidden, self.width = dict(generator_kwargs), hidden, width
        self.drawer = vae_decoder(**generator_kwargs)
        self.drawer.requires_grad_(False)
        h, w = self.feature_size
        self.mapper = nn.Sequential(
            nn.Conv2d(feature_channels, width, 3, 1, 1), nn.BatchNorm2d(width), nn.ReLU(), nn.Flatten(),
            nn.Linear(width * h * w, hidden), nn.ReLU(), nn.Linear(hidden, generator_kwargs["latent_dim"]))

    def train(self, mode: bool = True) -> GeneratorFeatureDecoder:
        super().train(mode)
        self.drawer.eval()  # frozen: its batch-norm statistics stay those it was trained with
        return self

    def code(self, feature_map: torch.Tensor) -> torch.Tensor:
        """The generator code (N, latent_dim) a feature map is drawn from."""
        return self.mapper(feature_map)

    def forward(self, feature_map: torch.Tensor) -> torch.Tensor:
        return self.drawer(self.code(feature_map))
