"""Hand-made ``Counterfactuals`` from small seeded tensors, for figure and panel tests that need no engine."""
from __future__ import annotations

import torch

from cfnb.results import Counterfactuals


def make_result(n: int = 3, channels: int = 1, side: int = 8, frames: int = 6, classes: int = 4,
                method: str = "pixel", attributes: list[str] | None = None, seed: int = 0,
                smooth: bool = False) -> Counterfactuals:
    """A result whose path moves linearly from random originals to random counterfactuals while the probability
    mass moves from class 0 (the source) to class 1 (the target); sample 1 never reaches the target (invalid).

    Args:
        smooth: originals and counterfactuals are blurred noise (compresses like a photo) instead of white noise.
    """
    generator = torch.Generator().manual_seed(seed)
    original = torch.rand(n, channels, side, side, generator=generator)
    counterfactual = torch.rand(n, channels, side, side, generator=generator)
    if smooth:
        kernel = torch.ones(channels, 1, 5, 5) / 25
        blur = lambda x: torch.nn.functional.conv2d(x, kernel, padding=2, groups=channels)
        original, counterfactual = blur(blur(original)).clamp(0, 1), blur(blur(counterfactual)).clamp(0, 1)
    weights = torch.linspace(0, 1, frames).view(frames, 1, 1, 1, 1)
    trajectory = original.unsqueeze(0) + weights * (counterfactual - original).unsqueeze(0)
    mix = torch.linspace(0, 1, frames).view(frames, 1)
    reach = torch.tensor([1.0, 0.3, 1.0] * n)[:n].view(1, n)
    logits = torch.zeros(frames, n, classes)
    logits[..., 0] = 4 * (1 - mix * reach)
    logits[..., 1] = 4 * mix * reach
    trajectory_probabilities = torch.softmax(logits, -1)
    probabilities = trajectory_probabilities[-1]
    prediction = probabilities.argmax(1)
    target = torch.ones(n, dtype=torch.long)
    extras: dict = {"mask": (counterfactual - original).abs().mean(1, keepdim=True)}
    if attributes:
        extras["attribute_names"] = list(attributes)
        extras["attribute_delta"] = torch.randn(n, len(attributes), generator=generator) * 0.3
    return Counterfactuals(
        original=original, counterfactual=counterfactual, source=torch.zeros(n, dtype=torch.long), target=target,
        prediction=prediction, probabilities=probabilities, original_probabilities=trajectory_probabilities[0],
        valid=prediction == target, trajectory=trajectory, trajectory_probabilities=trajectory_probabilities,
        steps_used=torch.full((n,), 10, dtype=torch.long), seconds=0.01, method=method, settings={"lam": 0.1},
        class_names=[f"class{k}" for k in range(classes)], extras=extras,
    )
