"""Recordings held in memory (users' own arrays, tests) and the statistics all writers share."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from napari_movierecon.errors import RecordingError
from napari_movierecon.recording import (
    BEHAVIOR_RANGE,
    KNOWN_TIERS,
    MOVIE_RANGE,
    RESPONSE_RANGE,
    VARIABLES,
    Neurons,
    Recording,
    Trial,
    check_values,
)

#: Tiers whose trials must carry responses; the test tiers may withhold them.
TIERS_WITH_RESPONSES = ("train", "oracle")

STATISTICS = ("min", "max", "mean", "std")


class _RunningMoments:
    """Streaming min/max/mean/population-std per channel, accumulated in float64.

    ``update`` takes a (C, n) array: C channels, n samples (merged with Chan et al.'s
    pairwise formula, so the result does not depend on how samples are batched).
    """

    def __init__(self, channels: int) -> None:
        self.count = 0
        self.mean = np.zeros(channels)
        self.m2 = np.zeros(channels)
        self.min = np.full(channels, np.inf)
        self.max = np.full(channels, -np.inf)

    def update(self, samples: np.ndarray) -> None:
        x = np.asarray(samples, dtype=np.float64)
        n = x.shape[1]
        if n == 0:
            return
        batch_mean = x.mean(axis=1)
        batch_m2 = np.square(x - batch_mean[:, None]).sum(axis=1)
        total = self.count + n
        delta = batch_mean - self.mean
        self.mean += delta * (n / total)
        self.m2 += batch_m2 + np.square(delta) * (self.count * n / total)
        self.count = total
        np.minimum(self.min, x.min(axis=1), out=self.min)
        np.maximum(self.max, x.max(axis=1), out=self.max)

    def result(self) -> dict[str, np.ndarray]:
        """(C,) float32 min/max/mean/std; all NaN when no sample was seen."""
        if self.count == 0:
            return {stat: np.full(self.mean.shape, np.nan, np.float32) for stat in STATISTICS}
        values = (self.min, self.max, self.mean, np.sqrt(self.m2 / self.count))
        return {stat: v.astype(np.float32) for stat, v in zip(STATISTICS, values, strict=True)}


class StatisticsAccumulator:
    """The Sensorium statistics of a set of trials, accumulated one trial at a time.

    Over every valid frame of the added trials: videos -> scalars (shape ()), responses
    -> per neuron (N,), behavior and pupil_center -> per channel (2,). Trials without
    responses are skipped for the response statistics. Std is the population std.
    """

    def __init__(self, n_neurons: int) -> None:
        self._moments = {
            "videos": _RunningMoments(1),
            "responses": _RunningMoments(n_neurons),
            "behavior": _RunningMoments(2),
            "pupil_center": _RunningMoments(2),
        }

    def add(self, trial: Trial) -> None:
        """Include one trial (movie (T,H,W), responses (N,T) or None, (2,T) traces)."""
        self._moments["videos"].update(trial.movie.reshape(1, -1))
        if trial.responses is not None:
            self._moments["responses"].update(trial.responses)
        self._moments["behavior"].update(trial.behavior)
        self._moments["pupil_center"].update(trial.pupil_center)

    def result(self) -> dict[str, dict[str, np.ndarray]]:
        """Per variable (VARIABLES order), per statistic (min, max, mean, std): float32 arrays."""
        out = {var: self._moments[var].result() for var in VARIABLES}
        out["videos"] = {stat: v.reshape(()) for stat, v in out["videos"].items()}
        return out


def _frozen_float32(what: str, value: object) -> np.ndarray:
    """A read-only float32 copy of a numeric (float or integer) array."""
    array = np.asarray(value)
    if array.dtype.kind not in "fiu":
        raise RecordingError(f"{what}: non-numeric dtype {array.dtype} (expected float or integer)")
    array = np.array(array, dtype=np.float32, copy=True)
    array.flags.writeable = False
    return array


def _check_trial(
    name: str, index: int, tier: str, item: Trial | Mapping, neurons: Neurons
) -> Trial:
    """Validate one trial's arrays and return them as a read-only float32 Trial."""
    where = f"{name}: trial {index}"
    if isinstance(item, Trial):
        if item.tier != tier:
            raise RecordingError(f"{where} has tier {item.tier!r} but tiers lists {tier!r}")
        fields = {
            "movie": item.movie,
            "responses": item.responses,
            "behavior": item.behavior,
            "pupil_center": item.pupil_center,
        }
        extras = dict(item.extras)
    else:
        missing = {"movie", "behavior", "pupil_center"} - set(item)
        if missing:
            raise RecordingError(f"{where} lacks {sorted(missing)}")
        fields = {key: item.get(key) for key in ("movie", "responses", "behavior", "pupil_center")}
        extras = {}
    movie = _frozen_float32(f"{where} movie", fields["movie"])
    if movie.ndim != 3 or movie.shape[0] == 0:
        raise RecordingError(f"{where} movie must be (T, H, W) with T >= 1, got {movie.shape}")
    if np.isnan(movie).any():
        raise RecordingError(
            f"{where} movie contains NaN; cut every array to its valid length first"
        )
    length = movie.shape[0]
    responses = fields["responses"]
    if responses is None:
        if tier in TIERS_WITH_RESPONSES:
            raise RecordingError(f"{where} (tier {tier!r}) needs responses")
    else:
        responses = _frozen_float32(f"{where} responses", responses)
        if responses.shape != (len(neurons), length):
            raise RecordingError(
                f"{where} responses must be (N={len(neurons)}, T={length}), got {responses.shape}"
            )
    traces = {}
    for key in ("behavior", "pupil_center"):
        traces[key] = _frozen_float32(f"{where} {key}", fields[key])
        if traces[key].shape != (2, length):
            raise RecordingError(f"{where} {key} must be (2, T={length}), got {traces[key].shape}")
    for key, values in (("movie", movie), ("responses", responses), *traces.items()):
        if values is not None:
            ranges = {"responses": RESPONSE_RANGE, "movie": MOVIE_RANGE}
            check_values(f"{where} {key}", values, ranges.get(key, BEHAVIOR_RANGE))
    return Trial(index, tier, movie, responses, traces["behavior"], traces["pupil_center"], extras)


class InMemoryRecording(Recording):
    """A Recording whose trials are numpy arrays in memory.

    neurons: the population (N neurons). tiers: one tier per trial, each in KNOWN_TIERS.
    trials: one Trial or dict per tier entry, holding movie (T,H,W) in 0..255,
    responses (N,T) or None (allowed outside the train and oracle tiers), behavior (2,T)
    and pupil_center (2,T); numeric arrays already cut to their valid length (T >= 1, no
    NaN in the movie), all movies with one frame shape (H,W). Arrays are stored as
    read-only float32 copies; ``trial(i)`` returns them without copying.
    """

    def __init__(
        self,
        neurons: Neurons,
        tiers: Sequence[str] | np.ndarray,
        trials: Sequence[Trial | Mapping],
        name: str = "in-memory",
    ) -> None:
        self._name = str(name)
        self._neurons = neurons
        self._tiers = np.array([str(t) for t in tiers])
        self._tiers.flags.writeable = False
        unknown = sorted(set(self._tiers.tolist()) - set(KNOWN_TIERS))
        if unknown:
            raise RecordingError(f"{name}: unknown tiers {unknown} (known: {list(KNOWN_TIERS)})")
        if len(trials) != len(self._tiers):
            raise RecordingError(f"{name}: {len(trials)} trials but {len(self._tiers)} tiers")
        if not trials:
            raise RecordingError(f"{name}: a recording needs at least one trial")
        self._trials = [
            _check_trial(self._name, i, tier, item, neurons)
            for i, (tier, item) in enumerate(zip(self._tiers.tolist(), trials, strict=True))
        ]
        shapes = {t.movie.shape[1:] for t in self._trials}
        if len(shapes) > 1:
            raise RecordingError(f"{name}: movies differ in frame shape: {sorted(shapes)}")
        self._frame_shape = shapes.pop()

    @property
    def name(self) -> str:
        return self._name

    @property
    def neurons(self) -> Neurons:
        return self._neurons

    @property
    def tiers(self) -> np.ndarray:
        return self._tiers

    @property
    def frame_shape(self) -> tuple[int, int]:
        return self._frame_shape

    def trial(self, index: int) -> Trial:
        return self._trials[self.check_index(index)]

    def statistics(self) -> dict[str, dict[str, np.ndarray]]:
        accumulator = StatisticsAccumulator(len(self._neurons))
        for trial in self._trials:
            accumulator.add(trial)
        return accumulator.result()
