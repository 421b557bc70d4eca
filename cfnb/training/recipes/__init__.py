"""Recipes that reproduce every shipped weight from the embedded data (``cfnb train NAME``), one module per domain.

``RECIPES`` maps a shipped model's name to its recipe; ``train_and_save(name)`` trains it and writes the
safetensors file and its card into the registry.
"""
from . import faces, mnist, shortcuts  # noqa: F401  (each registers its recipes)
from .common import RECIPES, TrainedModel, recipe, save_trained, train_and_save

__all__ = ["RECIPES", "TrainedModel", "recipe", "train_and_save", "save_trained"]
