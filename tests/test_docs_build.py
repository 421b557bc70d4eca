"""The documentation site's build helpers (docs/vendor_js.py, docs/offline.py, docs/model_cards.py), without Sphinx
and without the network: tarballs are made here."""
from __future__ import annotations

import base64
import hashlib
import io
import sys
import tarfile
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
sys.path.insert(0, str(DOCS))

import model_cards  # noqa: E402
import offline  # noqa: E402
import vendor_js  # noqa: E402


def _tarball(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, content in files.items():
            info = tarfile.TarInfo(f"package/{name}")
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def _package(data: bytes, **changes) -> vendor_js.NpmPackage:
    integrity = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
    fields = dict(name="@scope/widget-thing", version="1.2.3", integrity=integrity,
                  files=("dist/embed.js", "dist/*.woff"), strip="dist/", dest="thing")
    fields.update(changes)
    return vendor_js.NpmPackage(**fields)


def test_vendor_unpacks_selected_files_from_a_cached_tarball(tmp_path):
    data = _tarball({"dist/embed.js": b"define([], 1)", "dist/a.woff": b"font", "dist/embed.js.map": b"{}",
                     "README.md": b"# thing"})
    package = _package(data)
    assert package.tarball_url == "https://registry.npmjs.org/@scope/widget-thing/-/widget-thing-1.2.3.tgz"
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / package.tarball_name).write_bytes(data)
    fetched = vendor_js.fetch(package, cache)  # from the cache: no network
    written = vendor_js.unpack(package, fetched, tmp_path / "static")
    root = tmp_path / "static" / "cfnb-vendor" / "thing"
    assert sorted(p.relative_to(root).as_posix() for p in written) == ["a.woff", "embed.js"]
    assert (root / "embed.js").read_bytes() == b"define([], 1)"
    assert not (root / "embed.js.map").exists() and not (root / "README.md").exists()


def test_vendor_refuses_a_tarball_that_does_not_match_its_pin(tmp_path):
    data = _tarball({"dist/embed.js": b"define([], 1)", "dist/a.woff": b"font"})
    package = _package(data)
    (tmp_path / package.tarball_name).write_bytes(_tarball({"dist/embed.js": b"evil()", "dist/a.woff": b"font"}))
    with pytest.raises(RuntimeError, match="not the pinned"):
        vendor_js.fetch(package, tmp_path)


def test_vendor_says_when_a_file_is_gone_from_the_package(tmp_path):
    data = _tarball({"dist/embed.js": b"x"})
    with pytest.raises(RuntimeError, match=r"no file matching '\*?dist/\*\.woff'"):
        vendor_js.unpack(_package(data), data, tmp_path)


def test_vendor_pins_a_manager_per_ipywidgets_major():
    assert [p.name for p in vendor_js.packages(8)] == ["requirejs", "@jupyter-widgets/html-manager", "mathjax"]
    assert vendor_js.packages(8)[1].version.startswith("1.") and vendor_js.packages(7)[1].version.startswith("0.20")
    with pytest.raises(ValueError, match="ipywidgets 9.x"):
        vendor_js.packages(9)


def test_remote_loads_finds_scripts_styles_and_images_from_other_hosts_but_not_links():
    html = """<html><head><script src="_static/x.js"></script>
    <script src="https://cdn.jsdelivr.net/npm/thing.js"></script><link rel="stylesheet" href="//fonts.example/css">
    </head><body><a href="https://example.org">a link is fine</a><img src="data:image/png;base64,AAAA">
    <img srcset="img/a.png 1x, https://img.example/b.png 2x"><iframe src="http://127.0.0.1:1/x"></iframe></body></html>"""
    assert offline.remote_loads(html) == [
        "<script src=https://cdn.jsdelivr.net/npm/thing.js>", "<link href=//fonts.example/css>",
        "<img srcset=https://img.example/b.png>", "<iframe src=http://127.0.0.1:1/x>"]
    assert offline.remote_loads('<script src="../_static/cfnb-vendor/requirejs/require.js"></script>') == []


def test_check_site_lists_each_offending_page(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "index.html").write_text('<script src="_static/a.js"></script>')
    (tmp_path / "sub" / "page.html").write_text('<script src="https://cdnjs.cloudflare.com/mathjax.js"></script>')
    assert offline.check_site(tmp_path) == {"sub/page.html": ["<script src=https://cdnjs.cloudflare.com/mathjax.js>"]}


def test_plotly_mathjax_pattern_matches_what_plotly_writes():
    import plotly.graph_objects as go
    import plotly.io as pio

    html = pio.to_html(go.Figure(), include_plotlyjs=False, include_mathjax="cdn", full_html=False)
    assert offline.PLOTLY_MATHJAX.search(html), "plotly's MathJax address changed: update offline.PLOTLY_MATHJAX"
    assert offline.remote_loads(offline.PLOTLY_MATHJAX_TAG.sub("", html)) == []
    assert "Plotly.newPlot" in offline.PLOTLY_MATHJAX_TAG.sub("", html)  # only the tag is removed


def test_model_cards_page_has_one_section_per_shipped_card():
    from cfnb.models.registry import read_registry

    cards = read_registry()
    text = model_cards.page(cards)
    assert text.count("\n## ") == len(cards) >= 10
    classifier = cards["mnist-classifier"]
    section = text.split("## `mnist-classifier`")[1].split("\n## ")[0]
    assert classifier.sha256 in section and f"| `test_accuracy` | {classifier.quality['test_accuracy']:g} |" in section
    with pytest.raises(ValueError, match="registry.json is missing or empty"):
        model_cards.page({})
