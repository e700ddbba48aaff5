"""Parameters of the in-silico V1 population, drawn from one seed.

Neurons sit on a ~1000 x 800 µm patch of cortex at 180-430 µm depth. A
retinotopic map (~20 µm of cortex per degree, plus per-neuron scatter) places
each receptive field (RF) on the screen, so the population covers only part of
the 124 x 93 deg monitor, as real recordings do. Each neuron has a Gabor RF
(even and odd phase in space), a preferred spatial frequency in the mouse
range (~0.015-0.12 cycles/deg), a preferred temporal frequency (~0.7-4 Hz), a
rectifying output and gains on running speed and pupil size.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np

from napari_movierecon.errors import SimulationError


@dataclass(frozen=True)
class PopulationSpec:
    """Distributions the population is drawn from (all angles in degrees, lengths in µm)."""

    n_neurons: int = 8000
    cortex_extent_um: tuple[float, float] = (1000.0, 800.0)
    depth_range_um: tuple[float, float] = (180.0, 430.0)
    n_planes: int = 10
    magnification_um_per_deg: float = 20.0
    map_centre_deg: tuple[float, float] = (8.0, 4.0)  # azimuth, elevation of the patch centre
    rf_scatter_deg: float = 4.0
    rf_sigma_median_deg: float = 6.0
    sf_range_cpd: tuple[float, float] = (0.015, 0.12)
    tf_range_hz: tuple[float, float] = (0.7, 4.0)
    complex_fraction: float = 0.55
    direction_selective_fraction: float = 0.4
    run_gain_mean: float = 0.25
    pupil_gain_mean: float = 0.1
    kernel_frames: int = 18

    def __post_init__(self) -> None:
        if self.n_neurons < 1:
            raise SimulationError(f"n_neurons must be >= 1, got {self.n_neurons}")
        if self.kernel_frames < 2:
            raise SimulationError(f"kernel_frames must be >= 2, got {self.kernel_frames}")
        if not 0 <= self.complex_fraction <= 1:
            raise SimulationError("complex_fraction must lie in [0, 1]")

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> PopulationSpec:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise SimulationError(f"unknown population parameters: {sorted(unknown)}")
        converted = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**converted)


# Per-neuron arrays, all shape (N,) unless noted; units in the names.
POPULATION_FIELDS = (
    "unit_ids",  # int64
    "xyz_um",  # (N, 3) cortical x, y, depth
    "azimuth_deg",
    "elevation_deg",
    "sigma_deg",
    "aspect",  # envelope elongation along the bars (0.7-1)
    "orientation_rad",
    "phase_rad",
    "sf_cpd",
    "tf_hz",
    "latency_frames",  # temporal envelope time constant
    "is_complex",  # 0/1
    "direction_sign",  # -1..1, 0 = not direction selective
    "threshold",  # in units of the neuron's drive s.d.
    "rate_scale",  # responses per frame at 1 s.d. above threshold
    "run_gain",  # log-gain per unit of normalised running speed
    "pupil_gain",  # log-gain per unit of normalised pupil size
    "noise_dispersion",  # relative per-neuron Fano factor (x the global level)
)


def draw_population(spec: PopulationSpec, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Draw every per-neuron parameter of ``spec`` from ``rng`` (float32 except unit_ids)."""
    n = spec.n_neurons
    width, height = spec.cortex_extent_um
    x = rng.uniform(0, width, n)
    y = rng.uniform(0, height, n)
    planes = np.linspace(*spec.depth_range_um, spec.n_planes)
    z = planes[rng.integers(0, spec.n_planes, n)]
    mag = spec.magnification_um_per_deg
    azimuth = spec.map_centre_deg[0] + (x - width / 2) / mag + rng.normal(0, spec.rf_scatter_deg, n)
    elevation = (
        spec.map_centre_deg[1] + (y - height / 2) / mag + rng.normal(0, spec.rf_scatter_deg, n)
    )
    log_sf = rng.uniform(*np.log(spec.sf_range_cpd), n)
    log_tf = rng.uniform(*np.log(spec.tf_range_hz), n)
    direction_selective = rng.random(n) < spec.direction_selective_fraction
    params = {
        "unit_ids": np.arange(1, n + 1, dtype=np.int64) * 7 + 10000,
        "xyz_um": np.stack([x, y, z], axis=1),
        "azimuth_deg": azimuth,
        "elevation_deg": elevation,
        "sigma_deg": np.clip(spec.rf_sigma_median_deg * rng.lognormal(0, 0.25, n), 3.0, 12.0),
        "aspect": rng.uniform(0.7, 1.0, n),
        "orientation_rad": rng.uniform(0, np.pi, n),
        "phase_rad": rng.uniform(0, 2 * np.pi, n),
        "sf_cpd": np.exp(log_sf),
        "tf_hz": np.exp(log_tf),
        "latency_frames": rng.uniform(1.5, 3.0, n),
        "is_complex": (rng.random(n) < spec.complex_fraction).astype(np.float64),
        "direction_sign": direction_selective * rng.choice([-1.0, 1.0], n) * rng.uniform(0.5, 1, n),
        "threshold": rng.normal(0.8, 0.4, n),
        "rate_scale": rng.lognormal(0, 0.4, n),
        "run_gain": rng.normal(spec.run_gain_mean, 0.15, n),
        "pupil_gain": rng.normal(spec.pupil_gain_mean, 0.1, n),
        "noise_dispersion": rng.lognormal(0, 0.5, n),
    }
    return {
        k: (v if k == "unit_ids" else np.asarray(v, dtype=np.float32)) for k, v in params.items()
    }


def check_population(params: dict[str, np.ndarray]) -> int:
    """Validate a parameter dict (e.g. read back from disk); return N."""
    missing = [k for k in POPULATION_FIELDS if k not in params]
    if missing:
        raise SimulationError(f"population parameters lack {missing}")
    n = len(params["unit_ids"])
    for key in POPULATION_FIELDS:
        expected = (n, 3) if key == "xyz_um" else (n,)
        if tuple(params[key].shape) != expected:
            raise SimulationError(
                f"population parameter {key} has shape {params[key].shape}, expected {expected}"
            )
    return n
