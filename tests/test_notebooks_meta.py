"""Static checks of the shipped notebooks (notebooks/*.ipynb and their worked solutions, notebooks/solutions/);
nbval runs them separately (see the Makefile).

Each notebook must: be valid nbformat 4; carry a Colab badge pointing at its own path in the main repository; hold
no absolute local paths; keep its stored outputs under 1 MB; and start with an install cell that does nothing where
cfnb is installed (Binder, a developer's venv, CI) and installs it where it is missing (Colab).

The checks are plain functions returning a list of problems, so they are tested below on synthetic notebooks too
(``test_checks_*``): the module is meaningful before the first notebook lands.
"""
from __future__ import annotations

import contextlib
import importlib.abc
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
SOLUTIONS_DIR = NOTEBOOK_DIR / "solutions"
SOLUTIONS_SUFFIX = "_solutions"  # notebooks/solutions/<tutorial stem>_solutions.ipynb works that tutorial's exercises
SANITIZE_FILE = Path(__file__).with_name("nbval_sanitize.cfg")

GITHUB_ORG = "cfnb-dev"  # the one place the GitHub organisation is named
COLAB_PREFIX = f"https://colab.research.google.com/github/{GITHUB_ORG}/cfnb/blob/main/"
COLAB_LINK = re.compile(r"https://colab\.research\.google\.com/github/[^\s)\"'<>\]]+")

# The notebooks the README promises: exactly these must be present.
EXPECTED_NOTEBOOKS = (
    "01_mnist_digit_flips.ipynb",
    "02_celeba_attribute_edits.ipynb",
    "03_spurious_correlation_audit.ipynb",
    "04_bring_your_own_classifier.ipynb",
    "05_your_own_data.ipynb",
)
MAX_OUTPUT_BYTES = 1_000_000  # all stored outputs of one notebook, as JSON
FORBIDDEN_PATH_FRAGMENTS = ("/work/", "/home/", "/root/", "C:\\")
BINARY_MIME_PREFIXES = ("image/", "application/pdf", "video/", "audio/")
INSTALL_CELL_WITHIN = 3  # the install cell must be one of the first code cells
PIP_COMMAND = re.compile(r"\b(pip|pip3|uv|conda|mamba)\b.*\binstall\b|\binstall\b.*\bcfnb\b", re.S)


def notebook_paths() -> list[Path]:
    """The tutorials and their solutions."""
    return sorted(NOTEBOOK_DIR.glob("*.ipynb")) + sorted(SOLUTIONS_DIR.glob("*.ipynb"))


def solution_path(tutorial: str) -> Path:
    """Where the worked solutions of a tutorial (a file name of EXPECTED_NOTEBOOKS) live."""
    return SOLUTIONS_DIR / f"{Path(tutorial).stem}{SOLUTIONS_SUFFIX}.ipynb"


def colab_url(path: Path) -> str:
    """The Colab address of a notebook in the main repository."""
    return COLAB_PREFIX + path.resolve().relative_to(ROOT).as_posix()


def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=nbformat.NO_CONVERT)


# ----------------------------------------------------------------------------------------------------------- checks
def problems_colab_badge(nb: nbformat.NotebookNode, expected_url: str) -> list[str]:
    """The badge link must be in one of the first two cells, and every Colab link must point at this notebook."""
    problems = []
    head = "".join(cell.source for cell in nb.cells[:2])
    if expected_url not in COLAB_LINK.findall(head):
        problems.append(f"no Colab badge linking to {expected_url} in the first two cells")
    for index, cell in enumerate(nb.cells):
        for url in COLAB_LINK.findall(cell.source):
            if url != expected_url:
                problems.append(f"cell {index}: Colab link {url} does not point at this notebook ({expected_url})")
    return problems


def _strings(node: Any, where: str) -> Iterator[tuple[str, str]]:
    if isinstance(node, str):
        yield where, node
    elif isinstance(node, dict):
        for key, value in node.items():
            if isinstance(key, str) and key.startswith(BINARY_MIME_PREFIXES):
                continue  # base64 pictures: no paths inside, and long enough to hit one by chance
            yield from _strings(value, f"{where}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _strings(value, f"{where}[{index}]")


def problems_local_paths(nb: nbformat.NotebookNode) -> list[str]:
    """Absolute paths of the author's machine (in sources, outputs or metadata) break on everyone else's."""
    problems = []
    for where, text in _strings(nb, "notebook"):
        for fragment in FORBIDDEN_PATH_FRAGMENTS:
            if fragment in text:
                at = text.index(fragment)
                excerpt = text[max(0, at - 30): at + 50].replace("\n", " ")
                problems.append(f"{where}: absolute local path {fragment!r} in ...{excerpt}...")
    return problems


def output_bytes(nb: nbformat.NotebookNode) -> int:
    return sum(len(json.dumps(output).encode()) for cell in nb.cells for output in cell.get("outputs", []))


def install_cell(nb: nbformat.NotebookNode) -> tuple[int, str] | None:
    """Index and source of the first code cell that installs something, if it is one of the first code cells."""
    code = [(i, c.source) for i, c in enumerate(nb.cells) if c.cell_type == "code"][:INSTALL_CELL_WITHIN]
    for index, source in code:
        if PIP_COMMAND.search(source):
            return index, source
    return None


class InstallAttempted(Exception):
    """Raised by the fake shell when a cell asks to install a package."""


class FakeShell:
    """Stands in for ``get_ipython()``: records shell and magic commands, stops at the first install."""

    def __init__(self) -> None:
        self.commands: list[str] = []

    def _record(self, command: str) -> None:
        self.commands.append(command)
        if PIP_COMMAND.search(command):
            raise InstallAttempted(command)

    def run_line_magic(self, name: str, line: str, *args: Any, **kwargs: Any) -> None:
        self._record(f"%{name} {line}")

    def run_cell_magic(self, name: str, line: str, cell: str, *args: Any, **kwargs: Any) -> None:
        self._record(f"%%{name} {line}\n{cell}")

    def system(self, command: str) -> int:
        self._record(f"!{command}")
        return 0

    def getoutput(self, command: str, *args: Any, **kwargs: Any) -> list[str]:
        self._record(f"!{command}")
        return []


class _HideCfnb(importlib.abc.MetaPathFinder):
    """A meta-path finder that makes ``import cfnb`` fail and ``find_spec('cfnb')`` return None."""

    def __init__(self, finders: list[Any]) -> None:
        self.finders = finders

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name == "cfnb" or name.startswith("cfnb."):
            return None
        for finder in self.finders:
            spec = finder.find_spec(name, path, target) if hasattr(finder, "find_spec") else None
            if spec is not None:
                return spec
        return None


@contextlib.contextmanager
def cfnb_missing() -> Iterator[None]:
    """Within the block, Python behaves as on Colab before the install: cfnb cannot be found."""
    saved_modules = {name: module for name, module in sys.modules.items()
                     if name == "cfnb" or name.startswith("cfnb.")}
    saved_path = list(sys.meta_path)
    for name in saved_modules:
        del sys.modules[name]
    sys.meta_path[:] = [_HideCfnb(saved_path)]
    try:
        yield
    finally:
        sys.meta_path[:] = saved_path
        for name in [n for n in sys.modules if n == "cfnb" or n.startswith("cfnb.")]:
            del sys.modules[name]
        sys.modules.update(saved_modules)


def run_install_cell(source: str) -> list[str]:
    """Execute an install cell's Python (magics turned into ``get_ipython()`` calls) with a fake shell.

    Returns:
        The shell and magic commands the cell ran, the install last if it asked for one.
    """
    from IPython.core.inputtransformer2 import TransformerManager

    python = TransformerManager().transform_cell(source)
    shell = FakeShell()
    namespace: dict[str, Any] = {"get_ipython": lambda: shell, "__name__": "__main__"}

    def fake_process(args: Any, *rest: Any, **kwargs: Any) -> Any:
        shell._record(args if isinstance(args, str) else " ".join(map(str, args)))
        return subprocess.CompletedProcess(args, 0, b"", b"")

    patched = {(subprocess, name): getattr(subprocess, name) for name in ("run", "call", "check_call", "check_output")}
    patched[(os, "system")] = os.system
    for (module, name) in patched:
        setattr(module, name, fake_process)
    try:
        exec(compile(python, "<install cell>", "exec"), namespace)
    except InstallAttempted:
        pass
    finally:
        for (module, name), original in patched.items():
            setattr(module, name, original)
    return shell.commands


def problems_install_cell(nb: nbformat.NotebookNode) -> list[str]:
    found = install_cell(nb)
    if found is None:
        return [f"none of the first {INSTALL_CELL_WITHIN} code cells installs cfnb (needed on Colab)"]
    index, source = found
    problems = []
    installed = [c for c in run_install_cell(source) if PIP_COMMAND.search(c)]
    if installed:
        problems.append(f"cell {index} installs even though cfnb is importable: {installed}")
    with cfnb_missing():
        missing = [c for c in run_install_cell(source) if PIP_COMMAND.search(c)]
    if not missing:
        problems.append(f"cell {index} does not install anything when cfnb is missing")
    elif "cfnb" not in missing[0]:
        problems.append(f"cell {index} installs something other than cfnb when it is missing: {missing[0]}")
    return problems


def problems_checked_cells(nb: nbformat.NotebookNode) -> list[str]:
    """Cells marked NBVAL_CHECK_OUTPUT that are stored unrun or without output (refresh: tests/nbval_store.py)."""
    from nbval_store import is_checked

    problems = []
    for index, cell in enumerate(nb.cells):
        if is_checked(cell) and (cell.get("execution_count") is None or not cell.get("outputs")):
            problems.append(f"cell {index} is marked NBVAL_CHECK_OUTPUT but stores no run output: nbval would skip "
                            f"it; run tests/nbval_store.py on the notebook")
    return problems


# ------------------------------------------------------------------------------------------- the notebooks present
NOTEBOOKS = notebook_paths()
# Until the first notebook lands, each per-notebook test shows as one skip that says so.
PARAMS = [pytest.param(p, id=p.name) for p in NOTEBOOKS] or [
    pytest.param(None, id="none", marks=pytest.mark.skip(reason="no notebooks/*.ipynb yet"))]


def test_notebooks_present_are_the_expected_ones():
    expected = {NOTEBOOK_DIR / name for name in EXPECTED_NOTEBOOKS} | {solution_path(n) for n in EXPECTED_NOTEBOOKS}
    unexpected = sorted(str(p.relative_to(ROOT)) for p in set(NOTEBOOKS) - expected)
    assert not unexpected, f"notebooks not in EXPECTED_NOTEBOOKS nor their solutions (renamed?): {unexpected}"
    missing = sorted(str(p.relative_to(ROOT)) for p in expected - set(NOTEBOOKS))
    assert not missing, f"expected notebooks missing: {missing}"


def _exercise_count(nb: nbformat.NotebookNode) -> int:
    """Numbered items of a tutorial's '## Exercises' cell."""
    cells = [c.source for c in nb.cells if c.cell_type == "markdown" and c.source.lstrip().startswith("## Exercises")]
    return len(re.findall(r"^\d+\. ", cells[-1], flags=re.M)) if cells else 0


@pytest.mark.parametrize("tutorial", EXPECTED_NOTEBOOKS)
def test_solutions_work_every_exercise(tutorial: str):
    path = solution_path(tutorial)
    if not path.exists():
        pytest.fail(f"{path.relative_to(ROOT)} is missing", pytrace=False)
    count = _exercise_count(read(NOTEBOOK_DIR / tutorial))
    assert count > 0, f"{tutorial} has no numbered '## Exercises' cell"
    solution = read(path)
    headings = [int(m) for c in solution.cells if c.cell_type == "markdown"
                for m in re.findall(r"^## Exercise (\d+)\b", c.source, flags=re.M)]
    assert headings == list(range(1, count + 1)), \
        f"{path.name} works exercises {headings}; {tutorial} has {count} (one '## Exercise N' heading each)"
    answers = sum(c.cell_type == "markdown" and c.source.lstrip().startswith("**Answer.**") for c in solution.cells)
    assert answers >= count, f"{path.name} has {answers} '**Answer.**' cells for {count} exercises"


@pytest.mark.parametrize("path", PARAMS)
def test_valid_nbformat(path: Path):
    nb = read(path)
    assert nb.nbformat == 4, f"{path.name} is nbformat {nb.nbformat}; save it as version 4"
    nbformat.validate(nb)


@pytest.mark.parametrize("path", PARAMS)
def test_colab_badge_points_at_itself(path: Path):
    assert problems_colab_badge(read(path), colab_url(path)) == []


@pytest.mark.parametrize("path", PARAMS)
def test_no_absolute_local_paths(path: Path):
    assert problems_local_paths(read(path)) == []


@pytest.mark.parametrize("path", PARAMS)
def test_outputs_are_small(path: Path):
    size = output_bytes(read(path))
    assert size <= MAX_OUTPUT_BYTES, (
        f"{path.name} stores {size / 1e6:.2f} MB of outputs (limit {MAX_OUTPUT_BYTES / 1e6:.0f} MB): clear the "
        f"large ones or show smaller pictures"
    )


@pytest.mark.parametrize("path", PARAMS)
def test_install_cell_is_a_noop_when_cfnb_is_installed(path: Path):
    assert problems_install_cell(read(path)) == []


@pytest.mark.parametrize("path", PARAMS)
def test_checked_cells_store_the_output_nbval_compares(path: Path):
    """nbval skips a cell stored unrun, so a NBVAL_CHECK_OUTPUT cell without stored output would check nothing."""
    assert problems_checked_cells(read(path)) == []


# ------------------------------------------------------------------------------- the checks, on synthetic notebooks
GOOD_INSTALL = '''# On Colab, install cfnb; elsewhere (Binder, a venv with cfnb) this cell does nothing.
try:
    import cfnb
except ImportError:
    %pip install -q "cfnb @ git+https://github.com/cfnb-dev/cfnb"
    import cfnb'''


def make_notebook(name: str = "01_mnist_digit_flips.ipynb", install: str = GOOD_INSTALL,
                  outputs: list[Any] | None = None) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    badge = f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({COLAB_PREFIX}notebooks/{name})"
    cell = nbformat.v4.new_code_cell("print(cfnb.__version__)")
    cell.outputs = outputs or []
    nb.cells = [nbformat.v4.new_markdown_cell(f"# Digit flips\n\n{badge}"), nbformat.v4.new_code_cell(install), cell]
    return nb


def test_checks_pass_a_good_notebook():
    nb = make_notebook()
    nbformat.validate(nb)
    assert problems_colab_badge(nb, colab_url(NOTEBOOK_DIR / "01_mnist_digit_flips.ipynb")) == []
    assert problems_local_paths(nb) == []
    assert output_bytes(nb) < 1000
    assert problems_install_cell(nb) == []


def test_checks_accept_find_spec_and_bang_pip_guards():
    install = ('import importlib.util, sys\nif importlib.util.find_spec("cfnb") is None:\n'
               '    !{sys.executable} -m pip install -q "cfnb @ git+https://github.com/cfnb-dev/cfnb"')
    assert problems_install_cell(make_notebook(install=install)) == []


def test_checks_catch_a_badge_pointing_elsewhere():
    nb = make_notebook("02_celeba_attribute_edits.ipynb")
    problems = problems_colab_badge(nb, colab_url(NOTEBOOK_DIR / "01_mnist_digit_flips.ipynb"))
    assert len(problems) == 2 and "no Colab badge" in problems[0] and "does not point" in problems[1]


def test_checks_catch_absolute_paths_in_outputs():
    stream = nbformat.v4.new_output("stream", name="stderr",
                                    text="/root/.venv/lib/python3.11/site-packages/x.py:3: UserWarning: careful\n")
    picture = nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0/home/KGgo", "text/plain": "C:\\x"})
    problems = problems_local_paths(make_notebook(outputs=[stream, picture]))
    assert len(problems) == 2 and "'/root/'" in problems[0] and "'C:\\\\'" in problems[1]


def test_checks_measure_outputs():
    big = nbformat.v4.new_output("display_data", data={"image/png": "A" * (MAX_OUTPUT_BYTES + 1)})
    assert output_bytes(make_notebook(outputs=[big])) > MAX_OUTPUT_BYTES


def test_checks_catch_an_unguarded_install():
    problems = problems_install_cell(make_notebook(install='%pip install -q cfnb\nimport cfnb'))
    assert len(problems) == 1 and "installs even though cfnb is importable" in problems[0]


def test_checks_catch_a_guard_that_never_installs():
    problems = problems_install_cell(make_notebook(install='try:\n    import cfnb\nexcept ImportError:\n    pass\n'
                                                   '# pip install cfnb'))
    assert problems == ["cell 1 does not install anything when cfnb is missing"]


def test_checks_catch_a_missing_install_cell():
    nb = make_notebook(install="import cfnb")
    assert problems_install_cell(nb) == [f"none of the first {INSTALL_CELL_WITHIN} code cells installs cfnb "
                                         "(needed on Colab)"]


def test_cfnb_missing_restores_the_import_system():
    import cfnb

    with cfnb_missing():
        with pytest.raises(ImportError):
            import cfnb
    import cfnb as again

    assert again is cfnb and sys.modules["cfnb"] is cfnb


# --------------------------------------------------------------------------------------------- nbval's sanitizer
@pytest.mark.parametrize("text, expected", [
    (" 45%|████▌     | 45/100 [00:01<00:02, 22.50it/s]", " TQDM-BAR"),
    ("100%|██████████| 1.2k/1.2k [00:03<00:00, 390.1it/s]", "TQDM-BAR"),
    ("45it [00:01, 22.50it/s]", "TQDM-BAR"),
    ("explained 8 digits in 1.23 s", "explained 8 digits in TIME"),
    ("step took 0.5s, then 12 ms, then 3.4 µs", "step took TIME, then TIME, then TIME"),
    ("CPU times: user 1.2 s, sys: 30 ms\nWall time: 2.05 s", "CPU times: user TIME, sys: TIME\nWall time: TIME"),
    ("<Counterfactuals object at 0x7f3a2b1c9d10>", "<Counterfactuals object at 0xADDRESS>"),
    ("speed 1,024 images/s", "speed RATE"),
    ("8 samples, 3 steps, 10 classes", "8 samples, 3 steps, 10 classes"),
])
def test_sanitize_patterns(text: str, expected: str):
    from nbval.plugin import get_sanitize_patterns

    patterns = get_sanitize_patterns(SANITIZE_FILE.read_text())
    assert len(patterns) >= 6
    for regex, replacement in patterns:
        text = re.sub(regex, replacement, text)
    assert text == expected


def test_checked_cell_stored_unrun_is_caught():
    nb = make_notebook()
    checked = nbformat.v4.new_code_cell("# NBVAL_CHECK_OUTPUT\nprint(1 + 1)")
    nb.cells.append(checked)
    assert len(problems_checked_cells(nb)) == 1
    checked.execution_count = 3
    checked.outputs = [nbformat.v4.new_output("stream", name="stdout", text="2\n")]
    assert problems_checked_cells(nb) == []
