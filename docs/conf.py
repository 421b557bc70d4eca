"""Sphinx configuration of cfnb's documentation site: ``make docs`` builds it into ``docs/_build/html``.

Pages: the README (landing page), every ``docs/*.md``, the API reference (``docs/reference/``, autodoc), the model
cards (written from ``cfnb/models/weights/registry.json`` on each build) and every notebook under ``notebooks/``
(``docs/tutorials`` links there), executed during the build by MyST-NB with their Plotly figures and widget state.

Nothing loads from a CDN: require.js, the ipywidgets HTML manager, MathJax and plotly.js are served from
``_static/cfnb-vendor/`` (``docs/vendor_js.py``); ``docs/offline.py`` points the figures at those copies and fails
the build on any page that still loads a script, stylesheet or image from another host.

``sphinx-build -D nb_execution_mode=off`` builds the same pages without running the notebooks (in seconds); the API
reference test (``tests/test_docs_reference.py``) does that.
"""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(DOCS))  # the build helpers beside this file
sys.path.insert(0, str(ROOT))  # cfnb itself, also when it is not installed

import ipywidgets  # noqa: E402
import model_cards  # noqa: E402
import offline  # noqa: E402
import vendor_js  # noqa: E402

import cfnb  # noqa: E402

project = "cfnb"
author = "cfnb contributors"
copyright = "cfnb contributors, MIT License"
release = version = cfnb.__version__

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
]

root_doc = "index"
exclude_patterns = ["_build", "**/.ipynb_checkpoints", "audit-examples", "Thumbs.db", ".DS_Store"]

# -- MyST (Markdown) and MyST-NB (notebooks)
myst_heading_anchors = 3  # GitHub-style #section anchors, as the README and docs/*.md link to them
myst_enable_extensions = ["colon_fence", "dollarmath", "amsmath"]  # the notebooks' $...$ and $$...$$

nb_execution_mode = "force"  # every notebook runs during the build; its saved outputs are not trusted
nb_execution_timeout = 600  # seconds per cell
nb_execution_raise_on_error = True  # a cell that raises fails the build
nb_execution_show_tb = True
nb_execution_allow_errors = False
# In a kernel, Plotly's default renderer writes only its own MIME type, which a static page cannot draw; the
# "notebook" renderer writes HTML (docs/offline.py serves its plotly.js from _static). The kernels that execute
# the notebooks inherit this process's environment.
os.environ["PLOTLY_RENDERER"] = "notebook"

VENDOR_STATIC = DOCS / "_build" / "vendor-static"
VENDOR_CACHE = DOCS / "_build" / "npm-cache"
IPYWIDGETS_MAJOR = int(ipywidgets.__version__.split(".")[0])
# Loaded on pages that hold widget state; paths are under _static/. Widgets of other packages than ipywidgets'
# own would still be fetched from the manager's CDN: the notebooks use stock widgets only.
nb_ipywidgets_js = {vendor_js.REQUIRE_JS: {}, vendor_js.REQUIRE_CONFIG_JS: {}, vendor_js.EMBED_AMD_JS: {}}

# -- API reference (autodoc + napoleon for the Google-style docstrings)
autodoc_default_options = {"members": True, "undoc-members": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented_params"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_use_ivar = True  # "Attributes:" as fields of the class, so dataclass fields are not described twice

# -- HTML
html_theme = "furo"
html_title = f"cfnb {release}"
html_static_path = ["_static", str(VENDOR_STATIC)]
html_css_files = ["cfnb.css"]
html_js_files = ["mathjax2-queue.js"]  # MathJax 2's Hub.Queue, which saved widgets call, on MathJax 3
mathjax_path = vendor_js.MATHJAX_JS
html_show_sourcelink = False


# README links written for the repository's root, other than those into docs/ (the include's relative-docs):
# CHANGELOG.md is the changelog page here; any other file of the root is offered as a download.
README_LINKS = {"CHANGELOG.md": "changelog.md"}
_LINK = re.compile(r"\]\((?P<target>[^)#\s]+)(?P<anchor>#[^)\s]*)?\)")


def _readme_links(app, relative_path, parent_docname, content) -> None:  # type: ignore[no-untyped-def]
    if Path(relative_path).name != "README.md" or Path(app.srcdir, relative_path).resolve() != ROOT / "README.md":
        return

    def rewrite(match: re.Match) -> str:
        target, anchor = match["target"], match["anchor"] or ""
        if target in README_LINKS:
            return f"]({README_LINKS[target]}{anchor})"
        if not target.startswith("docs/") and "://" not in target and (ROOT / target).is_file():
            return f"](path:../{target})"
        return match[0]

    content[0] = _LINK.sub(rewrite, content[0])


def _vendor(app) -> None:  # type: ignore[no-untyped-def]
    vendor_js.vendor(VENDOR_STATIC, VENDOR_CACHE, IPYWIDGETS_MAJOR)


def setup(app) -> dict:  # type: ignore[no-untyped-def]
    VENDOR_STATIC.mkdir(parents=True, exist_ok=True)  # html_static_path is checked before builder-inited
    app.connect("builder-inited", _vendor)
    app.connect("include-read", _readme_links)
    app.connect("builder-inited", lambda app: model_cards.write_page(DOCS / "reference" / "model-cards.md"))
    offline.setup(app, local_plotly=vendor_js.PLOTLY_JS)
    return {"parallel_read_safe": True}
