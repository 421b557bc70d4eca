"""Training, apart from runtime: loops, the compile-with-fallback helper, and the recipes of the shipped models.

Nothing under ``cfnb`` that explains, measures or draws imports this package; ``cfnb.models`` only builds and loads.

- ``loops``: ``fit``, ``train_supervised``, ``train_vae``, ``accuracy``.
- ``mirror_decoder``: ``train_decoder``, the Mirror-CFE decoder of a frozen GAP classifier.
- ``editor``: ``train_editor`` and ``measure_editor`` for attribute editors on procedural faces.
- ``compiling``: ``torch.compile`` with one eager fallback (``CompiledSteps``, ``compiled_face_renderer``).
- ``recipes``: ``RECIPES`` and ``train_and_save`` (``cfnb train NAME``), split by domain.

Every loop takes ``progress=True|False|callable`` (a tqdm bar by default) and ``log`` for its summary lines.
"""
from .compiling import CompiledSteps, CompileFallback, compiled_face_renderer
from .editor import measure_editor, train_editor
from .loops import accuracy, fit, train_supervised, train_vae
from .mirror_decoder import DecoderLossWeights, train_decoder

__all__ = ["fit", "train_supervised", "train_vae", "accuracy", "train_decoder", "DecoderLossWeights",
           "train_editor", "measure_editor", "CompiledSteps", "CompileFallback", "compiled_face_renderer"]
