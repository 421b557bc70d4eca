"""The words and numbers that figures, panels and exports print about one counterfactual (one place, one wording)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..metrics.core import proximity, sparsity
from ..results import Counterfactuals

CHANGE_THRESHOLD = 0.1  # a pixel counts as changed when any channel's |x' - x| exceeds this (cfnb.metrics.sparsity)


def check_index(result: Counterfactuals, index: int) -> int:
    """``index`` as a non-negative int within ``result``.

    Raises:
        TypeError: not an int.
        IndexError: out of range.
    """
    if not isinstance(result, Counterfactuals):
        raise TypeError(f"expected a cfnb Counterfactuals result, got {type(result).__name__}")
    if isinstance(index, bool) or not isinstance(index, int):
        raise TypeError(f"index must be an int, got {type(index).__name__}")
    if not -len(result) <= index < len(result):
        raise IndexError(f"index {index} out of range for a result of {len(result)} counterfactual(s)")
    return index % len(result)


@dataclass(frozen=True)
class SampleSummary:
    """What one counterfactual did, in numbers.

    Attributes:
        source / target / prediction: class indices; the ``*_name`` fields hold their class names.
        p_source_before / p_target_before: probabilities on the original.
        p_target_after / p_prediction_after: probabilities on the counterfactual.
        valid: the counterfactual is classified as the target.
        l1: mean |x' - x| per pixel and channel (``cfnb.metrics.proximity``, p = 1).
        changed: share of pixels with a channel changed by more than ``CHANGE_THRESHOLD`` (``cfnb.metrics.sparsity``).
        steps: optimisation steps (or path points) used.
    """

    source: int
    target: int
    prediction: int
    source_name: str
    target_name: str
    prediction_name: str
    p_source_before: float
    p_target_before: float
    p_target_after: float
    p_prediction_after: float
    valid: bool
    l1: float
    changed: float
    steps: int

    @property
    def mark(self) -> str:
        return "✓" if self.valid else "✗"

    @property
    def pair(self) -> str:
        """Row label like ``3→8 ✓``."""
        return f"{self.source_name}→{self.target_name} {self.mark}"

    @property
    def prediction_change(self) -> str:
        """``3 (0.99) → 8 (0.97)``: predicted class and its probability, before and after."""
        return (f"{self.source_name} ({self.p_source_before:.2f}) → "
                f"{self.prediction_name} ({self.p_prediction_after:.2f})")

    @property
    def prediction_line(self) -> str:
        """``prediction: 3 (0.99) → 8 (0.97) ✓``."""
        return f"prediction: {self.prediction_change} {self.mark}"


def summarize(result: Counterfactuals, index: int = 0) -> SampleSummary:
    """Numbers and names of counterfactual ``index``, from the stored result (no model is called)."""
    i = check_index(result, index)
    source, target, prediction = (int(result.source[i]), int(result.target[i]), int(result.prediction[i]))
    original, counterfactual = result.original[i:i + 1].float(), result.counterfactual[i:i + 1].float()
    return SampleSummary(
        source=source, target=target, prediction=prediction,
        source_name=result.name_of(source), target_name=result.name_of(target),
        prediction_name=result.name_of(prediction),
        p_source_before=float(result.original_probabilities[i, source]),
        p_target_before=float(result.original_probabilities[i, target]),
        p_target_after=float(result.probabilities[i, target]),
        p_prediction_after=float(result.probabilities[i, prediction]),
        valid=bool(result.valid[i]), l1=float(proximity(original, counterfactual, p=1)[0]),
        changed=float(sparsity(original, counterfactual, CHANGE_THRESHOLD)[0]),
        steps=int(result.steps_used[i]),
    )


def transition_title(result: Counterfactuals, index: int = 0) -> str:
    """``3 → 8 (mirror): p(8) 0.02 → 0.97``."""
    s = summarize(result, index)
    return (f"{s.source_name} → {s.target_name} ({result.method}): "
            f"p({s.target_name}) {s.p_target_before:.2f} → {s.p_target_after:.2f}")


def describe_attribute_change(names: Sequence[str], delta: torch.Tensor, target_name: str, top: int = 3,
                              threshold: float = 0.1) -> str:
    """Plain words for one sample's attribute change, e.g. "to become not Smiling: lower Mouth_Slightly_Open by 0.80".

    Args:
        names: the attribute names (``result.extras["attribute_names"]``).
        delta: (K,) the sample's attribute change (``result.extras["attribute_delta"][i]``).
        target_name: the class the change leads to.
        top: name at most this many attributes, largest change first.
        threshold: leave out changes smaller than this.
    """
    order = delta.abs().argsort(descending=True)[:top]
    parts = [f"{'raise' if delta[i] > 0 else 'lower'} {names[i]} by {abs(delta[i].item()):.2f}"
             for i in order if abs(delta[i].item()) >= threshold]
    moved = ", ".join(parts) if parts else f"no attribute moved by more than {threshold:.2f}"
    return f"to become {target_name}: " + moved
