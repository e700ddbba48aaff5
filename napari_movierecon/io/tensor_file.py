"""Reading safetensors files (arrays + string metadata) without ever unpickling."""

from __future__ import annotations

from pathlib import Path

from safetensors import SafetensorError, safe_open

# What a corrupt, truncated or foreign file can raise while being read.
READ_ERRORS = (SafetensorError, OSError, ValueError, RuntimeError)


def read_tensor_file(path: Path, framework: str) -> tuple[dict, dict[str, str]]:
    """All tensors of ``path`` (``framework`` "pt" or "numpy") and its metadata dict.

    Raises one of READ_ERRORS for anything that is not a complete safetensors file.
    """
    with safe_open(str(path), framework=framework) as handle:
        metadata = handle.metadata() or {}
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    return tensors, metadata
