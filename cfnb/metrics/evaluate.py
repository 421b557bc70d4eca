"""``evaluate``: every metric the given models allow, averaged over the samples of a ``Counterfactuals``."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from ..results import Counterfactuals
from .core import mnac, oracle_validity, proximity, sparsity, validity
from .fid import FIDResult, domain_features, fid
from .interpretability import Autoencoder, im1, im2
from .lpips import lpips_distance
from .transition import cout


def evaluate(
    result: Counterfactuals,
    classifier: nn.Module | None = None,
    oracle: nn.Module | None = None,
    attribute_classifier: nn.Module | None = None,
    autoencoders: Mapping[int, Autoencoder] | None = None,
    autoencoder: Autoencoder | None = None,
    fid_reference: torch.Tensor | None = None,
    fid_network: nn.Module | None = None,
    lpips: bool = False,
    *,
    sparsity_threshold: float = 0.1,
    cout_steps: int = 50,
    mnac_exclude: int | Sequence[int] | None = None,
    lpips_net: str = "alex",
    batch_size: int = 256,
) -> dict[str, float]:
    """Every metric the given models allow, averaged over the samples of a ``Counterfactuals``.

    Always: ``validity`` (from the result's predictions), ``l1`` and ``l2`` (``proximity`` with p = 1, 2) and
    ``sparsity``. With ``classifier`` (the explained one): ``cout``. With ``oracle``: ``oracle_validity``. With
    ``attribute_classifier``: ``mnac``. With ``autoencoders`` (per class): ``im1``, and ``im2`` if ``autoencoder``
    (all classes) is given too. With ``fid_reference``: ``fid`` between the counterfactuals and those real images,
    over ``domain_features(fid_network or classifier)``. With ``lpips=True``: ``lpips`` between originals and
    counterfactuals. Metrics whose model is missing are left out of the dict (never NaN-filled). Averages are over all
    samples, valid or not. Models are put in eval mode for the calls and nothing is differentiated.

    Args:
        result: the counterfactuals to score.
        classifier: the classifier that was explained (logits over the result's classes).
        oracle: an independently trained classifier over the same classes.
        attribute_classifier: multi-label attribute classifier for MNAC.
        autoencoders: class label -> class-specific autoencoder, covering the result's sources and targets.
        autoencoder: autoencoder trained on all classes (for IM2).
        fid_reference: (M, C, H, W) real images to compare the counterfactuals with (e.g. of the target class), M >= 2.
        fid_network: network whose features FID uses; defaults to ``classifier``.
        lpips: compute LPIPS (needs the backbone weights on disk).
        sparsity_threshold: see ``sparsity``.
        cout_steps: see ``cout``.
        mnac_exclude: see ``mnac`` (e.g. the query attribute's index).
        lpips_net: LPIPS backbone.
        batch_size: images per forward pass.

    Returns:
        A flat dict of floats, keys among validity, oracle_validity, l1, l2, sparsity, cout, mnac, im1, im2, fid, lpips.

    Raises:
        TypeError: ``result`` is not a ``Counterfactuals``.
        ValueError: an empty result; ``fid_reference`` without a network; ``autoencoder`` without ``autoencoders``.
        LPIPSUnavailable: ``lpips=True`` but the LPIPS weights are not on disk.
    """
    if not isinstance(result, Counterfactuals):
        raise TypeError(f"result must be a Counterfactuals, got {type(result).__name__}")
    if len(result) == 0:
        raise ValueError("result holds no counterfactuals")
    x, x_cf = result.original, result.counterfactual
    scores = {
        "validity": validity(result),
        "l1": proximity(x, x_cf, p=1).mean().item(),
        "l2": proximity(x, x_cf, p=2).mean().item(),
        "sparsity": sparsity(x, x_cf, sparsity_threshold).mean().item(),
    }
    if oracle is not None:
        scores["oracle_validity"] = oracle_validity(oracle, x_cf, result.target, batch_size)
    if classifier is not None:
        scores["cout"] = cout(classifier, x, x_cf, result.source, result.target, cout_steps, batch_size).mean().item()
    if attribute_classifier is not None:
        counts = mnac(attribute_classifier, x, x_cf, exclude=mnac_exclude, batch_size=batch_size)
        scores["mnac"] = counts.float().mean().item()
    scores.update(_interpretability(result, autoencoders, autoencoder, batch_size))
    if fid_reference is not None:
        scores["fid"] = _fid_to_reference(x_cf, fid_reference, fid_network or classifier, batch_size).value
    if lpips:
        scores["lpips"] = lpips_distance(x, x_cf, net=lpips_net).mean().item()
    return scores


def _interpretability(
    result: Counterfactuals,
    autoencoders: Mapping[int, Autoencoder] | None,
    autoencoder: Autoencoder | None,
    batch_size: int,
) -> dict[str, float]:
    if autoencoders is None:
        if autoencoder is not None:
            raise ValueError("IM2 needs the class autoencoders too: pass `autoencoders` with `autoencoder`")
        return {}
    x_cf = result.counterfactual
    scores = {"im1": im1(autoencoders, x_cf, result.target, result.source, batch_size=batch_size).mean().item()}
    if autoencoder is not None:
        scores["im2"] = im2(autoencoders, autoencoder, x_cf, result.target, batch_size=batch_size).mean().item()
    return scores


def _fid_to_reference(
    counterfactual: torch.Tensor, reference: torch.Tensor, network: nn.Module | None, batch_size: int
) -> FIDResult:
    if network is None:
        raise ValueError("fid_reference needs a feature network: pass `fid_network` (or `classifier`)")
    extractor = domain_features(network)
    return fid(counterfactual, reference, extractor, extractor.name, batch_size)
