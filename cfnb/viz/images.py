"""Tensor -> PNG, in one place: every figure, panel and export turns images into pictures through these functions."""
from __future__ import annotations

import base64
import io

import numpy as np
import torch
from PIL import Image

# Diverging colours for signed differences: blue (darker than the original) -> white (0) -> red (brighter).
DIFFERENCE_COLORSCALE = "RdBu_r"
_NEGATIVE = np.array([33, 102, 172], dtype=np.float32)
_ZERO = np.array([247, 247, 247], dtype=np.float32)
_POSITIVE = np.array([178, 24, 43], dtype=np.float32)


def to_uint8(image: torch.Tensor | np.ndarray) -> np.ndarray:
    """(C, H, W) or (H, W) in [0, 1] -> (H, W) or (H, W, 3) uint8, clipped.

    Args:
        image: one image; 1 channel gives grey, 3 channels RGB.

    Raises:
        ValueError: not 2-D or (1|3, H, W).
    """
    array = image.detach().cpu().float().numpy() if torch.is_tensor(image) else np.asarray(image, dtype=np.float32)
    if array.ndim == 3:
        if array.shape[0] == 1:
            array = array[0]
        elif array.shape[0] == 3:
            array = array.transpose(1, 2, 0)
        else:
            raise ValueError(f"image must have 1 or 3 channels first (C, H, W), got shape {array.shape}")
    elif array.ndim != 2:
        raise ValueError(f"image must be (C, H, W) or (H, W), got shape {array.shape}")
    return (np.clip(np.nan_to_num(array), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def to_pil(image: torch.Tensor | np.ndarray, scale: int = 1) -> Image.Image:
    """One image as a PIL image (mode ``L`` for grey, ``RGB`` for colour), enlarged ``scale`` times (nearest)."""
    if not isinstance(scale, int) or scale < 1:
        raise ValueError(f"scale must be a positive int, got {scale!r}")
    array = image if isinstance(image, np.ndarray) and image.dtype == np.uint8 else to_uint8(image)
    picture = Image.fromarray(np.ascontiguousarray(array))  # uint8 (H, W) -> "L", (H, W, 3) -> "RGB"
    if scale > 1:
        picture = picture.resize((picture.width * scale, picture.height * scale), Image.Resampling.NEAREST)
    return picture


def png_bytes(image: torch.Tensor | np.ndarray, scale: int = 1) -> bytes:
    """One image as PNG bytes (for ``ipywidgets.Image``), enlarged ``scale`` times with nearest neighbours."""
    buffer = io.BytesIO()
    to_pil(image, scale).save(buffer, format="PNG", optimize=False, compress_level=6)
    return buffer.getvalue()


def png_data_uri(image: torch.Tensor | np.ndarray, scale: int = 1) -> str:
    """One image as a ``data:image/png;base64,...`` URI (for ``go.Image(source=...)`` and HTML ``<img>``).

    Args:
        image: (C, H, W) or (H, W) in [0, 1]; one channel is shown grey.
        scale: integer nearest-neighbour enlargement (1 keeps figure JSON smallest; Plotly draws pixels sharp).
    """
    return "data:image/png;base64," + base64.b64encode(png_bytes(image, scale)).decode("ascii")


def signed_difference(original: torch.Tensor, counterfactual: torch.Tensor) -> torch.Tensor:
    """(H, W) counterfactual minus original, averaged over channels (positive: brighter)."""
    return (counterfactual.float() - original.float()).mean(dim=0)


def difference_rgb(original: torch.Tensor, counterfactual: torch.Tensor, limit: float | None = None) -> np.ndarray:
    """Signed difference as an (H, W, 3) uint8 picture: blue darker, white unchanged, red brighter.

    Args:
        original, counterfactual: (C, H, W) in [0, 1].
        limit: the ``|difference|`` drawn at full colour (default: the largest ``|difference|``, so small edits show).
    """
    diff = signed_difference(original, counterfactual).cpu().numpy()
    top = float(np.abs(diff).max()) if limit is None else float(limit)
    scaled = np.clip(diff / top, -1.0, 1.0)[..., None] if top > 0 else np.zeros((*diff.shape, 1), np.float32)
    colours = np.where(scaled >= 0, _ZERO + scaled * (_POSITIVE - _ZERO), _ZERO - scaled * (_NEGATIVE - _ZERO))
    return (colours + 0.5).astype(np.uint8)


def display_scale(height: int, width: int, target_px: int = 128) -> int:
    """Integer enlargement that brings the longer side near ``target_px`` (1 for images already that large)."""
    return max(1, round(target_px / max(height, width, 1)))

