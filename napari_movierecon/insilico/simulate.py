"""Recordings backed by the in-silico mouse, and writing them as Sensorium folders.

``sample_mouse()`` is the product's embedded default: ``MouseSpec()`` (seed
2025), built once per process. ``SimulatedRecording`` computes its trials on
demand; ``PresentedMoviesRecording`` shows a user's own movies to the same
neurons. ``write_simulated`` writes either as a Sensorium-layout folder with
the ground truth under ``meta/insilico/``.
"""

from __future__ import annotations

import os
from abc import abstractmethod
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from napari_movierecon.insilico.ground_truth import GROUND_TRUTH_DIR, save_ground_truth
from napari_movierecon.insilico.mouse import InSilicoMouse, MouseSpec
from napari_movierecon.io.memory import StatisticsAccumulator
from napari_movierecon.io.sensorium import write_sensorium
from napari_movierecon.recording import PADDED_LENGTH, Neurons, Recording, Trial

STATISTICS_SAMPLE_TRIALS = 16


@lru_cache(maxsize=2)
def sample_mouse(spec: MouseSpec | None = None) -> InSilicoMouse:
    """The in-silico mouse for ``spec`` (default: the sample mouse), built once per process."""
    return InSilicoMouse.build(spec or MouseSpec())


class _MouseRecording(Recording):
    """Shared parts of the recordings computed by an InSilicoMouse (one-trial cache)."""

    def __init__(self, mouse: InSilicoMouse, name: str) -> None:
        self.mouse = mouse
        self._name = name
        self._cached: Trial | None = None
        self._statistics: dict | None = None

    @property
    def name(self) -> str:
        return self._name

    @property
    def neurons(self) -> Neurons:
        return self.mouse.neurons

    def trial(self, index: int) -> Trial:
        index = self.check_index(index)
        if self._cached is None or self._cached.index != index:
            self._cached = self._compute(index)
        return self._cached

    @abstractmethod
    def _compute(self, index: int) -> Trial:
        """Simulate trial ``index``."""

    @property
    @abstractmethod
    def max_length(self) -> int:
        """Frames in the longest trial."""

    def statistics(self) -> dict[str, dict[str, np.ndarray]]:
        """Statistics over the first 16 trials of the first tier present (an estimate:
        the full set would mean simulating every trial); a written folder stores exact ones."""
        if self._statistics is None:
            train = self.trials_in("train")
            chosen = (train if train.size else np.arange(len(self)))[:STATISTICS_SAMPLE_TRIALS]
            accumulator = StatisticsAccumulator(len(self.neurons))
            for index in chosen:
                accumulator.add(self.trial(int(index)))
            self._statistics = accumulator.result()
        return self._statistics


class SimulatedRecording(_MouseRecording):
    """All trials of an in-silico mouse, simulated on demand. ``trial(i).extras['rates']``
    holds the noise-free rates (ground truth: for scoring and upper bounds only)."""

    def __init__(self, mouse: InSilicoMouse | None = None) -> None:
        mouse = mouse or sample_mouse()
        super().__init__(mouse, f"insilico-seed{mouse.spec.seed}")
        self._tiers = np.array([p.tier for p in mouse.plan])

    @property
    def tiers(self) -> np.ndarray:
        return self._tiers

    def _compute(self, index: int) -> Trial:
        return self.mouse.trial(index)

    @property
    def max_length(self) -> int:
        return self.mouse.spec.n_frames


class PresentedMoviesRecording(_MouseRecording):
    """A user's movies (each (T, 36, 64) float32 0..255) shown to an in-silico mouse.

    Every movie becomes one ``final_test_main`` trial; ``sources`` names where
    each came from (recorded in the ground truth).
    """

    def __init__(
        self,
        movies: Sequence[np.ndarray],
        sources: Sequence[str],
        mouse: InSilicoMouse | None = None,
    ) -> None:
        mouse = mouse or sample_mouse()
        super().__init__(mouse, f"insilico-seed{mouse.spec.seed}-user-movies")
        self.movies = list(movies)
        self.sources = list(sources)
        self._tiers = np.array(["final_test_main"] * len(self.movies))

    @property
    def tiers(self) -> np.ndarray:
        return self._tiers

    def _compute(self, index: int) -> Trial:
        trial = self.mouse.present(self.movies[index], key=index)
        trial.extras["stimulus"] = {"kind": "user", "source": self.sources[index]}
        return trial

    @property
    def max_length(self) -> int:
        return max(movie.shape[0] for movie in self.movies)


def write_simulated(
    recording: SimulatedRecording | PresentedMoviesRecording,
    out_dir: str | os.PathLike,
    *,
    trials: Sequence[int] | None = None,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Write ``recording`` (or ``trials`` of it) as a Sensorium folder plus ground truth.

    Ground truth: ``meta/insilico/`` (see ``ground_truth``), with the noise-free
    rates of every written trial in ``meta/insilico/rates/<trial>.npy``.
    """
    pad_to = max(PADDED_LENGTH, recording.max_length)
    records: list[dict] = []

    def save_rates(staging: Path, number: int, trial: Trial) -> None:
        rates_dir = staging / GROUND_TRUTH_DIR / "rates"
        rates_dir.mkdir(parents=True, exist_ok=True)
        padded = np.full((trial.extras["rates"].shape[0], pad_to), np.nan, np.float32)
        padded[:, : trial.length] = trial.extras["rates"]
        np.save(rates_dir / f"{number}.npy", padded)
        records.append(
            {
                "trial": number,
                "source_trial": trial.index,
                "tier": trial.tier,
                "clip": trial.extras.get("clip_key"),
                "stimulus": trial.extras["stimulus"],
            }
        )

    return write_sensorium(
        recording,
        out_dir,
        trials=trials,
        pad_to=pad_to,
        overwrite=overwrite,
        on_trial=save_rates,
        extra=lambda staging: save_ground_truth(recording.mouse, staging, records),
        progress=progress,
    )
