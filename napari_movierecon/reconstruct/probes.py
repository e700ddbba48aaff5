"""Resolution probes: how fine a movie an encoder and a population let us reconstruct.

As in the reference (Bauer et al. 2025), the probes are synthetic movies the mouse never
saw, so their "recorded" activity is the encoder's own prediction (optionally Poisson
sampled, seeded): the result measures what the encoder and the optimisation can recover,
an upper bound for real activity.

- ``noise``: Gaussian white noise smoothed by a Gaussian of standard deviation
  ``sigma_px`` in space and ``sigma_frames`` in time (periodic boundaries), scaled to
  ``NOISE_STD`` gray levels around mid-gray. The scale is that sigma: the movie's
  autocorrelation along an axis is exp(-d^2 / (4 sigma^2)).
- ``gratings``: full-screen sine gratings of a spatial period (px; oblique, 30 degrees)
  drifting with a temporal period (frames), contrast ``GRATING_CONTRAST``.

Each sweep varies the spatial scale at the kind's fixed temporal scale, and the temporal
scale at its fixed spatial scale. Every probe movie is reconstructed with the chosen
config and population and scored by pixel correlation (mask optional, the encoder's
context frames skipped). The half-fall scale is where the correlation, going from its
maximum towards finer scales, first falls to half that maximum (linear interpolation
in log scale); None when it never does within the sweep.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
from scipy.ndimage import gaussian_filter

from napari_movierecon.encoders.base import Encoder
from napari_movierecon.encoders.ensemble import members_of
from napari_movierecon.errors import MovieReconError
from napari_movierecon.reconstruct import metrics
from napari_movierecon.reconstruct.config import ReconstructionConfig
from napari_movierecon.reconstruct.engine import reconstruct
from napari_movierecon.recording import GRAY_LEVEL

KINDS = ("noise", "gratings")
NOISE_STD = 40.0  # gray levels; clipping at 0/255 is > 3 sd away
GRATING_CONTRAST = 0.8
GRATING_DIRECTION_DEG = 30.0
# (spatial scales, temporal scales, fixed spatial, fixed temporal) per kind:
# noise: sigma in px and frames; gratings: period in px and frames (30 Hz: 15 frames = 2 Hz)
DEFAULT_SCALES = {
    "noise": ((0.5, 1.0, 2.0, 4.0, 8.0), (0.5, 1.0, 2.0, 4.0, 8.0), 2.0, 2.0),
    "gratings": ((4.0, 8.0, 16.0, 32.0, 64.0), (4.0, 8.0, 15.0, 30.0, 60.0), 16.0, 15.0),
}


def noise_movie(
    rng: np.random.Generator,
    n_frames: int,
    frame_shape: tuple[int, int],
    sigma_px: float,
    sigma_frames: float,
) -> np.ndarray:
    """(T, H, W) float32 0..255: smoothed Gaussian noise (see the module docstring)."""
    white = rng.standard_normal((n_frames, *frame_shape))
    smooth = gaussian_filter(white, (sigma_frames, sigma_px, sigma_px), mode="wrap")
    smooth /= smooth.std()
    return np.clip(GRAY_LEVEL + NOISE_STD * smooth, 0, 255).astype(np.float32)


def grating_movie(
    n_frames: int, frame_shape: tuple[int, int], period_px: float, period_frames: float
) -> np.ndarray:
    """(T, H, W) float32 0..255: a sine grating of ``period_px`` drifting one period every
    ``period_frames`` frames, at ``GRATING_DIRECTION_DEG``."""
    angle = math.radians(GRATING_DIRECTION_DEG)
    y, x = np.mgrid[: frame_shape[0], : frame_shape[1]]
    position = x * math.cos(angle) + y * math.sin(angle)  # px along the drift
    t = np.arange(n_frames)[:, None, None]
    phase = 2 * np.pi * (position[None] / period_px - t / period_frames)
    return (GRAY_LEVEL * (1 + GRATING_CONTRAST * np.sin(phase))).astype(np.float32)


@dataclass(frozen=True)
class ProbeSpec:
    """A probe sweep: ``kind``, the spatial and temporal scales to sweep, the fixed scale
    of the other axis, movie length, whether responses are Poisson samples, seed."""

    kind: str = "noise"
    spatial: tuple[float, ...] = DEFAULT_SCALES["noise"][0]
    temporal: tuple[float, ...] = DEFAULT_SCALES["noise"][1]
    fixed_spatial: float = DEFAULT_SCALES["noise"][2]
    fixed_temporal: float = DEFAULT_SCALES["noise"][3]
    n_frames: int = 150
    poisson: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise MovieReconError(f"unknown probe kind {self.kind!r}; choose from {KINDS}")
        scales = (*self.spatial, *self.temporal, self.fixed_spatial, self.fixed_temporal)
        if not self.spatial or not self.temporal or min(scales) <= 0:
            raise MovieReconError("probe scales must be positive, at least one per axis")
        if self.n_frames < 2:
            raise MovieReconError("probe movies need at least 2 frames")

    @classmethod
    def for_kind(cls, kind: str, **changes) -> ProbeSpec:
        """The kind's default scales, with ``changes``."""
        if kind not in KINDS:
            raise MovieReconError(f"unknown probe kind {kind!r}; choose from {KINDS}")
        spatial, temporal, fixed_spatial, fixed_temporal = DEFAULT_SCALES[kind]
        defaults = dict(spatial=spatial, temporal=temporal, fixed_spatial=fixed_spatial)
        return cls(kind=kind, fixed_temporal=fixed_temporal, **(defaults | changes))

    def probes(self) -> list[tuple[str, float, float]]:
        """(axis swept, spatial scale, temporal scale) of every probe movie."""
        return [("spatial", s, self.fixed_temporal) for s in self.spatial] + [
            ("temporal", self.fixed_spatial, t) for t in self.temporal
        ]

    def movie(self, index: int, frame_shape: tuple[int, int]) -> np.ndarray:
        """Probe movie ``index`` (of ``probes()``), the same for the same spec."""
        _, spatial, temporal = self.probes()[index]
        if self.kind == "gratings":
            return grating_movie(self.n_frames, frame_shape, spatial, temporal)
        rng = np.random.default_rng(np.random.SeedSequence((self.seed, index)))
        return noise_movie(rng, self.n_frames, frame_shape, spatial, temporal)


def half_fall_scale(scales: Sequence[float], correlations: Sequence[float]) -> float | None:
    """See the module docstring; larger scales are coarser."""
    order = np.argsort(scales)
    s, c = np.asarray(scales, float)[order], np.asarray(correlations, float)[order]
    peak = int(np.nanargmax(c))
    half = c[peak] / 2
    for k in range(peak, 0, -1):
        if c[k - 1] <= half:
            fraction = (c[k] - half) / (c[k] - c[k - 1])
            return float(np.exp(np.log(s[k]) + fraction * (np.log(s[k - 1]) - np.log(s[k]))))
    return None


def behavior_for(encoder: Encoder, n_frames: int) -> np.ndarray:
    """(4, T): the encoder's training-mean behaviour held constant, when it carries it
    (FastEncoder); otherwise a recording must give behaviour."""
    member = members_of(encoder)[0]
    mean = getattr(member, "behavior_mean", None)
    if mean is None:
        raise MovieReconError(
            f"{type(member).__name__} does not carry its training behaviour; give a recording"
        )
    return np.repeat(mean.detach().cpu().numpy()[:, None], n_frames, axis=1).astype(np.float32)


def run_probes(
    encoder: Encoder,
    spec: ProbeSpec,
    config: ReconstructionConfig,
    neurons: np.ndarray,
    behavior: np.ndarray,
    eval_mask: np.ndarray | None = None,
    update_mask: np.ndarray | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Reconstruct every probe movie of ``spec``; the record (JSON-serialisable) with one
    row per probe and the curves' half-fall scales. ``neurons``: indices into the
    encoder's neurons used for the loss; ``behavior`` (4, >= n_frames) shown with every
    probe."""
    behavior = np.asarray(behavior, np.float32)[:, : spec.n_frames]
    if behavior.shape != (4, spec.n_frames):
        raise MovieReconError(f"behaviour must cover {spec.n_frames} frames, got {behavior.shape}")
    frame_shape = tuple(encoder.frame_shape)
    rng = np.random.default_rng(spec.seed)
    rows = []
    probes = spec.probes()
    for index, (axis, spatial, temporal) in enumerate(probes):
        movie = spec.movie(index, frame_shape)
        with torch.no_grad():
            rates = encoder(torch.from_numpy(movie)[None], torch.from_numpy(behavior)[None])[0]
        responses = rates.numpy()
        if spec.poisson:
            responses = rng.poisson(responses).astype(np.float32)
        run = reconstruct(
            encoder, responses, neurons, behavior, config, movie, update_mask, eval_mask
        )
        (last,) = deque(run, maxlen=1)
        skip = last.skip_frames
        rows.append(
            {
                "axis": axis,
                "spatial": spatial,
                "temporal": temporal,
                "correlation": last.pixel_correlation,
                "full_frame_correlation": metrics.pixel_correlation(last.movie, movie, None, skip),
                "iterations": last.iteration,
                "seconds": last.elapsed_s,
            }
        )
        if progress is not None:
            progress(index + 1, len(probes))
    half = {}
    for axis in ("spatial", "temporal"):
        swept = [r for r in rows if r["axis"] == axis]
        half[axis] = half_fall_scale([r[axis] for r in swept], [r["correlation"] for r in swept])
    return {
        "spec": asdict(spec),
        "units": _units(spec.kind),
        "config": config.to_json(),
        "n_neurons": len(neurons),
        "rows": rows,
        "half_fall_scale": half,
    }


def _units(kind: str) -> dict:
    if kind == "noise":
        return {"spatial": "Gaussian sigma (px)", "temporal": "Gaussian sigma (frames)"}
    return {"spatial": "period (px)", "temporal": "period (frames)"}


def probe_table(record: dict, frame_rate: float = 30.0) -> str:
    """The record as a Markdown table (with grating frequencies where they apply)."""
    units = record["units"]
    gratings = record["spec"]["kind"] == "gratings"
    lines = [
        f"| axis swept | spatial: {units['spatial']} | temporal: {units['temporal']} | "
        "correlation (mask) | correlation (full frame) |",
        "|---|---|---|---|---|",
    ]
    for r in record["rows"]:
        spatial, temporal = f"{r['spatial']:g}", f"{r['temporal']:g}"
        if gratings:
            spatial += f" ({1 / r['spatial']:.3f} cycles/px)"
            temporal += f" ({frame_rate / r['temporal']:.2f} Hz)"
        lines.append(
            f"| {r['axis']} | {spatial} | {temporal} | {r['correlation']:.3f} | "
            f"{r['full_frame_correlation']:.3f} |"
        )
    half = record["half_fall_scale"]
    lines += [
        "",
        "Half-fall scale (correlation falls to half its maximum): "
        + ", ".join(
            f"{axis} {'not reached' if v is None else f'{v:.2f}'} ({units[axis]})"
            for axis, v in half.items()
        ),
    ]
    return "\n".join(lines)


def plot_probes(record: dict, path) -> None:
    """Correlation against scale, one panel per axis, half-fall scales marked (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2), dpi=120)
    for ax, axis in zip(axes, ("spatial", "temporal"), strict=True):
        rows = sorted((r for r in record["rows"] if r["axis"] == axis), key=lambda r: r[axis])
        ax.plot([r[axis] for r in rows], [r["correlation"] for r in rows], "o-")
        half = record["half_fall_scale"][axis]
        if half is not None:
            ax.axvline(half, color="gray", ls="--", lw=1, label=f"half-fall {half:.2f}")
            ax.legend(fontsize=8)
        ax.set_xscale("log", base=2)
        ax.set_xlabel(record["units"][axis])
        ax.set_ylabel("pixel correlation")
        ax.set_ylim(min(0, ax.get_ylim()[0]), 1)
    fig.suptitle(
        f"{record['spec']['kind']} probes, {record['n_neurons']} neurons, preset "
        f"{record['config']['preset']}",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
