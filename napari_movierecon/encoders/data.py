"""Trials as encoder-ready tensors, loaded lazily and kept in a bounded in-memory cache.

Training touches every training trial once per epoch. Reading a Sensorium
folder is cheap (memory-mapped), simulating an in-silico trial is not (~0.6 s),
so trials are cached after first use as float16 (movies are integer gray levels,
exact in float16; responses keep ~3 significant digits) up to ``cache_bytes``;
beyond that they are re-read on demand.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from napari_movierecon.encoders.base import behavior_input
from napari_movierecon.errors import MovieReconError
from napari_movierecon.recording import Recording


@dataclass(frozen=True)
class ClipTensors:
    """One trial: movie (T, H, W), behaviour (4, T), responses (N, T), all float32 tensors."""

    index: int
    movie: torch.Tensor
    behavior: torch.Tensor
    responses: torch.Tensor


class TrialCache:
    """Lazy, cached access to a recording's trials as ClipTensors."""

    def __init__(self, recording: Recording, cache_bytes: int = 6 * 2**30) -> None:
        self.recording = recording
        self.cache_bytes = cache_bytes
        self._store: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._used = 0

    def get(self, index: int) -> ClipTensors:
        """Trial ``index`` as float32 tensors; raises if it has no responses."""
        if index in self._store:
            movie, behavior, responses = self._store[index]
        else:
            trial = self.recording.trial(index)
            if trial.responses is None:
                raise MovieReconError(
                    f"{self.recording.name}: trial {index} ({trial.tier}) has no responses"
                )
            movie = trial.movie.astype(np.float16)
            behavior = behavior_input(trial)
            responses = trial.responses.astype(np.float16)
            size = movie.nbytes + behavior.nbytes + responses.nbytes
            if self._used + size <= self.cache_bytes:
                self._store[index] = (movie, behavior, responses)
                self._used += size
        return ClipTensors(
            index,
            torch.from_numpy(movie.astype(np.float32)),
            torch.from_numpy(behavior),
            torch.from_numpy(responses.astype(np.float32)),
        )


def stack_crops(
    clips: list[ClipTensors], start: np.ndarray, length: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Batch of equal-length crops: movie (B, L, H, W), behaviour (B, 4, L), responses (B, N, L)."""
    movies, behaviors, responses = [], [], []
    for clip, s in zip(clips, start, strict=True):
        movies.append(clip.movie[s : s + length])
        behaviors.append(clip.behavior[:, s : s + length])
        responses.append(clip.responses[:, s : s + length])
    return torch.stack(movies), torch.stack(behaviors), torch.stack(responses)
