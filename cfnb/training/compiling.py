"""``torch.compile`` where it works, the eager code where it does not: one fallback for every compiled part.

Training steps (``CompiledSteps``) and the face renderer the editor recipe draws with (``compiled_face_renderer``)
run compiled; when compiling fails (no C++ compiler, an unsupported operation) or gives different numbers, they say
why once through ``log`` and run eagerly from then on.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar

import torch
from torch import nn

from ..data.faces import draw_faces, render_in_chunks

T = TypeVar("T")
Log = Callable[[str], None]


class CompileFallback:
    """Runs work compiled until compiling fails once; from then on eagerly, having said why once.

    Args:
        what: what is compiled, for the message (e.g. "the training step").
        slower: how much slower eager runs are, for the message (e.g. "about 1.4x slower").
        log: where the message goes (None: nowhere).
    """

    def __init__(self, what: str, slower: str, log: Log | None = print):
        self.what, self.slower, self.log = what, slower, log
        self.failed = False

    def fail(self, reason: str) -> None:
        """Stop compiling, saying ``reason`` once."""
        if not self.failed and self.log is not None:
            self.log(f"[cfnb.training] {reason}; running {self.what} eagerly ({self.slower})")
        self.failed = True

    def run(self, compiled: Callable[[], T], eager: Callable[[], T],
            undo: Callable[[], None] | None = None) -> T:
        """``compiled()``; if it raises (or compiling failed before), ``undo()`` what it left and run ``eager()``."""
        if not self.failed:
            try:
                return compiled()
            except Exception as error:
                first = str(error).splitlines()[0][:120] if str(error) else ""
                self.fail(f"torch.compile could not build {self.what} ({type(error).__name__}: {first})")
                if undo is not None:
                    undo()
        return eager()


class CompiledSteps:
    """Training steps through ``torch.compile(module)``, falling back to the eager module once compiling fails.

    ``step(loss_of)`` computes ``loss_of(forward)`` and back-propagates it, where ``forward`` is the compiled module
    (the same parameters and buffers as ``module``) or, after a failure, ``module`` itself; the failed step is redone
    eagerly and ``log`` says why. Inductor fuses the convolutions' BatchNorm, activation and concatenation passes:
    on a 2-core CPU, the editor part of a faces-editor step (batch 64) takes 99-100 ms instead of 130-148 ms, after
    about 12 s of compiling. Compiling needs a C++ compiler.
    """

    def __init__(self, module: nn.Module, log: Log | None = print):
        self.module = module
        self._compiled = torch.compile(module)
        self.fallback = CompileFallback("the training step", "about 1.4x slower", log)

    def step(self, loss_of: Callable[[Callable[..., torch.Tensor]], torch.Tensor]) -> torch.Tensor:
        """``loss_of(forward)``, back-propagated; returns the loss."""
        def through(forward: Callable[..., torch.Tensor]) -> torch.Tensor:
            loss = loss_of(forward)
            loss.backward()
            return loss

        return self.fallback.run(lambda: through(self._compiled), lambda: through(self.module),
                                 undo=lambda: self.module.zero_grad(set_to_none=True))


def compiled_face_renderer(log: Log | None = print) -> CompiledFaceRenderer:
    """``render_faces`` with its drawing compiled by ``torch.compile``, for code that renders many batches.

    Inductor fuses the drawing's few hundred elementwise passes over the pixel grid into a few loops: for 64 faces
    at 64 px on a 2-core CPU, 14 ms instead of 51-69 ms, after about 35 s of compiling per batch shape (the
    faces-editor recipe renders 2 x 64 faces for each of its thousands of steps). Compiling needs a C++ compiler.
    The first call for each batch shape is checked against ``render_faces``; where compiling fails or the images
    differ by more than 1e-4, the renderer says so through ``log`` and draws with ``render_faces`` from then on.
    """
    return CompiledFaceRenderer(log)


class CompiledFaceRenderer:
    """Callable as ``renderer(params, size=64)``, like ``render_faces``; see ``compiled_face_renderer``."""

    def __init__(self, log: Log | None = print):
        self._compiled = torch.compile(draw_faces, dynamic=False)
        self._checked: set[tuple[int, int]] = set()
        self.fallback = CompileFallback("the face renderer", "4-5x slower", log)

    def __call__(self, params: Mapping[str, torch.Tensor], size: int = 64) -> torch.Tensor:
        return render_in_chunks(params, size, self._draw)

    def _draw(self, chunk: dict[str, torch.Tensor], size: int) -> torch.Tensor:
        shape = (len(chunk["Male"]), size)
        if self.fallback.failed or shape in self._checked:
            return self.fallback.run(lambda: self._compiled(chunk, size), lambda: draw_faces(chunk, size))
        reference = draw_faces(chunk, size)
        images = self.fallback.run(lambda: self._compiled(chunk, size), lambda: reference)
        if self.fallback.failed:
            return reference
        difference = (images - reference).abs().max().item()
        if difference > 1e-4:
            self.fallback.fail(f"the compiled face renderer differs from render_faces by {difference:.2g}")
            return reference
        self._checked.add(shape)
        return images
