"""``cfnb.explain``: one entry point for every counterfactual method, batched on CPU or CUDA."""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import torch
from torch import nn

from . import baselines, causal, gci, mirror
from .modes import eval_mode
from .problem import MethodOutput, Problem
from .results import Counterfactuals
from .validation import check_images, expected_channels, model_device, require, resolve_targets


@dataclass(frozen=True)
class MethodSpec:
    """A method: its function, the helper models it needs (role -> required callables), and a check of the
    classifier's structure that raises a clear error (run before anything else, even when no image needs a change)."""

    run: Callable[..., MethodOutput]
    needs: dict[str, tuple[str, ...]]
    summary: str
    check_classifier: Callable[[nn.Module], object] | None = None


METHODS: dict[str, MethodSpec] = {
    "pixel": MethodSpec(baselines.pixel, {}, "Wachter-style optimisation of the pixels (baseline)"),
    "pgd": MethodSpec(baselines.pgd, {}, "targeted PGD attack in an L-infinity ball (baseline)"),
    "latent": MethodSpec(gci.latent, {"generator": ("encode", "decode")}, "GCI over a generator's latent code"),
    "attribute": MethodSpec(gci.attribute, {"editor": ("encode", "decode")}, "GCI over an editor's attribute vector"),
    "mirror": MethodSpec(mirror.mirror, {}, "Mirror-CFE: reflect GAP features across the decision boundary, decode",
                         check_classifier=mirror.gap_parts),
    "causal": MethodSpec(causal.causal, {"generator": ("encode", "decode")},
                         "adversarial steering restricted to causal latent factors, masked and inpainted"),
}
HELPER_ROLES = ("generator", "decoder", "editor", "attribute_classifier")


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@contextlib.contextmanager
def frozen(models: Sequence[nn.Module], device: torch.device) -> Iterator[None]:
    """Put models in eval mode on ``device`` with gradients off; restore mode, device and flags afterwards."""
    saved = []
    for model in models:
        saved.append((model, [p.requires_grad for p in model.parameters()], model_device(model)))
        model.requires_grad_(False)
        model.to(device)
    try:
        with eval_mode(models):
            yield
    finally:
        for model, flags, home in saved:
            for param, flag in zip(model.parameters(), flags):
                param.requires_grad_(flag)
            if home is not None:
                model.to(home)


def class_names_of(classifier: nn.Module, num_classes: int, given: Sequence[str] | None) -> list[str]:
    names = list(given) if given is not None else list(getattr(classifier, "class_names", []) or [])
    if not names:
        names = [str(i) for i in range(num_classes)]
    if len(names) != num_classes:
        raise ValueError(f"class_names has {len(names)} names but the classifier has {num_classes} outputs")
    return names


@torch.no_grad()
def probabilities_in_chunks(classifier: nn.Module, images: torch.Tensor, chunk: int = 2048) -> torch.Tensor:
    """Softmax probabilities of ``classifier`` over any leading batch shape (..., C, H, W)."""
    flat = images.reshape(-1, *images.shape[-3:])
    probs = torch.cat([torch.softmax(classifier(flat[s:s + chunk]), 1) for s in range(0, len(flat), chunk)])
    return probs.reshape(*images.shape[:-3], probs.shape[-1])


def _resolve_device(device: str | torch.device | None, images: torch.Tensor, classifier: nn.Module) -> torch.device:
    if device is not None:
        return torch.device(device)
    home = model_device(classifier) or images.device
    if images.device != home:
        raise ValueError(
            f"images are on {images.device} but the classifier is on {home}; move one of them, or pass device=... "
            "to run everything there"
        )
    return default_device() if home.type == "cpu" else home


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
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    class_names: Sequence[str] | None = None,
    **options: Any,
) -> Counterfactuals:
    """Counterfactuals for a batch of images: the smallest edit (in the method's space) that makes ``classifier``
    predict ``target``.

    Args:
        classifier: a PyTorch classifier returning logits (N, K). Frozen during the call, restored afterwards.
        images: (N, C, H, W) float in [0, 1].
        target: one class index or name for all images, or one index per image.
        method: ``"latent"`` (GCI, needs ``generator``), ``"attribute"`` (GCI, needs ``editor``), ``"mirror"``
            (Mirror-CFE, needs a GAP + linear classifier and a ``decoder``, found automatically for shipped
            classifiers), ``"causal"`` (causal steering, needs ``generator``), ``"pixel"`` or ``"pgd"`` (baselines).
        generator / decoder / editor / attribute_classifier: helper models for the methods that need them.
        device: where to compute (default: CUDA when available, else CPU; images and models on different devices
            without ``device`` raise).
        seed: seeds every random draw of the call (same seed, same counterfactuals on the CPU).
        frames: frames in the trajectory from original to counterfactual.
        progress: ``progress(done, total)`` called as the search advances.
        should_stop: polled every step; True ends the search cleanly with what it has (``settings["cancelled"]``).
        class_names: K names (default: ``classifier.class_names`` or the indices).
        **options: the method's settings (``steps``, ``lr``, ``lam``, ``p``, ``kappa``...); see each method's
            docstring for its defaults, chosen by measurement on the shipped models.

    Returns:
        ``Counterfactuals`` on the CPU. Images whose prediction already is the target are returned unchanged with
        ``extras["already_target"]`` True (not an error), so a batch with mixed targets never fails half-way.

    Raises:
        ValueError / TypeError: bad images (shape, dtype, range, NaN/Inf, channels), unknown method or option,
        unknown or out-of-range target, missing helper models, mismatched devices.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if not isinstance(classifier, nn.Module):
        raise TypeError(f"classifier must be a torch.nn.Module returning logits, got {type(classifier).__name__}")
    if not isinstance(frames, int) or frames < 2:
        raise ValueError(f"frames must be an int >= 2, got {frames!r}")
    spec = METHODS[method]
    helpers = {"generator": generator, "decoder": decoder, "editor": editor, "attribute_classifier": attribute_classifier}
    for role, needed in spec.needs.items():
        require(helpers[role], needed, role, method)
    if spec.check_classifier is not None:
        spec.check_classifier(classifier)
    if not torch.is_tensor(images):
        raise TypeError(f"images must be a torch.Tensor of shape (N, C, H, W), got {type(images).__name__}")
    run_device = _resolve_device(device, images, classifier)
    check_images(images, expected_channels(classifier))
    _check_options(spec, options, method)
    models = [classifier] + [m for m in helpers.values() if isinstance(m, nn.Module)]
    start = time.perf_counter()
    with frozen(models, run_device), torch.random.fork_rng(devices=[run_device] if run_device.type == "cuda" else []):
        torch.manual_seed(seed)
        x = images.to(run_device)
        before = probabilities_in_chunks(classifier, x)
        names = class_names_of(classifier, before.shape[1], class_names)
        targets = resolve_targets(target, len(x), before.shape[1], names).to(run_device)
        source = before.argmax(1)
        todo = (targets != source).nonzero().flatten()
        problem = Problem(classifier, x[todo], source[todo], targets[todo], frames, progress, should_stop,
                          {k: v for k, v in helpers.items() if v is not None})
        if method == "mirror":
            problem.models.setdefault("decoder", decoder)
        output = spec.run(problem, **options) if len(todo) else None
        return _assemble(classifier, x, source, targets, before, todo, output, frames, method, names,
                         _settings(method, options, seed, frames, run_device, output), start)


def _check_options(spec: MethodSpec, options: dict[str, Any], method: str) -> None:
    import inspect

    allowed = [n for n, p in inspect.signature(spec.run).parameters.items() if p.kind == p.KEYWORD_ONLY]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise TypeError(f"method={method!r} has no option(s) {unknown}; its options are: {', '.join(allowed)}")
    for name in ("steps",):
        if name in options and (not isinstance(options[name], int) or options[name] < 1):
            raise ValueError(f"{name} must be a positive int, got {options[name]!r}")
    for name in ("lr", "lam", "p"):
        if name in options and not (isinstance(options[name], (int, float)) and options[name] > 0):
            raise ValueError(f"{name} must be a positive number, got {options[name]!r}")


def _settings(method: str, options: dict[str, Any], seed: int, frames: int, device: torch.device,
              output: MethodOutput | None) -> dict[str, Any]:
    import inspect

    defaults = {n: p.default for n, p in inspect.signature(METHODS[method].run).parameters.items()
                if p.kind == p.KEYWORD_ONLY}
    chosen = {**defaults, **options}
    plain = {k: v for k, v in chosen.items() if isinstance(v, (int, float, str, bool, type(None), list, tuple))}
    return {**plain, "seed": seed, "frames": frames, "device": str(device),
            "cancelled": bool(output.cancelled) if output is not None else False}


def _assemble(classifier, x, source, targets, before, todo, output, frames, method, names, settings, start):
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
    trajectory_probabilities = probabilities_in_chunks(classifier, trajectory)
    probabilities = probabilities_in_chunks(classifier, counterfactual)
    prediction = probabilities.argmax(1)
    already = torch.ones(n, dtype=torch.bool, device=x.device)
    already[todo] = False
    extras["already_target"] = already.cpu()
    return Counterfactuals(
        original=x.cpu(), counterfactual=counterfactual.cpu(), source=source.cpu(), target=targets.cpu(),
        prediction=prediction.cpu(), probabilities=probabilities.cpu(), original_probabilities=before.cpu(),
        valid=(prediction == targets).cpu(), trajectory=trajectory.cpu(),
        trajectory_probabilities=trajectory_probabilities.cpu(), steps_used=steps_used,
        seconds=time.perf_counter() - start, method=method, settings=settings, class_names=names, extras=extras,
    )
