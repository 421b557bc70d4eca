"""Binder's environment (binder/) must install what pyproject.toml asks for, cacheably and CPU-only."""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
BINDER = ROOT / "binder"
REQUIREMENTS = BINDER / "requirements.txt"
POSTBUILD = BINDER / "postBuild"
RUNTIME = BINDER / "runtime.txt"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
# Extras whose packages Binder needs besides the runtime dependencies: the notebook front end.
EXTRAS_FOR_BINDER = ("notebook",)


def _pyproject() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as handle:
        return tomllib.load(handle)


def _binder_python() -> str:
    """The Python version Binder builds with: runtime.txt's, else repo2docker's default (3.10 or newer)."""
    if RUNTIME.exists():
        match = re.fullmatch(r"python-(\d+\.\d+)", RUNTIME.read_text().strip())
        assert match, f"runtime.txt must read like 'python-3.11', found {RUNTIME.read_text()!r}"
        return match.group(1)
    return "3.10"


def _binder_environment() -> dict[str, str]:
    """Marker environment of Binder's image (Linux x86-64, CPython of runtime.txt's version)."""
    env = default_environment()
    version = _binder_python()
    env.update(python_version=version, python_full_version=f"{version}.0", sys_platform="linux",
               platform_system="Linux", platform_machine="x86_64", os_name="posix",
               implementation_name="cpython", platform_python_implementation="CPython")
    return env


def parse_requirements(text: str) -> tuple[list[Requirement], list[str]]:
    """Split a pip requirements file into requirements and option lines (``--extra-index-url ...``).

    Raises:
        ValueError: a line is neither an option nor a valid requirement (``-e .``, a bare path, a URL).
    """
    requirements: list[Requirement] = []
    options: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = re.sub(r"(^|\s)#.*$", "", raw).strip()
        if not line:
            continue
        if line.startswith("-"):
            options.append(line)
            continue
        try:
            requirements.append(Requirement(line))
        except InvalidRequirement as error:
            raise ValueError(f"line {number} of requirements.txt is not a requirement: {raw!r} ({error})") from None
    return requirements, options


def _pins() -> dict[str, Requirement]:
    requirements, _ = parse_requirements(REQUIREMENTS.read_text())
    pins: dict[str, Requirement] = {}
    for requirement in requirements:
        name = canonicalize_name(requirement.name)
        assert name not in pins, f"{requirement.name} appears twice in binder/requirements.txt"
        pins[name] = requirement
    return pins


def _pinned_version(requirement: Requirement) -> Version:
    specifiers = list(requirement.specifier)
    assert len(specifiers) == 1 and specifiers[0].operator == "==" and "*" not in specifiers[0].version, (
        f"binder/requirements.txt must pin {requirement.name} to one exact version (==X.Y.Z) so that Binder's "
        f"image is reproducible; found {requirement}"
    )
    return Version(specifiers[0].version)


def _needed_by_binder() -> list[Requirement]:
    project = _pyproject()["project"]
    wanted = [Requirement(line) for line in project["dependencies"]]
    for extra in EXTRAS_FOR_BINDER:
        wanted += [Requirement(line) for line in project.get("optional-dependencies", {}).get(extra, [])]
    env = _binder_environment()
    return [r for r in wanted if r.marker is None or r.marker.evaluate(env)]


def test_binder_files_exist():
    assert REQUIREMENTS.is_file(), "binder/requirements.txt is missing"
    assert POSTBUILD.is_file(), "binder/postBuild is missing"


@pytest.mark.parametrize("dependency", _needed_by_binder(), ids=str)
def test_dependency_pinned_within_project_range(dependency: Requirement):
    pins = _pins()
    name = canonicalize_name(dependency.name)
    assert name in pins, f"{dependency} (from pyproject.toml) is missing from binder/requirements.txt"
    version = _pinned_version(pins[name])
    assert dependency.specifier.contains(version, prereleases=True), (
        f"binder/requirements.txt pins {pins[name]}, outside pyproject.toml's range {dependency}"
    )
    missing_extras = set(dependency.extras) - set(pins[name].extras)
    assert not missing_extras, f"{dependency} needs extras {sorted(missing_extras)}; Binder pins {pins[name]}"


def test_every_binder_line_is_an_exact_pin():
    for requirement in _pins().values():
        _pinned_version(requirement)
        assert requirement.url is None, f"{requirement} installs from a URL; pin a released version instead"


def test_no_editable_or_local_install_in_requirements():
    """`-e .` in requirements.txt makes every commit invalidate Binder's cached environment layer."""
    _, options = parse_requirements(REQUIREMENTS.read_text())
    for option in options:
        flag = option.split()[0].split("=")[0]
        assert flag not in ("-e", "--editable"), f"{option!r}: install cfnb in postBuild, not in requirements.txt"
        assert flag in ("--extra-index-url", "--index-url", "-i", "--find-links", "-f"), (
            f"unexpected option line {option!r} in binder/requirements.txt"
        )
    assert "cfnb" not in _pins(), "cfnb itself belongs in postBuild, not in requirements.txt"


def test_torch_is_the_cpu_build():
    pins = _pins()
    _, options = parse_requirements(REQUIREMENTS.read_text())
    assert f"--extra-index-url {CPU_INDEX}" in options, f"binder/requirements.txt needs '--extra-index-url {CPU_INDEX}'"
    for name in ("torch", "torchvision"):
        assert name in pins, f"{name} is missing from binder/requirements.txt"
        version = _pinned_version(pins[name])
        assert version.local == "cpu", f"Binder has no GPU: pin {name}==X.Y.Z+cpu, found {pins[name]}"


def test_torch_and_torchvision_are_a_matching_pair():
    """torchvision 0.N pairs with torch 2.(N - 15): 0.29 with 2.14, 0.17 with 2.2."""
    pins = _pins()
    torch, vision = _pinned_version(pins["torch"]), _pinned_version(pins["torchvision"])
    assert (torch.major, torch.minor) == (2, vision.minor - 15), (
        f"torch {torch} and torchvision {vision} are not a released pair"
    )


def test_runtime_python_satisfies_requires_python():
    requires = SpecifierSet(_pyproject()["project"]["requires-python"])
    version = _binder_python()
    assert requires.contains(version), f"Binder's Python {version} is outside requires-python {requires}"


def _postbuild_commands() -> list[str]:
    lines = [re.sub(r"(^|\s)#.*$", "", line).strip() for line in POSTBUILD.read_text().splitlines()]
    return [line for line in lines if line]


def test_postbuild_stops_on_the_first_error():
    text = POSTBUILD.read_text()
    assert text.startswith("#!"), "postBuild needs a shebang line (#!/bin/bash)"
    commands = _postbuild_commands()
    set_e = [i for i, c in enumerate(commands) if re.fullmatch(r"set\s+-[a-z]*e[a-z]*(\s+.*)?", c)]
    assert set_e, "postBuild must `set -e` so that a failed install fails Binder's build"
    installs = [i for i, c in enumerate(commands) if re.search(r"\bpip\s+install\b", c)]
    assert installs and set_e[0] < installs[0], "`set -e` must come before the install in postBuild"


def test_postbuild_installs_cfnb_without_dependencies():
    installs = [c for c in _postbuild_commands() if re.search(r"\bpip\s+install\b", c)]
    assert len(installs) == 1, f"postBuild should run one `pip install`, found {installs}"
    words = installs[0].split()
    assert "-e" not in words and "--editable" not in words, "postBuild installs cfnb as a package, not editable"
    assert "--no-deps" in words, "postBuild must not re-resolve dependencies: requirements.txt pins them"
    target = words[-1]
    assert target in (".", "./"), f"postBuild should install the repository root ('.'), found {target!r}"


def test_postbuild_is_executable():
    assert os.access(POSTBUILD, os.X_OK), "binder/postBuild must be executable (git update-index --chmod=+x)"


def test_parse_requirements_rejects_editable_and_accepts_options():
    requirements, options = parse_requirements("--extra-index-url https://x/cpu\ntorch==2.14.1+cpu  # cpu\n\n")
    assert [str(r) for r in requirements] == ["torch==2.14.1+cpu"] and options == ["--extra-index-url https://x/cpu"]
    _, options = parse_requirements("-e .\n")
    assert options == ["-e ."]
    with pytest.raises(ValueError, match="not a requirement"):
        parse_requirements("./some/path\n")
