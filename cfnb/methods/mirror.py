"""Mirror-CFE (Chowdhury et al., ICCV 2025): counterfactuals by reflection in the classifier's own feature space.

The frozen classifier is the encoder. Its pooled GAP features ``p`` are reflected across the linear boundary between
source ``s`` and target ``t`` (``w = W_t − W_s``, ``b = b_t − b_s``, ``m(p) = w·p + b``):

    p(k) = p − 2k · m(p) · w / ‖w‖²        (k = 0.5 on the boundary, k = 1 the full reflection)

The pooled change is spread over the spatial feature map with the class activation map as the spatial prior, and a
decoder trained for that classifier (``cfnb.training.train_decoder``) turns feature maps back into images. Sweeping k
gives the step-wise transition; only the decoder is ever trained.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..models.gap import gap_view
from .base import MethodOutput, Problem, StepOutcome, margin, pick, run_batched
from .registry import Helper, Option, register

PATH_CHUNK = 512  # feature maps decoded per decoder call along a mirror path


def gap_parts(classifier: nn.Module) -> tuple[Callable[[torch.Tensor], torch.Tensor], nn.Linear]:
    """The classifier's ``features`` (spatial map before pooling) and linear ``head``; a clear error without them.

    A classifier with a ``features`` method and an ``nn.Linear`` ``head`` (``GAPClassifier``, ``AttributeClassifier``,
    a ``GAPView``) is used as it is; any other goes through ``cfnb.models.gap_view``, which recognises torchvision's
    GAP families (ResNet, RegNet, DenseNet, EfficientNet, ConvNeXt, MobileNetV2, ...) by their structure.
    """
    features, head = getattr(classifier, "features", None), getattr(classifier, "head", None)
    if callable(features) and isinstance(head, nn.Linear):
        return features, head
    try:
        view = gap_view(classifier)
    except TypeError as error:
        advice = "" if "gap_view(model, features=" in str(error) else (
            " For any such network, name its parts in one line: cfnb.models.gap_view(model, "
            "features='<submodule or method>', head='<the nn.Linear>') and explain that view.")
        raise TypeError(
            "method='mirror' needs a classifier that ends in global average pooling + one linear layer, so that "
            "logits == head(features(x).mean((2, 3))) for a (N, D, h, w) map `features(x)` and an nn.Linear `head`. "
            f"{error}.{advice}"
        ) from error
    return view.features, view.head


def boundary(head: nn.Linear, source: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample mirror ``w = W_t − W_s`` (n, D) and ``b = b_t − b_s`` (n,)."""
    w = head.weight[target] - head.weight[source]
    b = head.bias[target] - head.bias[source] if head.bias is not None else torch.zeros(len(target), device=w.device)
    return w, b


def reflection(pooled: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The full reflection p(1) = p − 2·m(p)·w/‖w‖² of pooled features across the boundary."""
    m = (pooled * w).sum(1) + b
    return pooled - 2 * (m / w.pow(2).sum(1).clamp_min(1e-12))[:, None] * w


def cam_prior(feature_map: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Spatial weights (n, 1, h, w) with mean 1: the class activation map of the boundary direction, ReLU'd.

    Multiplying a pooled change by these weights puts it where the classifier looks, and keeps its spatial mean
    equal to the pooled change. Samples whose map is all zero fall back to uniform weights.
    """
    cam = torch.relu(torch.einsum("ndhw,nd->nhw", feature_map, w.abs()))
    total = cam.flatten(1).sum(1)
    area = cam.shape[1] * cam.shape[2]
    uniform = torch.ones_like(cam)
    weights = torch.where(total[:, None, None] > 1e-12, cam * area / total.clamp_min(1e-12)[:, None, None], uniform)
    return weights.unsqueeze(1)


def edit_feature_map(feature_map: torch.Tensor, pooled_change: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
    """Feature map whose spatial mean moved by ``pooled_change`` (n, D), distributed by ``prior`` (n, 1, h, w)."""
    return feature_map + pooled_change[:, :, None, None] * prior


class ShippedDecoder:
    """Finds the shipped Mirror-CFE decoder of a shipped classifier (also behind an ``AttributeClassifier`` view),
    from the model registry's cards; ``available`` says whether there is one without loading it."""

    @staticmethod
    def _card(classifier: nn.Module) -> str | None:
        from ..models import companion
        from ..models.architectures import MIRROR_DECODERS

        name = getattr(classifier, "cfnb_name", None) or getattr(getattr(classifier, "multilabel", None),
                                                                 "cfnb_name", None)
        return companion(name, MIRROR_DECODERS) if name else None

    def available(self, classifier: nn.Module) -> bool:
        return self._card(classifier) is not None

    def __call__(self, classifier: nn.Module) -> nn.Module | None:
        from ..models import load

        name = self._card(classifier)
        return load(name) if name is not None else None


DECODER = Helper("decoder", (), "a Mirror-CFE decoder trained for this classifier with "
                 "cfnb.training.train_decoder(classifier, images); shipped classifiers come with one",
                 find=ShippedDecoder())


def _path_points(problem: Problem, decoder: nn.Module, feature_map: torch.Tensor, change: torch.Tensor,
                 prior: torch.Tensor, ks: torch.Tensor) -> torch.Tensor:
    """Decode the feature maps at path positions ks (T, n) of per-sample full changes ``change`` (= p(1) − p).

    The T·n maps go through the decoder in chunks of about ``PATH_CHUNK`` (a few large batches are several times
    faster than T small ones, and the chunks bound the memory of long paths over large batches)."""
    t, n = ks.shape
    frames_per_chunk = max(1, PATH_CHUNK // n)
    chunks = []
    for begin in range(0, t, frames_per_chunk):
        k = ks[begin:begin + frames_per_chunk]
        maps = edit_feature_map(feature_map.repeat(len(k), 1, 1, 1), change.repeat(len(k), 1) * k.reshape(-1, 1),
                                prior.repeat(len(k), 1, 1, 1))
        chunks.append(decoder(maps).unflatten(0, (len(k), n)))
    return torch.cat(chunks)


@register("mirror", summary="Mirror-CFE: reflect GAP features across the decision boundary, decode",
          reference="Chowdhury, Phan, Liao et al.: Mirror-CFE, ICCV 2025", helpers=[DECODER],
          check_classifier=gap_parts,
          options=[Option("reach", "float", 1.0, "end of the path in units of k (1 = full reflection, 0.5 = the "
                          "boundary)", low=0, low_open=True, span=(0.5, 3.0), main=True),
                   Option("kappa", "float", 1.0, "logit margin the target must lead by in the reflected features",
                          low=0, span=(0.0, 10.0), main=True),
                   Option("extend", "any", (1.25, 1.5, 2.0, 3.0), "path ends tried in turn where the decoded image "
                          "is not yet the target"),
                   Option("refine_steps", "int", 30, "Adam steps with the decoder in the loop for samples no path "
                          "end turns (0: none)", low=0, span=(0, 100)),
                   Option("spatial_prior", "choice", "cam", "how the pooled change is spread over the feature map",
                          choices=("cam", "uniform")),
                   Option("residual", "bool", False, "add back x − D(F(x)), keeping details the decoder cannot "
                          "draw")])
@torch.no_grad()
def mirror(problem: Problem, *, reach: float, kappa: float, extend: tuple[float, ...], refine_steps: int,
           spatial_prior: str, residual: bool) -> MethodOutput:
    """Mirror-CFE counterfactuals with a trajectory along the mirror path.

    Args:
        reach: end of the path in units of k (1.0 = full reflection, 0.5 = the boundary).
        kappa: logit margin the target must have in the reflected *features*; when other classes intrude at the end
            point, it is moved by the smallest step that gives t this margin (L-BFGS on a hinge).
        extend: if the decoded image is not yet classified as t at ``reach``, the path is extended to these k in
            turn, per sample, and stops at the first that works (the decoder is not a perfect inverse).
        refine_steps: samples still not classified as t at the last ``extend`` get their end point refined with
            the decoder in the loop: at most this many Adam steps on the pooled change, from the one at ``reach``,
            on a hinge that asks the decoded image for the target by ``kappa`` plus the squared relative move
            (``refine_end``). 0 leaves them invalid. On mnist-classifier this took validity from 0.96-0.98 to 1.00.
        spatial_prior: ``"cam"`` (class activation map) or ``"uniform"``.
        residual: add back ``x − D(F(x))`` (keeps details the decoder cannot draw).
    """
    classifier, x, source, target = problem.classifier, problem.images, problem.source, problem.target
    features, head = gap_parts(classifier)
    decoder = problem.models.get("decoder")
    if decoder is None:
        raise TypeError(f"method='mirror' needs decoder=...: {DECODER.help}")
    if spatial_prior not in ("cam", "uniform"):
        raise ValueError(f"spatial_prior must be 'cam' or 'uniform', got {spatial_prior!r}")
    feature_map = features(x)
    pooled = feature_map.mean((2, 3))
    w, b = boundary(head, source, target)
    end = adjust_end_point(head, pooled, reflection(pooled, w, b), target, kappa)
    change = end - pooled
    prior = cam_prior(feature_map, w) if spatial_prior == "cam" else torch.ones_like(feature_map[:, :1])
    rest = (x - decoder(feature_map)) if residual else torch.zeros_like(x)
    k_end, tries, settled = _search_end(problem, decoder, feature_map, change, prior, rest,
                                        [reach, *[e for e in extend if e > reach]])
    end_change = change * k_end[:, None]
    refined = ~settled
    if refine_steps > 0 and bool(refined.any()):
        end_change[refined], used = refine_end(problem, decoder, feature_map[refined], change[refined] * reach,
                                               prior[refined], rest[refined], problem.target[refined], kappa,
                                               refine_steps)
        tries[refined] += used.to(tries.device)
    ks = torch.linspace(0, 1, problem.frames, device=x.device)[:, None].expand(problem.frames, len(x))
    path = (_path_points(problem, decoder, feature_map, end_change, prior, ks) + rest).clamp(0, 1)
    if problem.progress is not None:
        problem.progress(1, 1)
    return MethodOutput(path[-1], path, tries.cpu(), extras={
        "k_end": k_end, "refined": refined, "boundary_k": _boundary_k(pooled, end_change, w, b),
        "pooled_start": pooled, "pooled_end": pooled + end_change,
    })


def _search_end(problem: Problem, decoder: nn.Module, feature_map: torch.Tensor, change: torch.Tensor,
                prior: torch.Tensor, rest: torch.Tensor,
                candidates: list[float]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per sample, the first path end in ``candidates`` whose decoded image the classifier labels as the target
    (the last candidate where none does), how many were decoded, and which samples found one."""
    n = len(feature_map)
    k_end = torch.full((n,), float(candidates[-1]), device=feature_map.device)
    settled = torch.zeros(n, dtype=torch.bool, device=feature_map.device)
    tries = torch.zeros(n, dtype=torch.long, device=feature_map.device)
    for candidate in candidates:
        pending = ~settled
        tries += pending.long()
        image = (decoder(edit_feature_map(feature_map[pending], change[pending] * candidate, prior[pending]))
                 + rest[pending]).clamp(0, 1)
        ok = torch.zeros(n, dtype=torch.bool, device=feature_map.device)
        ok[pending] = problem.classifier(image).argmax(1) == problem.target[pending]
        k_end[ok] = candidate
        settled |= ok
        if bool(settled.all()) or (problem.should_stop is not None and problem.should_stop()):
            break
    return k_end, tries, settled


def refine_end(problem: Problem, decoder: nn.Module, feature_map: torch.Tensor, change: torch.Tensor,
               prior: torch.Tensor, rest: torch.Tensor, target: torch.Tensor, kappa: float,
               steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """End points whose *decoded image* the classifier gives to ``target``: a search over the pooled change.

    ``min_c relu(κ − margin(C(D(F + c·prior)), t)) + 0.1·‖c − c0‖²/‖c0‖²`` with Adam from the mirror change ``c0``,
    each sample stopping once its image has the margin. Used for the few samples the decoder cannot turn around
    anywhere on the straight path. Returns the changes (n, D) and the steps each used.
    """
    scale = (change.norm(dim=1).mean() / change.shape[1] ** 0.5).item()
    reference = change.pow(2).sum(1).clamp_min(1e-12)

    def objective(candidate: torch.Tensor, rows: torch.Tensor | None) -> StepOutcome:
        drawn = decoder(edit_feature_map(pick(feature_map, rows), candidate, pick(prior, rows)))
        image = (drawn + pick(rest, rows)).clamp(0, 1)
        lead = margin(problem.classifier(image), pick(target, rows))
        move = (candidate - pick(change, rows)).pow(2).sum(1) / pick(reference, rows)
        return StepOutcome(torch.relu(kappa - lead) + 0.1 * move, lead > kappa)

    with torch.enable_grad():
        run = run_batched(change, objective, steps=steps, lr=0.05 * scale, should_stop=problem.should_stop)
    return run.params, run.steps_used


def _boundary_k(pooled: torch.Tensor, change: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Path position (0 the original, 1 the counterfactual) where the linear s/t boundary is crossed: 0.5 for a
    full reflection, less where the path was extended past it."""
    m0 = (pooled * w).sum(1) + b
    slope = (change * w).sum(1)
    return (-m0 / slope.where(slope.abs() > 1e-12, torch.full_like(slope, 1e-12))).clamp(0, 10)


def adjust_end_point(head: nn.Linear, pooled: torch.Tensor, end: torch.Tensor, target: torch.Tensor,
                     kappa: float, iterations: int = 50) -> torch.Tensor:
    """Move reflected features by the smallest step that makes ``target`` lead every class by ``kappa``.

    Solves ``min_q ‖q − end‖² + μ·Σ_j relu(κ − (l_t(q) − l_j(q)))²`` with L-BFGS, only for samples where another
    class intrudes; others are returned unchanged.
    """
    with torch.no_grad():
        intruded = margin(head(end), target) < kappa
    if not bool(intruded.any()):
        return end
    start = end[intruded]
    goal = target[intruded]
    q = start.clone().requires_grad_(True)
    optimiser = torch.optim.LBFGS([q], lr=1, max_iter=iterations, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        logits = head(q)
        gap = kappa + 0.1 - (logits.gather(1, goal[:, None]) - logits)
        gap = gap.scatter(1, goal[:, None], 0.0)
        loss = (q - start).pow(2).sum() + 100.0 * torch.relu(gap).pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimiser.step(closure)
    adjusted = end.clone()
    adjusted[intruded] = q.detach()
    return adjusted
