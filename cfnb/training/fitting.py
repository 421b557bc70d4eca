"""Helper models for your own images: ``fit_classifier``, ``fit_generator``, ``fit_mirror_decoder``, ``fit_editor``.

Each takes the data as a tensor, a torch ``Dataset`` or ``DataLoader``, a cfnb data set or a spec (image folder,
``celeba:ROOT``, ``.npz``: see ``cfnb.data.image_source``), reads the image size and channels from it, holds out a
seeded share of it to measure the model on, trains on CUDA when present (``device=`` to choose), optionally in mixed
precision, shows a progress bar, and with ``out=FOLDER`` saves a checkpoint every ``checkpoint_every`` steps
(``resume=True`` continues from the last one) and finally the weights (safetensors) with a model card that
``cfnb.models.load(FOLDER)`` reads. The shipped models' recipes call the same functions on the embedded data.
"""
from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..checks import model_device
from ..data.sources import ImageSource, image_source
from ..forward import forward_in_batches
from ..models.architectures import AttributeEditor, ConvVAE, GAPClassifier, GeneratorFeatureDecoder, LeNetClassifier
from ..models.registry import ModelCard, sha256_of, write_folder_card
from ..progress import Progress
from .attgan import reader_columns, train_attribute_editor
from .checkpoints import Checkpointer
from .loops import default_device, train_supervised, train_vae
from .mirror_decoder import train_decoder
from .vae_gan import train_vae_gan

WEIGHTS_FILE = "model.safetensors"
VAE_GAN_CHECKPOINT = "vae-gan-checkpoint.pt"  # the second stage of fit_generator(adversarial_epochs=N)
Log = Callable[[str], None]


@dataclass
class FitResult:
    """A trained helper model, its card, and the folder it was saved in (None when ``out`` was not given).

    Attributes:
        model: the trained model, in eval mode, on the CPU, with ``class_names``/``attribute_names`` where known.
        card: its model card: architecture, constructor arguments, data, measured quality on the held-out images.
        folder: where ``model.safetensors`` and ``card.json`` were written.
    """

    model: nn.Module
    card: ModelCard
    folder: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _held_out(source: ImageSource, validation: float, seed: int) -> tuple[ImageSource, ImageSource | None]:
    if validation == 0:
        return source, None
    return source.split(validation, seed)


def _checkpoints(out: str | Path | None, every: int, resume: bool) -> Checkpointer | None:
    if out is None:
        if resume:
            raise ValueError("resume=True needs out=FOLDER: checkpoints are kept in the output folder")
        return None
    folder = Path(out).expanduser()
    if folder.exists() and not resume and any(folder.iterdir()):
        raise FileExistsError(f"{folder} is not empty: pass resume=True to continue the training saved there, or "
                              "choose another folder")
    folder.mkdir(parents=True, exist_ok=True)
    return Checkpointer(folder, every, resume)


def _finish(model: nn.Module, architecture: str, kwargs: dict[str, Any], data: str, quality: dict[str, Any],
            extra: dict[str, Any], out: str | Path | None, name: str | None) -> FitResult:
    """Put the model on the CPU with its names, and save it with its card when ``out`` is given."""
    from safetensors.torch import save_file

    model = model.cpu().eval()
    anything: Any = model
    for key in ("class_names", "attribute_names"):
        if key in extra:
            setattr(anything, key, list(extra[key]))
    label = name or (Path(out).name if out is not None else architecture)
    card = ModelCard(name=label, architecture=architecture, kwargs=kwargs, data=data, quality=quality, sha256="",
                     file=WEIGHTS_FILE, extra=extra)
    if out is None:
        return FitResult(model, card)
    folder = Path(out).expanduser()
    path = folder / WEIGHTS_FILE
    temporary = folder / (WEIGHTS_FILE + ".tmp")
    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(temporary))
    shutil.move(temporary, path)
    card = ModelCard(**{**card.__dict__, "sha256": sha256_of(path), "folder": folder})
    write_folder_card(card, folder)
    anything.cfnb_name = label
    return FitResult(model, card, folder)


def _device(device: str | torch.device | None) -> torch.device:
    return torch.device(device) if device is not None else default_device()


def fit_classifier(
    data: Any,
    labels: Any = None,
    *,
    attributes: Any = None,
    class_names: Sequence[str] | None = None,
    attribute_names: Sequence[str] | None = None,
    architecture: str = "gap",
    widths: Sequence[int] = (32, 64, 128),
    epochs: int = 10,
    lr: float = 3e-3,
    batch_size: int = 128,
    max_shift: int = 2,
    degrade: float = 0.0,
    validation: float = 0.1,
    seed: int = 0,
    device: str | torch.device | None = None,
    amp: bool = False,
    out: str | Path | None = None,
    checkpoint_every: int = 500,
    resume: bool = False,
    name: str | None = None,
    log: Log | None = print,
    progress: Progress = True,
) -> FitResult:
    """Train a classifier: over classes (data with labels; cross-entropy) or over attributes (multi-label data;
    one sigmoid per attribute, BCE).

    Args:
        data / labels / attributes: the images, with labels or attributes beside a tensor (a data set or spec
            carries its own). class_names / attribute_names: the names of a tensor's labels or attribute columns.
        architecture: ``"gap"`` (``GAPClassifier``: global average pooling + a linear head, so Mirror-CFE can
            explain it; ``widths`` per stage) or ``"lenet"`` (``LeNetClassifier``, e.g. an independent oracle; square
            images whose side is a multiple of 4).
        epochs / lr / batch_size / max_shift / degrade: as for ``cfnb.training.train_supervised``.
        validation: the share of the images held out to measure accuracy (0: none).
        seed: seeds the split, the initial weights and the training.
        device: where to train (default CUDA when present, else the CPU). amp: mixed precision.
        out / checkpoint_every / resume: save into ``out`` (checkpoints every N steps, resume from the last one).
        name: the card's name (default: the output folder's name).

    Returns:
        A ``FitResult`` whose card records the held-out accuracy (per attribute for multi-label data).
    """
    source = image_source(data, labels, attributes, class_names=class_names, attribute_names=attribute_names)
    multilabel = source.attribute_names is not None
    if not multilabel and not source.has_labels:
        raise ValueError("a classifier needs labels or attributes: give labels=... or attributes=... beside a tensor, "
                         "or data that carries them (an image folder's class folders, celeba:ROOT, an .npz with "
                         "labels)")
    outputs = list((source.attribute_names if multilabel else source.class_names) or [])
    train, held = _held_out(source, validation, seed)
    torch.manual_seed(seed)
    kwargs: dict[str, Any]
    if architecture == "gap":
        kwargs = {"in_channels": source.channels, "num_classes": len(outputs), "widths": list(widths)}
        model: nn.Module = GAPClassifier(**kwargs)
        arch = "GAPClassifier"
    elif architecture == "lenet":
        if source.image_size[0] != source.image_size[1] or source.image_size[0] % 4:
            raise ValueError(f"the LeNet classifier needs square images with a side divisible by 4, got "
                             f"{source.image_size[0]}x{source.image_size[1]}")
        kwargs = {"in_channels": source.channels, "num_classes": len(outputs), "image_size": source.image_size[0]}
        model, arch = LeNetClassifier(**kwargs), "LeNetClassifier"
    else:
        raise ValueError(f"architecture must be 'gap' or 'lenet', got {architecture!r}")
    train_supervised(model, train, loss="bce" if multilabel else "ce", epochs=epochs, lr=lr, batch_size=batch_size,
                     max_shift=max_shift, degrade=degrade, seed=seed, device=_device(device), log=log,
                     progress=progress, checkpoints=_checkpoints(out, checkpoint_every, resume), amp=amp)
    quality = _classifier_quality(model, held, multilabel, outputs) if held is not None else {}
    extra = {"attribute_names": outputs, "multilabel": True} if multilabel else {"class_names": outputs}
    return _finish(model, arch, kwargs, source.description, quality, extra, out, name)


@torch.no_grad()
def _classifier_quality(model: nn.Module, held: ImageSource, multilabel: bool,
                        outputs: list[str]) -> dict[str, Any]:
    images, targets = held.batch(torch.arange(len(held)))
    assert targets is not None
    logits = forward_in_batches(model, images.to(model_device(model) or "cpu"), 256).cpu()
    if not multilabel:
        return {"held_out_accuracy": round(float((logits.argmax(1) == targets).float().mean()), 4),
                "held_out_images": len(held)}
    per = ((logits > 0).float() == targets).float().mean(0)
    return {"held_out_attribute_accuracy": {n: round(float(v), 4) for n, v in zip(outputs, per)},
            "min_attribute_accuracy": round(float(per.min()), 4), "held_out_images": len(held)}


def fit_generator(
    data: Any,
    *,
    latent_dim: int = 16,
    hidden: int = 128,
    epochs: int = 30,
    lr: float = 2e-3,
    batch_size: int = 128,
    beta: float = 1.0,
    adversarial_epochs: int = 0,
    validation: float = 0.1,
    seed: int = 0,
    device: str | torch.device | None = None,
    amp: bool = False,
    out: str | Path | None = None,
    checkpoint_every: int = 500,
    resume: bool = False,
    name: str | None = None,
    log: Log | None = print,
    progress: Progress = True,
) -> FitResult:
    """Train a generator for ``method="latent"``/``"causal"``: a ``ConvVAE`` sized to the data's square images
    (16-256 px, 1 or 3 channels).

    ``adversarial_epochs`` > 0 continues the trained VAE as a VAE-GAN for that many epochs
    (``cfnb.training.train_vae_gan``): sharper drawings, also between and beyond the codes of real images, where
    counterfactual searches go. With ``out`` each stage is checkpointed (``checkpoint.pt``, then
    ``vae-gan-checkpoint.pt``), and a resumed run continues in the stage where it stopped.

    Returns:
        A ``FitResult`` whose card records the held-out reconstruction L1 (of ``decode(encode(x))``).
    """
    source = image_source(data)
    side, width = source.image_size
    if side != width:
        raise ValueError(f"the generator needs square images, got {side}x{width}; pass size=N to resize a folder")
    train, held = _held_out(source, validation, seed)
    torch.manual_seed(seed)
    kwargs: dict[str, Any] = {"latent_dim": latent_dim, "channels": source.channels, "hidden": hidden,
                              "image_size": side}
    vae = ConvVAE(**kwargs)
    checkpoints = _checkpoints(out, checkpoint_every, resume)
    train_vae(vae, train, epochs=epochs, lr=lr, batch_size=batch_size, beta=beta, seed=seed, device=_device(device),
              log=log, progress=progress, checkpoints=checkpoints, amp=amp)
    if adversarial_epochs > 0:
        train_vae_gan(vae, train, epochs=adversarial_epochs, batch_size=batch_size, seed=seed, device=_device(device),
                      log=log, progress=progress,
                      checkpoints=checkpoints.for_stage(VAE_GAN_CHECKPOINT) if checkpoints is not None else None)
    quality: dict[str, Any] = {}
    if held is not None:
        images = held.batch(torch.arange(len(held)))[0]
        recon = forward_in_batches(vae, images.to(model_device(vae) or "cpu"), 256).cpu()
        quality = {"held_out_recon_l1": round(float((recon - images).abs().mean()), 4), "held_out_images": len(held)}
    return _finish(vae, "ConvVAE", kwargs, source.description, quality, {}, out, name)


def fit_mirror_decoder(
    classifier: nn.Module,
    data: Any,
    *,
    epochs: int = 10,
    width: int = 64,
    lr: float = 2e-3,
    batch_size: int = 128,
    multilabel: bool | None = None,
    validation: float = 0.1,
    seed: int = 0,
    device: str | torch.device | None = None,
    amp: bool = False,
    out: str | Path | None = None,
    checkpoint_every: int = 500,
    resume: bool = False,
    name: str | None = None,
    log: Log | None = print,
    progress: Progress = True,
    generator: ConvVAE | None = None,
    **losses: Any,
) -> FitResult:
    """Train the Mirror-CFE decoder of a GAP classifier (``cfnb.training.train_decoder``) on the data's images.

    Args:
        classifier: a GAP + linear classifier (cfnb's, a torchvision classification model, or a
            ``cfnb.models.gap_view``); frozen during training.
        multilabel: the classifier's outputs are attributes (default: it has ``attribute_names`` and no
            ``class_names``).
        generator: a ``ConvVAE`` for these images to draw through (a ``GeneratorFeatureDecoder``: only the mapper
            from feature maps to its codes is trained); None trains a free ``FeatureDecoder``.
        **losses: ``weights``, ``max_reach``, ``warmup`` of ``train_decoder``.

    Returns:
        A ``FitResult`` whose card records the held-out reconstruction L1 of ``decoder(features(x))`` and how often
        the classifier's decision (or each attribute) on the reconstruction agrees with that on the image.
    """
    source = image_source(data)
    if multilabel is None:
        multilabel = bool(getattr(classifier, "attribute_names", None)) and not getattr(classifier, "class_names",
                                                                                          None)
    train, held = _held_out(source, validation, seed)
    run_on = _device(device)
    decoder = train_decoder(classifier, train, epochs=epochs, batch_size=batch_size, lr=lr, width=width,
                            multilabel=multilabel, seed=seed, device=run_on, log=log, progress=progress,
                            checkpoints=_checkpoints(out, checkpoint_every, resume), amp=amp, generator=generator,
                            **losses)
    quality = {}
    if held is not None:
        measured = measure_decoder(classifier, decoder, held.batch(torch.arange(len(held)))[0], multilabel)
        quality = {f"held_out_{key}" if key == "recon_l1" else key: value for key, value in measured.items()}
        quality["held_out_images"] = len(held)
    owner = getattr(classifier, "cfnb_name", None) or type(classifier).__name__
    return _finish(decoder, type(decoder).__name__, decoder_kwargs(decoder), f"features of {owner} on "
                   f"{source.description}", quality, {"classifier": owner}, out, name)


def decoder_kwargs(decoder: Any) -> dict[str, Any]:
    """The architecture arguments a model card keeps for a Mirror-CFE decoder of either kind."""
    if isinstance(decoder, GeneratorFeatureDecoder):
        return {"feature_channels": decoder.feature_channels, "feature_size": list(decoder.feature_size),
                "generator_kwargs": dict(decoder.generator_kwargs), "hidden": decoder.hidden, "width": decoder.width}
    kwargs: dict[str, Any] = {"feature_channels": decoder.feature_channels, "image_channels": decoder.image_channels,
                              "upsamplings": decoder.upsamplings, "width": decoder.width}
    if decoder.image_size is not None:
        kwargs["image_size"] = list(decoder.image_size)
    return kwargs


@torch.no_grad()
def measure_decoder(classifier: nn.Module, decoder: nn.Module, images: torch.Tensor,
                    multilabel: bool) -> dict[str, float]:
    """How well ``decoder`` inverts the classifier's features on ``images``: ``recon_l1`` of
    ``decoder(features(x))``, and how often the classifier's decision (``classifier_agreement_on_recon``) or each
    attribute (``attribute_agreement_on_recon``, multi-label) on the reconstruction is the one on the image."""
    from ..methods.mirror import gap_parts
    from ..modes import frozen

    features, _ = gap_parts(classifier)
    home = model_device(classifier) or torch.device("cpu")
    with frozen([classifier, decoder], home):
        recon = forward_in_batches(lambda x: decoder(features(x)), images.to(home), 500)
        before, after = forward_in_batches(classifier, images.to(home), 500), forward_in_batches(classifier, recon, 500)
    agree = (after > 0) == (before > 0) if multilabel else after.argmax(1) == before.argmax(1)
    return {"recon_l1": round(float((recon.cpu() - images).abs().mean()), 4),
            ("attribute_agreement_on_recon" if multilabel else "classifier_agreement_on_recon"):
                round(float(agree.float().mean()), 4)}


def fit_editor(
    data: Any,
    attributes: Any = None,
    *,
    attribute_classifier: nn.Module,
    attribute_names: Sequence[str] | None = None,
    steps: int = 2000,
    width: int = 32,
    lr: float = 2e-4,
    batch_size: int = 32,
    reconstruction_weight: float = 100.0,
    attribute_weight: float = 10.0,
    adversarial_weight: float = 1.0,
    validation: float = 0.1,
    seed: int = 0,
    device: str | torch.device | None = None,
    out: str | Path | None = None,
    checkpoint_every: int = 500,
    resume: bool = False,
    name: str | None = None,
    log: Log | None = print,
    progress: Progress = True,
) -> FitResult:
    """Train an attribute editor for ``method="attribute"`` on images with attributes, AttGAN-style
    (``cfnb.training.attgan``): reconstruction, a frozen ``attribute_classifier`` reading the asked-for attributes
    in edited images, and a patch discriminator for realism.

    Args:
        data / attributes: images with attributes (``celeba:ROOT``, or a tensor with ``attributes=(N, K)``).
        attribute_classifier: a multi-label classifier of the same images (e.g. from ``fit_classifier``) whose
            ``attribute_names`` cover the editor's; frozen.
        attribute_names: with a tensor of attributes, the names of its columns (all edited); with data that names
            its attributes, the ones the editor edits (default: every attribute the classifier predicts).
        steps / width / lr / batch_size / ``*_weight``: the training (see ``train_attribute_editor``).

    Returns:
        A ``FitResult`` whose card records the held-out reconstruction L1 and, per attribute, how often the
        classifier reads the attribute flipped when the editor is asked to flip it (``success``).
    """
    columns_named = torch.is_tensor(data) and attributes is not None
    source = image_source(data, attributes=attributes, attribute_names=attribute_names if columns_named else None)
    if source.attribute_names is None:
        raise ValueError("an attribute editor needs images with attributes: celeba:ROOT, or a tensor with "
                         "attributes=(N, K)")
    known = list(getattr(attribute_classifier, "attribute_names", None) or source.attribute_names)
    names = list(attribute_names) if attribute_names is not None and not columns_named else [
        n for n in source.attribute_names if n in known]
    unknown = [n for n in names if n not in source.attribute_names]
    if unknown or not names:
        raise ValueError(f"attribute_names must be attributes of the data ({source.attribute_names}); got "
                         f"{unknown or names}")
    data_columns = [source.attribute_names.index(n) for n in names]
    selected = _AttributeColumns(source, data_columns, names)
    train, held = _held_out(selected, validation, seed)
    torch.manual_seed(seed)
    kwargs: dict[str, Any] = {"num_attributes": len(names), "attribute_names": names, "width": width,
                              "channels": source.channels}
    editor = AttributeEditor(**kwargs)
    train_attribute_editor(editor, train, attribute_classifier, columns=reader_columns(attribute_classifier, names),
                           steps=steps, batch_size=batch_size, lr=lr, reconstruction_weight=reconstruction_weight,
                           attribute_weight=attribute_weight, adversarial_weight=adversarial_weight, seed=seed,
                           device=_device(device), log=log, progress=progress,
                           checkpoints=_checkpoints(out, checkpoint_every, resume))
    quality = _editor_quality(editor, attribute_classifier, held, names) if held is not None else {}
    return _finish(editor, "AttributeEditor", kwargs, source.description, quality,
                   {"attribute_names": names, "judge": getattr(attribute_classifier, "cfnb_name", None)}, out, name)


class _AttributeColumns(ImageSource):
    """The attributes ``columns`` of another source, under ``names``."""

    def __init__(self, parent: ImageSource, columns: list[int], names: list[str]):
        self.parent, self.columns = parent, torch.tensor(columns)
        self.channels, self.image_size, self.description = parent.channels, parent.image_size, parent.description
        self.attribute_names = names

    def __len__(self) -> int:
        return len(self.parent)

    def batch(self, index: torch.Tensor | Sequence[int]) -> tuple[torch.Tensor, torch.Tensor | None]:
        images, attributes = self.parent.batch(index)
        return images, attributes[:, self.columns] if attributes is not None else None


@torch.no_grad()
def _editor_quality(editor: nn.Module, reader: nn.Module, held: ImageSource, names: list[str]) -> dict[str, Any]:
    coder: Any = editor.eval()
    images, attributes = held.batch(torch.arange(len(held)))
    assert attributes is not None
    home = model_device(editor) or torch.device("cpu")
    images, attributes = images.to(home), attributes.float().to(home)
    columns = torch.tensor(reader_columns(reader, names), device=home)
    reader = reader.to(home).eval()
    content = coder.encode(images)
    recon = coder.decode(content, attributes)
    success = {}
    for k, name in enumerate(names):
        target = attributes.clone()
        target[:, k] = 1 - target[:, k]
        read = reader(coder.decode(content, target)).index_select(1, columns)[:, k] > 0
        success[name] = round(float((read.float() == target[:, k]).float().mean()), 4)
    return {"held_out_recon_l1": round(float((recon - images).abs().mean()), 4), "flip_success": success,
            "min_flip_success": min(success.values()), "held_out_images": len(held)}
