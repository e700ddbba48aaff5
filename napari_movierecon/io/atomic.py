"""Writes that are all-or-nothing: a reader never sees a half-written file or folder.

Temporary names are siblings of the target (same directory, hence the same
file system), so the final step is a single ``os.replace`` / rename.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO

import numpy as np

from napari_movierecon.errors import MovieReconError, RecordingError


def _sibling(path: Path, tag: str) -> Path:
    """A fresh, random name next to ``path``: ``<name>.<tag>-<8 hex digits>``."""
    return path.with_name(f"{path.name}.{tag}-{secrets.token_hex(4)}")


def atomic_write(
    path: str | os.PathLike,
    write: Callable[[BinaryIO], None],
    error: type[MovieReconError] = RecordingError,
) -> None:
    """Create or replace the file ``path`` all-or-nothing.

    ``write(handle)`` fills a temporary sibling file that is flushed, fsynced and
    then renamed over ``path``; on any failure the temporary file is removed and
    ``path`` is left as it was. Unwritable locations (and ValueErrors raised by
    ``write``) become ``error`` naming ``path``.
    """
    path = Path(path)
    tmp = _sibling(path, "tmp")
    try:
        with open(tmp, "xb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except (OSError, ValueError) as err:
        _discard(tmp)
        reason = err.strerror if isinstance(err, OSError) and err.strerror else err
        raise error(f"{path}: cannot save ({reason})") from err
    except BaseException:
        _discard(tmp)
        raise


def _discard(path: Path) -> None:
    """Remove a temporary file if it exists (its folder may not even be a folder)."""
    with suppress(OSError):
        path.unlink(missing_ok=True)


def atomic_save_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    """Save ``array`` as a .npy file at ``path`` atomically (never pickled); object
    arrays and unwritable locations raise a RecordingError naming ``path``."""
    atomic_write(path, lambda handle: np.save(handle, np.asarray(array), allow_pickle=False))


def _check_target(out_dir: Path, overwrite: bool, error: type[MovieReconError]) -> None:
    """Refuse a target that is a file, or a non-empty folder without ``overwrite``."""
    if out_dir.is_symlink():
        raise error(f"{out_dir}: is a symbolic link; write to its target instead")
    if out_dir.exists() and not out_dir.is_dir():
        raise error(f"{out_dir}: exists and is not a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not overwrite:
        raise error(f"{out_dir}: already exists; pass overwrite=True / --overwrite")


def _make_staging(out_dir: Path, error: type[MovieReconError]) -> Path:
    """Create the parent folders and an empty ``<out_dir>.partial-<random>`` sibling."""
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        while True:
            staging = _sibling(out_dir, "partial")
            try:
                staging.mkdir()
                return staging
            except FileExistsError:
                continue
    except OSError as err:
        raise error(f"{out_dir}: cannot write here ({err.strerror or err})") from err


def _commit(staging: Path, out_dir: Path) -> None:
    """Move ``staging`` to ``out_dir``, replacing an existing folder only at the very end."""
    if not out_dir.exists():
        os.replace(staging, out_dir)
        return
    old = _sibling(out_dir, "old")
    os.replace(out_dir, old)
    try:
        os.replace(staging, out_dir)
    except BaseException:
        os.replace(old, out_dir)
        raise
    shutil.rmtree(old, ignore_errors=True)


@contextmanager
def staged_directory(
    out_dir: str | os.PathLike,
    overwrite: bool = False,
    error: type[MovieReconError] = RecordingError,
) -> Iterator[Path]:
    """Yield an empty temporary folder that becomes ``out_dir`` when the block succeeds.

    The temporary folder is a sibling named ``<out_dir>.partial-<random>``. If the
    block raises, it is deleted and ``out_dir`` is untouched. An existing non-empty
    ``out_dir`` needs ``overwrite=True`` and is replaced only once the new folder is
    complete. Missing parent folders are created. Raises ``error`` naming the
    path when ``out_dir`` cannot be written.
    """
    out_dir = Path(out_dir)
    _check_target(out_dir, overwrite, error)
    staging = _make_staging(out_dir, error)
    try:
        yield staging
        _check_target(out_dir, overwrite, error)
        try:
            _commit(staging, out_dir)
        except OSError as err:
            raise error(f"{out_dir}: cannot write here ({err.strerror or err})") from err
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
