"""cfnb.data.sources: any images as an ImageSource (tensor, Dataset, DataLoader, image folder, celeba:ROOT, .npz),
read lazily, with the errors a user meets first."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader, TensorDataset

from cfnb.data import image_source, load_mnist, open_data
from cfnb.data.sources import DatasetSource, FileSource, TensorSource


def write_folder(root: Path, classes=("cat", "dog"), per_class: int = 3, side: int = 32, mode: str = "RGB") -> Path:
    rng = np.random.default_rng(0)
    for name in classes:
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            shape = (side, side, 3) if mode == "RGB" else (side, side)
            Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode=mode).save(root / name / f"{i}.png")
    return root


def test_image_folder_reads_classes_lazily(tmp_path):
    source = open_data(write_folder(tmp_path / "pets"))
    assert isinstance(source, FileSource) and len(source) == 6
    assert source.class_names == ["cat", "dog"] and source.channels == 3 and source.image_size == (32, 32)
    images, labels = source.batch([0, 5])
    assert images.shape == (2, 3, 32, 32) and labels.tolist() == [0, 1]
    on_disk = np.asarray(Image.open(tmp_path / "pets" / "dog" / "2.png"), dtype=np.float32) / 255
    assert torch.allclose(images[1], torch.from_numpy(on_disk).permute(2, 0, 1))
    image, label = source[3]
    assert image.shape == (3, 32, 32) and int(label) == 1


def test_grey_folder_has_one_channel_and_size_resizes(tmp_path):
    source = open_data(write_folder(tmp_path / "digits", mode="L", side=40), size=28)
    assert source.channels == 1 and source.image_size == (28, 28)
    assert source.batch([0])[0].shape == (1, 1, 28, 28)


def test_folder_errors_say_what_to_do(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no class folders"):
        open_data(tmp_path / "empty")
    (tmp_path / "hollow" / "cat").mkdir(parents=True)
    with pytest.raises(ValueError, match="no images in"):
        open_data(tmp_path / "hollow")
    mixed = write_folder(tmp_path / "mixed")
    Image.fromarray(np.zeros((30, 30, 3), dtype=np.uint8)).save(mixed / "cat" / "odd.png")
    with pytest.raises(ValueError, match=r"different sizes \(30x30, 32x32.*pass size=N"):
        open_data(mixed)
    broken = write_folder(tmp_path / "broken")
    (broken / "dog" / "bad.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"cannot read .*bad.png as an image"):
        open_data(broken)
    with pytest.raises(FileNotFoundError):
        open_data(tmp_path / "nowhere")


def test_npz_with_labels(tmp_path):
    path = tmp_path / "set.npz"
    np.savez(path, images=np.full((4, 8, 8, 3), 255, dtype=np.uint8), labels=np.array([0, 1, 2, 1]),
             class_names=np.array(["a", "b", "c"]))
    source = open_data(path)
    assert isinstance(source, TensorSource) and source.class_names == ["a", "b", "c"]
    images, labels = source.batch(torch.arange(4))
    assert images.shape == (4, 3, 8, 8) and float(images.max()) == 1.0 and labels.tolist() == [0, 1, 2, 1]
    np.savez(tmp_path / "bad.npz", images=np.zeros((2, 8, 8), dtype=np.uint8), labels=np.array([0, 3]),
             class_names=np.array(["a", "b"]))
    with pytest.raises(ValueError, match=r"labels out of range: \[3\]"):
        open_data(tmp_path / "bad.npz")
    np.savez(tmp_path / "none.npz", pictures=np.zeros((2, 8, 8)))
    with pytest.raises(ValueError, match="no 'images' array"):
        open_data(tmp_path / "none.npz")


def test_tensors_datasets_and_loaders():
    images = torch.rand(10, 1, 8, 8)
    labels = torch.arange(10) % 2
    assert image_source(images, labels).class_names == ["0", "1"]
    from_dataset = image_source(TensorDataset(images, labels))
    assert isinstance(from_dataset, DatasetSource) and from_dataset.has_labels
    assert torch.equal(from_dataset.batch([3, 4])[0], images[3:5])
    from_loader = image_source(DataLoader(TensorDataset(images, labels), batch_size=4, shuffle=True))
    assert torch.equal(from_loader.batch([7])[1], labels[7:8])  # read in the data set's own order
    attributes = torch.rand(10, 3).round()
    assert image_source(images, attributes=attributes).attribute_names == ["attribute 0", "attribute 1",
                                                                             "attribute 2"]
    mnist = image_source(load_mnist("test"))
    assert mnist.class_names == [str(d) for d in range(10)] and len(mnist) == 1000
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        image_source(images * 255)
    with pytest.raises(ValueError, match="labels must be"):
        image_source(images, labels[:3])


def test_celeba_spec_reads_the_published_layout(fake_celeba):
    source = open_data(f"celeba:{fake_celeba}", size=16)
    assert source.attribute_names is not None and len(source.attribute_names) == 40
    images, attributes = source.batch([0, 1])
    assert images.shape == (2, 3, 16, 16) and attributes.shape == (2, 40)
    assert set(attributes.unique().tolist()) <= {0.0, 1.0}
