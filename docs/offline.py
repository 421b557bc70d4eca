"""Keep the built site self-contained: every script, stylesheet, image and frame a page loads comes from the site.

Four steps, registered by :func:`setup`:

- Plotly's notebook renderer inlines all of plotly.js (about 4.6 MB) into the output of the first figure a notebook
  shows; that copy is taken out, and every page with a Plotly figure loads the site's ``plotly.min.js`` once, in a
  script at the top of its content (``doctree-resolved``). There it runs before the figures' own scripts, and before
  require.js (which the saved widgets need, loaded at the end of the page): loaded after require.js, plotly.js would
  register itself as an anonymous AMD module instead of ``window.Plotly``.
- Plotly's notebook renderer writes a ``<script src=...>`` for MathJax 2 on a CDN into every figure's HTML; those
  tags are removed (``doctree-resolved``). Pages with math load the site's MathJax 3 once, through Sphinx.
- An image on another host (the README's Binder badge) is shown as its alt text, linked to where it pointed, or to
  the image itself when it was no link (``doctree-resolved``).
- After the build, every HTML page is parsed and the build fails, listing page and address, when a page still
  loads anything from another host (``build-finished``). Links (``<a href>``) may point anywhere.
"""
from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx.errors import ExtensionError
from sphinx.util.osutil import relative_uri

# MathJax as Plotly's HTML renderers load it ("include_mathjax='cdn'"), any version, and the whole tag that does.
PLOTLY_MATHJAX = re.compile(r"https://cdnjs\.cloudflare\.com/ajax/libs/mathjax/[^\"']+")
PLOTLY_MATHJAX_TAG = re.compile(r"<script[^>]*\bsrc=[\"']" + PLOTLY_MATHJAX.pattern + r"[\"'][^>]*>\s*</script>")

# The whole of plotly.js inlined by Plotly's notebook renderer ("/**\n* plotly.js vX.Y.Z ..."), in one script.
PLOTLY_BUNDLE = re.compile(r"<script[^>]*>(?=\s*/\*\*\s*\*\s*plotly\.js v)[\s\S]*?</script>")
PLOTLY_CONFIG = "window.PlotlyConfig = {MathJaxConfig: 'local'};"  # what the renderer sets before plotly.js

# Attributes through which a page loads something (as opposed to linking to it).
LOADING_ATTRIBUTES = {
    "script": ("src",),
    "link": ("href",),  # stylesheets, icons, preloads
    "img": ("src", "srcset"),
    "iframe": ("src",),
    "source": ("src", "srcset"),
    "video": ("src", "poster"),
    "audio": ("src",),
    "embed": ("src",),
    "object": ("data",),
}


def is_remote(url: str) -> bool:
    """True for an address on another host: ``http(s)://...`` or protocol-relative ``//...``."""
    url = url.strip()
    return url.startswith("//") or re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", url) is not None


class _RemoteLoads(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = LOADING_ATTRIBUTES.get(tag, ())
        for name, value in attrs:
            if name in wanted and value:
                urls = [part.split()[0] for part in value.split(",") if part.strip()] if name == "srcset" else [value]
                self.found += [f"<{tag} {name}={url}>" for url in urls if is_remote(url)]


def remote_loads(html: str) -> list[str]:
    """Every ``<tag attr=URL>`` of ``html`` that loads something from another host."""
    parser = _RemoteLoads()
    parser.feed(html)
    parser.close()
    return parser.found


def check_site(outdir: Path) -> dict[str, list[str]]:
    """Pages of a built site (relative path -> offending tags) that load something from another host."""
    problems: dict[str, list[str]] = {}
    for page in sorted(outdir.rglob("*.html")):
        found = remote_loads(page.read_text(encoding="utf-8", errors="replace"))
        if found:
            problems[page.relative_to(outdir).as_posix()] = found
    return problems


def setup(app: Any, local_plotly: str) -> None:
    """Register the steps; ``local_plotly`` is the site's plotly.js, a path under ``_static/``."""

    def html_raw_nodes(doctree: nodes.document) -> list[nodes.raw]:
        return [node for node in doctree.findall(nodes.raw) if "html" in node.get("format", "").split()]

    def serve_plotly_once(app: Any, doctree: nodes.document, docname: str) -> None:
        if app.builder.format != "html":
            return
        has_plotly = False
        for node in html_raw_nodes(doctree):
            text = node.astext()
            if PLOTLY_BUNDLE.search(text):
                text = PLOTLY_BUNDLE.sub("", text)
                node.replace(node.children[0], nodes.Text(text))
                has_plotly = True
            has_plotly = has_plotly or "Plotly.newPlot" in text
        if has_plotly:
            src = relative_uri(app.builder.get_target_uri(docname), f"_static/{local_plotly}")
            doctree.insert(0, nodes.raw("", f'<script>{PLOTLY_CONFIG}</script><script src="{src}"></script>',
                                        format="html"))

    def drop_plotly_mathjax(app: Any, doctree: nodes.document, docname: str) -> None:
        for node in html_raw_nodes(doctree):
            text = node.astext()
            if PLOTLY_MATHJAX_TAG.search(text):
                node.replace(node.children[0], nodes.Text(PLOTLY_MATHJAX_TAG.sub("", text)))

    def fail_on_remote_loads(app: Any, exception: Exception | None) -> None:
        if exception is not None or app.builder.format != "html":
            return
        problems = check_site(Path(app.outdir))
        if problems:
            lines = [f"  {page}: {', '.join(found[:5])}" + (" ..." if len(found) > 5 else "")
                     for page, found in problems.items()]
            raise ExtensionError("pages load scripts, styles or images from other hosts; serve them from "
                                 "_static (see docs/vendor_js.py) or inline them:\n" + "\n".join(lines))

    def remote_images_as_text(app: Any, doctree: nodes.document, docname: str) -> None:
        for image in list(doctree.findall(nodes.image)):
            uri = image.get("uri", "")
            if not is_remote(uri):
                continue
            text = nodes.Text(image.get("alt") or uri)
            if isinstance(image.parent, nodes.reference):
                image.replace_self(text)
            else:
                image.replace_self(nodes.reference("", "", text, refuri=uri))

    app.connect("doctree-resolved", serve_plotly_once)
    app.connect("doctree-resolved", drop_plotly_mathjax)
    app.connect("doctree-resolved", remote_images_as_text)
    app.connect("build-finished", fail_on_remote_loads)
