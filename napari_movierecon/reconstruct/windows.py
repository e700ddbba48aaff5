"""Time windows for windowed reconstruction (the reference protocol's layout).

Windows of ``length`` frames every ``stride`` frames from frame 0 and, when the
stride does not divide evenly, one more window aligned to the clip's end so that
every frame is covered. For 300 frames, length 32 and stride 8 this gives 35
windows (starts 0, 8, ..., 264 and 268), the layout of the reference code of
Bauer et al. 2025 (which, when the stride divides evenly, repeats the last
window; here it appears once).
"""

from __future__ import annotations

import numpy as np

from napari_movierecon.errors import MovieReconError


def window_starts(n_frames: int, length: int, stride: int) -> np.ndarray:
    """First frame of each window, ascending (int64). A clip shorter than ``length``
    is one window starting at 0 (it then spans the whole clip)."""
    if length < 1 or stride < 1:
        raise MovieReconError(f"window length ({length}) and stride ({stride}) must be >= 1")
    if n_frames < 1:
        raise MovieReconError("a clip needs at least one frame")
    if n_frames <= length:
        return np.zeros(1, dtype=np.int64)
    starts = list(range(0, n_frames - length + 1, stride))
    if starts[-1] != n_frames - length:
        starts.append(n_frames - length)
    return np.array(starts, dtype=np.int64)


def window_coverage(n_frames: int, length: int, stride: int) -> np.ndarray:
    """How many windows contain each frame, (T,) int64."""
    counts = np.zeros(n_frames, dtype=np.int64)
    for start in window_starts(n_frames, length, stride):
        counts[start : start + length] += 1
    return counts
