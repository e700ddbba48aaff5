"""Read and write the Sensorium 2023 folder layout (one folder per mouse).

On disk (see the dataset reference): ``data/videos/<i>.npy`` (H, W, T),
``data/responses/<i>.npy`` (N, T), ``data/behavior/<i>.npy`` and
``data/pupil_center/<i>.npy`` (2, T), all NaN-padded to a fixed T; ``meta/neurons``,
``meta/trials/tiers.npy`` and ``meta/statistics/<var>/all/{min,max,mean,std}.npy``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from napari_movierecon.errors import RecordingError
from napari_movierecon.io.atomic import staged_directory
from napari_movierecon.io.memory import STATISTICS, TIERS_WITH_RESPONSES, StatisticsAccumulator
from napari_movierecon.io.npy import load_npy, npy_header
from napari_movierecon.recording import (
    BEHAVIOR_RANGE,
    KNOWN_TIERS,
    MOVIE_RANGE,
    PADDED_LENGTH,
    RESPONSE_RANGE,
    VARIABLES,
    Neurons,
    Recording,
    Trial,
    check_values,
    valid_length,
)

UNIT_IDS = Path("meta", "neurons", "unit_ids.npy")
COORDINATES = Path("meta", "neurons", "cell_motor_coordinates.npy")
TIERS = Path("meta", "trials", "tiers.npy")
REQUIRED_DATA = ("videos", "behavior", "pupil_center")


def data_file(variable: str, index: int) -> Path:
    """Relative path of one trial's array: ``data/<variable>/<index>.npy``."""
    return Path("data", variable, f"{index}.npy")


def statistics_file(variable: str, statistic: str) -> Path:
    """Relative path of one statistic: ``meta/statistics/<variable>/all/<statistic>.npy``."""
    return Path("meta", "statistics", variable, "all", f"{statistic}.npy")


def _read_header(path: Path) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) from a numeric .npy header without reading the data."""
    shape, dtype, _ = npy_header(path, RecordingError, "fiu")
    return shape, dtype


def _open_numeric(path: Path) -> np.ndarray:
    """Memory-map a numeric .npy file (no data read yet); RecordingError if unreadable."""
    return load_npy(path, "fiu", RecordingError, mmap=True)


def _load_small(path: Path, kinds: str = "fiu") -> np.ndarray:
    """Load a small metadata array fully; RecordingError naming ``path`` if absent or bad."""
    try:
        os.stat(path)
    except FileNotFoundError as err:
        raise RecordingError(
            f"{path}: missing file (is this a Sensorium 2023 mouse folder?)"
        ) from err
    except OSError:
        pass  # unreadable: load_npy says so
    return load_npy(path, kinds, RecordingError)


def _load_neurons(folder: Path) -> Neurons:
    """Neurons from unit_ids (N,) integer and cell_motor_coordinates (N, 3) numeric."""
    ids = _load_small(folder / UNIT_IDS)
    xyz = _load_small(folder / COORDINATES)
    if ids.ndim != 1 or ids.dtype.kind not in "iu":
        raise RecordingError(
            f"{folder / UNIT_IDS}: expected (N,) integer ids, got {ids.dtype.str} {ids.shape}"
        )
    if xyz.shape != (ids.shape[0], 3) or xyz.dtype.kind not in "fiu":
        raise RecordingError(
            f"{folder / COORDINATES}: expected ({ids.shape[0]}, 3) numeric coordinates to "
            f"match {UNIT_IDS.as_posix()}, got {xyz.dtype.str} {xyz.shape}"
        )
    try:
        return Neurons(ids.astype(np.int64), xyz.astype(np.float32))
    except RecordingError as err:
        raise RecordingError(f"{folder / UNIT_IDS}: {err}") from err


def _load_tiers(folder: Path) -> np.ndarray:
    """(n_trials,) unicode tiers, each in KNOWN_TIERS, read-only."""
    path = folder / TIERS
    tiers = _load_small(path, kinds="US")
    if tiers.ndim != 1 or tiers.dtype.kind not in "US":
        raise RecordingError(f"{path}: expected (n_trials,) strings, got {tiers.dtype.str}")
    tiers = tiers.astype(str)
    if tiers.size == 0:
        raise RecordingError(f"{path}: lists no trials")
    unknown = sorted(set(tiers.tolist()) - set(KNOWN_TIERS))
    if unknown:
        raise RecordingError(f"{path}: unknown tiers {unknown} (known: {list(KNOWN_TIERS)})")
    tiers.flags.writeable = False
    return tiers


class SensoriumRecording(Recording):
    """A Sensorium 2023 mouse folder, read lazily one trial at a time.

    Opening checks the layout cheaply (metadata files, data folders, one video file
    per trial, the header of ``data/videos/0.npy``) but reads no data array.
    ``trial(i)`` memory-maps the trial's four files, validates them and returns float32
    copies cut to the valid length: movie (T,H,W), responses (N,T) or None, behavior
    and pupil_center (2,T). Every problem raises a RecordingError naming the file.
    """

    def __init__(self, folder: str | os.PathLike) -> None:
        self._folder = Path(folder)
        if not self._folder.is_dir():
            raise RecordingError(f"{self._folder}: not a folder")
        self._neurons = _load_neurons(self._folder)
        self._tiers = _load_tiers(self._folder)
        for variable in REQUIRED_DATA:
            if not (self._folder / "data" / variable).is_dir():
                raise RecordingError(f"{self._folder / 'data' / variable}: missing folder")
        missing = [
            str(data_file("videos", i))
            for i in range(len(self._tiers))
            if not os.path.isfile(self._folder / data_file("videos", i))
        ]
        if missing:
            raise RecordingError(
                f"{self._folder}: {TIERS.as_posix()} lists {len(self._tiers)} trials but "
                f"{len(missing)} video files are missing: {', '.join(missing[:5])}"
                + (" ..." if len(missing) > 5 else "")
            )
        first = self._folder / data_file("videos", 0)
        shape, _ = _read_header(first)
        if len(shape) != 3:
            raise RecordingError(f"{first}: video must be 3-D (H, W, T), got shape {shape}")
        self._frame_shape = (int(shape[0]), int(shape[1]))
        self._padded_length = int(shape[2])
        self._statistics: dict[str, dict[str, np.ndarray]] | None = None

    @property
    def folder(self) -> Path:
        """The mouse folder."""
        return self._folder

    @property
    def padded_length(self) -> int:
        """Frames per file including NaN padding, from ``data/videos/0.npy`` (often 300)."""
        return self._padded_length

    @property
    def name(self) -> str:
        return self._folder.name

    @property
    def neurons(self) -> Neurons:
        return self._neurons

    @property
    def tiers(self) -> np.ndarray:
        return self._tiers

    @property
    def frame_shape(self) -> tuple[int, int]:
        return self._frame_shape

    def _open_video(self, index: int) -> tuple[Path, np.ndarray]:
        path = self._folder / data_file("videos", index)
        video = _open_numeric(path)
        if video.ndim != 3:
            raise RecordingError(f"{path}: video must be 3-D (H, W, T), got shape {video.shape}")
        if video.shape[:2] != self._frame_shape:
            raise RecordingError(
                f"{path}: frame shape {video.shape[:2]} differs from {self._frame_shape} "
                f"in {data_file('videos', 0).as_posix()}"
            )
        return path, video

    def _open_responses(self, index: int) -> np.ndarray | None:
        path = self._folder / data_file("responses", index)
        if not path.is_file():
            tier = str(self._tiers[index])
            if tier in TIERS_WITH_RESPONSES:
                raise RecordingError(f"{path}: missing (trials of tier {tier!r} need responses)")
            return None
        responses = _open_numeric(path)
        if responses.ndim != 2:
            raise RecordingError(f"{path}: expected shape (N, T), got {responses.shape}")
        if responses.shape[0] != len(self._neurons):
            raise RecordingError(
                f"{path}: has {responses.shape[0]} neurons but {UNIT_IDS.as_posix()} lists "
                f"{len(self._neurons)}"
            )
        return responses

    def _open_trace(self, variable: str, index: int) -> np.ndarray:
        path = self._folder / data_file(variable, index)
        if not path.is_file():
            raise RecordingError(f"{path}: missing file")
        trace = _open_numeric(path)
        if trace.ndim != 2 or trace.shape[0] != 2:
            raise RecordingError(f"{path}: expected shape (2, T), got {trace.shape}")
        return trace

    def trial(self, index: int) -> Trial:
        index = self.check_index(index)
        video_path, video = self._open_video(index)
        responses = self._open_responses(index)
        behavior = self._open_trace("behavior", index)
        pupil_center = self._open_trace("pupil_center", index)
        lengths = {"videos": video.shape[2], "behavior": behavior.shape[1]}
        lengths["pupil_center"] = pupil_center.shape[1]
        if responses is not None:
            lengths["responses"] = responses.shape[1]
        if len(set(lengths.values())) > 1:
            raise RecordingError(
                f"{self._folder / 'data'}: trial {index} padded lengths disagree: "
                + ", ".join(f"{data_file(v, index).as_posix()} T={t}" for v, t in lengths.items())
            )
        length = valid_length(video, time_axis=-1)
        if length == 0:
            raise RecordingError(f"{video_path}: contains no valid frames (all NaN)")
        if not np.isnan(video[:, :, length:]).all():
            raise RecordingError(
                f"{video_path} (trial {index}): frame {length} holds NaN but later frames do "
                "not (NaN may only pad the end of a trial)"
            )
        movie = np.array(video[:, :, :length].transpose(2, 0, 1), dtype=np.float32, order="C")
        if responses is not None:
            responses = np.array(responses[:, :length], dtype=np.float32)
        behavior = np.array(behavior[:, :length], dtype=np.float32)
        pupil_center = np.array(pupil_center[:, :length], dtype=np.float32)
        for variable, values in (
            ("videos", movie),
            ("responses", responses),
            ("behavior", behavior),
            ("pupil_center", pupil_center),
        ):
            if values is not None:
                check_values(
                    f"{self._folder / data_file(variable, index)} (trial {index})",
                    values,
                    {"responses": RESPONSE_RANGE, "videos": MOVIE_RANGE}.get(
                        variable, BEHAVIOR_RANGE
                    ),
                )
        return Trial(
            index=index,
            tier=str(self._tiers[index]),
            movie=movie,
            responses=responses,
            behavior=behavior,
            pupil_center=pupil_center,
        )

    def statistics(self) -> dict[str, dict[str, np.ndarray]]:
        """Loaded on first call from ``meta/statistics``; float32, copied for the caller."""
        if self._statistics is None:
            self._statistics = {var: {} for var in VARIABLES}
            for var in VARIABLES:
                for stat in STATISTICS:
                    path = self._folder / statistics_file(var, stat)
                    value = _load_small(path)
                    if value.dtype.kind not in "fiu":
                        raise RecordingError(f"{path}: non-numeric dtype {value.dtype.str}")
                    self._statistics[var][stat] = value.astype(np.float32)
        return {var: {s: v.copy() for s, v in d.items()} for var, d in self._statistics.items()}


def _padded(array: np.ndarray, pad_to: int) -> np.ndarray:
    """(..., T) -> (..., pad_to) float32, NaN after the first T frames."""
    out = np.full((*array.shape[:-1], pad_to), np.nan, dtype=np.float32)
    out[..., : array.shape[-1]] = array
    return out


def _check_writable_trial(recording: Recording, trial: Trial, pad_to: int) -> None:
    """Refuse a trial the Sensorium layout cannot represent faithfully."""
    where = f"{recording.name}: trial {trial.index}"
    if trial.length > pad_to:
        raise RecordingError(f"{where} has {trial.length} frames, more than pad_to={pad_to}")
    if trial.length == 0 or np.isnan(trial.movie).any():
        raise RecordingError(f"{where} movie is empty or holds NaN (NaN marks padding on disk)")
    if trial.movie.shape[1:] != tuple(recording.frame_shape):
        raise RecordingError(
            f"{where} frame shape {trial.movie.shape[1:]} differs from {recording.frame_shape}"
        )
    if trial.responses is not None and trial.responses.shape[0] != len(recording.neurons):
        raise RecordingError(
            f"{where} responses have {trial.responses.shape[0]} rows for "
            f"{len(recording.neurons)} neurons"
        )


def _write_trial(folder: Path, number: int, trial: Trial, pad_to: int) -> None:
    """Save one trial as ``data/<var>/<number>.npy``, NaN-padded float32."""
    np.save(folder / data_file("videos", number), _padded(trial.movie.transpose(1, 2, 0), pad_to))
    if trial.responses is not None:
        np.save(folder / data_file("responses", number), _padded(trial.responses, pad_to))
    np.save(folder / data_file("behavior", number), _padded(trial.behavior, pad_to))
    np.save(folder / data_file("pupil_center", number), _padded(trial.pupil_center, pad_to))


def write_sensorium(
    recording: Recording,
    out_dir: str | os.PathLike,
    *,
    trials: Sequence[int] | None = None,
    pad_to: int = PADDED_LENGTH,
    overwrite: bool = False,
    extra: Callable[[Path], None] | None = None,
    on_trial: Callable[[Path, int, Trial], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Write ``recording`` (or the trials listed in ``trials``) in the Sensorium 2023 layout.

    Arrays are float32, NaN-padded to ``pad_to`` frames: videos (H,W,pad_to), responses
    (N,pad_to) (no file for trials without responses), behavior and pupil_center
    (2,pad_to). A subset is renumbered 0..k-1 in the given order. Statistics cover the
    written trials' valid frames (see StatisticsAccumulator). Everything is written in a
    staged sibling folder that becomes ``out_dir`` only on success, so a failure leaves
    nothing behind. ``on_trial(tmp_dir, number, trial)`` may add files per written trial
    and ``extra(tmp_dir)`` after all of them, before the commit; ``progress(done, total)``
    is called after each trial. Loads one trial at a time. Returns ``out_dir`` as a Path.
    """
    indices = list(range(len(recording))) if trials is None else list(trials)
    indices = [recording.check_index(i) for i in indices]
    if not indices:
        raise RecordingError(f"{recording.name}: no trials to write")
    if int(pad_to) < 1:
        raise RecordingError(f"pad_to must be a positive number of frames, got {pad_to}")
    pad_to = int(pad_to)
    neurons = recording.neurons
    tiers = np.array([str(recording.tiers[i]) for i in indices])
    accumulator = StatisticsAccumulator(len(neurons))
    with staged_directory(out_dir, overwrite=overwrite) as tmp:
        for variable in VARIABLES:
            (tmp / "data" / variable).mkdir(parents=True)
        for number, index in enumerate(indices):
            trial = recording.trial(index)
            _check_writable_trial(recording, trial, pad_to)
            _write_trial(tmp, number, trial, pad_to)
            if on_trial is not None:
                on_trial(tmp, number, trial)
            accumulator.add(trial)
            if progress is not None:
                progress(number + 1, len(indices))
        (tmp / UNIT_IDS).parent.mkdir(parents=True)
        np.save(tmp / UNIT_IDS, np.asarray(neurons.ids, dtype=np.int64))
        np.save(tmp / COORDINATES, np.asarray(neurons.xyz, dtype=np.float32))
        (tmp / TIERS).parent.mkdir(parents=True)
        np.save(tmp / TIERS, tiers)
        for var, values in accumulator.result().items():
            (tmp / statistics_file(var, "min")).parent.mkdir(parents=True)
            for stat, value in values.items():
                np.save(tmp / statistics_file(var, stat), value)
        if extra is not None:
            extra(tmp)
    return Path(out_dir)
