"""Reading input files defensively: regular files only, .npy headers checked before data.

Every reader of a user's file starts with ``regular_file`` (so a FIFO never blocks,
a folder or device is refused and an unreadable file is not called missing), and
every .npy goes through ``load_npy``: the header is parsed and its shape checked
against the file size before numpy allocates anything, and whatever a corrupt
header makes numpy raise becomes one error naming the file.
"""

from __future__ import annotations

import os
import stat
import tokenize
from pathlib import Path

import numpy as np

from napari_movierecon.errors import MovieReconError

# What numpy's header parser and loader raise on corrupt, truncated or crafted files.
NPY_FAILURES = (
    ValueError,
    EOFError,
    OSError,
    SyntaxError,
    tokenize.TokenError,
    OverflowError,
    MemoryError,
    RecursionError,
    TypeError,
)
_HEADER_READERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
    (3, 0): np.lib.format.read_array_header_2_0,
}


def regular_file(
    path: str | os.PathLike, kind: str = "file", error: type[MovieReconError] = MovieReconError
) -> Path:
    """``path`` if it is a readable regular file; otherwise ``error`` saying which of
    missing / not a regular file / unreadable it is (``kind`` names what was expected)."""
    path = Path(path)
    try:
        info = os.stat(path)
    except FileNotFoundError as err:
        raise error(f"{path}: no such {kind}") from err
    except PermissionError as err:
        raise error(f"{path}: cannot read the {kind} (permission denied)") from err
    except OSError as err:
        raise error(f"{path}: cannot read the {kind} ({err.strerror or err})") from err
    if stat.S_ISDIR(info.st_mode):
        raise error(f"{path}: is a folder, expected a {kind}")
    if not stat.S_ISREG(info.st_mode):
        raise error(f"{path}: is not a regular file (a FIFO, socket or device), expected a {kind}")
    if not os.access(path, os.R_OK):
        raise error(f"{path}: cannot read the {kind} (permission denied)")
    return path


def npy_header(
    path: str | os.PathLike,
    error: type[MovieReconError] = MovieReconError,
    kinds: str | None = None,
) -> tuple[tuple[int, ...], np.dtype, int]:
    """(shape, dtype, data offset) of a .npy file, read without its data.

    Refuses dtypes whose kind is not in ``kinds`` (when given; see ``load_npy``) and a
    shape whose data would not fit in the file.
    """
    path = regular_file(path, ".npy file", error)
    try:
        with open(path, "rb") as handle:
            version = np.lib.format.read_magic(handle)
            if version not in _HEADER_READERS:
                raise ValueError(f"unsupported .npy format version {version}")
            shape, _, dtype = _HEADER_READERS[version](handle)
            offset = handle.tell()
        size = int(np.prod(shape, dtype=object)) * dtype.itemsize
    except NPY_FAILURES as err:
        raise error(f"{path}: truncated or corrupt .npy file ({err})") from err
    if kinds is not None and dtype.kind not in kinds:
        what = "non-numeric dtype" if set(kinds) <= set("fiub") else "dtype"
        raise error(f"{path}: {what} {dtype.str} is not allowed here")
    available = path.stat().st_size - offset
    if size > available:
        raise error(
            f"{path}: the header declares {shape} {dtype.str} ({size} bytes) but the file "
            f"holds {available} bytes of data (truncated or corrupt)"
        )
    return tuple(shape), dtype, offset


def load_npy(
    path: str | os.PathLike,
    kinds: str = "fiub",
    error: type[MovieReconError] = MovieReconError,
    mmap: bool = False,
) -> np.ndarray:
    """A .npy file's array (memory-mapped read-only with ``mmap``), never unpickled.

    ``kinds``: the numpy dtype kinds allowed ("f" float, "i"/"u" integer, "b" bool,
    "U"/"S" text). Anything else about the file that is wrong raises ``error``
    naming ``path``.
    """
    shape, _, _ = npy_header(path, error, kinds)
    try:
        if mmap and 0 not in shape:  # an empty array cannot be memory-mapped
            return np.load(path, mmap_mode="r", allow_pickle=False)
        return np.load(path, allow_pickle=False)
    except NPY_FAILURES as err:
        raise error(f"{path}: truncated or corrupt .npy file ({err})") from err
