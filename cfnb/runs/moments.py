"""Feature moments for FID in streaming form: count, sum and sum of outer products, added shard by shard.

A Gaussian fit needs only these three, so the Fréchet distance of a whole data set is computed without ever
holding all its features: each shard stores its sums, and the summary adds them up.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..metrics.fid import frechet_from_statistics


@dataclass
class Moments:
    """Sums over M feature vectors of size D, in float64 on the CPU.

    Attributes:
        count: M.
        total: (D,) sum of the features.
        outer: (D, D) sum of their outer products.
    """

    count: int
    total: torch.Tensor
    outer: torch.Tensor

    @classmethod
    def of(cls, features: torch.Tensor) -> Moments:
        """The moments of an (M, D) feature batch."""
        values = features.detach().to("cpu", torch.float64).flatten(1)
        return cls(int(values.shape[0]), values.sum(0), values.T @ values)

    @classmethod
    def empty(cls, size: int) -> Moments:
        return cls(0, torch.zeros(size, dtype=torch.float64), torch.zeros(size, size, dtype=torch.float64))

    def add(self, other: Moments) -> None:
        """Add ``other``'s sums to these (in place)."""
        self.count += other.count
        self.total += other.total
        self.outer += other.outer

    def mean_and_covariance(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean (D,) and unbiased covariance (D, D); needs ``count >= 2``."""
        if self.count < 2:
            raise ValueError(f"a covariance needs at least 2 feature vectors, got {self.count}")
        mean = self.total / self.count
        covariance = (self.outer - self.count * torch.outer(mean, mean)) / (self.count - 1)
        return mean, (covariance + covariance.T) / 2

    def to_tensors(self, prefix: str) -> dict[str, torch.Tensor]:
        """The sums as named tensors for a safetensors file."""
        return {f"{prefix}.count": torch.tensor([self.count], dtype=torch.int64), f"{prefix}.total": self.total,
                f"{prefix}.outer": self.outer}

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor], prefix: str) -> Moments:
        """The sums ``to_tensors`` wrote."""
        return cls(int(tensors[f"{prefix}.count"][0]), tensors[f"{prefix}.total"].double(),
                   tensors[f"{prefix}.outer"].double())


def frechet_from_moments(a: Moments, b: Moments) -> float:
    """Fréchet distance between the Gaussians fitted to two feature sets given by their moments (the formula of
    ``cfnb.metrics.fid.frechet_distance``, from the accumulated means and unbiased covariances)."""
    return frechet_from_statistics(*a.mean_and_covariance(), *b.mean_and_covariance())
