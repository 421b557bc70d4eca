"""Data sets: embedded MNIST, CelebA from a folder, procedural faces and shortcut-planted digits."""
from .base import AttributeDataset, ImageDataset
from .mnist import MNIST_CLASSES, load_mnist

__all__ = ["AttributeDataset", "ImageDataset", "MNIST_CLASSES", "load_mnist"]
