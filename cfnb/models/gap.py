"""GAP views of users' classifiers: the spatial feature map and the linear head that Mirror-CFE reads.

Mirror-CFE (``method="mirror"``, ``cfnb.training.train_decoder``) needs a classifier whose logits are a linear layer
over the global average of a feature map, ``logits == head(features(x).mean((2, 3)))``. ``gap_view(model)`` finds
those parts in torchvision's classification families by their structure (the children and what they are, not the
class name; an exact-logits probe confirms each find), and ``gap_view(model, features=..., head=...)`` names them
in one line for any other GAP network. The view's forward is the model's own: its logits are the model's.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from ..checks import expected_channels, model_device, model_dtype
from ..modes import eval_mode

__all__ = ["GAPView", "gap_view"]

# Children of a head that are the identity on a pooled vector in eval mode.
_PASS_THROUGH = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout, nn.Identity, nn.Flatten)
_PROBE_SIZES = (64, 224)  # image sizes tried, in turn, for the exact-logits probe of a view
_TOLERANCE = {torch.float32: 1e-4, torch.float64: 1e-8}  # relative max logit error a view may have (else 1e-2)


class GAPView(nn.Module):
    """A classifier seen as global average pooling + one linear layer.

    ``features(x)`` is the (N, D, h, w) map whose spatial mean the linear ``head`` reads, so that
    ``head(features(x).mean((2, 3)))`` equals the model's logits (in eval mode, where dropout is the identity);
    ``forward(x)`` is the wrapped model's own forward. ``class_names``, ``cfnb_name`` and ``in_channels`` come from
    the model. Build views with ``gap_view``; parts are kept as names of the model's submodules, so the view follows
    the model through ``.to()``, ``.eval()``, ``deepcopy`` and ``state_dict`` (the model's keys under ``model.``).

    ConvNeXt (a channel LayerNorm on the pooled vector before its Linear) is supported exactly, not approximately:
    the view normalises the whole map with the mean and variance of its *pooled* vector and applies the LayerNorm's
    affine at every position, so the map's spatial mean is exactly ``LayerNorm(pooled)`` and the view's logits are
    the model's (max relative logit error 3e-7 on convnext_tiny). The cost, stated honestly: the map at a position
    now depends on the image's pooled statistics (two numbers per image), and every head input the model can
    produce lies on the LayerNorm's sphere (centred, unit variance before the affine), which a mirror reflection
    leaves. Measured on convnext_tiny (random initialisation, as no weights are downloaded here; 512 random 64-px
    images, reflections towards random classes): after Mirror-CFE's end-point adjustment (kappa = 1) the nearest
    point on the sphere keeps the target as argmax for 100% of the images; for the bare reflection (k = 1) 88.3%
    against 89.3% before projecting (77.1% -> 72.3% with the LayerNorm affine and head perturbed to mimic trained
    weights). Validity is always judged by the model itself. The alternative, a LayerNorm at every position before
    pooling, is local but not exact: its argmax agreed with the model's on 99.8% of those images (95.3% perturbed)
    with a relative logit error of 0.10, so it is not used.

    Args:
        model: the classifier.
        features: what gives the (N, D, h, w) map: an attribute path of ``model`` (a submodule or a method, e.g.
            ``"body"`` or ``"forward_features"``), a sequence of paths applied in turn, or any callable.
        head: the ``nn.Linear`` (or an attribute path of ``model`` to it, or to a ``Sequential`` of dropout /
            flatten / identity around one Linear, optionally with a channel LayerNorm before it).
        activation: ``"relu"`` when the model's forward applies a ReLU between the map and the pooling (DenseNet).
        family: the layout the view was recognised as (``"custom"`` for named parts).
    """

    def __init__(self, model: nn.Module, features: str | Sequence[str] | Callable[[torch.Tensor], torch.Tensor],
                 head: nn.Module | str, *, activation: str | None = None, family: str = "custom"):
        super().__init__()
        if not isinstance(model, nn.Module):
            raise TypeError(f"gap_view needs an nn.Module, got {type(model).__name__}")
        if activation not in (None, "relu"):
            raise ValueError(f"activation must be None or 'relu', got {activation!r}")
        self.model = model
        self.family = family
        self.activation = activation
        self._stages: tuple[str, ...] = ()
        self.__dict__["_function"] = None  # a plain callable that is not part of the model (not a submodule)
        if isinstance(features, str) or (isinstance(features, Sequence) and all(isinstance(s, str) for s in features)):
            self._stages = (features,) if isinstance(features, str) else tuple(features)
            if not self._stages:
                raise TypeError("features must name at least one submodule or method of the model")
            for stage in self._stages:
                if not callable(_attribute(model, stage, "features")):
                    raise TypeError(f"features={stage!r}: {type(model).__name__}.{stage} is not callable")
        elif callable(features):
            name = _name_in(model, features)
            if name is not None:
                self._stages = (name,)
            elif isinstance(features, nn.Module):
                self.feature_module = features
            else:
                self.__dict__["_function"] = features
        else:
            raise TypeError(f"features must be a callable or the name of a submodule or method of the model, got "
                            f"{type(features).__name__}")
        self._head_name: str | None = None
        self._norm: str | None = None
        if isinstance(head, str):
            self._head_name, self._norm = _linear_head(model, head, _attribute(model, head, "head"))
        elif isinstance(head, nn.Module):
            name = _name_in(model, head)
            if name is not None:
                self._head_name, self._norm = _linear_head(model, name, head)
            elif isinstance(head, nn.Linear):
                self.head_module = head
            else:
                _linear_head(model, "head", head)  # raises the clear error for a non-linear head
                raise TypeError("head must be an nn.Linear or the name of the model's linear head; a Sequential head "
                                "must be a submodule of the model")
        else:
            raise TypeError(f"head must be an nn.Linear or the name of a submodule of the model, got "
                            f"{type(head).__name__}")
        declared = getattr(model, "in_channels", None)
        self.in_channels: int | None = declared if isinstance(declared, int) else expected_channels(model)

    @property
    def head(self) -> nn.Linear:
        """The model's linear layer over the pooled features (shared, not copied)."""
        if self._head_name is None:
            return self.head_module
        return cast(nn.Linear, _attribute(self.model, self._head_name, "head"))

    @property
    def class_names(self) -> Any:
        """The wrapped model's class names (AttributeError when it has none)."""
        return self.model.class_names

    @property
    def cfnb_name(self) -> Any:
        """The wrapped model's shipped name (AttributeError when it has none)."""
        return self.model.cfnb_name

    @property
    def num_classes(self) -> int:
        return self.head.out_features

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The (N, D, h, w) map whose spatial mean the head reads."""
        if self._stages:
            out = x
            for stage in self._stages:
                out = _attribute(self.model, stage, "features")(out)
        elif "feature_module" in self._modules:
            out = self.feature_module(x)
        else:
            out = self.__dict__["_function"](x)
        if self.activation == "relu":
            out = F.relu(out)
        if self._norm is not None:
            out = _pooled_layer_norm(out, cast(nn.LayerNorm, _attribute(self.model, self._norm, "head")))
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The wrapped model's own logits."""
        return self.model(x)

    @torch.no_grad()
    def discrepancy(self, x: torch.Tensor) -> float:
        """Max |head(features(x).mean((2, 3))) − model(x)| over the batch, relative to max |model(x)|, in eval
        mode (0 for an exact view; the modes are restored)."""
        with eval_mode([self.model]):
            logits = self.model(x)
            seen = self.head(self.features(x).mean((2, 3)))
        if seen.shape != logits.shape:
            return float("inf")
        scale = logits.abs().max().clamp_min(torch.finfo(logits.dtype).tiny)
        return float(((seen - logits).abs().max() / scale).nan_to_num(float("inf")))

    def extra_repr(self) -> str:
        parts = ", ".join(self._stages) if self._stages else "callable"
        return f"family={self.family!r}, features={parts!r}, head={self._head_name or 'head_module'!r}"


def gap_view(model: nn.Module, features: str | Sequence[str] | Callable[[torch.Tensor], torch.Tensor] | None = None,
             head: nn.Module | str | None = None, *, check: bool | torch.Tensor = True) -> GAPView:
    """The ``GAPView`` of a classifier: logits == ``view.head(view.features(x).mean((2, 3)))``.

    Without ``features``/``head`` the layout is recognised by structure (children and their kinds), for
    torchvision's families and anything laid out like them:

    - ResNet / ResNeXt / Wide ResNet: ``conv1, bn1, relu, maxpool, layer1..layer4``, global ``avgpool``, ``fc``;
    - RegNet: ``stem, trunk_output``, global ``avgpool``, ``fc``;
    - ShuffleNetV2: ``conv1, maxpool, stage2..stage4, conv5``, ``fc`` (pooled in the forward);
    - EfficientNet (V1, V2), ConvNeXt: ``features``, global ``avgpool``, ``classifier`` (Dropout + Linear; ConvNeXt:
      LayerNorm2d + Flatten + Linear, handled exactly, see ``GAPView``);
    - DenseNet (``features`` ending in a BatchNorm, then a ReLU in the forward) and MobileNetV2 (``features``):
      ``classifier`` Linear or Dropout + Linear, pooled in the forward; MNASNet: ``layers``, ``classifier``;
    - cfnb-style: a ``features`` method and an ``nn.Linear`` ``head``.

    Each recognised view is confirmed by a probe (random 64-px images, 224 if the model refuses those): its logits
    must equal the model's, else a TypeError says so. Dropout is the identity in eval mode, where the equality
    holds. A non-linear head (MobileNetV3's Linear-Hardswish-Linear, an MLP, VGG's or AlexNet's non-global pooling)
    is refused with a TypeError saying what was found.

    Args:
        model: the classifier.
        features: for any other GAP network, what gives the (N, D, h, w) map: a submodule or method name of
            ``model`` (e.g. ``"body"``, ``"forward_features"``), a sequence of names applied in turn, or a callable.
        head: with ``features``: the ``nn.Linear`` over the pooled D features, or its submodule name.
        check: True: probe with random images; a tensor: check on these images; False: no check.

    Raises:
        TypeError: the layout is not recognised, the head is not linear, the pooling is not global, or the view's
            logits differ from the model's (the messages say what was found and how to proceed).
    """
    if (features is None) != (head is None):
        raise TypeError("gap_view needs both features= and head= (or neither, to recognise the layout)")
    if features is not None and head is not None:
        view = GAPView(model, features, head)
        if check is not False:
            _confirm(view, check, "the named parts")
        return view
    return _recognise(model, check)


# --- recognition -----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Layout:
    family: str
    stages: tuple[str, ...]
    head: str
    pool: str | None  # the child that must be global average pooling (None: the forward pools by itself)
    needs_method: bool = False  # ``stages`` may be methods (cfnb-style ``features()``), not only submodules

    def fits(self, model: nn.Module) -> bool:
        if self.needs_method:
            return all(callable(getattr(model, name, None)) for name in self.stages) and isinstance(
                getattr(model, self.head, None), nn.Linear)
        names = (*self.stages, self.head, *((self.pool,) if self.pool else ()))
        return all(isinstance(getattr(model, name, None), nn.Module) for name in names)


_LAYOUTS = (
    _Layout("ResNet", ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"), "fc", "avgpool"),
    _Layout("RegNet", ("stem", "trunk_output"), "fc", "avgpool"),
    _Layout("ShuffleNetV2", ("conv1", "maxpool", "stage2", "stage3", "stage4", "conv5"), "fc", None),
    _Layout("features + avgpool + classifier", ("features",), "classifier", "avgpool"),
    _Layout("features + classifier", ("features",), "classifier", None),
    _Layout("MNASNet", ("layers",), "classifier", None),
    _Layout("cfnb GAP classifier", ("features",), "head", None, needs_method=True),
)


def _recognise(model: nn.Module, check: bool | torch.Tensor) -> GAPView:
    if not isinstance(model, nn.Module):
        raise TypeError(f"gap_view needs an nn.Module, got {type(model).__name__}")
    kind = type(model).__name__
    layout = next((candidate for candidate in _LAYOUTS if candidate.fits(model)), None)
    if layout is None:
        children = ", ".join(name for name, _ in model.named_children()) or "none"
        known = "; ".join(f"{c.family}: {', '.join(c.stages)}{', ' + c.pool if c.pool else ''}, {c.head}"
                          for c in _LAYOUTS)
        raise TypeError(f"gap_view does not recognise {kind} (children: {children}); known layouts are {known}. "
                        "For any network whose logits are one nn.Linear over the spatial mean of a feature map, name "
                        "the parts: cfnb.models.gap_view(model, features='<submodule or method giving the (N, D, h, w) "
                        "map>', head='<the nn.Linear>')")
    where = f"{kind} ({layout.family} layout)"
    if layout.pool is not None:
        pool = getattr(model, layout.pool)
        if not _is_global_average(pool):
            raise TypeError(f"{where}: `{layout.pool}` is {pool}, not global average pooling to 1x1, so the head does "
                            "not read a spatial mean; Mirror-CFE needs logits = Linear(mean of a feature map). Replace "
                            "the pooling and head by global average pooling + a fine-tuned nn.Linear, then use "
                            "gap_view(model, features=..., head=...)")
    _linear_head(model, layout.head, getattr(model, layout.head), where=where)  # the clear error for MLP heads
    activations: tuple[str | None, ...] = (None,)
    if layout.family == "features + classifier":
        body = model.features
        ends_in_norm = isinstance(body, nn.Sequential) and len(body) > 0 and isinstance(body[-1], nn.BatchNorm2d)
        activations = ("relu", None) if ends_in_norm else (None, "relu")
    views = [GAPView(model, layout.stages, layout.head, activation=a, family=layout.family) for a in activations]
    if check is False:
        return views[0]
    probe = _probe(model, views[0].in_channels) if check is True else check
    if probe is None:  # the model accepts none of the probe sizes: the structure is all there is to go by
        return views[0]
    errors = []
    for view in views:  # the structural guess first; the other only when it is not exact
        errors.append(_discrepancy(view, probe))
        if errors[-1] <= _tolerance(probe):
            return view
    found = (f"differs from the model's logits by {min(errors):.3g} (relative)" if min(errors) != float("inf")
             else "cannot be computed (the head cannot read the map's spatial mean)")
    raise TypeError(f"{where}: the parts have the expected structure, but head(features(x).mean((2, 3))) {found} on "
                    "probe images, so its forward does more than pool and apply the head. Name the parts: "
                    "cfnb.models.gap_view(model, features=..., head=...)")


def _confirm(view: GAPView, check: bool | torch.Tensor, what: str) -> None:
    probe = _probe(view.model, view.in_channels) if check is True else check
    if not isinstance(probe, torch.Tensor):
        return
    error = _discrepancy(view, probe)
    if error > _tolerance(probe):
        found = (f"give logits that differ from {type(view.model).__name__}'s by {error:.3g} (relative)"
                 if error != float("inf") else "do not run together (the head cannot read the map's spatial mean)")
        raise TypeError(f"gap_view: {what} {found} on {len(probe)} probe images of shape {tuple(probe.shape[1:])}: "
                        "`features` must give the (N, D, h, w) map right before the model's global average pooling "
                        "(after any activation its forward applies) and `head` be the nn.Linear after the pooling")


def _probe(model: nn.Module, channels: int | None) -> torch.Tensor | None:
    """Random images the model accepts (64 px, else 224), from a private generator; None if it accepts neither."""
    device = model_device(model) or torch.device("cpu")
    dtype = model_dtype(model) or torch.float32
    generator = torch.Generator().manual_seed(0)
    for size in _PROBE_SIZES:
        x = torch.rand(2, channels or 3, size, size, generator=generator).to(device, dtype)
        try:
            with torch.no_grad(), eval_mode([model]):
                model(x)
        except Exception:  # any refusal of this size (a shape error, a size assertion): try the next
            continue
        return x
    return None


def _discrepancy(view: GAPView, probe: torch.Tensor) -> float:
    """``view.discrepancy(probe)``, infinite when the parts do not run (a map the head cannot read, e.g. NHWC)."""
    try:
        return view.discrepancy(probe)
    except Exception:  # any failure of the parts on inputs the model itself accepts means they are not its GAP parts
        return float("inf")


def _tolerance(x: torch.Tensor) -> float:
    return _TOLERANCE.get(x.dtype, 1e-2)


def _is_global_average(pool: nn.Module) -> bool:
    if not isinstance(pool, nn.AdaptiveAvgPool2d):
        return False
    size = pool.output_size
    sizes = size if isinstance(size, tuple) else (size, size)
    return all(s == 1 for s in sizes)


def _linear_head(model: nn.Module, name: str, module: Any, where: str | None = None) -> tuple[str, str | None]:
    """The path of the head's Linear and of a channel LayerNorm before it (or None); TypeError for anything else."""
    where = where or type(model).__name__
    if isinstance(module, nn.Linear):
        return name, None
    if isinstance(module, nn.Sequential):
        linear: str | None = None
        norm: str | None = None
        extra: list[str] = []
        for child_name, child in module.named_children():
            if isinstance(child, _PASS_THROUGH):
                continue
            if isinstance(child, nn.Linear) and linear is None:
                linear = child_name
            elif (isinstance(child, nn.LayerNorm) and linear is None and norm is None
                  and len(child.normalized_shape) == 1):
                norm = child_name
            else:
                extra.append(type(child).__name__)
        if linear is not None and not extra:
            return f"{name}.{linear}", (f"{name}.{norm}" if norm is not None else None)
        chain = " → ".join(_describe(child) for child in module.children())
        linears = sum(isinstance(child, nn.Linear) for child in module.children())
        others = sorted({t for t in extra if t != "Linear"})
        found = f"{linears} Linear layer{'s' * (linears != 1)}" + (f" and {', '.join(others)}" if others else "")
        raise TypeError(f"{where}: its head `{name}` is not linear in the pooled features: {chain} ({found}). "
                        "Mirror-CFE reflects pooled features across a linear decision boundary, so it needs logits = "
                        "one nn.Linear over the spatial mean of a feature map. Either name such parts with "
                        "cfnb.models.gap_view(model, features=..., head=<an nn.Linear>), or fine-tune a linear head "
                        "on the pooled features (e.g. replace the head by nn.Linear(D, K) and train it) and use that")
    raise TypeError(f"{where}: its head `{name}` is {type(module).__name__}, not an nn.Linear (or a Sequential of "
                    "dropout/flatten around one Linear); name a linear head: cfnb.models.gap_view(model, "
                    "features=..., head=<an nn.Linear>)")


def _describe(module: nn.Module) -> str:
    if isinstance(module, nn.Linear):
        return f"Linear({module.in_features}→{module.out_features})"
    return type(module).__name__


def _pooled_layer_norm(feature_map: torch.Tensor, norm: nn.LayerNorm) -> torch.Tensor:
    """The map normalised with the statistics of its pooled vector, then the norm's affine at every position: its
    spatial mean is exactly ``norm(feature_map.mean((2, 3)))``."""
    pooled = feature_map.mean((2, 3), keepdim=True)
    mean = pooled.mean(1, keepdim=True)
    variance = pooled.var(1, unbiased=False, keepdim=True)
    out = (feature_map - mean) * torch.rsqrt(variance + norm.eps)
    if norm.weight is not None:
        out = out * norm.weight[:, None, None]
    if norm.bias is not None:
        out = out + norm.bias[:, None, None]
    return out


def _attribute(model: nn.Module, path: str, role: str) -> Any:
    """``model.a.b`` for the path ``"a.b"``; a TypeError naming the model's children when there is none."""
    found: Any = model
    for part in path.split("."):
        if not hasattr(found, part):
            children = ", ".join(name for name, _ in model.named_children()) or "none"
            raise TypeError(f"{role}={path!r}: {type(model).__name__} has no {path!r} (its children: {children})")
        found = getattr(found, part)
    return found


def _name_in(model: nn.Module, part: Any) -> str | None:
    """The attribute path of ``part`` in ``model``: a submodule, or a method bound to the model or a submodule."""
    owner = getattr(part, "__self__", None)
    for name, module in model.named_modules():
        if module is part and name:
            return name
        if owner is module and isinstance(getattr(part, "__name__", None), str):
            return f"{name}.{part.__name__}" if name else part.__name__
    return None
