"""How well an encoder predicts a tier's responses.

Single-trial correlation (Sensorium's measure): for each neuron, the Pearson
correlation between predicted rates and recorded responses over all frames of
the tier's trials concatenated, skipping each clip's first ``context_frames``
frames. With an in-silico recording, the noise-free rates are also known, which
gives two more numbers: the correlation of the prediction with the noise-free
rates, and the oracle's single-trial correlation (noise-free rates vs
responses): the ceiling that trial noise leaves any encoder.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from napari_movierecon.correlation import row_correlation
from napari_movierecon.encoders.base import Encoder, behavior_input
from napari_movierecon.errors import MovieReconError
from napari_movierecon.insilico.ground_truth import stored_rates
from napari_movierecon.io.sensorium import SensoriumRecording
from napari_movierecon.recording import Recording, Trial


@dataclass
class Evaluation:
    """Per-neuron correlations (N,) over ``trials`` of ``tier``; rate-based ones may be None."""

    tier: str
    trials: list[int]
    single_trial: np.ndarray
    to_noise_free: np.ndarray | None = None
    oracle_single_trial: np.ndarray | None = None

    def summary(self) -> dict:
        """Means over neurons (and the encoder/oracle ratio when the oracle is known)."""
        out = {
            "tier": self.tier,
            "trials": len(self.trials),
            "single_trial": float(self.single_trial.mean()),
        }
        if self.to_noise_free is not None:
            out["to_noise_free"] = float(self.to_noise_free.mean())
            out["oracle_single_trial"] = float(self.oracle_single_trial.mean())
            out["ratio_to_oracle"] = out["single_trial"] / out["oracle_single_trial"]
        return out


def noise_free_rates(recording: Recording, trial: Trial) -> np.ndarray | None:
    """The trial's noise-free rates (N, T) if the recording is in-silico, else None."""
    if "rates" in trial.extras:
        return np.asarray(trial.extras["rates"], dtype=np.float32)
    if isinstance(recording, SensoriumRecording):
        return stored_rates(recording.folder, trial.index, trial.length)
    return None


def evaluate_encoders(
    encoders: dict[str, Encoder],
    recording: Recording,
    tier: str,
    max_trials: int | None = None,
    device: str = "cpu",
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Evaluation]:
    """Score each named encoder on ``tier`` of ``recording`` (one pass over the trials).

    Frames skipped per clip: the largest ``context_frames`` among the encoders,
    so that all of them are scored on the same frames.
    """
    indices = recording.trials_in(tier)[:max_trials]
    if len(indices) == 0:
        raise MovieReconError(f"{recording.name}: no trials in tier {tier!r}")
    skip = max(encoder.context_frames for encoder in encoders.values())
    predicted: dict[str, list[np.ndarray]] = {name: [] for name in encoders}
    observed, truth = [], []
    with torch.no_grad():
        for done, index in enumerate(indices, start=1):
            trial = recording.trial(int(index))
            if trial.responses is None:
                raise MovieReconError(f"{recording.name}: tier {tier!r} has no responses")
            movie = torch.from_numpy(np.ascontiguousarray(trial.movie, np.float32))[None]
            behavior = torch.from_numpy(behavior_input(trial))[None]
            for name, encoder in encoders.items():
                rates = encoder(movie.to(device), behavior.to(device))[0, :, skip:]
                predicted[name].append(rates.cpu().numpy())
            observed.append(np.asarray(trial.responses[:, skip:], dtype=np.float32))
            truth.append(noise_free_rates(recording, trial))
            if progress is not None:
                progress(done, len(indices))
    observed = np.concatenate(observed, 1)
    rates = None
    if all(t is not None for t in truth):
        rates = np.concatenate([t[:, skip:] for t in truth], 1)
        oracle = row_correlation(rates, observed, constant=0.0)
    trials = [int(i) for i in indices]
    results = {}
    for name, parts in predicted.items():
        prediction = np.concatenate(parts, 1)
        result = Evaluation(tier, trials, row_correlation(prediction, observed, constant=0.0))
        if rates is not None:
            result.to_noise_free = row_correlation(prediction, rates, constant=0.0)
            result.oracle_single_trial = oracle
        results[name] = result
    return results
