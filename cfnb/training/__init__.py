"""Training, apart from runtime: loops, the compile-with-fallback helper, and the recipes of the shipped models.

Nothing under ``cfnb`` that explains, measures or draws imports this package; ``cfnb.models`` only builds and loads.

- ``loops``: ``fit``, ``train_supervised``, ``train_vae``, ``accuracy``.
- ``mirror_decoder``: ``train_decoder``, the Mirror-CFE decoder of a frozen GAP classifier.
- ``vae_gan``: ``train_vae_gan``, a trained VAE sharpened as a VAE-GAN (PatchGAN critic, feature matching).
- ``editor``: ``train_editor`` and ``measure_editor`` for attribute editors on procedural faces.
- ``compiling``: ``torch.compile`` with one eager fallback (``CompiledSteps``, ``compiled_face_renderer``).
- ``fitting``: ``fit_classifier``, ``fit_generator``, ``fit_mirror_decoder``, ``fit_editor``: helper models for your
  own images (any size 16-256 px, 1 or 3 channels), checkpointed, resumable, saved with a model card.
- ``attgan``: the AttGAN-style editor training ``fit_editor`` uses (photographs have no before/after pairs).
- ``checkpoints``: ``Checkpointer``, the atomic checkpoint every loop can save and resume from.
- ``recipes``: ``RECIPES`` and ``train_and_save`` (``cfnb train NAME``), split by domain.

Every loop takes ``progress=True|False|callable`` (a tqdm bar by default) and ``log`` for its summary lines.
"""
from .attgan import train_attribute_editor
from .checkpoints import Checkpointer
from .compiling import CompiledSteps, CompileFallback, compiled_face_renderer
from .editor import measure_editor, train_editor
from .fitting import FitResult, fit_classifier, fit_editor, fit_generator, fit_mirror_decoder
from .loops import accuracy, fit, train_supervised, train_vae
from .mirror_decoder import DecoderLossWeights, train_decoder
from .vae_gan import VAEGANWeights, train_vae_gan

__all__ = ["fit_classifier", "fit_generator", "fit_mirror_decoder", "fit_editor", "FitResult", "Checkpointer",
           "fit", "train_supervised", "train_vae", "accuracy", "train_decoder", "DecoderLossWeights",
           "train_editor", "train_attribute_editor", "measure_editor", "CompiledSteps", "CompileFallback",
           "compiled_face_renderer", "train_vae_gan", "VAEGANWeights"]
