"""Pearson correlation of paired traces, the measure behind every score we report."""

from __future__ import annotations

import numpy as np


def row_correlation(a: np.ndarray, b: np.ndarray, constant: float = np.nan) -> np.ndarray:
    """Correlation over the last axis for each row of (N, T) arrays -> (N,).

    Rows where either trace is constant get ``constant`` (NaN: undefined; 0 is the
    Sensorium convention for a flat prediction).
    """
    a = a - a.mean(axis=-1, keepdims=True)
    b = b - b.mean(axis=-1, keepdims=True)
    denom = np.sqrt((a**2).sum(axis=-1) * (b**2).sum(axis=-1))
    out = np.full(denom.shape, constant, dtype=np.float64)
    np.divide((a * b).sum(axis=-1), denom, out=out, where=denom > 0)
    return out
