"""Check that this Python runs Colab's front-end stack as pinned in .ci/colab-requirements.txt.

Run by ``make venv-colab`` and ``make test-colab`` with .venv-colab's Python, so that a second test run can never
silently test the main stack again. Checks that every pin is installed at its version (the distribution and, for
ipywidgets and plotly, the module actually imported), that the pins satisfy one another's requirements, and that
torch comes from elsewhere (.venv) rather than from a second install. Prints one line and exits 0 when all holds;
otherwise names each problem on stderr and exits 1.

    .venv-colab/bin/python .ci/colab_stack.py
"""
from __future__ import annotations

import importlib
import re
import sys
from importlib import metadata
from pathlib import Path

PINS_FILE = Path(__file__).resolve().parent / "colab-requirements.txt"
CHECKED_MODULES = ("ipywidgets", "plotly")  # their __version__ is what the panels run with


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(path: Path = PINS_FILE) -> dict[str, str]:
    """``{canonical name: version}`` of a file of ``name==version`` lines (comments and blank lines allowed).

    Raises:
        ValueError: a line is not an exact ``name==version`` pin, or a name appears twice.
    """
    pins: dict[str, str] = {}
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([0-9][A-Za-z0-9.+!-]*)", line)
        if match is None:
            raise ValueError(f"{path.name} line {number}: {raw!r} is not an exact pin; write it as name==X.Y.Z")
        name = canonical(match.group(1))
        if name in pins:
            raise ValueError(f"{path.name} line {number}: {match.group(1)} is pinned twice")
        pins[name] = match.group(2)
    return pins


def problems(pins: dict[str, str]) -> list[str]:
    """Everything in this interpreter that differs from the pinned stack (empty when it is the pinned stack)."""
    from packaging.requirements import Requirement

    found: list[str] = []
    for name, version in pins.items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            found.append(f"{name} is not installed (pinned {version})")
            continue
        if installed != version:
            found.append(f"{name} {installed} is installed, pinned {version}")
    for module_name in CHECKED_MODULES:
        module = importlib.import_module(module_name)
        pinned = pins.get(canonical(module_name))
        if module.__version__ != pinned:
            found.append(f"import {module_name} gives {module.__version__} from {module.__file__}, pinned {pinned}")
    for name in pins:
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for line in requires:
            requirement = Requirement(line)
            if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
                continue
            other = canonical(requirement.name)
            if other in pins and not requirement.specifier.contains(pins[other], prereleases=True):
                found.append(f"{name} needs {requirement}, pinned {other}=={pins[other]}")
    torch_home = Path(metadata.distribution("torch").locate_file("")).resolve()
    if Path(sys.prefix).resolve() in torch_home.parents:
        found.append(f"torch is installed inside {sys.prefix} ({torch_home}); the Colab stack reuses .venv's torch")
    return found


def main() -> int:
    pins = read_pins()
    found = problems(pins)
    if found:
        print(f"{sys.executable} does not run the stack of {PINS_FILE.name}:", file=sys.stderr)
        for problem in found:
            print(f"  - {problem}", file=sys.stderr)
        print("rebuild it with: rm -rf .venv-colab && make venv-colab", file=sys.stderr)
        return 1
    import torch

    print(f"colab stack: {', '.join(f'{n} {v}' for n, v in pins.items())}; torch {torch.__version__} from "
          f"{Path(torch.__file__).parent.parent}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
