"""Store the reference outputs that nbval compares: run a notebook top to bottom in a fresh kernel, keep the outputs
(and execution counts) of the cells marked ``# NBVAL_CHECK_OUTPUT`` and clear every other cell.

nbval compares only cells that were run in the stored notebook (an unrun cell is skipped silently), so a checked
cell without stored output checks nothing; ``tests/test_notebooks_meta.py`` fails on one. Run this after changing
what a checked cell prints, and commit the result:

    .venv/bin/python tests/nbval_store.py notebooks/01_mnist_digit_flips.ipynb [more.ipynb ...]

Prints each notebook's run time (the figure docs/benchmarks.md records).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

CHECK_MARK = "NBVAL_CHECK_OUTPUT"


def is_checked(cell: nbformat.NotebookNode) -> bool:
    """Whether nbval compares this cell's outputs."""
    return cell.cell_type == "code" and cell.source.lstrip().startswith(f"# {CHECK_MARK}")


def store(path: Path, timeout: int = 600) -> float:
    """Execute ``path`` in place, keep only the checked cells' outputs; returns the run time in seconds."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        if is_checked(cell):
            cell.outputs = [output for output in cell.outputs if output.output_type in ("stream", "execute_result")]
            for output in cell.outputs:
                output.pop("metadata", None) if output.output_type == "stream" else None
        else:
            cell.outputs, cell.execution_count = [], None
        cell.metadata.pop("execution", None)
    nb.metadata.pop("widgets", None)  # the executed widgets' saved state: large, and of no use to a reader
    nbformat.write(nb, path)
    return seconds


if __name__ == "__main__":
    for name in sys.argv[1:]:
        print(f"{name}: {store(Path(name)):.0f} s", flush=True)
