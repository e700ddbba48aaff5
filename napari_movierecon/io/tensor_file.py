"""Files of arrays plus one JSON record (safetensors), read without ever unpickling.

Checkpoints, masks and reconstructions are all such files: their arrays, and under
the metadata key ``movierecon`` a JSON record that starts with the file's format
name and version. Writes are atomic and never replace a file unless asked.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from safetensors import SafetensorError, safe_open

from napari_movierecon.errors import MovieReconError
from napari_movierecon.io.atomic import atomic_write, check_target
from napari_movierecon.io.npy import regular_file

# What a corrupt, truncated or foreign file can raise while being read.
READ_ERRORS = (SafetensorError, OSError, ValueError, RuntimeError)
METADATA_KEY = "movierecon"


def read_tensor_file(path: Path, framework: str) -> tuple[dict, dict[str, str]]:
    """All tensors of ``path`` (``framework`` "pt" or "numpy") and its metadata dict.

    Raises one of READ_ERRORS for anything that is not a complete safetensors file.
    """
    with safe_open(str(path), framework=framework) as handle:
        metadata = handle.metadata() or {}
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    return tensors, metadata


# A record is a few kB to a few MB (per-neuron training statistics).
MAX_RECORD_BYTES = 64 * 2**20


def parse_record(text: str, what: str, error: type[MovieReconError] = MovieReconError) -> object:
    """JSON ``text`` bounded in size; too deep nesting (RecursionError in the parser)
    and invalid JSON become ``error`` starting with ``what``."""
    if len(text) > MAX_RECORD_BYTES:
        raise error(f"{what} is larger than {MAX_RECORD_BYTES // 2**20} MB")
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError, ValueError) as err:
        raise error(f"{what} is not valid JSON ({err})") from err


def _format_guess(path: Path) -> str:
    """What a file that is not safetensors looks like, from its first bytes."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(64)
    except OSError:
        return "unreadable"
    if head.startswith(b"PK\x03\x04"):
        return "a zip archive such as a torch .pth file"
    if head[:1] == b"\x80":
        return "pickled Python data, which is never loaded"
    if not head:
        return "an empty file"
    if all(32 <= b < 127 or b in b"\t\r\n" for b in head):
        return "a text file"
    return "corrupt, truncated or another format"


def read_record_file(
    path: str | os.PathLike,
    framework: str,
    file_format: str,
    version: int,
    kind: str,
    error: type[MovieReconError] = MovieReconError,
) -> tuple[dict, dict]:
    """Arrays and JSON record of a ``file_format`` file of ``version``; otherwise ``error``
    naming ``path`` and the problem (``kind`` names the file: "mask file", ...)."""
    path = regular_file(path, kind, error)
    try:
        tensors, metadata = read_tensor_file(path, framework)
    except READ_ERRORS as err:
        raise error(f"{path}: not a readable {kind} ({_format_guess(path)}: {err})") from err
    if METADATA_KEY not in metadata:
        raise error(f"{path}: not a {kind} of this program (no '{METADATA_KEY}' record)")
    record = parse_record(metadata[METADATA_KEY], f"{path}: the '{METADATA_KEY}' record", error)
    if not isinstance(record, dict) or record.get("format") != file_format:
        raise error(f"{path}: not a {kind} ({file_format} record expected)")
    if record.get("format_version") != version:
        raise error(
            f"{path}: {kind} format version {record.get('format_version')!r} is not "
            f"supported (this version reads {version})"
        )
    return tensors, record


def write_record_file(
    path: str | os.PathLike,
    serialize: Callable[..., bytes],
    tensors: dict,
    record: dict,
    file_format: str,
    version: int,
    overwrite: bool = False,
    error: type[MovieReconError] = MovieReconError,
) -> Path:
    """Write ``tensors`` and ``record`` (format and version added) with ``serialize``
    (safetensors' numpy or torch ``save``) to ``path`` atomically; an existing file
    is replaced only when ``overwrite``."""
    path = check_target(path, overwrite, error)
    full = {"format": file_format, "format_version": version, **record}
    full.update(format=file_format, format_version=version)
    data = serialize(tensors, metadata={METADATA_KEY: json.dumps(full)})
    atomic_write(path, lambda handle: handle.write(data), overwrite=overwrite, error=error)
    return path
