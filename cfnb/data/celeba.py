"""CelebA from a folder in its published layout (nothing is downloaded here).

The layout, in ``root`` or in ``root/celeba`` (torchvision's layout)::

    img_align_celeba/                  aligned and cropped JPEGs, 178x218 (000001.jpg ... 202599.jpg)
    list_attr_celeba.txt               line 1: image count; line 2: the 40 attribute names; then
                                       "<file> <40 values of -1 or 1>" per image
    list_eval_partition.txt            "<file> <0 train | 1 valid | 2 test>" per image, no header
    identity_CelebA.txt                "<file> <identity>" per image, no header
    list_bbox_celeba.txt               line 1: count; line 2: "image_id x_1 y_1 width height"; then rows
    list_landmarks_align_celeba.txt    line 1: count; line 2: the 10 landmark names; then rows

When the files are the original release (torchvision's ``CelebA`` checks their MD5 sums), torchvision reads them;
otherwise (a subset of your own, or re-saved files) cfnb reads the same formats itself. Only the images, the
attributes and the partition are needed to load; the other three files are part of the release and optional here.
"""
from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from .base import AttributeDataset, announce, check_split

CELEBA_ATTRIBUTES: tuple[str, ...] = (
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs", "Big_Lips", "Big_Nose",
    "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows", "Chubby", "Double_Chin", "Eyeglasses",
    "Goatee", "Gray_Hair", "Heavy_Makeup", "High_Cheekbones", "Male", "Mouth_Slightly_Open", "Mustache",
    "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin", "Pointy_Nose", "Receding_Hairline", "Rosy_Cheeks",
    "Sideburns", "Smiling", "Straight_Hair", "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat", "Wearing_Lipstick",
    "Wearing_Necklace", "Wearing_Necktie", "Young",
)
"""CelebA's 40 attributes, in the order of ``list_attr_celeba.txt``."""

IMAGE_FOLDER = "img_align_celeba"
REQUIRED_FILES = ("list_attr_celeba.txt", "list_eval_partition.txt")
OPTIONAL_FILES = ("identity_CelebA.txt", "list_bbox_celeba.txt", "list_landmarks_align_celeba.txt")
SPLIT_CODES = {"train": 0, "valid": 1, "test": 2}
CELEBA_PAGE = "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html"


def _missing(folder: Path) -> list[str]:
    missing = [name for name in REQUIRED_FILES if not (folder / name).is_file()]
    if not (folder / IMAGE_FOLDER).is_dir():
        missing.insert(0, IMAGE_FOLDER + "/")
    return missing


def _not_found(root: Path, missing: list[str]) -> FileNotFoundError:
    return FileNotFoundError(
        f"CelebA not found under {root} (looked in {root} and {root / 'celeba'}); missing: {', '.join(missing)}.\n"
        f"Expected the published layout in that folder or in its 'celeba' subfolder:\n"
        f"  {IMAGE_FOLDER}/  (the aligned JPEGs, 000001.jpg ...)\n"
        f"  {', '.join(REQUIRED_FILES)}  (needed)\n"
        f"  {', '.join(OPTIONAL_FILES)}  (part of the release, optional here)\n"
        f"Get them from the official CelebA page ({CELEBA_PAGE}) or with "
        f"torchvision.datasets.CelebA(root, download=True), which writes root/celeba/."
    )


def find_celeba_folder(root: str | Path) -> Path:
    """The folder holding CelebA's files: ``root`` itself or ``root/celeba``.

    Raises:
        FileNotFoundError: neither holds the images folder and the needed text files (the message lists them
            and where to get them).
    """
    root = Path(root).expanduser()
    candidates = [root, root / "celeba"]
    for folder in candidates:
        if not _missing(folder):
            return folder
    # report the candidate that came closest
    best = min(candidates, key=lambda folder: len(_missing(folder)))
    raise _not_found(root, _missing(best))


def _read_table(path: Path, header: bool) -> tuple[list[str], list[str], list[list[str]]]:
    """Read a CelebA text file: (column names, file names, values). With ``header``, line 1 is the row count and
    line 2 the column names; the count is checked."""
    lines = [line.split() for line in path.read_text().splitlines()]
    names: list[str] = []
    if header:
        if len(lines) < 2:
            raise ValueError(f"{path} is too short: expected a count line, a names line and rows")
        try:
            count = int(lines[0][0])
        except (IndexError, ValueError):
            raise ValueError(f"{path}: line 1 must be the number of images, got {' '.join(lines[0])!r}") from None
        names = lines[1]
        lines = lines[2:]
    rows = [line for line in lines if line]
    if header and count != len(rows):
        raise ValueError(f"{path}: line 1 says {count} images but {len(rows)} rows follow; fix the count line")
    return names, [row[0] for row in rows], [row[1:] for row in rows]


def _read_celeba_files(folder: Path, split: str) -> tuple[list[str], torch.Tensor, list[str]]:
    """File names of ``split``, their (N, 40) 0/1 attributes and the attribute names, read by cfnb."""
    names, files, values = _read_table(folder / "list_attr_celeba.txt", header=True)
    bad = [f for f, v in zip(files, values) if len(v) != len(names)]
    if bad:
        raise ValueError(f"list_attr_celeba.txt: row {bad[0]!r} does not have {len(names)} values (one per name)")
    raw = np.asarray(values, dtype=np.int64).reshape(len(files), len(names))
    if not np.isin(raw, (-1, 1)).all():
        raise ValueError("list_attr_celeba.txt: attribute values must be -1 or 1")
    row_of = {f: i for i, f in enumerate(files)}
    _, part_files, part_values = _read_table(folder / "list_eval_partition.txt", header=False)
    code = SPLIT_CODES[split]
    chosen = [f for f, v in zip(part_files, part_values) if v and int(v[0]) == code]
    lacking = [f for f in chosen if f not in row_of]
    if lacking:
        raise ValueError(f"list_attr_celeba.txt has no row for {lacking[0]!r} (listed in list_eval_partition.txt)")
    attributes = torch.from_numpy((raw[[row_of[f] for f in chosen]] + 1) // 2)
    return chosen, attributes, names


def _read_with_torchvision(folder: Path, split: str) -> tuple[list[str], torch.Tensor, list[str]] | None:
    """The same through torchvision's ``CelebA``, or ``None`` when it refuses the folder (MD5 sums differ, a file
    of the release is absent, or the layout is not ``<parent>/celeba``)."""
    if folder.name != "celeba":
        return None
    try:
        from torchvision.datasets import CelebA

        dataset = CelebA(str(folder.parent), split=split, target_type="attr", download=False)
    except (RuntimeError, FileNotFoundError, OSError, ValueError):
        return None
    names = [name for name in dataset.attr_names if name]
    return list(dataset.filename), dataset.attr.long(), names


class CelebAIndex(NamedTuple):
    """What CelebA's text files say about one split: no image is read."""

    folder: Path
    files: list[str]
    attributes: torch.Tensor
    names: list[str]
    how: str


def read_celeba_index(root: str | Path, split: str = "train") -> CelebAIndex:
    """The folder, the file names of ``split``, their (N, 40) 0/1 attributes, the attribute names and how they were
    read (torchvision reads the original, MD5-checked release; cfnb reads the same formats otherwise).

    Raises:
        FileNotFoundError: the folder or a needed file is missing. ValueError: unknown split, malformed files.
    """
    check_split(split, tuple(SPLIT_CODES))
    folder = find_celeba_folder(root)
    read = _read_with_torchvision(folder, split)
    if read is not None:
        return CelebAIndex(folder, *read, "torchvision CelebA (MD5-checked release)")
    return CelebAIndex(folder, *_read_celeba_files(folder, split), "CelebA files read by cfnb (not MD5-checked)")


def _load_image(path: Path, size: int) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        image = image.convert("RGB")
        width, height = image.size
        side = min(width, height)
        left, top = (width - side) // 2, (height - side) // 2
        image = image.crop((left, top, left + side, top + side)).resize((size, size), Image.Resampling.BICUBIC)
        return np.asarray(image, dtype=np.uint8)


def load_celeba(root: str | Path, split: str = "train", size: int = 64, limit: int | None = None) -> AttributeDataset:
    """Load CelebA's aligned faces with their 40 attributes.

    Each image is centre-cropped to a square (178x178 for the aligned 178x218 images) and resized to ``size``.

    Args:
        root: the folder with CelebA's files, or its parent (torchvision's layout ``root/celeba/...``).
        split: ``"train"``, ``"valid"`` or ``"test"`` (CelebA's official partition).
        size: image side in pixels.
        limit: load only the first ``limit`` images of the split (the full training split at 64x64 takes about
            8 GB as float32).

    Returns:
        An ``AttributeDataset``: ``images`` (N, 3, size, size) in [0, 1], ``attributes`` (N, 40) in {0, 1} (the
        file's -1 mapped to 0), ``attribute_names`` as in the file (CelebA's 40 names).

    Raises:
        FileNotFoundError: the folder or a needed file is missing, or an image listed for the split is absent.
        ValueError: unknown split, a bad size or limit, or a malformed text file.
    """
    check_split(split, tuple(SPLIT_CODES))
    if isinstance(size, bool) or not isinstance(size, int) or size < 8:
        raise ValueError(f"size must be an int >= 8 (pixels), got {size!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0):
        raise ValueError(f"limit must be a positive int or None, got {limit!r}")
    folder, files, attributes, names, how = read_celeba_index(root, split)
    if limit is not None:
        files, attributes = files[:limit], attributes[:limit]
    paths = [folder / IMAGE_FOLDER / name for name in files]
    absent = [p.name for p in paths if not p.is_file()]
    if absent:
        raise FileNotFoundError(
            f"{len(absent)} image(s) of the {split} split are missing from {folder / IMAGE_FOLDER}, e.g. "
            f"{', '.join(absent[:3])}; the folder is incomplete: re-extract img_align_celeba.zip from the official "
            f"CelebA page ({CELEBA_PAGE}) or use torchvision.datasets.CelebA(root, download=True)"
        )
    if paths:
        pixels = np.stack([_load_image(p, size) for p in paths])
        images = torch.from_numpy(pixels).permute(0, 3, 1, 2).float().div_(255)
    else:
        images = torch.zeros(0, 3, size, size)
    announce(f"CelebA {split}: {len(paths)} faces at {size}x{size} from {folder} via {how}")
    return AttributeDataset(images, attributes.float(), names, source=f"CelebA {split} ({how})")
