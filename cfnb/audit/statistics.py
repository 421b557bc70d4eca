"""Streaming statistics with bootstrap intervals, so an audit of any size keeps only running sums.

Intervals come from the Poisson bootstrap (Hanley & MacGibbon 2006; Chamandy et al. 2012): every image gets,
for each of B replicates, a weight drawn from Poisson(1), and each replicate accumulates weighted sums as the
batches stream past. This is the streaming equivalent of resampling the images with replacement: the percentile
interval over the B replicate estimates is the bootstrap 95% interval, and memory is O(B) per figure whatever the
number of images. Weights come from a seeded ``torch.Generator``, so the same audit gives the same intervals.

Nothing here knows about models or plots: tensors in, numbers out.
"""
from __future__ import annotations

import math
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class Estimate:
    """A figure with its bootstrap 95% interval.

    Attributes:
        value: the point estimate over all images (NaN when no image counted).
        low / high: the 2.5% and 97.5% percentiles over the bootstrap replicates.
        n: how many images (or pairs) the figure is computed from.
    """

    value: float
    low: float
    high: float
    n: int

    def to_dict(self) -> dict[str, float | int | None]:
        """JSON-ready: NaN becomes None."""
        return {k: (None if isinstance(v, float) and math.isnan(v) else v)
                for k, v in (("value", self.value), ("low", self.low), ("high", self.high), ("n", self.n))}

    @classmethod
    def from_dict(cls, raw: dict) -> Estimate:
        """The estimate ``to_dict`` wrote (None back to NaN)."""
        value, low, high = (float("nan") if raw.get(k) is None else float(raw[k]) for k in ("value", "low", "high"))
        return cls(value, low, high, int(raw["n"]))

    @classmethod
    def missing(cls) -> Estimate:
        """A figure that could not be computed: NaN value and interval, n = 0."""
        nan = float("nan")
        return cls(nan, nan, nan, 0)

    def __format__(self, spec: str) -> str:
        spec = spec or ".2f"
        if math.isnan(self.value):
            return "n/a"
        return f"{self.value:{spec}} [{self.low:{spec}}, {self.high:{spec}}]"


def interval(point: float, replicates: torch.Tensor, n: int, level: float = 0.95) -> Estimate:
    """Percentile interval of bootstrap ``replicates`` (NaN replicates, which saw no image, are left out)."""
    finite = replicates[torch.isfinite(replicates)]
    if n == 0 or math.isnan(point) or finite.numel() == 0:
        return Estimate(point if n else float("nan"), float("nan"), float("nan"), n)
    tail = (1 - level) / 2
    low, high = torch.quantile(finite.double(), torch.tensor([tail, 1 - tail], dtype=torch.float64)).tolist()
    return Estimate(float(point), float(low), float(high), n)


class PoissonWeights:
    """Draws the (B, n) Poisson(1) bootstrap weights of each batch, seeded.

    ``draw(n, batch=k)`` seeds batch k's weights from (seed, k) alone, so processes that audit different batches
    draw exactly the weights one process would; ``draw(n)`` continues one seeded stream.
    """

    def __init__(self, replicates: int, seed: int):
        if not isinstance(replicates, int) or replicates < 10:
            raise ValueError(f"bootstrap must be an int >= 10 replicates, got {replicates!r}")
        self.replicates = replicates
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed)

    def draw(self, n: int, batch: int | None = None) -> torch.Tensor:
        """(B, n) float64 weights for ``n`` images: batch ``batch``'s, or the stream's next."""
        generator = self.generator if batch is None else torch.Generator().manual_seed(
            self.seed * 1_000_003 + 7_919 * batch + 1)
        rates = torch.ones(self.replicates, n, dtype=torch.float64)
        return torch.poisson(rates, generator=generator)


class _Sums:
    """Running sum and count of one quantity, plus the same for each bootstrap replicate."""

    __slots__ = ("total", "count", "rep_total", "rep_count")

    def __init__(self, replicates: int):
        self.total = 0.0
        self.count = 0
        self.rep_total = torch.zeros(replicates, dtype=torch.float64)
        self.rep_count = torch.zeros(replicates, dtype=torch.float64)

    def add(self, values: torch.Tensor, weights: torch.Tensor) -> None:
        self.total += float(values.sum())
        self.count += int(values.numel())
        self.rep_total += weights @ values
        self.rep_count += weights.sum(1)

    def merge(self, other: _Sums) -> None:
        """Add another accumulator's sums (another process's share of the data)."""
        self.total += other.total
        self.count += other.count
        self.rep_total += other.rep_total
        self.rep_count += other.rep_count

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else float("nan")

    def replicate_means(self) -> torch.Tensor:
        return self.rep_total / self.rep_count  # 0/0 = NaN for replicates that drew no image

    def estimate(self) -> Estimate:
        return interval(self.mean, self.replicate_means(), self.count)


class RunningMean:
    """Mean of a per-image value over all images and within categories (classes, groups), streamed.

    Args:
        replicates: number of bootstrap replicates B (the ``weights`` given to ``add`` must have B rows).
    """

    def __init__(self, replicates: int):
        self.replicates = replicates
        self.overall = _Sums(replicates)
        self.by_key: dict[Hashable, _Sums] = {}

    def add(self, values: torch.Tensor, weights: torch.Tensor, keys: Iterable[Hashable] | None = None) -> None:
        """Count a batch: ``values`` (n,), ``weights`` (B, n) and, optionally, one category key per image."""
        values = values.detach().double().cpu().flatten()
        self.overall.add(values, weights)
        if keys is None:
            return
        keys = list(keys)
        if len(keys) != values.numel():
            raise ValueError(f"got {len(keys)} category keys for {values.numel()} values")
        members: dict[Hashable, list[int]] = {}
        for position, key in enumerate(keys):
            members.setdefault(key, []).append(position)
        for key, positions in members.items():
            index = torch.tensor(positions)
            self.by_key.setdefault(key, _Sums(self.replicates)).add(values[index], weights[:, index])

    def merge(self, other: RunningMean) -> None:
        """Add another accumulator's sums, overall and per category."""
        self.overall.merge(other.overall)
        for key, sums in other.by_key.items():
            self.by_key.setdefault(key, _Sums(self.replicates)).merge(sums)

    def estimate(self, key: Hashable | None = None) -> Estimate:
        """The mean over all images (``key=None``) or over one category, with its bootstrap 95% interval."""
        if key is None:
            return self.overall.estimate()
        return self.by_key[key].estimate() if key in self.by_key else Estimate.missing()

    def keys(self) -> list[Any]:
        """The categories seen, sorted (numbers before text)."""
        return sorted(self.by_key, key=_sort_key)

    def worst(self, min_count: int) -> tuple[Any, Estimate]:
        """The category with the lowest mean among those with at least ``min_count`` images, and its figure.

        The interval is that of the minimum itself: in each bootstrap replicate the minimum over the same
        categories is taken, so it accounts for which category happens to be worst.
        """
        eligible = [k for k in self.keys() if self.by_key[k].count >= min_count]
        if not eligible:
            return None, Estimate.missing()
        means = {k: self.by_key[k].mean for k in eligible}
        worst_key = min(eligible, key=lambda k: means[k])
        replicate_minimum = torch.stack([self.by_key[k].replicate_means() for k in eligible]).nan_to_num(
            nan=float("inf")).amin(0)
        replicate_minimum[torch.isinf(replicate_minimum)] = float("nan")
        count = sum(self.by_key[k].count for k in eligible)
        return worst_key, interval(means[worst_key], replicate_minimum, count)


class RunningCorrelation:
    """Pearson correlation between each of K columns and one query variable, streamed, with bootstrap replicates.

    Used for the correlation difference (CD): the correlation over counterfactual pairs between the change of each
    attribute and the change of the query, against the correlation between each attribute and the label in data.
    A column that never varies (an attribute the counterfactuals never move) has correlation 0, not NaN.
    """

    def __init__(self, columns: int, replicates: int):
        self.columns = columns
        # sums of w, x, y, x^2, y^2, xy; first row the plain sums, then one row per replicate
        shape = (replicates + 1, columns)
        self.w = torch.zeros(replicates + 1, 1, dtype=torch.float64)
        self.x, self.xx, self.xy = (torch.zeros(shape, dtype=torch.float64) for _ in range(3))
        self.y = torch.zeros(replicates + 1, 1, dtype=torch.float64)
        self.yy = torch.zeros(replicates + 1, 1, dtype=torch.float64)
        self.count = 0

    def add(self, x: torch.Tensor, y: torch.Tensor, weights: torch.Tensor) -> None:
        """Count ``x`` (n, K) against ``y`` (n,) with bootstrap ``weights`` (B, n)."""
        x = x.detach().double().cpu()
        y = y.detach().double().cpu().flatten()
        if x.ndim != 2 or x.shape != (y.numel(), self.columns):
            raise ValueError(f"x must be ({y.numel()}, {self.columns}), got {tuple(x.shape)}")
        w = torch.cat([torch.ones(1, y.numel(), dtype=torch.float64), weights], 0)
        self.w += w.sum(1, keepdim=True)
        self.x += w @ x
        self.xx += w @ x.pow(2)
        self.xy += w @ (x * y[:, None])
        self.y += (w @ y)[:, None]
        self.yy += (w @ y.pow(2))[:, None]
        self.count += y.numel()

    def merge(self, other: RunningCorrelation) -> None:
        """Add another accumulator's sums."""
        for name in ("w", "x", "xx", "xy", "y", "yy"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.count += other.count

    def _correlations(self) -> torch.Tensor:
        w = self.w.clamp_min(1e-12)
        cov = self.xy / w - (self.x / w) * (self.y / w)
        var_x = (self.xx / w - (self.x / w).pow(2)).clamp_min(0)
        var_y = (self.yy / w - (self.y / w).pow(2)).clamp_min(0)
        denominator = (var_x * var_y).sqrt()
        rho = cov / denominator.clamp_min(1e-12)
        return torch.where(denominator < 1e-12, torch.zeros_like(rho), rho)  # no co-variation: no correlation

    def estimates(self) -> list[Estimate]:
        """One ``Estimate`` of the correlation per column."""
        rho = self._correlations()
        return [interval(float(rho[0, k]), rho[1:, k], self.count) for k in range(self.columns)]

    def replicates(self) -> torch.Tensor:
        """(B + 1, K) correlations: the plain estimate first, then one row per bootstrap replicate."""
        return self._correlations()


def difference(a: RunningCorrelation, b: RunningCorrelation) -> list[Estimate]:
    """Per column ``|rho_a - rho_b|`` with an interval from pairing the two sets of bootstrap replicates.

    The two correlations come from different samples (counterfactual pairs and data), each with its own
    independent bootstrap, so pairing replicate i of one with replicate i of the other is a valid bootstrap of the
    difference.
    """
    ra, rb = a.replicates(), b.replicates()
    diff = (ra - rb).abs()
    n = min(a.count, b.count)
    return [interval(float(diff[0, k]), diff[1:, k], n) for k in range(diff.shape[1])]


def _sort_key(key: Hashable) -> tuple:
    parts = key if isinstance(key, tuple) else (key,)
    return tuple((0, float(p), "") if isinstance(p, (int, float)) else (1, 0.0, str(p)) for p in parts)


class TopK:
    """The ``k`` highest-scoring items seen so far, with their tensors (the gallery's most telling pairs).

    Memory is ``k`` items whatever the number of images streamed past.
    """

    def __init__(self, k: int):
        self.k = k
        self.scores = torch.empty(0, dtype=torch.float64)
        self.items: dict[str, torch.Tensor] = {}

    def add(self, scores: torch.Tensor, **items: torch.Tensor) -> None:
        """Offer a batch: ``scores`` (n,) and tensors whose first dimension is n."""
        if self.k <= 0 or scores.numel() == 0:
            return
        scores = scores.detach().double().cpu().flatten()
        merged = torch.cat([self.scores, scores])
        keep = merged.argsort(descending=True, stable=True)[: self.k]
        for name, value in items.items():
            value = value.detach().cpu()
            previous = self.items.get(name, value[:0])
            self.items[name] = torch.cat([previous, value])[keep]
        self.scores = merged[keep]

    def merge(self, other: TopK) -> None:
        """Keep the ``k`` best of both."""
        if len(other):
            self.add(other.scores, **other.items)

    def __len__(self) -> int:
        return len(self.scores)
