"""Training a Mirror-CFE decoder for a frozen GAP classifier: the only model Mirror-CFE trains."""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..checks import model_device
from ..methods.mirror import boundary, cam_prior, edit_feature_map, gap_parts, reflection
from ..models.architectures import ConvVAE, FeatureDecoder, GeneratorFeatureDecoder
from ..modes import frozen
from ..progress import Progress
from .attgan import PatchDiscriminator, critic_hinge_loss
from .checkpoints import Checkpointer
from .loops import MixedPrecision, batch_reader, fit


@dataclass(frozen=True)
class DecoderLossWeights:
    """Weights of the decoder's losses (Mirror-CFE's; see ``train_decoder``). ``adversarial`` 0 leaves the
    discriminator out (faster, and enough for decoders whose paths are not judged for realism). ``code`` and
    ``cycle`` act only on a decoder that draws through a generator (``train_decoder(..., generator=...)``)."""

    image: float = 10.0
    feature: float = 1.0
    edit_feature: float = 0.1
    classification: float = 0.05
    triangulation: float = 0.1
    adversarial: float = 0.0
    code: float = 1.0
    cycle: float = 0.1


def _triangulation(images: torch.Tensor, pooled: torch.Tensor) -> torch.Tensor:
    """Keep image-distance ratios equal to feature-distance ratios: pairwise distances, each set scaled to mean 1."""
    image_d = torch.cdist(images.flatten(1), images.flatten(1))
    feature_d = torch.cdist(pooled, pooled)
    off = ~torch.eye(len(images), dtype=torch.bool, device=images.device)
    image_d, feature_d = image_d[off], feature_d[off]
    return (image_d / image_d.mean().clamp_min(1e-8) - feature_d / feature_d.mean().clamp_min(1e-8)).abs().mean()


class Critic:
    """The decoder's PatchGAN discriminator and its optimiser: ``generator_loss`` first takes one hinge-loss step
    of the discriminator on real images against the (detached) decodes, then returns the decoder's hinge term."""

    def __init__(self, channels: int, side: int, device: torch.device, lr: float = 2e-4):
        depth = 2 if side <= 32 else 3  # patches of about a quarter of the image
        self.network = PatchDiscriminator(channels, width=32, depth=depth).to(device)
        self.optimiser = torch.optim.Adam(self.network.parameters(), lr=lr, betas=(0.5, 0.999))

    def state(self) -> dict[str, Any]:
        return {"critic": self.network, "critic_optimiser": self.optimiser}

    def generator_loss(self, real: torch.Tensor, drawn: torch.Tensor) -> torch.Tensor:
        self.network.train()
        loss = critic_hinge_loss(self.network, real, drawn)
        self.optimiser.zero_grad(set_to_none=True)
        loss.backward()
        self.optimiser.step()
        return -self.network(drawn).mean()


def _training_boundary(head: nn.Linear, pooled: torch.Tensor, generator: torch.Generator,
                       multilabel: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """A random mirror boundary per sample: towards a random other class, or (multi-label) across one random
    attribute's boundary; also the attribute index (None for classes)."""
    n, classes = len(pooled), head.out_features
    if not multilabel:
        source = head(pooled).argmax(1)
        target = (source + torch.randint(1, classes, (n,), generator=generator)) % classes
        return (*boundary(head, source, target), None)
    attribute = torch.randint(0, classes, (n,), generator=generator)
    present = head(pooled).gather(1, attribute[:, None]).squeeze(1) > 0
    sign = 1.0 - 2.0 * present.to(pooled.dtype)  # present: move towards "absent" (w = -w_k), else towards present
    bias = head.bias[attribute] if head.bias is not None else torch.zeros(n, device=pooled.device)
    return head.weight[attribute] * sign[:, None], bias * sign, attribute


def _generator_decoder(generator: nn.Module, probe: torch.Tensor,
                       probe_images: torch.Tensor) -> GeneratorFeatureDecoder:
    """A decoder drawing through a frozen copy of ``generator`` (a ``ConvVAE`` for the classifier's images)."""
    if not isinstance(generator, ConvVAE):
        raise TypeError(f"train_decoder(generator=...) takes a cfnb.models.ConvVAE (e.g. load('mnist-vae')), got "
                        f"{type(generator).__name__}")
    kwargs = {"latent_dim": generator.latent_dim, "channels": generator.channels,
              "hidden": generator.to_mean.in_features, "image_size": generator.image_size}
    if (generator.channels, generator.image_size) != (probe_images.shape[1], probe_images.shape[-1]):
        side = generator.image_size
        raise ValueError(f"the generator draws {generator.channels}x{side}x{side} images, the classifier reads "
                         f"{tuple(probe_images.shape[1:])}: train a ConvVAE on these images")
    decoder = GeneratorFeatureDecoder(probe.shape[1], list(probe.shape[-2:]), kwargs)
    decoder.drawer.load_state_dict(generator.decoder.state_dict())
    return decoder


def _class_loss(logits: torch.Tensor, edited_logits: torch.Tensor, attribute: torch.Tensor | None) -> torch.Tensor:
    """The decoded edit must be classified as its features are: CE to their class, or BCE on the moved attribute."""
    if attribute is None:
        return F.cross_entropy(logits, edited_logits.argmax(1))
    pick = attribute[:, None]
    return F.binary_cross_entropy_with_logits(logits.gather(1, pick).squeeze(1),
                                              (edited_logits.gather(1, pick).squeeze(1) > 0).to(logits.dtype))


def train_decoder(
    classifier: nn.Module,
    images: Any,
    *,
    epochs: int = 20,
    batch_size: int = 128,
    lr: float = 2e-3,
    width: int = 64,
    weights: DecoderLossWeights = DecoderLossWeights(),
    max_reach: float = 1.5,
    warmup: float = 0.3,
    multilabel: bool = False,
    seed: int = 0,
    device: str | torch.device | None = None,
    log: Callable[[str], None] | None = print,
    progress: Progress = True,
    checkpoints: Checkpointer | None = None,
    amp: bool = False,
    generator: ConvVAE | None = None,
) -> FeatureDecoder | GeneratorFeatureDecoder:
    """Train a Mirror-CFE decoder for a frozen GAP classifier (minutes on a CPU for MNIST).

    Each batch decodes the real feature maps (image reconstruction) and feature maps moved along random mirror
    paths towards random targets, with k ~ U(0, ``max_reach``). Losses: image reconstruction (binary
    cross-entropy); feature reconstruction (the classifier's pooled features of the decoded image match the
    features it was decoded from); classification (the decoded edit is classified as its features are);
    triangulation (pairwise image distances proportional to pairwise feature distances). For the first ``warmup``
    share of the epochs only the image loss counts (the other losses' gradients through the classifier overwhelm it
    while decodes are still grey blobs), then the others ramp in linearly over the next ``warmup`` share. With
    ``weights.adversarial`` > 0 the paper's adversarial loss joins them: a PatchGAN discriminator (hinge loss,
    spectral norm, one step per batch, kept in the checkpoints) tells real images from decodes of both the real
    and the edited feature maps, so what the decoder draws along a mirror path, not only its reconstructions, is
    pushed towards the data.

    ``multilabel=True`` is for a head of K independent attribute logits (e.g. ``faces-classifier``): each path flips
    one random attribute, across the boundary of its ``AttributeClassifier`` view (w = ±w_k, b = ±b_k), and the
    classification loss is that attribute's BCE.

    Args:
        images: an (N, C, H, W) tensor, or any data ``cfnb.data.image_source`` takes.
        device: where to train (default: the classifier's device); the classifier is frozen there for the run
            and put back as it was afterwards.
        log / progress / checkpoints / amp: as for ``cfnb.training.loops.fit``.
        generator: a ``ConvVAE`` of the classifier's images. The decoder is then a ``GeneratorFeatureDecoder``:
            a frozen copy of the generator's decoder draws every decode and only a mapper from feature maps to its
            codes is trained, with two more losses: ``weights.code`` (the code of a real image's map is the
            generator's own code of that image) and ``weights.cycle`` (the generator's encoder gives an edit's code
            back for its drawing). Mirror paths then stay among the generator's drawings instead of decoding
            edited maps, which no real image has, to what a free decoder makes of them.
    """
    features, head = gap_parts(classifier)
    read, n = batch_reader(images)
    run_on = torch.device(device) if device is not None else (model_device(classifier) or torch.device("cpu"))
    per_epoch = math.ceil(n / batch_size)
    with frozen([classifier, generator], run_on):
        torch.manual_seed(seed)
        with torch.no_grad():
            probe_images = read(torch.arange(min(2, n)))[0]
            probe = features(probe_images.to(run_on))
        upsamplings = max(0, int(round(math.log2(probe_images.shape[-1] / probe.shape[-1]))))
        natural = (probe.shape[-2] * 2**upsamplings, probe.shape[-1] * 2**upsamplings)
        size = tuple(probe_images.shape[-2:])
        decoder: FeatureDecoder | GeneratorFeatureDecoder
        if generator is None:
            decoder = FeatureDecoder(probe.shape[1], probe_images.shape[1], upsamplings, width,
                                     image_size=list(size) if size != natural else None).to(run_on)
        else:
            decoder = _generator_decoder(generator, probe, probe_images).to(run_on)
        critic = Critic(probe_images.shape[1], min(size), run_on) if weights.adversarial > 0 else None

        def batch_loss(index: torch.Tensor, rng: torch.Generator, step: int) -> torch.Tensor:
            x = read(index)[0].to(run_on)
            with torch.no_grad():
                fmap = features(x)
                pooled = fmap.mean((2, 3))
                w, b, attribute = _training_boundary(head, pooled, rng, multilabel)
                k = torch.rand(len(x), generator=rng).to(run_on) * max_reach
                change = (reflection(pooled, w, b) - pooled) * k[:, None]
                edited_map = edit_feature_map(fmap, change, cam_prior(fmap, w))
                edited_pooled = pooled + change
                edited_logits = head(edited_pooled)
            if not isinstance(decoder, GeneratorFeatureDecoder):
                decoded = decoder(torch.cat([fmap, edited_map])).float()
                code_terms = [decoded.new_zeros(()), decoded.new_zeros(())]
            else:
                assert generator is not None  # a GeneratorFeatureDecoder is built only from one
                codes = decoder.code(torch.cat([fmap, edited_map]))
                decoded = decoder.drawer(codes).float()
                with torch.no_grad():
                    real_codes = generator.encode(x)
                code_terms = [F.mse_loss(codes[: len(x)], real_codes),
                              F.mse_loss(generator.encode(decoded[len(x):]), codes[len(x):])]
            recon = decoded[: len(x)]
            re_pooled = features(decoded).mean((2, 3)).float()
            scale = pooled.pow(2).mean().clamp_min(1e-8)
            losses = torch.stack([
                F.binary_cross_entropy(recon, x),
                F.mse_loss(re_pooled[: len(x)], pooled) / scale,
                F.mse_loss(re_pooled[len(x):], edited_pooled) / scale,
                _class_loss(head(re_pooled[len(x):]), edited_logits, attribute),
                _triangulation(decoded, torch.cat([pooled, edited_pooled])),
                critic.generator_loss(x, decoded) if critic is not None else decoded.new_zeros(()),
                *code_terms,
            ])
            epoch, batch = divmod(step, per_epoch)
            share = (epoch + batch * batch_size / n) / epochs
            ramp = min(1.0, max(0.0, (share - warmup) / max(warmup, 1e-8)))
            weight = torch.tensor([weights.image, weights.feature * ramp, weights.edit_feature * ramp,
                                   weights.classification * ramp, weights.triangulation * ramp,
                                   weights.adversarial * ramp, weights.code, weights.cycle * ramp], device=run_on)
            return (losses * weight).sum()

        fit(decoder, n, batch_loss, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, optimiser="adam",
            pct_start=0.1, log=log, progress=progress, checkpoints=checkpoints,
            amp=MixedPrecision(run_on, True) if amp else None,
            extra_state=critic.state() if critic is not None else None)
    return decoder
