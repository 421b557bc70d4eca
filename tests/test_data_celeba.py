"""CelebA loader on a tiny fake CelebA written in the real file formats (JPEGs by Pillow + the six text files)."""
from pathlib import Path

import pytest
import torch
from fake_celeba import FILES, attributes_of, write_fake_celeba

from cfnb.data import CELEBA_ATTRIBUTES, load_celeba
from cfnb.data.celeba import find_celeba_folder


@pytest.fixture()
def flat(tmp_path) -> Path:
    """The files directly in the folder."""
    write_fake_celeba(tmp_path / "mine")
    return tmp_path / "mine"


@pytest.fixture()
def nested(tmp_path) -> Path:
    """torchvision's layout: root/celeba/..."""
    write_fake_celeba(tmp_path / "data" / "celeba")
    return tmp_path / "data"


def _check(dataset, split: str, size: int) -> None:
    expected = [(i, f) for i, f in enumerate(FILES) if f[1] == {"train": 0, "valid": 1, "test": 2}[split]]
    assert len(dataset) == len(expected)
    assert dataset.images.shape == (len(expected), 3, size, size)
    assert dataset.attribute_names == list(CELEBA_ATTRIBUTES)
    assert dataset.attributes.shape == (len(expected), 40)
    for row, (i, (_, _, colour)) in enumerate(expected):
        assert torch.equal(dataset.attributes[row], (torch.tensor(attributes_of(i)) + 1).float() / 2)
        mean = dataset.images[row].mean((1, 2)) * 255
        assert torch.allclose(mean, torch.tensor(colour, dtype=torch.float32), atol=6), (split, row)
        assert dataset.images[row].amin() * 255 > 25  # the dark bands were cropped away


@pytest.mark.parametrize("layout", ["flat", "nested"])
@pytest.mark.parametrize("split", ["train", "valid", "test"])
def test_loads_both_layouts_and_every_split(layout, split, request):
    root = request.getfixturevalue(layout)
    dataset = load_celeba(root, split=split, size=32)
    _check(dataset, split, 32)
    assert "not MD5-checked" in dataset.source  # fake files fail torchvision's MD5 check, so cfnb reads them


def test_root_may_be_the_folder_or_its_parent(nested):
    assert find_celeba_folder(nested) == nested / "celeba"
    assert find_celeba_folder(nested / "celeba") == nested / "celeba"
    a, b = load_celeba(nested, "train", size=16), load_celeba(nested / "celeba", "train", size=16)
    assert torch.equal(a.images, b.images) and torch.equal(a.attributes, b.attributes)


def test_torchvision_reads_the_folder_when_it_accepts_it(nested, monkeypatch):
    from torchvision.datasets import CelebA

    ours = load_celeba(nested, "valid", size=24)
    monkeypatch.setattr(CelebA, "_check_integrity", lambda self: True)  # as if the MD5 sums matched
    theirs = load_celeba(nested, "valid", size=24)
    assert "torchvision" in theirs.source
    assert torch.equal(ours.images, theirs.images)
    assert torch.equal(ours.attributes, theirs.attributes)
    assert ours.attribute_names == theirs.attribute_names


def test_limit(flat):
    dataset = load_celeba(flat, "train", size=16, limit=2)
    assert len(dataset) == 2
    _check_first = load_celeba(flat, "train", size=16)
    assert torch.equal(dataset.images, _check_first.images[:2])


@pytest.mark.parametrize("missing", ["list_attr_celeba.txt", "list_eval_partition.txt"])
def test_missing_file(flat, missing):
    (flat / missing).unlink()
    with pytest.raises(FileNotFoundError) as error:
        load_celeba(flat, "train")
    message = str(error.value)
    assert f"missing: {missing}" in message
    for expected in ("img_align_celeba/", "list_attr_celeba.txt", "list_eval_partition.txt", "identity_CelebA.txt",
                     "list_bbox_celeba.txt", "list_landmarks_align_celeba.txt"):
        assert expected in message
    assert "download=True" in message and "CelebA" in message


def test_missing_folder_and_missing_image(tmp_path, flat):
    with pytest.raises(FileNotFoundError, match="img_align_celeba/"):
        load_celeba(tmp_path / "nowhere")
    (flat / "img_align_celeba" / "000004.jpg").unlink()
    with pytest.raises(FileNotFoundError, match="000004.jpg"):
        load_celeba(flat, "train")
    assert len(load_celeba(flat, "test", size=16)) == 1  # other splits are complete


def test_malformed_files(flat):
    text = (flat / "list_attr_celeba.txt").read_text().splitlines()
    (flat / "list_attr_celeba.txt").write_text("\n".join(["7"] + text[1:]) + "\n")
    with pytest.raises(ValueError, match="line 1 says 7 images but 6 rows follow"):
        load_celeba(flat, "train")
    (flat / "list_attr_celeba.txt").write_text("\n".join(text[:2] + [text[2][:-3]] + text[3:]) + "\n")
    with pytest.raises(ValueError, match="does not have 40 values"):
        load_celeba(flat, "train")


@pytest.mark.parametrize("kwargs, match", [({"split": "val"}, "unknown split"), ({"size": 4}, "size"),
                                           ({"limit": 0}, "limit")])
def test_bad_arguments(flat, kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_celeba(flat, **kwargs)
