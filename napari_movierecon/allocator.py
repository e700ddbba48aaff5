"""Keep freed memory for reuse during reconstructions and training (glibc only).

Every encoder pass allocates and frees activations of tens of MB. glibc hands
blocks that large out as fresh ``mmap`` regions and unmaps them on free, so each
pass page-faults its memory in again: on 2 CPU cores that kernel work took ~45 %
of a windowed ``bauer2025`` iteration and ~12 % of a ``fast`` one. Serving them
from one heap that is not trimmed removes it; the price is that the process keeps
its peak memory (about 1 GB for the sample) until ``release_freed_memory`` is called
(the napari plugin does when a run is removed) or it exits. The reconstruction
engine and ``train_encoder`` apply the settings when they start.
"""

from __future__ import annotations

import ctypes
import ctypes.util

# mallopt parameters (glibc malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
M_ARENA_MAX = -8

_applied: bool | None = None


def _glibc_function(name: str):
    """``name`` from the C library when it is glibc's (has it), else None."""
    library = ctypes.util.find_library("c")
    try:
        return getattr(ctypes.CDLL(library), name) if library else None
    except (OSError, AttributeError):
        return None


def retain_freed_memory() -> bool:
    """Apply the settings once per process; True where they took effect (glibc)."""
    global _applied
    if _applied is None:
        _applied = False
        mallopt = _glibc_function("mallopt")
        if mallopt is not None:
            # one arena, so worker threads share the kept heap; no mmap; no trimming
            _applied = all(
                mallopt(param, value) == 1
                for param, value in ((M_ARENA_MAX, 1), (M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, 2**30))
            )
    return _applied


def release_freed_memory() -> bool:
    """Give the kept free memory back to the system (``malloc_trim``); True where it
    ran (glibc). Memory still in use is not touched."""
    trim = _glibc_function("malloc_trim")
    if trim is None:
        return False
    trim(0)
    return True
