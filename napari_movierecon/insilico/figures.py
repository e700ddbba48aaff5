"""Figures and measured facts of the sample mouse for ``docs/insilico.md``.

``make_figures(out)`` (CLI: ``movierecon figures``) draws example receptive
fields, the population's RF coverage of the screen, example stimulus frames and
the noise-calibration histogram on held-out clips, and writes the numbers it
measured to ``insilico_stats.json``. Needs matplotlib (a dev dependency).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from napari_movierecon.errors import MovieReconError
from napari_movierecon.insilico.model import spatial_filters
from napari_movierecon.insilico.noise import rate_response_correlation
from napari_movierecon.insilico.screen import Screen
from napari_movierecon.insilico.simulate import SimulatedRecording, sample_mouse
from napari_movierecon.insilico.stimuli import STIMULUS_KINDS, make_stimulus
from napari_movierecon.io.atomic import atomic_write

COVERAGE_SIGMAS = 2.0  # a pixel lies inside an RF if it is within 2 sigma of the centre
COVERAGE_MIN_FRACTION = 0.01  # ... and "covered" if >= 1 % of the population's RFs include it


def coverage_map(params: dict[str, np.ndarray], screen: Screen) -> np.ndarray:
    """Number of neurons whose RF (within 2 sigma) includes each pixel, (H, W) int."""
    elevation, azimuth = screen.visual_angles
    d_az = (azimuth.reshape(-1, 1) - params["azimuth_deg"]) / params["sigma_deg"]
    d_el = (elevation.reshape(-1, 1) - params["elevation_deg"]) / params["sigma_deg"]
    inside = np.hypot(d_az, d_el) < COVERAGE_SIGMAS
    return inside.sum(axis=1).reshape(screen.shape)


def coverage_extent(covered: np.ndarray, screen: Screen) -> dict[str, float]:
    """Azimuth and elevation extent (deg) of the covered pixels; their share of the screen."""
    elevation, azimuth = screen.visual_angles
    half = screen.degrees_per_pixel_at_centre / 2  # pixel edges, not centres (approximate)
    return {
        "azimuth_min_deg": float(azimuth[covered].min() - half),
        "azimuth_max_deg": float(azimuth[covered].max() + half),
        "elevation_min_deg": float(elevation[covered].min() - half),
        "elevation_max_deg": float(elevation[covered].max() + half),
        "covered_pixel_fraction": float(covered.mean()),
    }


def make_figures(out: Path) -> list[Path]:
    """Draw the four figures into ``out``; return the written paths (PNGs and the JSON)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise MovieReconError("figures need matplotlib: pip install matplotlib") from exc
    out.mkdir(parents=True, exist_ok=True)
    screen = Screen()
    elevation, azimuth = screen.visual_angles
    extent = (azimuth.min(), azimuth.max(), elevation.min(), elevation.max())
    started = time.perf_counter()
    mouse = sample_mouse()
    build_s = time.perf_counter() - started
    params = mouse.params
    written = []

    # 1. Example receptive fields (even-phase spatial filter).
    rng = np.random.default_rng(0)
    central = np.flatnonzero(
        (np.abs(params["azimuth_deg"] - 8) < 25) & (np.abs(params["elevation_deg"] - 4) < 20)
    )
    chosen = np.sort(rng.choice(central, 8, replace=False))
    filters = spatial_filters({k: v[chosen] for k, v in params.items()}, screen)[:, : len(chosen)]
    fig, axes = plt.subplots(2, 4, figsize=(12, 4.2), constrained_layout=True)
    for ax, column, neuron in zip(axes.flat, filters.T, chosen, strict=True):
        rf = column.reshape(screen.shape)
        lim = np.abs(rf).max()
        ax.imshow(rf, cmap="RdBu_r", vmin=-lim, vmax=lim, extent=extent, aspect="auto")
        kind = "complex" if params["is_complex"][neuron] else "simple"
        ax.set_title(
            f"#{params['unit_ids'][neuron]} {kind}, {params['sf_cpd'][neuron]:.3f} cpd, "
            f"{params['tf_hz'][neuron]:.1f} Hz",
            fontsize=8,
        )
        ax.set_xlabel("azimuth (deg)", fontsize=7)
        ax.set_ylabel("elevation (deg)", fontsize=7)
        ax.tick_params(labelsize=7)
    fig.suptitle("Example receptive fields (even-phase Gabor on the 36x64 screen)")
    written.append(_save(fig, out / "receptive_fields.png", plt))

    # 2. RF coverage of the screen.
    counts = coverage_map(params, screen)
    covered = counts >= COVERAGE_MIN_FRACTION * len(mouse.neurons)
    fig, (ax_map, ax_cortex) = plt.subplots(1, 2, figsize=(12, 4), constrained_layout=True)
    image = ax_map.imshow(counts, extent=extent, aspect="auto", cmap="magma")
    ax_map.contour(azimuth, elevation, covered.astype(float), levels=[0.5], colors="cyan")
    ax_map.set_title("neurons whose RF (2 sigma) covers each pixel; cyan: >= 1 % of population")
    ax_map.set_xlabel("azimuth (deg)")
    ax_map.set_ylabel("elevation (deg)")
    fig.colorbar(image, ax=ax_map, label="neurons")
    xyz = params["xyz_um"]
    dots = ax_cortex.scatter(xyz[:, 0], xyz[:, 1], c=params["azimuth_deg"], s=2, cmap="twilight")
    ax_cortex.set_title("retinotopy on the cortical sheet")
    ax_cortex.set_xlabel("cortical x (µm)")
    ax_cortex.set_ylabel("cortical y (µm)")
    fig.colorbar(dots, ax=ax_cortex, label="RF azimuth (deg)")
    written.append(_save(fig, out / "rf_coverage.png", plt))

    # 3. Example stimulus frames, one row per kind.
    fig, axes = plt.subplots(len(STIMULUS_KINDS), 4, figsize=(12, 7), constrained_layout=True)
    for row, kind in zip(axes, STIMULUS_KINDS, strict=True):
        movie, _ = make_stimulus(np.random.default_rng(1), kind, 300, pool="train")
        for ax, frame in zip(row, (0, 60, 150, 270), strict=True):
            ax.imshow(movie[frame], cmap="gray", vmin=0, vmax=255, extent=extent, aspect="auto")
            ax.set_title(f"{kind}, frame {frame}", fontsize=8)
            ax.axis("off")
    written.append(_save(fig, out / "stimuli.png", plt))

    # 4. Noise calibration on held-out clips.
    recording = SimulatedRecording(mouse)
    skip = mouse.model.context_frames
    test_trials = recording.trials_in("final_test_main")
    started = time.perf_counter()
    per_clip = []
    for index in test_trials:
        trial = recording.trial(int(index))
        per_clip.append(
            rate_response_correlation(trial.extras["rates"][:, skip:], trial.responses[:, skip:])
        )
    trials_per_s = len(test_trials) / (time.perf_counter() - started)
    correlations = np.concatenate(per_clip)
    per_neuron = np.nanmean(np.stack(per_clip), axis=0)
    fig, ax = plt.subplots(figsize=(6, 4), constrained_layout=True)
    ax.hist(correlations[np.isfinite(correlations)], bins=60, color="0.4")
    mean = float(np.nanmean(correlations))
    ax.axvline(mean, color="crimson", label=f"mean {mean:.3f}")
    ax.axvspan(0.3, 0.5, color="gold", alpha=0.2, label="target 0.3-0.5")
    ax.set_xlabel("corr(noise-free rate, single-trial response)")
    ax.set_ylabel("neuron x clip pairs")
    ax.set_title(
        f"noise calibration: {len(test_trials)} held-out clips, {len(mouse.neurons)} neurons"
    )
    ax.legend()
    written.append(_save(fig, out / "noise_calibration.png", plt))

    stats = {
        "neurons": len(mouse.neurons),
        "noise_level": mouse.noise_level,
        "noise_correlation_mean": mean,
        "noise_correlation_sd": float(np.nanstd(correlations)),
        "noise_correlation_per_neuron_quartiles": np.nanpercentile(
            per_neuron, [25, 50, 75]
        ).tolist(),
        "noise_correlation_undefined_pairs": int(np.isnan(correlations).sum()),
        "held_out_clips": len(test_trials),
        "coverage": coverage_extent(covered, screen),
        "degrees_per_pixel_at_centre": screen.degrees_per_pixel_at_centre,
        "build_seconds": build_s,
        "simulated_trials_per_second": trials_per_s,
    }
    stats_path = out / "insilico_stats.json"
    text = json.dumps(stats, indent=1).encode()
    atomic_write(stats_path, lambda handle: handle.write(text), overwrite=True)
    written.append(stats_path)
    return written


def _save(fig, path: Path, plt) -> Path:
    """The figure as a PNG at ``path``, replaced atomically (docs figures are regenerated)."""
    atomic_write(path, lambda handle: fig.savefig(handle, dpi=90, format="png"), overwrite=True)
    plt.close(fig)
    return path
