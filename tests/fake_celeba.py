"""A tiny fake CelebA in the real file formats (JPEGs by Pillow + the six text files), for tests."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from cfnb.data import CELEBA_ATTRIBUTES

# name, partition (0 train, 1 valid, 2 test), centre colour
FILES = [
    ("000001.jpg", 0, (200, 40, 40)),
    ("000002.jpg", 0, (40, 200, 40)),
    ("000003.jpg", 1, (40, 40, 200)),
    ("000004.jpg", 0, (200, 200, 40)),
    ("000005.jpg", 2, (40, 200, 200)),
    ("000006.jpg", 1, (200, 40, 200)),
]
BAND = (10, 10, 10)  # the top and bottom 20 rows: cut away by the centre crop of 178x218 images


def attributes_of(i: int) -> list[int]:
    rng = np.random.default_rng(i)
    return [int(v) for v in rng.choice([-1, 1], size=len(CELEBA_ATTRIBUTES))]


def write_fake_celeba(folder: Path) -> None:
    (folder / "img_align_celeba").mkdir(parents=True)
    for name, _, colour in FILES:
        pixels = np.empty((218, 178, 3), dtype=np.uint8)
        pixels[:] = colour
        pixels[:20] = BAND
        pixels[-20:] = BAND
        Image.fromarray(pixels).save(folder / "img_align_celeba" / name, quality=95)
    n = len(FILES)
    # list_attr_celeba.txt: count, names (with the trailing space of the real file), rows aligned like the original
    rows = [f"{name} " + " ".join(f"{v:2d}" for v in attributes_of(i)) for i, (name, _, _) in enumerate(FILES)]
    (folder / "list_attr_celeba.txt").write_text(
        f"{n}\n" + " ".join(CELEBA_ATTRIBUTES) + " \n" + "\n".join(rows) + "\n")
    (folder / "list_eval_partition.txt").write_text("".join(f"{name} {part}\n" for name, part, _ in FILES))
    (folder / "identity_CelebA.txt").write_text("".join(f"{name} {100 + i}\n" for i, (name, _, _) in enumerate(FILES)))
    (folder / "list_bbox_celeba.txt").write_text(
        f"{n}\nimage_id x_1 y_1 width height\n" + "".join(f"{name}    95  71 226 313\n" for name, _, _ in FILES))
    landmarks = ("lefteye_x lefteye_y righteye_x righteye_y nose_x nose_y "
                 "leftmouth_x leftmouth_y rightmouth_x rightmouth_y")
    (folder / "list_landmarks_align_celeba.txt").write_text(
        f"{n}\n{landmarks}\n"
        + "".join(f"{name}  69  109  106  113   77  142   73  152  108  154\n" for name, _, _ in FILES))
