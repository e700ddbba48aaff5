"""How close a reconstruction is to the movie that was shown.

All movies are (T, H, W) in 0..255; masks are (H, W) booleans (True = scored).
``skip`` leading frames are left out of every score: the encoder had no full
temporal context there, so the reconstruction is unconstrained.
"""

from __future__ import annotations

import numpy as np

from napari_movierecon.correlation import row_correlation
from napari_movierecon.errors import MovieReconError


def _check(reconstruction: np.ndarray, truth: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """Validate shapes; return the mask (all True when None)."""
    if reconstruction.shape != truth.shape or reconstruction.ndim != 3:
        raise MovieReconError(
            f"reconstruction {reconstruction.shape} and ground truth {truth.shape} must be "
            "(T, H, W) of one shape"
        )
    if mask is None:
        return np.ones(truth.shape[1:], dtype=bool)
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != truth.shape[1:]:
        raise MovieReconError(f"mask {mask.shape} does not match frames {truth.shape[1:]}")
    if not mask.any():
        raise MovieReconError("mask selects no pixel")
    return mask


def pixel_correlation(
    reconstruction: np.ndarray, truth: np.ndarray, mask: np.ndarray | None = None, skip: int = 0
) -> float:
    """Pearson correlation over all in-mask pixels x frames[skip:], flattened."""
    mask = _check(reconstruction, truth, mask)
    a = np.asarray(reconstruction[skip:], np.float64)[:, mask].reshape(1, -1)
    b = np.asarray(truth[skip:], np.float64)[:, mask].reshape(1, -1)
    return float(row_correlation(a, b)[0])


def correlation_map(reconstruction: np.ndarray, truth: np.ndarray, skip: int = 0) -> np.ndarray:
    """Per-pixel Pearson correlation over time (H, W) float32; NaN where a trace is flat."""
    _check(reconstruction, truth, None)
    t, h, w = truth.shape
    a = np.asarray(reconstruction[skip:], np.float64).reshape(t - skip, -1).T
    b = np.asarray(truth[skip:], np.float64).reshape(t - skip, -1).T
    return row_correlation(a, b).reshape(h, w).astype(np.float32)


def frame_correlation(
    reconstruction: np.ndarray, truth: np.ndarray, mask: np.ndarray | None = None
) -> np.ndarray:
    """Per-frame Pearson correlation over in-mask pixels (T,) float32; NaN for flat frames."""
    mask = _check(reconstruction, truth, mask)
    a = np.asarray(reconstruction, np.float64)[:, mask]
    b = np.asarray(truth, np.float64)[:, mask]
    return row_correlation(a, b).astype(np.float32)


def match_luminance(
    reconstruction: np.ndarray, truth: np.ndarray, mask: np.ndarray | None = None
) -> np.ndarray:
    """The reconstruction rescaled (float32, clipped to 0..255) so that its in-mask mean and
    standard deviation equal the ground truth's; for display: Pearson scores are unchanged."""
    mask = _check(reconstruction, truth, mask)
    inside = np.asarray(reconstruction, np.float64)[:, mask]
    target = np.asarray(truth, np.float64)[:, mask]
    scale = target.std() / max(inside.std(), 1e-12)
    matched = (np.asarray(reconstruction, np.float64) - inside.mean()) * scale + target.mean()
    return np.clip(matched, 0, 255).astype(np.float32)
