"""Training a Mirror-CFE decoder for a frozen GAP classifier: the only model Mirror-CFE trains."""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..methods.mirror import boundary, cam_prior, edit_feature_map, gap_parts, reflection
from ..models.architectures import FeatureDecoder
from ..progress import Progress, Reporter


@dataclass(frozen=True)
class DecoderLossWeights:
    """Weights of the decoder's losses (Mirror-CFE's, minus the adversarial one; see ``train_decoder``)."""

    image: float = 10.0
    feature: float = 1.0
    edit_feature: float = 0.1
    classification: float = 0.05
    triangulation: float = 0.1


def _triangulation(images: torch.Tensor, pooled: torch.Tensor) -> torch.Tensor:
    """Keep image-distance ratios equal to feature-distance ratios: pairwise distances, each set scaled to mean 1."""
    image_d = torch.cdist(images.flatten(1), images.flatten(1))
    feature_d = torch.cdist(pooled, pooled)
    off = ~torch.eye(len(images), dtype=torch.bool, device=images.device)
    image_d, feature_d = image_d[off], feature_d[off]
    return (image_d / image_d.mean().clamp_min(1e-8) - feature_d / feature_d.mean().clamp_min(1e-8)).abs().mean()


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


def _class_loss(logits: torch.Tensor, edited_logits: torch.Tensor, attribute: torch.Tensor | None) -> torch.Tensor:
    """The decoded edit must be classified as its features are: CE to their class, or BCE on the moved attribute."""
    if attribute is None:
        return F.cross_entropy(logits, edited_logits.argmax(1))
    pick = attribute[:, None]
    return F.binary_cross_entropy_with_logits(logits.gather(1, pick).squeeze(1),
                                              (edited_logits.gather(1, pick).squeeze(1) > 0).to(logits.dtype))


def train_decoder(
    classifier: nn.Module,
    images: torch.Tensor,
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
    log: Callable[[str], None] | None = print,
    progress: Progress = True,
) -> FeatureDecoder:
    """Train a Mirror-CFE decoder for a frozen GAP classifier (minutes on a CPU for MNIST).

    Each batch decodes the real feature maps (image reconstruction) and feature maps moved along random mirror
    paths towards random targets, with k ~ U(0, ``max_reach``). Losses: image L1 reconstruction; feature
    reconstruction (the classifier's pooled features of the decoded image match the features it was decoded from);
    classification (the decoded edit is classified as its features are); triangulation (pairwise image distances
    proportional to pairwise feature distances). For the first ``warmup`` share of the epochs only the image loss
    counts (the other losses' gradients through the classifier overwhelm it while decodes are still grey blobs),
    then the others ramp in linearly over the next ``warmup`` share. The paper's adversarial loss is left out: it
    needs a discriminator and many more steps than a CPU budget allows; the feature and classification losses keep
    decodes on the classifier's side of the manifold.

    ``multilabel=True`` is for a head of K independent attribute logits (e.g. ``faces-classifier``): each path flips
    one random attribute, across the boundary of its ``AttributeClassifier`` view (w = ±w_k, b = ±b_k), and the
    classification loss is that attribute's BCE.
    """
    features, head = gap_parts(classifier)
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    classifier.eval()
    classifier.requires_grad_(False)
    with torch.no_grad():
        probe = features(images[:2])
    upsamplings = int(round(math.log2(images.shape[-1] / probe.shape[-1])))
    decoder = FeatureDecoder(probe.shape[1], images.shape[1], upsamplings, width)
    optimiser = torch.optim.Adam(decoder.parameters(), lr=lr)
    total_steps = epochs * math.ceil(len(images) / batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=lr, total_steps=total_steps, pct_start=0.1)
    start = time.perf_counter()
    done = 0
    with Reporter(progress, total_steps, "training the decoder", unit="step") as reporter:
        for epoch in range(epochs):
            decoder.train()
            sums = torch.zeros(5)
            order = torch.randperm(len(images), generator=generator)
            for begin in range(0, len(images), batch_size):
                x = images[order[begin:begin + batch_size]]
                with torch.no_grad():
                    fmap = features(x)
                    pooled = fmap.mean((2, 3))
                    w, b, attribute = _training_boundary(head, pooled, generator, multilabel)
                    k = torch.rand(len(x), generator=generator) * max_reach
                    change = (reflection(pooled, w, b) - pooled) * k[:, None]
                    edited_map = edit_feature_map(fmap, change, cam_prior(fmap, w))
                    edited_pooled = pooled + change
                    edited_logits = head(edited_pooled)
                decoded = decoder(torch.cat([fmap, edited_map]))
                recon = decoded[: len(x)]
                re_pooled = features(decoded).mean((2, 3))
                scale = pooled.pow(2).mean().clamp_min(1e-8)
                losses = torch.stack([
                    F.binary_cross_entropy(recon, x),
                    F.mse_loss(re_pooled[: len(x)], pooled) / scale,
                    F.mse_loss(re_pooled[len(x):], edited_pooled) / scale,
                    _class_loss(head(re_pooled[len(x):]), edited_logits, attribute),
                    _triangulation(decoded, torch.cat([pooled, edited_pooled])),
                ])
                progress_share = (epoch + begin / len(images)) / epochs
                ramp = min(1.0, max(0.0, (progress_share - warmup) / max(warmup, 1e-8)))
                weight = torch.tensor([weights.image, weights.feature * ramp, weights.edit_feature * ramp,
                                       weights.classification * ramp, weights.triangulation * ramp])
                loss = (losses * weight).sum()
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                schedule.step()
                sums += losses.detach() * len(x)
                done += 1
                reporter.update(done, total_steps)
            names = ("image", "feature", "edit-feature", "class", "tri")
            parts = ", ".join(f"{n} {v:.4f}" for n, v in zip(names, sums / len(images)))
            reporter.say(f"  epoch {epoch + 1:3d}/{epochs}  {parts}  ({time.perf_counter() - start:.0f}s)", log)
    decoder.eval()
    return decoder
