"""LPIPS perceptual distance through the ``lpips`` package, refusing to run without its real weights.

LPIPS needs two sets of weights: the ImageNet backbone from torchvision (downloaded by torch.hub into
``torch.hub.get_dir()/checkpoints``) and the linear layers shipped inside the ``lpips`` package. The backbone file is
looked for *before* the model is built, so nothing ever tries to download it, and a missing file raises
``LPIPSUnavailable`` instead of silently giving a number from random weights.
"""
from __future__ import annotations

import functools
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..checks import check_pair, check_positive_int
from ..forward import forward_in_batches

__all__ = ["LPIPSUnavailable", "lpips_distance", "lpips_model", "backbone_checkpoint", "linear_weights_file"]

_BACKBONES = {"alex": "AlexNet_Weights", "vgg": "VGG16_Weights", "squeeze": "SqueezeNet1_1_Weights"}
_TORCHVISION_CALL = {"alex": "alexnet", "vgg": "vgg16", "squeeze": "squeezenet1_1"}


class LPIPSUnavailable(RuntimeError):
    """The weights LPIPS needs are not on disk (and cfnb will not download them or fall back to random weights)."""


def _check_net(net: str) -> None:
    if net not in _BACKBONES:
        raise ValueError(f"net must be one of {sorted(_BACKBONES)}, got {net!r}")


def backbone_checkpoint(net: str = "alex") -> Path:
    """Where torch.hub keeps the ImageNet backbone LPIPS(net) loads: ``torch.hub.get_dir()/checkpoints/<file>``.

    The file name comes from torchvision's weights URL (e.g. ``alexnet-owt-7be5be79.pth``); ``TORCH_HOME`` moves it.
    """
    _check_net(net)
    import torchvision.models as tvm

    url = getattr(tvm, _BACKBONES[net]).IMAGENET1K_V1.url
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]


def linear_weights_file(net: str = "alex", version: str = "0.1") -> Path:
    """The calibrated linear-layer weights shipped in the ``lpips`` package for ``net``."""
    _check_net(net)
    import lpips

    return Path(lpips.__file__).parent / "weights" / f"v{version}" / f"{net}.pth"


def _require_weights(net: str) -> Path:
    """The backbone checkpoint's path, after checking both weight files exist; raises ``LPIPSUnavailable`` if not."""
    checkpoint = backbone_checkpoint(net)
    if not checkpoint.is_file():
        raise LPIPSUnavailable(
            f"LPIPS({net!r}) needs torchvision's ImageNet backbone weights, and {checkpoint.name} is missing: "
            f"expected at {checkpoint} (torch.hub.get_dir()/checkpoints; set TORCH_HOME to use another directory). "
            f"Get it once on a machine with network access by running "
            f"`torchvision.models.{_TORCHVISION_CALL[net]}(weights=\"IMAGENET1K_V1\")`, then copy the file there."
        )
    linear = linear_weights_file(net)
    if not linear.is_file():
        raise LPIPSUnavailable(
            f"LPIPS({net!r}) needs its linear-layer weights {linear}, shipped with the lpips package; reinstall it "
            "with `pip install --force-reinstall lpips`."
        )
    return checkpoint


@functools.lru_cache(maxsize=4)
def _build(net: str, checkpoint: str, modified_ns: int, device: str) -> nn.Module:
    """Build LPIPS once per (net, checkpoint file version, device); the backbone is read from ``checkpoint``."""
    import lpips

    # lpips asks torchvision for `pretrained=True`; torch.hub then loads the cached checkpoint (present: checked) and
    # downloads only when the file is absent. Silence torchvision's deprecation notice about `pretrained`.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(pretrained|weights).*")
        model = lpips.LPIPS(net=net, verbose=False)
    model.eval().requires_grad_(False)
    return model.to(device)


def lpips_model(net: str = "alex", device: torch.device | str = "cpu") -> nn.Module:
    """The LPIPS model for ``net`` on ``device``, cached while its backbone file is unchanged.

    Raises:
        ValueError: unknown ``net``.
        LPIPSUnavailable: a weight file is missing (checked before anything is built, so nothing is downloaded).
    """
    checkpoint = _require_weights(net)
    return _build(net, str(checkpoint), checkpoint.stat().st_mtime_ns, str(torch.device(device)))


class _LPIPSOnUnitImages(nn.Module):
    """LPIPS between the two halves of a channel-stacked batch of [0, 1] images (grayscale repeated to RGB)."""

    def __init__(self, model: nn.Module, min_size: int):
        super().__init__()
        self.model = model
        self.min_size = min_size

    def _prepare(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)
        short = min(images.shape[2:])
        if short < self.min_size:
            scale = self.min_size / short
            size = (round(images.shape[2] * scale), round(images.shape[3] * scale))
            images = F.interpolate(images, size=size, mode="bilinear", align_corners=False)
        return images * 2 - 1

    def forward(self, stacked: torch.Tensor) -> torch.Tensor:
        a, b = stacked.chunk(2, dim=1)
        return self.model(self._prepare(a), self._prepare(b)).flatten()


def lpips_distance(
    a: torch.Tensor, b: torch.Tensor, net: str = "alex", min_size: int = 64, batch_size: int = 64
) -> torch.Tensor:
    """LPIPS perceptual distance between paired images (lower is more alike).

    Images in [0, 1] are scaled to [-1, 1] as LPIPS expects; grayscale is repeated to 3 channels. LPIPS-AlexNet
    cannot take images smaller than 31 px, so images whose shorter side is below ``min_size`` are first resized
    (bilinear, aspect kept) to that side (28x28 MNIST becomes 64x64 by default).

    Args:
        a: (N, C, H, W) images in [0, 1], C = 1 or 3.
        b: (N, C, H, W) images in [0, 1], same shape as ``a``.
        net: backbone, ``"alex"`` (default, as in the LPIPS paper's recommendation), ``"vgg"`` or ``"squeeze"``.
        min_size: shorter side images are resized up to when smaller.
        batch_size: pairs per forward pass.

    Returns:
        (N,) distances on ``a``'s device.

    Raises:
        TypeError / ValueError: bad images (rank, shape mismatch, NaN, channels not 1 or 3, values outside [0, 1]).
        LPIPSUnavailable: the backbone or linear weights are not on disk.
    """
    check_pair(a, b)
    if a.shape[1] not in (1, 3):
        raise ValueError(f"LPIPS takes 1- or 3-channel images, got {a.shape[1]} channels")
    if bool((a < 0).any() or (a > 1).any() or (b < 0).any() or (b > 1).any()):
        raise ValueError("LPIPS inputs must be images in [0, 1] (they are scaled to [-1, 1] here)")
    check_positive_int("min_size", min_size)
    model = lpips_model(net, a.device)
    return forward_in_batches(_LPIPSOnUnitImages(model, min_size), torch.cat([a, b], dim=1), batch_size)
