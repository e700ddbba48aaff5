"""The Recording data model: what every reader, simulator and consumer agrees on.

Conventions (in memory):
- movies are (T, H, W) float32 in 0..255, time first (napari's convention);
- responses are (N, T) float32, one row per neuron, in ``Neurons.ids`` order;
- behaviour is (2, T) float32: pupil dilation, running speed (cm/s);
- pupil centre is (2, T) float32: horizontal, vertical;
- a trial's arrays are cut to its valid length (frames before the first NaN).

A Recording is lazy: ``trial(i)`` loads or computes one trial on demand, so a
folder of a thousand trials costs no more memory than one trial.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np

from napari_movierecon.errors import RecordingError

FRAME_RATE_HZ = 30.0
SCREEN_SHAPE = (36, 64)
# Mid-gray of a 0..255 movie: zero contrast for the encoders, the reconstruction's start.
GRAY_LEVEL = 127.5
PADDED_LENGTH = 300
BEHAVIOR_CHANNELS = ("pupil_dilation", "running_speed")
PUPIL_CENTER_CHANNELS = ("pupil_x", "pupil_y")
VARIABLES = ("videos", "responses", "behavior", "pupil_center")
KNOWN_TIERS = (
    "train",
    "oracle",
    "live_test_main",
    "live_test_bonus",
    "final_test_main",
    "final_test_bonus",
    "none",
)


@dataclass(frozen=True)
class Neurons:
    """The recorded population.

    ids: (N,) int64 unit ids. xyz: (N, 3) float32 cortical position in µm
    (x, y along the cortical surface, z depth). reliability: optional (N,)
    float32 per-neuron score (e.g. an encoder's validation correlation).
    """

    ids: np.ndarray
    xyz: np.ndarray
    reliability: np.ndarray | None = None

    def __post_init__(self) -> None:
        ids = np.asarray(self.ids)
        xyz = np.asarray(self.xyz)
        if ids.ndim != 1:
            raise RecordingError(f"neuron ids must be 1-D, got shape {ids.shape}")
        if xyz.shape != (ids.shape[0], 3):
            raise RecordingError(
                f"neuron coordinates must be ({ids.shape[0]}, 3) to match {ids.shape[0]} ids, "
                f"got {xyz.shape}"
            )
        if len(np.unique(ids)) != len(ids):
            raise RecordingError("neuron ids are not unique")
        object.__setattr__(self, "ids", ids.astype(np.int64))
        object.__setattr__(self, "xyz", xyz.astype(np.float32))

    def __len__(self) -> int:
        return int(np.asarray(self.ids).shape[0])


@dataclass(frozen=True)
class Trial:
    """One trial cut to its valid length T.

    movie (T,H,W) float32 0..255; responses (N,T) float32 or None for test
    tiers without responses; behavior (2,T); pupil_center (2,T).
    """

    index: int
    tier: str
    movie: np.ndarray
    responses: np.ndarray | None
    behavior: np.ndarray
    pupil_center: np.ndarray
    extras: dict = field(default_factory=dict)

    @property
    def length(self) -> int:
        """Number of valid frames."""
        return int(self.movie.shape[0])


def valid_length(array: np.ndarray, time_axis: int = -1) -> int:
    """Index of the first frame that holds a NaN anywhere, or the full length.

    Sensorium pads every trial to a fixed length with NaN; the real length is
    where the padding starts.
    """
    arr = np.asarray(array)
    other = tuple(ax for ax in range(arr.ndim) if ax != time_axis % arr.ndim)
    nan_frames = np.isnan(arr).any(axis=other) if other else np.isnan(arr)
    hits = np.flatnonzero(nan_frames)
    return int(hits[0]) if hits.size else int(arr.shape[time_axis])


# Responses are deconvolved activity or spike-rate-like: never meaningfully negative
# (a small tolerance for rounding) and far below this bound in any real recording.
RESPONSE_RANGE = (-1e-3, 1e6)
# Movies are gray levels 0..255 (half a level of slack for resampled movies).
MOVIE_RANGE = (-0.5, 255.5)
# Pupil sizes and positions (pixels) and running speeds (cm/s) are far inside this.
BEHAVIOR_RANGE = (-1e6, 1e6)


def check_values(what: str, values: np.ndarray, value_range: tuple[float, float] | None = None):
    """Refuse NaN/inf (and values outside ``value_range``) in the valid frames of a trial.

    ``what`` names the file or array and the trial; the message adds the first bad
    position (row, frame).
    """
    finite = np.isfinite(values)
    if not finite.all():
        position = tuple(int(i) for i in np.argwhere(~finite)[0])
        raise RecordingError(
            f"{what}: NaN or infinite value inside the valid frames (at index {position})"
        )
    if value_range is not None and values.size:
        low, high = float(values.min()), float(values.max())
        if low < value_range[0] or high > value_range[1]:
            raise RecordingError(
                f"{what}: values from {low:g} to {high:g} are outside the plausible range "
                f"{value_range[0]:g}..{value_range[1]:g}"
            )


class Recording(ABC):
    """A lazily loaded set of trials with one neuron population."""

    frame_rate: float = FRAME_RATE_HZ

    @property
    @abstractmethod
    def name(self) -> str:
        """Human-readable identity (folder name or simulator description)."""

    @property
    @abstractmethod
    def neurons(self) -> Neurons:
        """The population, in the row order of every responses array."""

    @property
    @abstractmethod
    def tiers(self) -> np.ndarray:
        """(n_trials,) str tier of every trial."""

    @abstractmethod
    def trial(self, index: int) -> Trial:
        """Load (or compute) one trial, cut to its valid length."""

    @abstractmethod
    def statistics(self) -> dict[str, dict[str, np.ndarray]]:
        """Per variable (videos, responses, behavior, pupil_center): min/max/mean/std arrays.

        Shapes: videos (), responses (N,), behavior and pupil_center (2,).
        """

    @property
    def frame_shape(self) -> tuple[int, int]:
        """(H, W) of every movie frame."""
        return SCREEN_SHAPE

    def __len__(self) -> int:
        return len(self.tiers)

    def trials_in(self, tier: str) -> np.ndarray:
        """Indices of the trials in ``tier`` (int64, ascending)."""
        if tier not in set(self.tiers.tolist()) and tier not in KNOWN_TIERS:
            raise RecordingError(f"{self.name}: unknown tier {tier!r}")
        return np.flatnonzero(self.tiers == tier).astype(np.int64)

    def check_index(self, index: int) -> int:
        """Return ``index`` as int, or raise a RecordingError naming the valid range."""
        is_integer = isinstance(index, (int, np.integer)) and not isinstance(index, bool)
        if not is_integer or not 0 <= int(index) < len(self):
            raise RecordingError(
                f"{self.name}: trial {index!r} does not exist (valid: 0..{len(self) - 1})"
            )
        return int(index)
