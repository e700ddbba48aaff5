"""Neuron selections ("populations") from a short text spec.

    all                 every neuron
    random:F[:SEED]     a random fraction F in (0, 1] (seed 0 unless given)
    top:K               the K most reliable neurons
    ids:PATH            the unit ids listed in PATH (.npy, or text: one id per line)

Indices returned are positions in the encoder's neuron order, sorted ascending.
Populations drawn on the cortical map (a polygon, a depth range) come from
``in_region`` / ``in_depth_range``; a ``Population`` names any selection so a
run can record it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from skimage.measure import points_in_poly

from napari_movierecon.errors import MovieReconError


def _ids_from_file(path: Path) -> np.ndarray:
    if not path.is_file():
        raise MovieReconError(f"{path}: no such neuron id file")
    try:
        if path.suffix == ".npy":
            ids = np.load(path, allow_pickle=False)
        else:
            ids = np.loadtxt(path, dtype=np.int64, ndmin=1, comments="#")
    except (OSError, ValueError) as err:
        raise MovieReconError(f"{path}: not a list of integer unit ids ({err})") from err
    if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
        raise MovieReconError(f"{path}: expected a 1-D list of integer unit ids")
    return ids.astype(np.int64)


def select_neurons(
    spec: str, unit_ids: np.ndarray, reliability: np.ndarray | None = None
) -> np.ndarray:
    """Indices (ascending int64) of the neurons ``spec`` selects among ``unit_ids``."""
    unit_ids = np.asarray(unit_ids, dtype=np.int64)
    n = len(unit_ids)
    kind, _, rest = spec.strip().partition(":")
    try:
        if kind == "all" and not rest:
            chosen = np.arange(n)
        elif kind == "random":
            fraction, _, seed = rest.partition(":")
            fraction = float(fraction)
            if not 0 < fraction <= 1:
                raise MovieReconError(f"neuron spec {spec!r}: the fraction must lie in (0, 1]")
            rng = np.random.default_rng(int(seed) if seed else 0)
            chosen = rng.choice(n, size=max(1, round(fraction * n)), replace=False)
        elif kind == "top":
            k = int(rest)
            if not 1 <= k <= n:
                raise MovieReconError(f"neuron spec {spec!r}: k must lie in 1..{n}")
            if reliability is None:
                raise MovieReconError(
                    f"neuron spec {spec!r}: no per-neuron reliability is known for this encoder"
                )
            chosen = np.argsort(-np.asarray(reliability), kind="stable")[:k]
        elif kind == "ids" and rest:
            wanted = _ids_from_file(Path(rest))
            missing = np.setdiff1d(wanted, unit_ids)
            if missing.size:
                raise MovieReconError(
                    f"{rest}: {missing.size} unit ids are not in the recording "
                    f"(first: {missing[:5].tolist()})"
                )
            chosen = np.flatnonzero(np.isin(unit_ids, wanted))
        else:
            raise MovieReconError(
                f"unknown neuron spec {spec!r}; use all, random:F[:SEED], top:K or ids:PATH"
            )
    except ValueError as err:
        raise MovieReconError(f"neuron spec {spec!r}: {err}") from err
    if len(chosen) == 0:
        raise MovieReconError(f"neuron spec {spec!r} selects no neuron")
    return np.sort(chosen).astype(np.int64)


def encoder_reliability(encoder) -> np.ndarray | None:
    """Per-neuron validation correlation from the training record(s), mean over members."""
    members = getattr(encoder, "members", [encoder])
    values = [m.record.get("validation_correlation") for m in members if hasattr(m, "record")]
    if not values or any(v is None for v in values):
        return None
    return np.mean(np.asarray(values, dtype=np.float64), axis=0)


@dataclass(frozen=True)
class Population:
    """A named neuron selection: ``indices`` (n,) int64 ascending positions in the
    encoder's neuron order; ``spec`` says how it was chosen (recorded with a run)."""

    name: str
    spec: str
    indices: np.ndarray

    def __post_init__(self) -> None:
        indices = np.asarray(self.indices, dtype=np.int64).ravel()
        if indices.size == 0:
            raise MovieReconError(f"population {self.name!r} ({self.spec}) has no neuron")
        object.__setattr__(self, "indices", np.unique(indices))

    def __len__(self) -> int:
        return int(self.indices.size)


def in_region(xy: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """(N,) bool: which of the points ``xy`` (N, 2) lie inside ``polygon`` (K, 2), same units
    (µm on the cortical map); K >= 3 vertices."""
    polygon = np.asarray(polygon, dtype=np.float64)
    if polygon.ndim != 2 or polygon.shape[1] != 2 or len(polygon) < 3:
        raise MovieReconError(f"a region needs >= 3 (x, y) vertices, got shape {polygon.shape}")
    return points_in_poly(np.asarray(xy, dtype=np.float64), polygon)


def in_depth_range(depth_um: np.ndarray, low: float, high: float) -> np.ndarray:
    """(N,) bool: neurons with ``low <= depth <= high`` (µm below the surface)."""
    if not low <= high:
        raise MovieReconError(f"depth range {low:g}..{high:g} µm is empty (low > high)")
    depth = np.asarray(depth_um)
    return (depth >= low) & (depth <= high)
