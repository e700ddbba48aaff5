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

Several seeds (``n_seeds``: seeds ``seed`` .. ``seed + n_seeds - 1``) give each probe a
mean and a sample sd: the noise movie and the Poisson sample of every probe are drawn
from (seed, probe index), so a seed's run is the same whatever other seeds run with it.
Grating movies do not depend on the seed, so several seeds need Poisson responses.
The half-fall scale is read off the mean curve.

With an ``oracle`` (the in-silico mouse's ground truth, ``encoders.oracle``) every
probe is also reconstructed with the oracle as both the response generator and the
encoder, same config, neurons, masks and seeds: the upper bound of the encoder's
curve (the record's ``oracle`` entry, rows and half-fall scales as the encoder's).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

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
POISSON_STREAM = 1  # keeps a probe's Poisson draws apart from its noise movie's
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
    of the other axis, movie length, whether responses are Poisson samples, the first
    seed and how many seeds each probe is run with."""

    kind: str = "noise"
    spatial: tuple[float, ...] = DEFAULT_SCALES["noise"][0]
    temporal: tuple[float, ...] = DEFAULT_SCALES["noise"][1]
    fixed_spatial: float = DEFAULT_SCALES["noise"][2]
    fixed_temporal: float = DEFAULT_SCALES["noise"][3]
    n_frames: int = 150
    poisson: bool = False
    seed: int = 0
    n_seeds: int = 1

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise MovieReconError(f"unknown probe kind {self.kind!r}; choose from {KINDS}")
        scales = (*self.spatial, *self.temporal, self.fixed_spatial, self.fixed_temporal)
        if not self.spatial or not self.temporal or min(scales) <= 0:
            raise MovieReconError("probe scales must be positive, at least one per axis")
        if self.n_frames < 2:
            raise MovieReconError("probe movies need at least 2 frames")
        if self.n_seeds < 1:
            raise MovieReconError("probes need at least one seed")
        if self.kind == "gratings" and self.n_seeds > 1 and not self.poisson:
            raise MovieReconError(
                "grating movies do not depend on the seed: several seeds differ only "
                "with Poisson-sampled responses (--poisson)"
            )

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

    def seeds(self) -> list[int]:
        """The seeds every probe is run with."""
        return list(range(self.seed, self.seed + self.n_seeds))

    def movie(
        self, index: int, frame_shape: tuple[int, int], seed: int | None = None
    ) -> np.ndarray:
        """Probe movie ``index`` (of ``probes()``) for ``seed`` (default: ``self.seed``),
        the same for the same kind, scales, length, index and seed."""
        _, spatial, temporal = self.probes()[index]
        if self.kind == "gratings":
            return grating_movie(self.n_frames, frame_shape, spatial, temporal)
        seed = self.seed if seed is None else seed
        rng = np.random.default_rng(np.random.SeedSequence((seed, index)))
        return noise_movie(rng, self.n_frames, frame_shape, spatial, temporal)

    def poisson_rng(self, index: int, seed: int) -> np.random.Generator:
        """The generator of probe ``index``'s Poisson sample for ``seed``."""
        return np.random.default_rng(np.random.SeedSequence((seed, index, POISSON_STREAM)))


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
    oracle: Encoder | None = None,
) -> dict:
    """Reconstruct every probe movie of ``spec`` with every seed; the record
    (JSON-serialisable) with one row per probe (mean and sd over the seeds) and the mean
    curves' half-fall scales, and with ``oracle`` the same for the in-silico ground truth
    (``record["oracle"]``, else None). ``neurons``: indices into the encoder's neurons
    used for the loss; ``behavior`` (4, >= n_frames) shown with every probe."""
    behavior = np.asarray(behavior, np.float32)[:, : spec.n_frames]
    if behavior.shape != (4, spec.n_frames):
        raise MovieReconError(f"behaviour must cover {spec.n_frames} frames, got {behavior.shape}")
    encoders = [encoder] if oracle is None else [encoder, oracle]
    if oracle is not None and (
        not np.array_equal(oracle.unit_ids, encoder.unit_ids)
        or tuple(oracle.frame_shape) != tuple(encoder.frame_shape)
    ):
        raise MovieReconError(
            "the oracle's neurons or screen differ from the encoder's: the oracle must be the "
            "in-silico mouse the encoder's neurons come from"
        )
    total = len(spec.probes()) * spec.n_seeds * len(encoders)
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    sweeps = [
        _sweep(model, spec, config, neurons, behavior, (update_mask, eval_mask), tick)
        for model in encoders
    ]
    record = {
        "spec": asdict(spec),
        "units": _units(spec.kind),
        "config": config.to_json(),
        "n_neurons": len(neurons),
        "rows": sweeps[0],
        "half_fall_scale": _half_fall_scales(sweeps[0]),
        "oracle": None,
    }
    if oracle is not None:
        record["oracle"] = {
            "encoder": getattr(oracle, "source", type(oracle).__name__),
            "rows": sweeps[1],
            "half_fall_scale": _half_fall_scales(sweeps[1]),
        }
    return record


def _sweep(encoder, spec, config, neurons, behavior, masks, tick) -> list[dict]:
    """One row per probe of ``spec``: ``encoder`` makes the responses and reconstructs,
    once per seed."""
    update_mask, eval_mask = masks
    frame_shape = tuple(encoder.frame_shape)
    rows = []
    for index, (axis, spatial, temporal) in enumerate(spec.probes()):
        runs = []
        for seed in spec.seeds():
            movie = spec.movie(index, frame_shape, seed)
            with torch.no_grad():
                rates = encoder(torch.from_numpy(movie)[None], torch.from_numpy(behavior)[None])
            responses = rates[0].numpy()
            if spec.poisson:
                responses = spec.poisson_rng(index, seed).poisson(responses).astype(np.float32)
            run = reconstruct(
                encoder, responses, neurons, behavior, config, movie, update_mask, eval_mask
            )
            (last,) = deque(run, maxlen=1)
            full_frame = metrics.pixel_correlation(last.movie, movie, None, last.skip_frames)
            runs.append((last.pixel_correlation, full_frame, last.iteration, last.elapsed_s))
            tick()
        masked, full_frame, iterations, seconds = (list(v) for v in zip(*runs, strict=True))
        rows.append(
            {
                "axis": axis,
                "spatial": spatial,
                "temporal": temporal,
                "correlation": float(np.mean(masked)),
                "full_frame_correlation": float(np.mean(full_frame)),
                "iterations": int(max(iterations)),
                "seconds": float(np.mean(seconds)),
                "seeds": spec.seeds(),
                "correlation_sd": _sd(masked),
                "full_frame_correlation_sd": _sd(full_frame),
                "correlations": masked,
                "full_frame_correlations": full_frame,
            }
        )
    return rows


def _sd(values: list[float]) -> float:
    """Sample standard deviation; 0 for one value."""
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def _half_fall_scales(rows: list[dict]) -> dict[str, float | None]:
    half = {}
    for axis in ("spatial", "temporal"):
        swept = [r for r in rows if r["axis"] == axis]
        half[axis] = half_fall_scale([r[axis] for r in swept], [r["correlation"] for r in swept])
    return half


def _units(kind: str) -> dict:
    if kind == "noise":
        return {"spatial": "Gaussian sigma (px)", "temporal": "Gaussian sigma (frames)"}
    return {"spatial": "period (px)", "temporal": "period (frames)"}


def _mean_sd(row: dict, name: str) -> str:
    """``row[name]``, with its sd over seeds when it has one from several seeds (records
    written before seeds were kept have neither)."""
    text = f"{row[name]:.3f}"
    if len(row.get("seeds", ())) > 1:
        text += f" +- {row[name + '_sd']:.3f}"
    return text


def half_fall_text(half: dict, units: dict | None = None) -> str:
    """The half-fall scales ``half`` ({axis: scale or None}) in words, each with its
    unit when ``units`` are given."""
    return ", ".join(
        f"{axis} {'not reached' if v is None else f'{v:.2f}'}"
        + ("" if units is None else f" ({units[axis]})")
        for axis, v in half.items()
    )


def sweep_curve(
    rows: list[dict], axis: str, field: str = "correlation"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``axis`` sweep of ``rows`` sorted by scale: (scales, ``field`` values, their sd
    over seeds: zeros for records without one)."""
    swept = sorted((r for r in rows if r["axis"] == axis), key=lambda r: r[axis])
    scales = np.array([r[axis] for r in swept], float)
    values = np.array([r.get(field, np.nan) for r in swept], float)
    return scales, values, np.array([r.get(f"{field}_sd", 0.0) for r in swept], float)


def probe_table(record: dict, frame_rate: float = 30.0) -> str:
    """The record as a Markdown table (with grating frequencies where they apply; mean
    +- sd over seeds when several ran; the oracle's columns when it ran). Reads records
    written before seeds and the oracle existed too."""
    units = record["units"]
    gratings = record["spec"]["kind"] == "gratings"
    oracle = record.get("oracle")
    header = (
        f"| axis swept | spatial: {units['spatial']} | temporal: {units['temporal']} | "
        "correlation (mask) | correlation (full frame) |"
    )
    if oracle is not None:
        header += " in-silico oracle (mask) | in-silico oracle (full frame) |"
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    oracle_rows = [None] * len(record["rows"]) if oracle is None else oracle["rows"]
    for r, o in zip(record["rows"], oracle_rows, strict=True):
        spatial, temporal = f"{r['spatial']:g}", f"{r['temporal']:g}"
        if gratings:
            spatial += f" ({1 / r['spatial']:.3f} cycles/px)"
            temporal += f" ({frame_rate / r['temporal']:.2f} Hz)"
        line = (
            f"| {r['axis']} | {spatial} | {temporal} | {_mean_sd(r, 'correlation')} | "
            f"{_mean_sd(r, 'full_frame_correlation')} |"
        )
        if o is not None:
            line += f" {_mean_sd(o, 'correlation')} | {_mean_sd(o, 'full_frame_correlation')} |"
        lines.append(line)
    seeds = record["spec"].get("n_seeds", 1)
    lines += [
        "",
        f"Mean +- sd over {seeds} seeds per probe." if seeds > 1 else "One seed per probe.",
        "",
        "Half-fall scale (correlation falls to half its maximum): "
        + half_fall_text(record["half_fall_scale"], units),
    ]
    if oracle is not None:
        lines.append(
            "Half-fall scale of the in-silico oracle (upper bound): "
            + half_fall_text(oracle["half_fall_scale"], units)
        )
    return "\n".join(lines)


def plot_probes(record: dict, path) -> None:
    """Correlation against scale (mean +- sd over seeds), one panel per axis, the in-silico
    oracle's curve dashed when it ran, half-fall scales marked (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    oracle = record.get("oracle")
    curves = [(f"encoder {Path(str(record.get('encoder', ''))).name}", record, "o-", "C0")]
    if oracle is not None:
        curves.append(("in-silico oracle (upper bound)", oracle, "s--", "C1"))
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2), dpi=120)
    for ax, axis in zip(axes, ("spatial", "temporal"), strict=True):
        for label, curve, style, color in curves:
            scales, values, sd = sweep_curve(curve["rows"], axis)
            ax.errorbar(
                scales,
                values,
                yerr=sd,
                fmt=style,
                color=color,
                capsize=3,
                label=label,
            )
            half = curve["half_fall_scale"][axis]
            if half is not None:
                ax.axvline(half, color=color, ls=":", lw=1, label=f"half-fall {half:.2f}")
        if oracle is not None or any(c["half_fall_scale"][axis] for _, c, _, _ in curves):
            ax.legend(fontsize=7)
        ax.set_xscale("log", base=2)
        ax.set_xlabel(record["units"][axis])
        ax.set_ylabel("pixel correlation")
        ax.set_ylim(min(0, ax.get_ylim()[0]), 1)
    seeds = record["spec"].get("n_seeds", 1)
    fig.suptitle(
        f"{record['spec']['kind']} probes, {record['n_neurons']} neurons, preset "
        f"{record['config']['preset']}" + (f", mean +- sd over {seeds} seeds" if seeds > 1 else ""),
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
