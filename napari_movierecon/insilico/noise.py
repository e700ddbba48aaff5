"""Trial-to-trial variability of the in-silico responses, and its calibration.

A single trial's response is a Gamma draw around the noise-free rate, scaled
by a slow gain shared by the whole population (so noise is correlated across
neurons, as in real two-photon data). Each neuron's Fano factor is a global
level times its own dispersion; the global level is calibrated on training
stimuli so that corr(noise-free rate, single-trial response) averages a target
value (real deconvolved two-photon data: roughly 0.3-0.5).
"""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter

from napari_movierecon.correlation import row_correlation

SHARED_GAIN_SD = 0.2
SHARED_GAIN_TAU_FRAMES = 15.0


def shared_gain(rng: np.random.Generator, n_frames: int) -> np.ndarray:
    """Log-normal population gain (T,) with mean ~1 and a ~0.5 s time constant."""
    a = np.exp(-1.0 / SHARED_GAIN_TAU_FRAMES)
    steps = rng.normal(0, SHARED_GAIN_SD * np.sqrt(1 - a**2), n_frames)
    steps[0] = rng.normal(0, SHARED_GAIN_SD)
    log_gain = lfilter([1.0], [1.0, -a], steps)
    return np.exp(log_gain - SHARED_GAIN_SD**2 / 2)


def noisy_responses(
    rates: np.ndarray, dispersion: np.ndarray, level: float, rng: np.random.Generator
) -> np.ndarray:
    """One trial's responses (N, T) float32 from noise-free rates (N, T).

    Mean = rate x shared gain; variance = level x dispersion_n x mean.
    """
    mean = rates.astype(np.float64) * shared_gain(rng, rates.shape[1])[None, :]
    fano = level * dispersion.astype(np.float64)[:, None]
    shape = np.maximum(mean / fano, 1e-12)
    return np.where(mean > 0, rng.gamma(shape, np.broadcast_to(fano, mean.shape)), 0.0).astype(
        np.float32
    )


def rate_response_correlation(rates: np.ndarray, responses: np.ndarray) -> np.ndarray:
    """Pearson correlation over time per neuron, (N,); NaN where either trace is constant."""
    return row_correlation(rates, responses)


def mean_correlation(
    clips: list[np.ndarray], dispersion: np.ndarray, level: float, seed: int
) -> float:
    """Mean over clips and neurons of corr(rate, response) at a given noise level."""
    rng = np.random.default_rng(seed)
    values = [
        rate_response_correlation(rates, noisy_responses(rates, dispersion, level, rng))
        for rates in clips
    ]
    return float(np.nanmean(np.concatenate(values)))


def calibrate_noise_level(
    clips: list[np.ndarray], dispersion: np.ndarray, target: float, seed: int
) -> float:
    """Global noise level giving mean corr(rate, response) == target on ``clips`` (rates (N,T)).

    Bisection in log(level): the correlation falls monotonically as noise grows.
    """
    low, high = np.log(1e-4), np.log(1e4)
    for _ in range(16):
        mid = 0.5 * (low + high)
        if mean_correlation(clips, dispersion, float(np.exp(mid)), seed) > target:
            low = mid
        else:
            high = mid
    return float(np.exp(0.5 * (low + high)))
