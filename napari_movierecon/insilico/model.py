"""The in-silico V1 model: a differentiable torch module from movie + behaviour to rates.

Per neuron: even and odd Gabor filters in space, evaluated at every pixel's
visual angle, and a quadrature pair of biphasic temporal kernels. Combining
them gives a space-time oriented linear drive ``a`` and its quadrature partner
``b``; simple cells use ``a``, complex cells the energy ``sqrt(a^2 + b^2)``.
The drive is standardised per neuron (statistics measured on training
stimuli), rectified by a softplus around a threshold, and multiplied by a gain
that grows with running speed and pupil size.

Shapes: movie (B, T, H, W) in 0..255; behaviour (B, 2, T) as (pupil dilation,
running speed cm/s); rates (B, N, T) >= 0, expected responses per frame.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from napari_movierecon.insilico.population import check_population
from napari_movierecon.insilico.screen import Screen
from napari_movierecon.recording import GRAY_LEVEL
from napari_movierecon.vml_dispatch import resolve_vml_dispatch

resolve_vml_dispatch()  # before any multi-threaded torch op (see vml_dispatch)

FRAME_RATE_HZ = 30.0
RUN_SCALE_CM_S = 20.0
PUPIL_REFERENCE = 20.0
PUPIL_SCALE = 5.0
SOFTPLUS_SHARPNESS = 2.0


def spatial_filters(params: dict[str, np.ndarray], screen: Screen, chunk: int = 256) -> np.ndarray:
    """Even and odd Gabor filters of every neuron: (H*W, 2N) float32, columns [even..., odd...]."""
    n = len(params["unit_ids"])
    # Chunks of neurons keep the temporaries in cache (about 4x faster than one pass).
    parts = [
        _gabor_pair({k: v[start : start + chunk] for k, v in params.items()}, screen)
        for start in range(0, n, chunk)
    ]
    return np.concatenate([p[0] for p in parts] + [p[1] for p in parts], axis=1)


def _gabor_pair(params: dict[str, np.ndarray], screen: Screen) -> tuple[np.ndarray, np.ndarray]:
    """Even and odd Gabors (H*W, n) float32 each for a chunk of neurons."""
    elevation, azimuth = screen.visual_angles
    dx = azimuth.reshape(-1, 1) - params["azimuth_deg"].astype(np.float64)
    dy = elevation.reshape(-1, 1) - params["elevation_deg"].astype(np.float64)
    theta = params["orientation_rad"].astype(np.float64)
    u = dx * np.cos(theta) + dy * np.sin(theta)  # across the bars
    v = -dx * np.sin(theta) + dy * np.cos(theta)  # along the bars
    sigma = params["sigma_deg"].astype(np.float64)
    aspect = params["aspect"].astype(np.float64)
    envelope = np.exp(-(u**2 + (aspect * v) ** 2) / (2 * sigma**2))
    carrier = 2 * np.pi * params["sf_cpd"].astype(np.float64) * u + params["phase_rad"]
    # Pixels are ~3.4 deg apart: scale by pixel count inside 1 sigma so filters
    # of different size give comparable drive before per-neuron standardisation.
    norm = 1.0 / (2 * np.pi * sigma**2 / aspect / screen.degrees_per_pixel_at_centre**2)
    even = envelope * np.cos(carrier) * norm
    odd = envelope * np.sin(carrier) * norm
    return _flush_subnormals(even), _flush_subnormals(odd)


def _flush_subnormals(values: np.ndarray) -> np.ndarray:
    """``values`` as float32 with subnormal entries (|x| < 1.2e-38: far Gabor tails) set to
    0. They change no drive, but make the matrix products with them ~50x slower on CPUs
    that handle subnormals in microcode (12 s against 0.25 s for a 300-frame clip)."""
    out = values.astype(np.float32)
    out[np.abs(out) < np.finfo(np.float32).tiny] = 0.0
    return out


def temporal_kernels(params: dict[str, np.ndarray], n_frames: int) -> np.ndarray:
    """Quadrature pair of biphasic temporal kernels: (N, 2, L) float32, index [:, :, lag].

    A gamma-like envelope peaking at 2 x latency frames times a cosine/sine at
    the neuron's preferred temporal frequency; most of the mean is removed so
    responses are largely transient (biphasic), as in mouse V1.
    """
    lag = np.arange(n_frames, dtype=np.float64)[None, :]
    tau = params["latency_frames"].astype(np.float64)[:, None]
    envelope = (lag / tau) ** 2 * np.exp(-lag / tau)
    phase = (
        2 * np.pi * params["tf_hz"].astype(np.float64)[:, None] * (lag - 2 * tau) / FRAME_RATE_HZ
    )
    kernels = np.stack([envelope * np.cos(phase), envelope * np.sin(phase)], axis=1)
    kernels -= 0.8 * kernels.mean(axis=2, keepdims=True)
    kernels /= np.linalg.norm(kernels, axis=2, keepdims=True)
    return kernels.astype(np.float32)


class InSilicoV1(nn.Module):
    """Ground-truth V1 population; differentiable in the movie.

    ``context_frames`` leading frames of every clip lack a full temporal
    history (the kernels then see gray before the clip).
    """

    def __init__(
        self,
        params: dict[str, np.ndarray],
        drive_mean: np.ndarray | None = None,
        drive_std: np.ndarray | None = None,
        screen: Screen | None = None,
        kernel_frames: int = 18,
    ) -> None:
        super().__init__()
        screen = screen or Screen()
        n = check_population(params)
        self.n_neurons = n
        self.screen = screen
        self.context_frames = kernel_frames - 1
        self.unit_ids = np.asarray(params["unit_ids"], dtype=np.int64)

        def buffer(name: str, value: np.ndarray) -> None:
            self.register_buffer(name, torch.from_numpy(np.ascontiguousarray(value, np.float32)))

        buffer("spatial", spatial_filters(params, screen))
        kernels = temporal_kernels(params, kernel_frames)
        # conv1d correlates, so flip lags; rows: for E then O of each neuron, [k1, k2].
        weight = np.concatenate([kernels, kernels], axis=0)[:, :, ::-1].reshape(4 * n, 1, -1)
        buffer("temporal", weight)
        for key in (
            "is_complex",
            "direction_sign",
            "threshold",
            "rate_scale",
            "run_gain",
            "pupil_gain",
        ):
            buffer(key, params[key])
        buffer("drive_mean", np.zeros(n) if drive_mean is None else drive_mean)
        buffer("drive_std", np.ones(n) if drive_std is None else drive_std)

    def raw_drive(self, movie: torch.Tensor) -> torch.Tensor:
        """Unstandardised drive (B, N, T) of a movie (B, T, H, W) in 0..255."""
        b, t = movie.shape[:2]
        contrast = (movie.reshape(b, t, -1) - GRAY_LEVEL) / GRAY_LEVEL
        projected = (contrast @ self.spatial).transpose(1, 2)  # (B, 2N, T): even..., odd...
        padded = F.pad(projected, (self.temporal.shape[-1] - 1, 0))
        filtered = F.conv1d(padded, self.temporal, groups=projected.shape[1])
        filtered = filtered.reshape(b, 2, self.n_neurons, 2, t)
        ek1, ek2 = filtered[:, 0, :, 0], filtered[:, 0, :, 1]
        ok1, ok2 = filtered[:, 1, :, 0], filtered[:, 1, :, 1]
        ds = self.direction_sign[:, None]
        a = ek1 + ds * ok2
        quadrature = ok1 - ds * ek2
        energy = torch.sqrt(a**2 + quadrature**2 + 1e-6)
        complex_ = self.is_complex[:, None]
        return complex_ * energy + (1 - complex_) * a

    def behavior_gain(self, behavior: torch.Tensor) -> torch.Tensor:
        """Multiplicative gain (B, N, T) from behaviour (B, 2, T): pupil dilation, running cm/s."""
        pupil = (behavior[:, 0] - PUPIL_REFERENCE) / PUPIL_SCALE
        running = behavior[:, 1].abs() / RUN_SCALE_CM_S
        log_gain = self.run_gain[None, :, None] * torch.tanh(running)[:, None, :]
        log_gain = log_gain + self.pupil_gain[None, :, None] * torch.tanh(pupil)[:, None, :]
        return torch.exp(log_gain)

    def forward(self, movie: torch.Tensor, behavior: torch.Tensor) -> torch.Tensor:
        """Noise-free rates (B, N, T) >= 0."""
        return self.rates_from_drive(self.raw_drive(movie), behavior)

    def rates_from_drive(self, drive: torch.Tensor, behavior: torch.Tensor) -> torch.Tensor:
        """Rates (B, N, T) from an unstandardised drive (B, N, T) and behaviour (B, 2, T)."""
        z = (drive - self.drive_mean[:, None]) / self.drive_std[:, None]
        rectified = F.softplus(SOFTPLUS_SHARPNESS * (z - self.threshold[:, None]))
        rates = self.rate_scale[:, None] * rectified / SOFTPLUS_SHARPNESS
        return rates * self.behavior_gain(behavior)
