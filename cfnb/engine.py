"""``cfnb.explain``: one entry point for every counterfactual method, batched on CPU or CUDA."""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from . import methods
from .checks import (
    check_classifier,
    check_classifier_images,
    class_names_of,
    model_dtype,
    resolve_device,
    resolve_targets,
)
from .forward import probabilities
from .methods.base import MethodOutput, Problem
from .modes import frozen
from .progress import Progress, Reporter, check_progress
from .results import Counterfactuals

HELPER_ROLES = ("generator", "decoder", "editor", "attribute_classifier")
CHUNK = 2048  # images per forward pass when the result's probabilities are computed


def explain(
    classifier: nn.Module,
    images: torch.Tensor,
    target: int | str | Sequence[int] | torch.Tensor,
    method: str = "latent",
    *,
    generator: nn.Module | None = None,
    decoder: nn.Module | None = None,
    editor: nn.Module | None = None,
    attribute_classifier: nn.Module | None = None,
    device: str | torch.device | None = None,
    seed: int = 0,
    frames: int = 24,
    progress: Progress = True,
    should_stop: Callable[[], bool] | None = None,
    class_names: Sequence[str] | None = None,
    **options: Any,
) -> Counterfactuals:
    """Counterfactuals for a batch of images: the smallest edit (in the method's space) that makes ``classifier``
    predict ``target``.

    Args:
        classifier: a PyTorch classifier returning logits (N, K). Frozen during the call, restored afterwards.
        images: (N, C, H, W) floating point in [0, 1]; another floating dtype than the classifier's (float64,
            float16, bfloat16) is converted to the classifier's, and the result holds that dtype.
        target: one class index or name for all images, or one index per image.
        method: a registered method (``cfnb.methods.available()``): ``"latent"`` (GCI, needs ``generator``),
            ``"attribute"`` (GCI, needs ``editor``), ``"mirror"`` (Mirror-CFE, needs a GAP + linear classifier and
            a ``decoder``, found automatically for shipped classifiers), ``"causal"`` (causal steering, needs
            ``generator``), ``"pixel"`` or ``"pgd"`` (baselines).
        generator / decoder / editor / attribute_classifier: helper models, keyword-only, for the methods that
            take them (others ignore them).
        device: where to compute; default: the classifier's device (images are moved there).
        seed: seeds every random draw of the call (same seed, same counterfactuals on the CPU).
        frames: frames in the trajectory from original to counterfactual.
        progress: True shows a progress bar (tqdm: a widget in notebooks, text elsewhere), False none, or a
            callable ``progress(done, total)``.
        should_stop: polled every step; True ends the search cleanly with what it has (``settings["cancelled"]``).
        class_names: K names (default: ``classifier.class_names`` or the indices).
        **options: the method's options (``cfnb.methods.get(method).options``: name, kind, default, range, help),
            e.g. ``steps``, ``lr``, ``lam``, ``kappa``.

    Returns:
        ``Counterfactuals`` on the CPU. Images whose prediction already is the target are returned unchanged with
        ``extras["already_target"]`` True (not an error), so a batch with mixed targets never fails half-way.

    Raises:
        ValueError / TypeError: bad images (shape, dtype, range, NaN/Inf, channels), unknown method or option, an
        option out of its range, unknown or out-of-range target, missing helper models, a classifier without the
        structure the method needs.
    """
    spec = methods.get(method)
    check_classifier(classifier)
    if isinstance(frames, bool) or not isinstance(frames, int) or frames < 2:
        raise ValueError(f"frames must be an int >= 2, got {frames!r}")
    check_progress(progress)
    if spec.check_classifier is not None:
        spec.check_classifier(classifier)
    helpers = spec.find_helpers(classifier, {"generator": generator, "decoder": decoder, "editor": editor,
                                             "attribute_classifier": attribute_classifier})
    spec.check_helpers(classifier, helpers)
    chosen = spec.resolve(options)
    check_classifier_images(classifier, images)
    run_device = resolve_device(device, classifier, fallback=images.device)
    dtype = model_dtype(classifier) or images.dtype
    models = [classifier, *helpers.values()]
    start = time.perf_counter()
    with frozen(models, run_device), torch.random.fork_rng(devices=[run_device] if run_device.type == "cuda" else []):
        torch.manual_seed(seed)
        x = images.to(run_device, dtype)
        before = probabilities(classifier, x, CHUNK)
        names = class_names_of(classifier, before.shape[1], class_names)
        targets = resolve_targets(target, len(x), names).to(run_device)
        source = before.argmax(1)
        todo = (targets != source).nonzero().flatten()
        output = None
        if len(todo):  # a bar only once every input is checked, for the images that need a search
            with Reporter(progress, None, f"cfnb.explain ({method})", unit="step") as reporter:
                problem = Problem(classifier, x[todo], source[todo], targets[todo], frames, reporter.update,
                                  should_stop, helpers)
                output = spec.run(problem, **chosen)
        return _assemble(classifier, x, source, targets, before, todo, output, frames, method, names,
                         _settings(chosen, seed, frames, run_device, output), start)


def _settings(chosen: dict[str, Any], seed: int, frames: int, device: torch.device,
              output: MethodOutput | None) -> dict[str, Any]:
    plain = {k: v for k, v in chosen.items() if isinstance(v, (int, float, str, bool, type(None), list, tuple))}
    return {**plain, "seed": seed, "frames": frames, "device": str(device),
            "cancelled": bool(output.cancelled) if output is not None else False}


def _assemble(classifier: nn.Module, x: torch.Tensor, source: torch.Tensor, targets: torch.Tensor,
              before: torch.Tensor, todo: torch.Tensor, output: MethodOutput | None, frames: int, method: str,
              names: list[str], settings: dict[str, Any], start: float) -> Counterfactuals:
    n = len(x)
    counterfactual = x.clone()
    trajectory = x.unsqueeze(0).repeat(frames, 1, 1, 1, 1)
    steps_used = torch.zeros(n, dtype=torch.long)
    extras: dict[str, Any] = {}
    if output is not None:
        counterfactual[todo] = output.counterfactual.to(x.dtype)
        trajectory[:, todo] = output.trajectory.to(x.dtype)
        steps_used[todo.cpu()] = output.steps_used.cpu()
        for key, value in output.extras.items():
            if torch.is_tensor(value) and value.ndim > 0 and value.shape[0] == len(todo):
                full = torch.zeros((n, *value.shape[1:]), dtype=value.dtype, device=value.device)
                full[todo] = value
                extras[key] = full.cpu()
            else:
                extras[key] = value.cpu() if torch.is_tensor(value) else value
    trajectory_probabilities = probabilities(classifier, trajectory, CHUNK)
    final = probabilities(classifier, counterfactual, CHUNK)
    prediction = final.argmax(1)
    already = torch.ones(n, dtype=torch.bool, device=x.device)
    already[todo] = False
    extras["already_target"] = already.cpu()
    return Counterfactuals(
        original=x.cpu(), counterfactual=counterfactual.cpu(), source=source.cpu(), target=targets.cpu(),
        prediction=prediction.cpu(), probabilities=final.cpu(), original_probabilities=before.cpu(),
        valid=(prediction == targets).cpu(), trajectory=trajectory.cpu(),
        trajectory_probabilities=trajectory_probabilities.cpu(), steps_used=steps_used,
        seconds=time.perf_counter() - start, method=method, settings=settings, class_names=names, extras=extras,
    )
