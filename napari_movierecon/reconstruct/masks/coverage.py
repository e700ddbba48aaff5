"""The coverage mask: a fast proxy for where the neurons look, needing no recorded data.

The mean over a few random smooth-noise movies of |d(sum of the selected neurons'
predicted rates) / d(movie)|, averaged over frames and smoothed, scaled so that
``COVERAGE_LEVEL`` x its 99th percentile maps to 1 and clipped to [0, 1].
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import torch
from scipy.ndimage import gaussian_filter

from napari_movierecon.encoders.base import Encoder
from napari_movierecon.errors import MovieReconError
from napari_movierecon.reconstruct.masks import estimation
from napari_movierecon.reconstruct.masks.file import EVAL_THRESHOLD, UPDATE_THRESHOLD, Mask
from napari_movierecon.recording import GRAY_LEVEL, Recording

COVERAGE_MOVIES = 4
COVERAGE_FRAMES = 32
COVERAGE_CONTRAST = 40.0
NOISE_SIGMA = (1.0, 2.0, 2.0)
COVERAGE_SMOOTHING = 2.0
COVERAGE_LEVEL = 0.15


def _noise_movies(
    n_movies: int, frames: int, shape: tuple[int, int], rng: np.random.Generator
) -> np.ndarray:
    """(n, frames, H, W) float32 0..255: gray plus Gaussian noise smoothed by NOISE_SIGMA
    (t, y, x in frames/px), with sd COVERAGE_CONTRAST gray levels, clipped."""
    noise = rng.standard_normal((n_movies, frames, *shape))
    noise = gaussian_filter(noise, (0, *NOISE_SIGMA), mode="wrap")
    noise /= noise.std() or 1.0
    return np.clip(GRAY_LEVEL + COVERAGE_CONTRAST * noise, 0, 255).astype(np.float32)


def _typical_behavior(members: list[Encoder], behavior: np.ndarray | None) -> np.ndarray:
    """Behaviour input (4,): the given values, else the first member's training-set mean
    (``behavior_mean``, as FastEncoder stores it), else zeros."""
    if behavior is not None:
        behavior = np.asarray(behavior, dtype=np.float32).ravel()
        if behavior.shape != (4,) or not np.isfinite(behavior).all():
            raise MovieReconError(f"behaviour must be 4 finite values, got {behavior}")
        return behavior
    mean = getattr(members[0], "behavior_mean", None)
    if isinstance(mean, torch.Tensor) and mean.numel() == 4:
        return mean.detach().cpu().numpy().astype(np.float32)
    return np.zeros(4, dtype=np.float32)


def input_sensitivity(
    members: list[Encoder],
    neurons: np.ndarray,
    movies: np.ndarray,
    behavior: np.ndarray,
    device: str = "cpu",
    progress: estimation.Progress | None = None,
) -> np.ndarray:
    """Mean over members, movies and frames of |d(sum of the ``neurons``' rates after
    the context frames) / d(pixel)|: (H, W) float32 >= 0, in rate units per gray
    level. movies (B, T, H, W) 0..255; behavior (4,) held constant. One pass per member
    and movie, ``progress(done, members x movies)`` after each (it may raise to stop)."""
    torch_device = torch.device(device)
    beh = torch.from_numpy(behavior).to(torch_device)[None, :, None]
    beh = beh.expand(1, -1, movies.shape[1])
    selected = torch.from_numpy(neurons).to(torch_device)
    total = torch.zeros(movies.shape[2:], device=torch_device)
    steps = len(members) * len(movies)
    for m, member in enumerate(members):
        for k, movie in enumerate(movies):
            inputs = torch.from_numpy(movie).to(torch_device)[None].requires_grad_(True)
            rates = member(inputs, beh)[:, selected, member.context_frames :]
            (grad,) = torch.autograd.grad(rates.sum(), inputs)
            total += grad[0].abs().mean(dim=0)
            estimation.report(progress, m * len(movies) + k + 1, steps)
    return (total / steps).cpu().numpy().astype(np.float32)


def coverage_to_alpha(
    sensitivity: np.ndarray,
    smoothing: float = COVERAGE_SMOOTHING,
    level: float = COVERAGE_LEVEL,
) -> np.ndarray:
    """Alpha-like (H, W) float32 in [0, 1] from an input-sensitivity map: normalised to
    max 1, smoothed with a Gaussian of ``smoothing`` px, then rescaled
    (``estimation.rescale``): alpha >= 1 (evaluation mask) where the smoothed
    sensitivity reaches ``level`` x its 99th percentile, alpha >= 0.5 (update mask)
    where it reaches half that. A map of zeros gives zeros."""
    peak = float(sensitivity.max())
    if not peak > 0:
        return np.zeros(sensitivity.shape, dtype=np.float32)
    smooth = sensitivity / peak
    if smoothing > 0:
        smooth = gaussian_filter(smooth, smoothing, mode="nearest")
    return estimation.rescale(smooth, level)


def coverage_mask(
    encoder: Encoder | Sequence[Encoder],
    neurons: np.ndarray | Sequence[int] | None = None,
    *,
    recording: Recording | None = None,
    movies: int = COVERAGE_MOVIES,
    frames: int = COVERAGE_FRAMES,
    seed: int = 0,
    behavior: np.ndarray | None = None,
    smoothing: float = COVERAGE_SMOOTHING,
    level: float = COVERAGE_LEVEL,
    device: str = "cpu",
    update_threshold: float = UPDATE_THRESHOLD,
    eval_threshold: float = EVAL_THRESHOLD,
    progress: estimation.Progress | None = None,
) -> Mask:
    """The encoder's input-gradient coverage as an alpha map (see ``coverage_to_alpha``),
    from ``movies`` random smooth-noise movies of ``frames`` frames after the encoder's
    context. Needs no recorded data: ``recording`` (optional) is only checked against
    the encoder's neurons and named in the record. Every ensemble member contributes.
    ``behavior`` (4,) defaults to the encoder's training mean."""
    if movies < 1 or frames < 1 or smoothing < 0:
        raise MovieReconError(
            "invalid coverage mask settings: movies and frames must be >= 1, smoothing >= 0"
        )
    members, identity, neurons = estimation.checked_inputs(
        encoder, recording, neurons, level, update_threshold, eval_threshold
    )
    started = time.perf_counter()
    members = estimation.prepare(members, device)
    context = max(m.context_frames for m in members)
    rng = np.random.default_rng(seed)
    clips = _noise_movies(movies, context + frames, tuple(identity.frame_shape), rng)
    typical = _typical_behavior(members, behavior)
    sensitivity = input_sensitivity(members, neurons, clips, typical, device, progress)
    name = recording.name if recording is not None else None
    record = {
        **estimation.estimate_record(
            identity, name, neurons, seed, update_threshold, eval_threshold
        ),
        "iterations": 1,
        "parameters": {
            "movies": movies,
            "frames": frames,
            "context_frames": context,
            "noise_sigma_t_y_x": list(NOISE_SIGMA),
            "contrast": COVERAGE_CONTRAST,
            "behavior": typical.tolist(),
            "smoothing": smoothing,
            "level": level,
            "percentile": estimation.SCALE_PERCENTILE,
            "members": "all, averaged",
        },
        "timings": estimation.timings(started, device),
    }
    alpha = coverage_to_alpha(sensitivity, smoothing, level)
    return Mask(alpha=alpha, method="coverage", record=record)
