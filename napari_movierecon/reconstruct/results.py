"""A reconstruction saved as one safetensors file: arrays plus a JSON record.

Arrays: ``movie`` (T, H, W) float32; optional ``mask`` (H, W) uint8,
``truth`` (T, H, W) float32, ``correlation_map`` (H, W), ``frame_correlation``
(T,); ``neuron_ids`` (n,) int64. Record (metadata key ``movierecon``): format
and version, config, recording and trial, encoder identity, population (a
``Population.to_dict``; ``Population.from_dict`` gives it back), metrics,
timings. Loading never unpickles; writes are atomic.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from safetensors.numpy import save

from napari_movierecon.errors import MovieReconError
from napari_movierecon.io.tensor_file import read_record_file, write_record_file

FORMAT = "napari-movierecon-reconstruction"
FORMAT_VERSION = 1
ARRAYS = ("movie", "mask", "truth", "correlation_map", "frame_correlation", "neuron_ids")


@dataclass
class Reconstruction:
    """A finished (or stopped) reconstruction and everything needed to reproduce it."""

    movie: np.ndarray
    neuron_ids: np.ndarray
    record: dict = field(default_factory=dict)
    mask: np.ndarray | None = None
    truth: np.ndarray | None = None
    correlation_map: np.ndarray | None = None
    frame_correlation: np.ndarray | None = None


def save_reconstruction(
    result: Reconstruction, path: str | os.PathLike, overwrite: bool = False
) -> Path:
    """Write ``result`` to ``path`` atomically; refuses to replace a file unless asked."""
    arrays = {}
    for name in ARRAYS:
        value = getattr(result, name)
        if value is not None:
            dtype = {"neuron_ids": np.int64, "mask": np.uint8}.get(name, np.float32)
            arrays[name] = np.ascontiguousarray(value, dtype=dtype)
    return write_record_file(
        path, save, arrays, result.record, FORMAT, FORMAT_VERSION, overwrite=overwrite
    )


def _check_arrays(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> None:
    """Refuse a result whose arrays disagree: movie (T, H, W) and truth alike, mask and
    correlation map (H, W), frame correlation (T,), neuron ids (n,) integers; float
    arrays finite (the correlations may hold NaN where undefined)."""
    movie, ids = arrays.get("movie"), arrays.get("neuron_ids")
    if movie is None or movie.ndim != 3 or 0 in movie.shape or ids is None:
        raise MovieReconError(f"{path}: lacks the movie (T, H, W) or the neuron ids")
    t, h, w = movie.shape
    expected = {
        "movie": (t, h, w),
        "truth": (t, h, w),
        "mask": (h, w),
        "correlation_map": (h, w),
        "frame_correlation": (t,),
    }
    unknown = sorted(set(arrays) - set(ARRAYS))
    if unknown:
        raise MovieReconError(f"{path}: unknown arrays {unknown}")
    for name, shape in expected.items():
        value = arrays.get(name)
        if value is None:
            continue
        if value.shape != shape:
            raise MovieReconError(
                f"{path}: array {name!r} is {value.shape} but the movie (T, H, W) = "
                f"{movie.shape} needs {shape}"
            )
        if value.dtype.kind not in "fiub":
            raise MovieReconError(f"{path}: array {name!r} has dtype {value.dtype.str}")
        if name in ("movie", "truth") and not np.isfinite(value).all():
            raise MovieReconError(f"{path}: array {name!r} holds NaN or infinite values")
    if ids.ndim != 1 or ids.dtype.kind not in "iu" or len(np.unique(ids)) != len(ids):
        raise MovieReconError(f"{path}: 'neuron_ids' must be distinct integers (n,)")


def load_reconstruction(path: str | os.PathLike) -> Reconstruction:
    """Read a file written by ``save_reconstruction``; MovieReconError naming it otherwise."""
    arrays, record = read_record_file(path, "numpy", FORMAT, FORMAT_VERSION, "reconstruction file")
    _check_arrays(path, arrays)
    mask = arrays.get("mask")
    return Reconstruction(
        movie=arrays["movie"],
        neuron_ids=arrays["neuron_ids"],
        record=record,
        mask=None if mask is None else mask.astype(bool),
        truth=arrays.get("truth"),
        correlation_map=arrays.get("correlation_map"),
        frame_correlation=arrays.get("frame_correlation"),
    )
