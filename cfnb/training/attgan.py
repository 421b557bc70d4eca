"""Training an attribute editor on photographs, the way AttGAN does (He et al., 2019): no before/after pairs exist,
so the editor learns from three signals at once.

- Reconstruction: each image redrawn with its own attributes must come back (L1).
- Attributes: the image redrawn with other attributes must show them to a frozen attribute classifier (BCE on its
  logits for the asked-for attributes).
- Realism: a PatchGAN discriminator (spectrally normalised convolutions, hinge loss) tells drawn images from real
  ones, so edits look like the data rather than like whatever pattern the classifier reads.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from ..data.sources import ImageSource
from ..progress import Progress, Reporter
from .checkpoints import Checkpointer


class PatchDiscriminator(nn.Module):
    """Scores overlapping patches of an image as real (high) or drawn (low): stride-2 spectrally normalised
    convolutions, then one score per patch."""

    def __init__(self, channels: int = 3, width: int = 32, depth: int = 3):
        super().__init__()
        layers: list[nn.Module] = []
        cin = channels
        for k in range(depth):
            cout = width * 2**k
            layers += [spectral_norm(nn.Conv2d(cin, cout, 4, 2, 1)), nn.LeakyReLU(0.2)]
            cin = cout
        layers.append(spectral_norm(nn.Conv2d(cin, 1, 3, 1, 1)))
        self.net = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images * 2 - 1)


def critic_hinge_loss(critic: nn.Module, real: torch.Tensor, drawn: torch.Tensor) -> torch.Tensor:
    """The discriminator's hinge loss: real images scored above 1, drawn ones (detached) below -1."""
    return F.relu(1 - critic(real)).mean() + F.relu(1 + critic(drawn.detach())).mean()


def reader_columns(attribute_classifier: nn.Module, names: Sequence[str]) -> list[int]:
    """The outputs of a multi-label ``attribute_classifier`` that read each of ``names``.

    Raises:
        ValueError: the classifier does not predict one of them (or has no ``attribute_names`` and a different
            number of outputs).
    """
    known = list(getattr(attribute_classifier, "attribute_names", None) or [])
    if not known:
        return list(range(len(names)))
    missing = [name for name in names if name not in known]
    if missing:
        raise ValueError(f"the attribute classifier does not predict {missing}; it predicts {known}")
    return [known.index(name) for name in names]


def target_attributes(attributes: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Attributes to ask for: half the batch gets another image's attributes (realistic combinations), the other
    half its own with one random attribute flipped."""
    n, k = attributes.shape
    shuffled = attributes[torch.randperm(n, generator=generator)]
    flipped = attributes.clone()
    rows = torch.arange(n)
    which = torch.randint(0, k, (n,), generator=generator)
    flipped[rows, which] = 1 - flipped[rows, which]
    use_shuffled = (torch.rand(n, generator=generator) < 0.5)[:, None]
    return torch.where(use_shuffled, shuffled, flipped)


def train_attribute_editor(
    editor: nn.Module,
    data: ImageSource,
    attribute_classifier: nn.Module,
    *,
    columns: Sequence[int],
    steps: int = 2000,
    batch_size: int = 32,
    lr: float = 2e-4,
    reconstruction_weight: float = 100.0,
    attribute_weight: float = 10.0,
    adversarial_weight: float = 1.0,
    seed: int = 0,
    device: str | torch.device = "cpu",
    log: Callable[[str], None] | None = print,
    progress: Progress = True,
    checkpoints: Checkpointer | None = None,
) -> nn.Module:
    """Train ``editor`` (``encode``/``decode(content, attributes)``) on ``data``'s images and attributes, AttGAN-style
    (see the module docstring); ``attribute_classifier`` is frozen and its outputs ``columns`` read the editor's
    attributes. Adam (betas 0.5, 0.999) for the editor and the discriminator, one step each per batch.

    Returns:
        The editor, in eval mode.
    """
    if data.attribute_names is None:
        raise ValueError("training an attribute editor needs images with attributes (e.g. celeba:ROOT, or a tensor "
                         "with attributes=...)")
    run_on = torch.device(device)
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    coder: Any = editor.to(run_on)
    critic = PatchDiscriminator(data.channels).to(run_on)
    reader = attribute_classifier.to(run_on).eval().requires_grad_(False)
    pick = torch.tensor(list(columns), device=run_on)
    editor_opt = torch.optim.Adam(editor.parameters(), lr=lr, betas=(0.5, 0.999))
    critic_opt = torch.optim.Adam(critic.parameters(), lr=lr, betas=(0.5, 0.999))
    stateful: dict[str, Any] = {"editor": editor, "critic": critic, "editor_opt": editor_opt,
                                "critic_opt": critic_opt}
    generators = {"data": generator}
    position = checkpoints.restore(stateful, generators) if checkpoints is not None else None
    step = position["step"] if position else 0
    order: torch.Tensor | None = position["order"] if position else None
    per_epoch = math.ceil(len(data) / batch_size)
    start, running = time.perf_counter(), 0.0
    with Reporter(progress, steps, "training the editor", unit="step") as reporter:
        if step:  # resumed: the bar starts where the run stopped
            reporter.update(step, steps)
        editor.train()
        critic.train()
        while step < steps:
            if order is None or step % per_epoch == 0:
                order = torch.randperm(len(data), generator=generator)
            index = order[(step % per_epoch) * batch_size:(step % per_epoch + 1) * batch_size]
            images, read_attributes = data.batch(index)
            assert read_attributes is not None  # checked above: the data has attribute names
            attributes = read_attributes.float()
            x, a = images.to(run_on), attributes.to(run_on)
            b = target_attributes(attributes, generator).to(run_on)
            content = coder.encode(x)
            fake = coder.decode(content, b)
            critic_loss = critic_hinge_loss(critic, x, fake)
            critic_opt.zero_grad(set_to_none=True)
            critic_loss.backward()
            critic_opt.step()
            reconstruction = F.l1_loss(coder.decode(content, a), x)
            read = F.binary_cross_entropy_with_logits(reader(fake).index_select(1, pick), b)
            editor_loss = (reconstruction_weight * reconstruction + attribute_weight * read
                           - adversarial_weight * critic(fake).mean())
            editor_opt.zero_grad(set_to_none=True)
            editor_loss.backward()
            editor_opt.step()
            step += 1
            running = 0.98 * running + 0.02 * reconstruction.item() if step > 1 else reconstruction.item()
            reporter.update(step, steps)
            if checkpoints is not None and checkpoints.due(step, steps):
                checkpoints.save(stateful, generators, {"step": step, "order": order})
            if step % 100 == 0 or step == steps:
                reporter.say(f"  step {step:5d}/{steps}  reconstruction {running:.4f}  attributes {read.item():.3f}"
                             f"  ({time.perf_counter() - start:.0f}s)", log)
    editor.eval()
    return editor
