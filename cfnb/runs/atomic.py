"""Atomic files: written under a temporary name in the same folder, flushed, fsynced, then ``os.replace``d.

A reader therefore sees either no file or the whole file, even when the writer is killed mid-write; what a killed
writer leaves behind is a file ending in ``TEMPORARY_SUFFIX``, which ``remove_temporary`` clears.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO

TEMPORARY_SUFFIX = ".tmp"


def temporary_name(path: Path) -> Path:
    """Where ``path`` is written before it is moved into place."""
    return path.with_name(path.name + TEMPORARY_SUFFIX)


def sync_folder(folder: Path) -> None:
    """fsync a folder, so that a rename inside it survives a crash (a no-op where folders cannot be opened)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


@contextlib.contextmanager
def atomic_file(path: Path, text: bool = False) -> Iterator[IO]:
    """A handle to write ``path`` through: the file appears, whole, only when the block ends without an error."""
    path = Path(path)
    temporary = temporary_name(path)
    handle: IO = open(temporary, "w", encoding="utf-8", newline="") if text else open(temporary, "wb")
    try:
        yield handle
        handle.flush()
        os.fsync(handle.fileno())
    except BaseException:
        handle.close()
        temporary.unlink(missing_ok=True)
        raise
    handle.close()
    os.replace(temporary, path)
    sync_folder(path.parent)


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path for a library to write ``path`` through (e.g. ``safetensors.torch.save_file``): when the
    block ends without an error the file is fsynced and moved into place."""
    path = Path(path)
    temporary = temporary_name(path)
    try:
        yield temporary
        with open(temporary, "rb+") as handle:
            os.fsync(handle.fileno())
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    os.replace(temporary, path)
    sync_folder(path.parent)


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write ``data`` (bytes, or text as UTF-8) to ``path`` atomically."""
    with atomic_file(path, text=isinstance(data, str)) as handle:
        handle.write(data)


def remove_temporary(folder: Path) -> list[Path]:
    """Delete the temporary files a killed writer left in ``folder``; return them."""
    found = sorted(folder.glob(f"*{TEMPORARY_SUFFIX}")) if folder.is_dir() else []
    for path in found:
        path.unlink(missing_ok=True)
    return found
