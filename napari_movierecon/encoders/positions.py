"""Initial receptive-field positions for the readout, estimated from training data.

Learning a point readout's position by gradient descent only works near the
right place, so positions start from a cheap data-driven estimate:

1. correlate each neuron's response with the local stimulus energy
   (temporal change + local contrast, blurred, on the readout's grid, averaged
   over 2-8 frames before the response) -> a correlation map per neuron;
2. take the centroid of each map's peak region;
3. fit a linear retinotopic map from cortical (x, y) to those centroids on the
   neurons with clear peaks, and shrink weak neurons' estimates toward it.

Positions are returned in grid_sample's [-1, 1] convention, (N, 2) as (x, y).
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from napari_movierecon.encoders.data import TrialCache

LAGS = (2, 8)  # frames between a stimulus and the responses it drives (inclusive)


def stimulus_energy(movie: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Local energy (T, h*w) of a movie (T, H, W): |change over 2 frames| + |local contrast|."""
    x = movie[:, None] / 255.0
    change = (x - torch.cat([x[:1], x[:1], x[:-2]])).abs()
    blur = F.avg_pool2d(x, 5, stride=1, padding=2, count_include_pad=False)
    energy = change + (x - blur).abs()
    energy = F.avg_pool2d(energy, 3, stride=1, padding=1, count_include_pad=False)
    return F.adaptive_avg_pool2d(energy, grid).flatten(1)


def _lagged(energy: torch.Tensor) -> torch.Tensor:
    """Mean energy over the LAGS window before each frame, (T, P)."""
    low, high = LAGS
    padded = torch.cat([energy[:1].expand(high, -1), energy])
    window = [padded[high - lag : high - lag + energy.shape[0]] for lag in range(low, high + 1)]
    return torch.stack(window).mean(0)


def _zscore(x: torch.Tensor, dim: int) -> torch.Tensor:
    return (x - x.mean(dim, keepdim=True)) / x.std(dim, keepdim=True).clamp_min(1e-6)


def correlation_maps(cache: TrialCache, indices: np.ndarray, grid: tuple[int, int]) -> torch.Tensor:
    """Per-neuron correlation with lagged local energy, (N, h*w), averaged over trials."""
    total = None
    for index in indices:
        clip = cache.get(int(index))
        energy = _zscore(_lagged(stimulus_energy(clip.movie, grid)), 0)  # (T, P)
        responses = _zscore(clip.responses, 1)  # (N, T)
        part = responses @ energy / energy.shape[0]
        total = part if total is None else total + part
    return total / len(indices)


def peak_centroids(maps: torch.Tensor, grid: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Centroid (N, 2) in grid pixels (x, y) of each map's region above 70 % of its peak,
    and peak strength (N,) as the peak's z-score within the map."""
    h, w = grid
    ys, xs = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    m = maps.numpy()
    peak = m.max(axis=1, keepdims=True)
    weights = np.where(m >= 0.7 * peak, m, 0.0)
    weights /= weights.sum(axis=1, keepdims=True).clip(1e-12)
    centroid = np.stack([weights @ xs.ravel(), weights @ ys.ravel()], axis=1)
    strength = (peak[:, 0] - m.mean(axis=1)) / m.std(axis=1).clip(1e-12)
    return centroid, strength


def estimate_positions(
    cache: TrialCache,
    indices: np.ndarray,
    grid: tuple[int, int],
    cortical_xy: np.ndarray,
) -> np.ndarray:
    """Readout positions (N, 2) in [-1, 1] (x, y) from training trials ``indices``."""
    maps = correlation_maps(cache, indices, grid)
    centroid, strength = peak_centroids(maps, grid)
    clear = strength >= np.median(strength)
    design = np.column_stack([cortical_xy, np.ones(len(cortical_xy))])
    coef, *_ = np.linalg.lstsq(
        design[clear] * strength[clear, None], centroid[clear] * strength[clear, None], rcond=None
    )
    retinotopic = design @ coef
    high = np.percentile(strength, 90)
    trust = np.clip((strength - np.median(strength)) / max(high - np.median(strength), 1e-6), 0, 1)
    pixels = trust[:, None] * centroid + (1 - trust[:, None]) * retinotopic
    h, w = grid
    normalized = 2 * (pixels + 0.5) / np.array([w, h]) - 1
    return np.clip(normalized, -0.98, 0.98).astype(np.float32)
