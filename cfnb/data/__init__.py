"""Data sets: embedded MNIST, CelebA from a folder, procedural faces, shortcut-planted digits, and any images of
yours as an ``ImageSource`` (a tensor, a Dataset, a DataLoader, an image folder, ``celeba:ROOT`` or an ``.npz``)."""
from .base import AttributeDataset, ImageDataset
from .celeba import CELEBA_ATTRIBUTES, load_celeba
from .faces import ATTRIBUTES as FACE_ATTRIBUTES
from .faces import FaceDataset, render_faces, sample_face_params, synth_faces
from .mnist import MNIST_CLASSES, load_mnist
from .shortcuts import ColoredMNIST, PatchedMNIST, ShortcutDataset, colored_mnist, patched_mnist
from .sources import ImageSource, image_source, open_data

__all__ = [
    "AttributeDataset", "ImageDataset", "MNIST_CLASSES", "load_mnist",
    "CELEBA_ATTRIBUTES", "load_celeba",
    "FACE_ATTRIBUTES", "FaceDataset", "render_faces", "sample_face_params", "synth_faces",
    "ColoredMNIST", "PatchedMNIST", "ShortcutDataset", "colored_mnist", "patched_mnist",
    "ImageSource", "image_source", "open_data",
]
