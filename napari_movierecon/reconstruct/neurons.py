"""Neuron populations as data: small typed, JSON-serialisable selections.

    AllNeurons            every neuron                        text spec: all
    RandomFraction(f, s)  a random fraction f in (0, 1], seed s    random:F[:SEED]
    TopK(k)               the k most reliable neurons             top:K
    IdList(ids)           the listed unit ids                     ids:PATH (.npy or text)
    DepthRange(lo, hi)    lo <= depth <= hi, µm below the surface
    Region(polygons)      inside any of the polygons, cortical (x, y) µm

``population.select(neurons, reliability)`` gives ascending int64 positions in the
recording's (= the encoder's) neuron order; ``to_dict``/``from_dict`` (and the JSON
variants) round-trip every kind exactly, so a run's record or an export sidecar
reproduces its population. Every population has a ``name`` (default: its text spec).
A ``Selection`` pairs a population with the indices it selected in one recording.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import ClassVar

import numpy as np
from skimage.measure import points_in_poly

from napari_movierecon.errors import MovieReconError
from napari_movierecon.io.npy import load_npy, regular_file
from napari_movierecon.recording import Neurons

SPEC_HELP = "use all, random:F[:SEED], top:K or ids:PATH"


@dataclass(frozen=True, kw_only=True)
class Population(ABC):
    """Base of every population kind; ``name`` "" stands for the text spec."""

    kind: ClassVar[str]
    name: str = ""

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", self.spec())

    @abstractmethod
    def spec(self) -> str:
        """A short human-readable description (the CLI text spec where one exists)."""

    @abstractmethod
    def _mask(self, neurons: Neurons, reliability: np.ndarray | None) -> np.ndarray:
        """(N,) bool or int indices of the chosen neurons."""

    def select(self, neurons: Neurons, reliability: np.ndarray | None = None) -> np.ndarray:
        """Ascending int64 indices of the chosen neurons; MovieReconError if none."""
        chosen = np.asarray(self._mask(neurons, reliability))
        indices = np.flatnonzero(chosen) if chosen.dtype == bool else np.sort(chosen)
        if indices.size == 0:
            raise MovieReconError(f"population {self.name!r} selects no neuron")
        return indices.astype(np.int64)

    def to_dict(self) -> dict:
        """{"kind": ..., "name": ..., parameters...}: plain JSON types only."""
        data = {"kind": self.kind}
        for item in fields(self):
            value = getattr(self, item.name)
            data[item.name] = _plain(value)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @staticmethod
    def from_dict(data: dict) -> Population:
        """The population ``to_dict`` wrote; MovieReconError on anything else."""
        if not isinstance(data, dict) or data.get("kind") not in KINDS:
            raise MovieReconError(
                f"not a population record: {data!r:.120}; kinds: {', '.join(KINDS)}"
            )
        cls = KINDS[data["kind"]]
        known = {item.name for item in fields(cls)}
        values = {key: value for key, value in data.items() if key != "kind"}
        if unknown := sorted(set(values) - known):
            raise MovieReconError(f"{cls.kind} population: unknown keys {', '.join(unknown)}")
        try:
            return cls(**values)
        except (TypeError, ValueError) as err:
            raise MovieReconError(f"{cls.kind} population record is invalid: {err}") from err

    @staticmethod
    def from_json(text: str) -> Population:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise MovieReconError(f"population record is not JSON: {err}") from err
        return Population.from_dict(data)


def _plain(value):
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    return value


@dataclass(frozen=True, kw_only=True)
class AllNeurons(Population):
    kind: ClassVar[str] = "all"

    def spec(self) -> str:
        return "all"

    def _mask(self, neurons, reliability):
        return np.ones(len(neurons), bool)


@dataclass(frozen=True, kw_only=True)
class RandomFraction(Population):
    """``fraction`` in (0, 1] of the neurons, drawn with ``seed`` (at least one)."""

    kind: ClassVar[str] = "random"
    fraction: float
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "fraction", float(self.fraction))
        object.__setattr__(self, "seed", int(self.seed))
        if not 0 < self.fraction <= 1:
            raise MovieReconError(
                f"random population: the fraction must lie in (0, 1], got {self.fraction:g}"
            )
        super().__post_init__()

    def spec(self) -> str:
        return f"random:{self.fraction:g}:{self.seed}"

    def _mask(self, neurons, reliability):
        n = len(neurons)
        rng = np.random.default_rng(self.seed)
        return rng.choice(n, size=max(1, round(self.fraction * n)), replace=False)


@dataclass(frozen=True, kw_only=True)
class TopK(Population):
    """The ``k`` neurons with the highest reliability (ties: lower index first)."""

    kind: ClassVar[str] = "top"
    k: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "k", int(self.k))
        if self.k < 1:
            raise MovieReconError(f"top-k population: k must be >= 1, got {self.k}")
        super().__post_init__()

    def spec(self) -> str:
        return f"top:{self.k}"

    def _mask(self, neurons, reliability):
        n = len(neurons)
        if self.k > n:
            raise MovieReconError(f"population {self.name!r}: k must lie in 1..{n}")
        if reliability is None:
            raise MovieReconError(
                f"population {self.name!r}: no per-neuron reliability is known for this encoder"
            )
        return np.argsort(-np.asarray(reliability), kind="stable")[: self.k]


@dataclass(frozen=True, kw_only=True)
class IdList(Population):
    """The neurons with these unit ids (every id must be in the recording)."""

    kind: ClassVar[str] = "ids"
    ids: tuple[int, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "ids", tuple(int(i) for i in np.asarray(self.ids).ravel()))
        if not self.ids:
            raise MovieReconError("id-list population: no unit id given")
        super().__post_init__()

    def spec(self) -> str:
        return f"ids:{len(self.ids)} units"

    def _mask(self, neurons, reliability):
        wanted = np.asarray(self.ids, dtype=np.int64)
        missing = np.setdiff1d(wanted, neurons.ids)
        if missing.size:
            raise MovieReconError(
                f"population {self.name!r}: {missing.size} unit ids are not in the recording "
                f"(first: {missing[:5].tolist()})"
            )
        return np.isin(neurons.ids, wanted)

    @classmethod
    def from_file(cls, path: Path, name: str = "") -> IdList:
        """The ids listed in ``path`` (.npy, or text: one id per line, # comments)."""
        regular_file(path, "neuron id file")
        try:
            if path.suffix == ".npy":
                ids = load_npy(path, "iu")
            else:
                ids = np.loadtxt(path, dtype=np.int64, ndmin=1, comments="#")
        except (OSError, ValueError, UnicodeDecodeError) as err:
            raise MovieReconError(f"{path}: not a list of integer unit ids ({err})") from err
        if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
            raise MovieReconError(f"{path}: expected a 1-D list of integer unit ids")
        if ids.size == 0:
            raise MovieReconError(f"{path}: lists no unit id")
        return cls(ids=ids, name=name)


@dataclass(frozen=True, kw_only=True)
class DepthRange(Population):
    """Neurons with ``low_um <= depth <= high_um`` (µm below the cortical surface)."""

    kind: ClassVar[str] = "depth"
    low_um: float
    high_um: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "low_um", float(self.low_um))
        object.__setattr__(self, "high_um", float(self.high_um))
        if not self.low_um <= self.high_um:
            raise MovieReconError(
                f"depth range {self.low_um:g}..{self.high_um:g} µm is empty (low > high)"
            )
        super().__post_init__()

    def spec(self) -> str:
        return f"depth:{self.low_um:g}-{self.high_um:g}um"

    def _mask(self, neurons, reliability):
        depth = np.asarray(neurons.xyz[:, 2], dtype=np.float64)
        return (depth >= self.low_um) & (depth <= self.high_um)


@dataclass(frozen=True, kw_only=True)
class Region(Population):
    """Neurons inside any of ``polygons``: each a tuple of >= 3 cortical (x, y) vertices
    in µm (the neuron map's coordinates)."""

    kind: ClassVar[str] = "region"
    polygons: tuple[tuple[tuple[float, float], ...], ...]

    def __post_init__(self) -> None:
        polygons = []
        for polygon in self.polygons:
            vertices = np.asarray(polygon, dtype=np.float64)
            if vertices.ndim != 2 or vertices.shape[1] != 2 or len(vertices) < 3:
                raise MovieReconError(
                    f"a region polygon needs >= 3 (x, y) vertices, got shape {vertices.shape}"
                )
            if not np.isfinite(vertices).all():
                raise MovieReconError("a region polygon has a non-finite vertex")
            polygons.append(tuple((float(x), float(y)) for x, y in vertices))
        if not polygons:
            raise MovieReconError("a region needs at least one polygon")
        object.__setattr__(self, "polygons", tuple(polygons))
        super().__post_init__()

    def spec(self) -> str:
        count = len(self.polygons)
        return f"region:{count} polygon{'s' if count > 1 else ''}"

    def _mask(self, neurons, reliability):
        xy = np.asarray(neurons.xyz[:, :2], dtype=np.float64)
        inside = np.zeros(len(xy), bool)
        for polygon in self.polygons:
            inside |= points_in_poly(xy, np.asarray(polygon))
        return inside


KINDS: dict[str, type[Population]] = {
    cls.kind: cls for cls in (AllNeurons, RandomFraction, TopK, IdList, DepthRange, Region)
}


def parse_population(spec: str) -> Population:
    """The population a CLI text spec names (all, random:F[:SEED], top:K, ids:PATH)."""
    kind, _, rest = spec.strip().partition(":")
    try:
        if kind == "all" and not rest:
            return AllNeurons()
        if kind == "random":
            fraction, _, seed = rest.partition(":")
            return RandomFraction(fraction=float(fraction), seed=int(seed) if seed else 0)
        if kind == "top":
            return TopK(k=int(rest))
        if kind == "ids" and rest:
            return IdList.from_file(Path(rest), name=spec.strip())
    except ValueError as err:
        raise MovieReconError(f"neuron spec {spec!r}: {err}") from err
    raise MovieReconError(f"unknown neuron spec {spec!r}; {SPEC_HELP}")


def check_neuron_indices(neurons, n_neurons: int) -> np.ndarray:
    """``neurons`` as (n,) int64 indices into an encoder's ``n_neurons`` neurons, in the
    given order; MovieReconError when the selection is empty, not integers, out of range
    or lists a neuron twice."""
    neurons = np.asarray(neurons)
    if neurons.size == 0:
        raise MovieReconError("the neuron selection is empty")
    if neurons.dtype.kind not in "iu":
        raise MovieReconError(f"neuron indices must be integers, got dtype {neurons.dtype}")
    neurons = neurons.astype(np.int64).ravel()
    if neurons.min() < 0 or neurons.max() >= n_neurons:
        raise MovieReconError(f"neuron indices must lie in 0..{n_neurons - 1}")
    if len(np.unique(neurons)) != neurons.size:
        raise MovieReconError("the neuron selection lists a neuron twice")
    return neurons


def encoder_reliability(encoder) -> np.ndarray | None:
    """Per-neuron validation correlation from the training record(s), mean over members."""
    from napari_movierecon.encoders.ensemble import members_of  # torch: only with an encoder

    values = [
        m.record.get("validation_correlation") for m in members_of(encoder) if hasattr(m, "record")
    ]
    if not values or any(v is None for v in values):
        return None
    return np.mean(np.asarray(values, dtype=np.float64), axis=0)


@dataclass(frozen=True)
class Selection:
    """A population and what it chose in one recording: ``indices`` (n,) int64
    ascending positions in the encoder's neuron order."""

    population: Population
    indices: np.ndarray = field(repr=False)

    def __post_init__(self) -> None:
        indices = np.unique(np.asarray(self.indices, dtype=np.int64).ravel())
        if indices.size == 0:
            raise MovieReconError(f"population {self.population.name!r} has no neuron")
        object.__setattr__(self, "indices", indices)

    @classmethod
    def of(
        cls, population: Population, neurons: Neurons, reliability: np.ndarray | None = None
    ) -> Selection:
        return cls(population, population.select(neurons, reliability))

    @property
    def name(self) -> str:
        return self.population.name

    @property
    def spec(self) -> str:
        return self.population.spec()

    def __len__(self) -> int:
        return int(self.indices.size)
