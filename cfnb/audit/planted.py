"""Factors and generators for cfnb's data sets with planted truths, so an audit on them is one call.

- ``shortcut_factor(dataset)``: the shortcut of a ``colored_mnist`` / ``patched_mnist`` data set as a ``Factor``:
  the intervention is the data set's own ``set_shortcut`` (exact: only the colour, or only the corner patch,
  changes), the group value is whether the image's shortcut agrees with its class (the groups of group DRO).
- ``shortcut_generator(dataset)``: the generator with named latent factors (``shape`` + ``colour`` or ``patch``) over
  the shipped ``mnist-vae`` that the audit's counterfactuals move in.
- ``renderer_factors(faces, names)``: ground-truth interventions on ``synth_faces``: each face re-rendered with one
  attribute flipped (``FaceDataset.with_attribute``), the truth an editor audit is checked against.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from ..data.shortcuts import ShortcutDataset
from .factors import Factor


def _shortcut_kind(dataset: object) -> str:
    from ..data.shortcuts import ColoredMNIST, PatchedMNIST

    if isinstance(dataset, ColoredMNIST):
        return "colour"
    if isinstance(dataset, PatchedMNIST):
        return "patch"
    raise TypeError(f"expected a ColoredMNIST or PatchedMNIST data set (cfnb.data.colored_mnist / patched_mnist), "
                    f"got {type(dataset).__name__}")


def shortcut_factor(dataset: ShortcutDataset, seed: int = 0) -> Factor:
    """The planted shortcut of ``dataset`` as a ``Factor`` named ``"colour"`` or ``"patch"``.

    Intervention: ``colour``: each digit recoloured in another of the ten colours, drawn uniformly (seeded, one
    draw per image of the data set); ``patch``: the corner patch added where it is absent and removed where present.
    The intervention needs the images' positions in ``dataset`` (the audit passes them), so audit ``dataset`` itself
    (or its ``images``) in its own order.

    Args:
        dataset: a ``ColoredMNIST`` or ``PatchedMNIST``.
        seed: seeds the new colours.

    Returns:
        A ``Factor`` whose ``read`` gives 1 where the image's shortcut agrees with its class, else 0.
    """
    kind = _shortcut_kind(dataset)
    spurious = dataset.spurious
    if kind == "colour":
        g = torch.Generator().manual_seed(seed)
        new_value = (spurious + torch.randint(1, 10, spurious.shape, generator=g)) % 10
    else:
        new_value = 1 - spurious
    aligned = dataset.aligned.long()

    def intervene(images: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        return dataset.set_shortcut(images, new_value[index.cpu()])

    def read(images: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        return aligned[index.cpu()]

    return Factor(kind, intervene, read=read, value_names=shortcut_value_names(kind))


def shortcut_value_names(kind: str) -> list[str]:
    """Names of the group values ``shortcut_factor`` reads (0, 1)."""
    return [f"{kind} disagrees with class", f"{kind} agrees with class"]


def shortcut_generator(dataset: ShortcutDataset, shape_vae: nn.Module | None = None) -> nn.Module:
    """``ColourGenerator`` or ``PatchGenerator`` over ``shape_vae`` (default: the shipped ``mnist-vae``)."""
    from ..data.shortcuts import add_patch
    from ..models import load
    from ..models.generators import ColourGenerator, PatchGenerator

    kind = _shortcut_kind(dataset)
    vae = shape_vae if shape_vae is not None else load("mnist-vae")
    if kind == "colour":
        return ColourGenerator(vae)
    side = dataset.images.shape[-1]
    mask = add_patch(torch.zeros(1, 1, side, side), torch.ones(1, dtype=torch.long))
    return PatchGenerator(vae, mask)


def renderer_factors(faces: object,
                     names: Sequence[str]) -> dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]:
    """Ground-truth interventions on a ``FaceDataset``: each face re-rendered with attribute ``name`` flipped.

    The renderer changes that attribute alone (Blond_Hair / Black_Hair kept exclusive as the data set documents),
    so the decisions it flips measure the attribute's true effect on a classifier. Audit ``faces`` itself (or its
    ``images``) in its own order, compared with the images themselves.
    """
    from ..data.faces import FaceDataset

    if not isinstance(faces, FaceDataset):
        raise TypeError(f"renderer_factors needs a FaceDataset (cfnb.data.synth_faces), got {type(faces).__name__}")
    unknown = [n for n in names if n not in faces.attribute_names]
    if unknown:
        raise ValueError(f"unknown attribute(s) {unknown}; the faces have {', '.join(faces.attribute_names)}")

    def flip(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        def intervene(images: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
            index = index.cpu()
            redrawn = faces.with_attribute(name, 1 - faces.attribute(name)[index], index=index)
            return redrawn.to(images.device, images.dtype)
        return intervene

    return {name: flip(name) for name in names}
