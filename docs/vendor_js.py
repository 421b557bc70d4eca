"""The JavaScript the documentation site serves itself instead of loading it from a CDN.

Pages with saved widgets need require.js and the ipywidgets HTML manager (``embed-amd.js``, with the Font Awesome
files it references beside it); pages with Plotly figures or math need MathJax 3 (``tex-svg.js``); pages with Plotly
figures need plotly.js, copied from the installed plotly package (:func:`copy_plotly`). The others come from
its npm package: the tarball is downloaded once from the npm registry, checked against the SHA-512 pinned below
(npm's ``dist.integrity``), kept in a cache folder, and the files the pages use are unpacked into a static folder
that ``docs/conf.py`` hands to Sphinx (it ends up under ``_static/cfnb-vendor/``).

``docs/conf.py`` calls :func:`vendor` on every build. By hand::

    python docs/vendor_js.py DEST [--cache DIR]
"""
from __future__ import annotations

import argparse
import base64
import fnmatch
import hashlib
import io
import tarfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REGISTRY = "https://registry.npmjs.org"
VENDOR_DIR = "cfnb-vendor"  # the folder under _static/ that holds everything below


@dataclass(frozen=True)
class NpmPackage:
    """One pinned npm package and the files of it that the site serves.

    Attributes:
        name: npm name, with its scope if any ("@jupyter-widgets/html-manager").
        version: exact version.
        integrity: the registry's ``dist.integrity`` ("sha512-<base64>") of that version's tarball.
        files: globs inside the tarball's ``package/`` folder.
        strip: leading folder removed from each unpacked path ("dist/" puts ``dist/embed-amd.js`` at the top).
        dest: folder under ``cfnb-vendor/`` that receives the files.
    """

    name: str
    version: str
    integrity: str
    files: tuple[str, ...]
    strip: str
    dest: str

    @property
    def tarball_url(self) -> str:
        return f"{REGISTRY}/{self.name}/-/{self.name.rsplit('/', 1)[-1]}-{self.version}.tgz"

    @property
    def tarball_name(self) -> str:
        return f"{self.name.replace('/', '+')}-{self.version}.tgz"


REQUIREJS = NpmPackage(
    "requirejs", "2.3.8",
    "sha512-7/cTSLOdYkNBNJcDMWf+luFvMriVm7eYxp4BcFCsAX0wF421Vyce5SXP17c+Jd5otXKGNehIonFlyQXSowL6Mw==",
    files=("require.js",), strip="", dest="requirejs")

_MANAGER_FILES = ("dist/embed-amd.js", "dist/*.woff", "dist/*.woff2", "dist/*.ttf", "dist/*.eot", "dist/*.svg")

# The HTML manager must match the widget state's protocol: 1.x renders ipywidgets 8 state, 0.20.x ipywidgets 7.
HTML_MANAGER = {
    8: NpmPackage(
        "@jupyter-widgets/html-manager", "1.0.15",
        "sha512-5thBIV6ymNgmPVOHvzx+gGy8ZSKmSazhtGw4/c4xJDVzRhG9PTeQsRjF3FUTopvFi//SABeNz1yp47bCrJ3CQA==",
        files=_MANAGER_FILES, strip="dist/", dest="html-manager"),
    7: NpmPackage(
        "@jupyter-widgets/html-manager", "0.20.9",
        "sha512-GzwmQB5VFGPu+QsJJxYyLOvHdAtnXrOHG0zfFzSD32wu0ZYBG72p2EERP3av9EqE6NlSe570muudhKwHtsJH9w==",
        files=_MANAGER_FILES, strip="dist/", dest="html-manager"),
}

MATHJAX = NpmPackage(
    "mathjax", "3.2.2",
    "sha512-Bt+SSVU8eBG27zChVewOicYs7Xsdt40qm4+UpHyX7k0/O9NliPc+x77k1/FEsPsjKPZGJvtRZM1vO+geW0OhGw==",
    # tex-svg.js is self-contained; the TeX extensions and the menu's parts load from beside it on demand.
    files=("es5/tex-svg.js", "es5/input/tex/extensions/*", "es5/ui/*", "es5/a11y/*"), strip="es5/", dest="mathjax")

# Paths under _static/ that docs/conf.py puts into the pages.
REQUIRE_JS = f"{VENDOR_DIR}/requirejs/require.js"
REQUIRE_CONFIG_JS = f"{VENDOR_DIR}/requirejs-config.js"
EMBED_AMD_JS = f"{VENDOR_DIR}/html-manager/embed-amd.js"
MATHJAX_JS = f"{VENDOR_DIR}/mathjax/tex-svg.js"
PLOTLY_JS = f"{VENDOR_DIR}/plotly/plotly.min.js"


def copy_plotly(dest: Path) -> Path:
    """Copy the installed plotly package's ``plotly.min.js`` (the one the notebooks' figures are made for) to
    ``dest/cfnb-vendor/plotly/``; return its path."""
    import plotly

    source = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    if not source.exists():
        raise RuntimeError(f"{source} is missing: the installed plotly package has no plotly.min.js to serve")
    out = dest / PLOTLY_JS
    content = source.read_bytes()
    if not out.exists() or out.read_bytes() != content:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(content)
    return out


# The HTML manager finds its fonts beside the address require.js gives its modules ("@jupyter-widgets/..."), which
# is relative to the page unless mapped: this maps those module names onto the folder that holds the fonts.
REQUIRE_CONFIG = """// Written by docs/vendor_js.py: the HTML manager's modules are in html-manager/ beside it.
(function () {
  var here = document.currentScript.src.replace(/[^/]*$/, "");
  require.config({paths: {
    "@jupyter-widgets/html-manager/dist": here + "html-manager",
    "@jupyter-widgets": here + "html-manager"
  }});
})();
"""


def write_require_config(dest: Path) -> Path:
    """Write the require.js configuration that points the HTML manager at its own files; return its path."""
    out = dest / REQUIRE_CONFIG_JS
    if not out.exists() or out.read_text() != REQUIRE_CONFIG:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(REQUIRE_CONFIG)
    return out


def packages(ipywidgets_major: int) -> list[NpmPackage]:
    """The packages a site built with this ipywidgets major version needs.

    Raises:
        ValueError: for an ipywidgets major version without a matching HTML manager.
    """
    if ipywidgets_major not in HTML_MANAGER:
        raise ValueError(f"no ipywidgets HTML manager pinned for ipywidgets {ipywidgets_major}.x; "
                         f"docs/vendor_js.py pins them for {sorted(HTML_MANAGER)}: add one to HTML_MANAGER")
    return [REQUIREJS, HTML_MANAGER[ipywidgets_major], MATHJAX]


def _check_integrity(package: NpmPackage, data: bytes) -> None:
    algorithm, _, expected = package.integrity.partition("-")
    actual = base64.b64encode(hashlib.new(algorithm, data).digest()).decode()
    if actual != expected:
        raise RuntimeError(f"{package.name}@{package.version}: the tarball's {algorithm} is {actual}, "
                           f"not the pinned {expected}; delete the cached copy and build again")


def fetch(package: NpmPackage, cache: Path, timeout_s: float = 60) -> bytes:
    """The package's tarball, checked against its pinned integrity: from ``cache``, else from the npm registry.

    Raises:
        RuntimeError: the registry cannot be reached (with where to put the tarball by hand), or the tarball does
            not match its pinned hash.
    """
    path = cache / package.tarball_name
    if path.exists():
        data = path.read_bytes()
        _check_integrity(package, data)
        return data
    try:
        with urllib.request.urlopen(package.tarball_url, timeout=timeout_s) as response:
            data = response.read()
    except (urllib.error.URLError, OSError) as error:
        raise RuntimeError(
            f"could not download {package.tarball_url} ({error}). The docs site serves {package.name} itself "
            f"instead of loading it from a CDN, so the build needs the npm registry once; without it, put that "
            f"tarball at {path} by hand (npm pack {package.name}@{package.version})") from error
    _check_integrity(package, data)
    cache.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_bytes(data)
    partial.replace(path)
    return data


def unpack(package: NpmPackage, data: bytes, dest: Path) -> list[Path]:
    """Write the package's selected files under ``dest/cfnb-vendor/<package.dest>/``; return their paths.

    Raises:
        RuntimeError: a glob matches nothing in the tarball (the package's layout changed).
    """
    target = dest / VENDOR_DIR / package.dest
    written: list[Path] = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        members = [m for m in archive.getmembers() if m.isfile() and m.name.startswith("package/")]
        for pattern in package.files:
            matched = [m for m in members if fnmatch.fnmatchcase(m.name[len("package/"):], pattern)]
            if not matched:
                raise RuntimeError(f"{package.name}@{package.version} has no file matching {pattern!r}")
            for member in matched:
                relative = member.name[len("package/"):]
                relative = relative[len(package.strip):] if relative.startswith(package.strip) else relative
                out = target / relative
                if ".." in Path(relative).parts:
                    raise RuntimeError(f"{package.name}: refusing path {member.name!r} outside the package")
                extracted = archive.extractfile(member)
                assert extracted is not None  # a regular file, checked above
                content = extracted.read()
                if not out.exists() or out.read_bytes() != content:
                    out.parent.mkdir(parents=True, exist_ok=True)
                    out.write_bytes(content)
                written.append(out)
    return written


def vendor(dest: Path, cache: Path, ipywidgets_major: int) -> list[Path]:
    """Fetch, check and unpack every package the site needs into ``dest``, copy plotly.js and write the require.js
    configuration beside them; return the files written."""
    written: list[Path] = [copy_plotly(dest), write_require_config(dest)]
    for package in packages(ipywidgets_major):
        written += unpack(package, fetch(package, cache), dest)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dest", type=Path, help="static folder to unpack into (cfnb-vendor/ is created in it)")
    parser.add_argument("--cache", type=Path, default=None, help="tarball cache (default: DEST/../npm-cache)")
    parser.add_argument("--ipywidgets", type=int, default=None, help="ipywidgets major version (default: installed)")
    args = parser.parse_args(argv)
    major = args.ipywidgets
    if major is None:
        import ipywidgets

        major = int(ipywidgets.__version__.split(".")[0])
    files = vendor(args.dest, args.cache or args.dest.parent / "npm-cache", major)
    print(f"{len(files)} files under {args.dest / VENDOR_DIR}")


if __name__ == "__main__":
    main()
