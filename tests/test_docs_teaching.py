"""docs/teaching.md lists the mistakes students make and what cfnb answers: each row is run here, so the page quotes
the errors cfnb really raises (a changed message fails this test until the page says the new one)."""
from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

import cfnb
from cfnb.data import load_mnist
from cfnb.models import load

PAGE = Path(__file__).resolve().parents[1] / "docs" / "teaching.md"


@pytest.fixture(scope="module")
def setup() -> dict:
    return {"x": load_mnist("test").images[:4], "classifier": load("mnist-classifier"), "vae": load("mnist-vae"),
            "lenet": load("mnist-oracle")}


# (the code as the page shows it, what runs it, the exception type, the start of its message as the page quotes it)
MISTAKES: list[tuple[str, Callable[[dict], object], type[Exception], str]] = [
    ('cfnb.explain(classifier, x, 3, method="latent")',
     lambda s: cfnb.explain(s["classifier"], s["x"], 3, method="latent"),
     TypeError, "method='latent' needs a generator; pass generator=..."),
    ('cfnb.explain(classifier, x, 3, "latent", vae)',
     lambda s: cfnb.explain(s["classifier"], s["x"], 3, "latent", s["vae"]),
     TypeError, "explain() takes from 3 to 4 positional arguments but 5 were given"),
    ('cfnb.explain(..., method="latent", generator=vae, kapa=8)',
     lambda s: cfnb.explain(s["classifier"], s["x"], 3, method="latent", generator=s["vae"], kapa=8),
     TypeError, "method='latent' has no option(s) ['kapa']; its options are:"),
    ('cfnb.explain(classifier, x, 3, method="gci")',
     lambda s: cfnb.explain(s["classifier"], s["x"], 3, method="gci"),
     ValueError, "unknown method 'gci'; choose one of"),
    ('cfnb.explain(classifier, x, "seven", method="pixel")',
     lambda s: cfnb.explain(s["classifier"], s["x"], "seven", method="pixel"),
     ValueError, "unknown class name 'seven'; known: 0, 1, 2"),
    ('cfnb.explain(classifier, x, 10, method="pixel")',
     lambda s: cfnb.explain(s["classifier"], s["x"], 10, method="pixel"),
     ValueError, "target class 10 is out of range: the classifier has 10 classes (0..9)"),
    ('cfnb.explain(classifier, x * 255, 3, method="pixel")',
     lambda s: cfnb.explain(s["classifier"], s["x"] * 255, 3, method="pixel"),
     ValueError, "images must lie in [0, 1], got values in [0, 255]"),
    ('cfnb.explain(classifier, (x * 255).byte(), 3, method="pixel")',
     lambda s: cfnb.explain(s["classifier"], (s["x"] * 255).byte(), 3, method="pixel"),
     TypeError, "images must be a floating-point tensor in [0, 1], got dtype torch.uint8"),
    ('cfnb.explain(classifier, x[0], 3, method="pixel")',
     lambda s: cfnb.explain(s["classifier"], s["x"][0], 3, method="pixel"),
     ValueError, "images must have 4 dimensions (N, C, H, W), got shape (1, 28, 28)"),
    ('cfnb.explain(classifier, x.numpy(), 3, method="pixel")',
     lambda s: cfnb.explain(s["classifier"], s["x"].numpy(), 3, method="pixel"),
     TypeError, "images must be a torch.Tensor of shape (N, C, H, W), got ndarray"),
    ('cfnb.explain(classifier, x.repeat(1, 3, 1, 1), 3, method="pixel")',
     lambda s: cfnb.explain(s["classifier"], s["x"].repeat(1, 3, 1, 1), 3, method="pixel"),
     ValueError, "the classifier expects 1 channel(s), images have 3"),
    ('cfnb.explain(classifier, x, torch.tensor([1, 2]), method="pixel")',
     lambda s: cfnb.explain(s["classifier"], s["x"], torch.tensor([1, 2]), method="pixel"),
     ValueError, "target has 2 entries for 4 images; give one int or one per image"),
    ('cfnb.explain(load("mnist-oracle"), x, 3, method="mirror")',
     lambda s: cfnb.explain(s["lenet"], s["x"], 3, method="mirror"),
     TypeError, "method='mirror' needs a classifier that ends in global average pooling + one linear layer"),
]


def _page_text() -> str:
    return PAGE.read_text(encoding="utf-8")


@pytest.mark.parametrize("code, run, kind, message", MISTAKES, ids=[m[0] for m in MISTAKES])
def test_page_quotes_the_error_cfnb_raises(setup, code, run, kind, message):
    with pytest.raises(kind) as raised:
        run(setup)
    assert str(raised.value).startswith(message), f"cfnb now says: {raised.value}"
    page = _page_text()
    assert f"`{code}`" in page, f"docs/teaching.md does not show the mistake `{code}`"
    assert message.replace("|", "\\|") in page, f"docs/teaching.md does not quote {message!r}"


def test_page_lists_no_mistake_that_is_not_run_here():
    rows = re.findall(r"^\| `(cfnb\.explain\(.*?\))` \|", _page_text(), flags=re.M)
    assert rows, "no mistakes table found in docs/teaching.md"
    assert sorted(rows) == sorted(m[0] for m in MISTAKES)
