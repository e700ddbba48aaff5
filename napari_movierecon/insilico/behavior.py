"""Behaviour traces of the in-silico mouse: running bouts, pupil size, eye position.

All traces are sampled at 30 Hz. Running speed (cm/s) switches between
stationary and running bouts (a two-state Markov chain, smoothed); pupil
dilation follows running with a ~1 s lag plus slow arousal drift; the pupil
centre drifts slowly and jumps with occasional saccades.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.signal import lfilter

FRAME_RATE_HZ = 30.0


def _ornstein_uhlenbeck(
    rng: np.random.Generator, n: int, tau_frames: float, sd: float
) -> np.ndarray:
    """Stationary OU process of length n with time constant tau (frames) and s.d. sd."""
    a = np.exp(-1.0 / tau_frames)
    drive = rng.normal(0, sd * np.sqrt(1 - a**2), n)
    drive[0] = rng.normal(0, sd)
    return lfilter([1.0], [1.0, -a], drive)


def running_bouts(rng: np.random.Generator, n_frames: int) -> np.ndarray:
    """Running speed (T,) in cm/s, >= 0, with bouts of seconds."""
    propensity = rng.uniform(0.05, 0.6)  # fraction of time this trial's mouse wants to run
    mean_bout = rng.uniform(1.5, 5.0) * FRAME_RATE_HZ
    p_stop = 1.0 / mean_bout
    p_start = p_stop * propensity / (1 - propensity)
    state = np.empty(n_frames, dtype=bool)
    state[0] = rng.random() < propensity
    switches = rng.random(n_frames)
    for t in range(1, n_frames):
        flip = p_stop if state[t - 1] else p_start
        state[t] = state[t - 1] ^ (switches[t] < flip)
    cruise = rng.uniform(8.0, 30.0) + _ornstein_uhlenbeck(rng, n_frames, 20.0, 4.0)
    speed = np.where(state, np.clip(cruise, 2.0, None), 0.0)
    speed = gaussian_filter1d(speed, 4.0) + np.abs(rng.normal(0, 0.15, n_frames))
    return np.clip(speed, 0.0, None)


def pupil_dilation(rng: np.random.Generator, running: np.ndarray) -> np.ndarray:
    """Pupil dilation (T,) in eye-camera pixels, rising with running after ~1 s."""
    n = len(running)
    a = np.exp(-1.0 / FRAME_RATE_HZ)
    arousal = lfilter([1 - a], [1.0, -a], (running > 2.0).astype(np.float64))
    baseline = rng.uniform(14.0, 24.0)
    return baseline + 6.0 * arousal + _ornstein_uhlenbeck(rng, n, 60.0, 1.5)


def pupil_centre(rng: np.random.Generator, n_frames: int) -> np.ndarray:
    """Pupil centre (2, T) horizontal and vertical, eye-camera pixels; drift plus saccades."""
    centre = rng.uniform([140.0, 100.0], [180.0, 130.0])
    traces = []
    for axis_sd in (4.0, 2.0):
        drift = _ornstein_uhlenbeck(rng, n_frames, 90.0, axis_sd)
        saccade_times = rng.random(n_frames) < 0.4 / FRAME_RATE_HZ
        jumps = np.where(saccade_times, rng.normal(0, 1.5 * axis_sd, n_frames), 0.0)
        a = np.exp(-1.0 / (2.0 * FRAME_RATE_HZ))  # the eye recentres over ~2 s
        traces.append(drift + lfilter([1.0], [1.0, -a], jumps))
    return centre[:, None] + np.stack(traces)


def generate_behavior(rng: np.random.Generator, n_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Behaviour (2, T) [pupil dilation, running speed] and pupil centre (2, T), float32."""
    running = running_bouts(rng, n_frames)
    dilation = pupil_dilation(rng, running)
    behavior = np.stack([dilation, running]).astype(np.float32)
    return behavior, pupil_centre(rng, n_frames).astype(np.float32)
