"""The in-silico mouse: population + stimuli + behaviour + noise, all from one seed.

``InSilicoMouse.build(spec)`` draws the population, standardises every
neuron's drive on training-tier stimuli and calibrates the noise level on
training-tier stimuli. Trials are computed on demand from (seed, trial index),
so hundreds of training clips need no disk space; ``SimulatedRecording``
exposes them through the ordinary Recording interface.

Random streams: every quantity draws from its own ``SeedSequence((seed, stream,
key))``, so a trial's stimulus, behaviour and noise never depend on which other
trials were computed first.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import cached_property

import numpy as np
import torch

from napari_movierecon.errors import SimulationError
from napari_movierecon.insilico import stimuli
from napari_movierecon.insilico.behavior import generate_behavior
from napari_movierecon.insilico.images import image_checksums, image_pool
from napari_movierecon.insilico.model import InSilicoV1
from napari_movierecon.insilico.noise import calibrate_noise_level, noisy_responses
from napari_movierecon.insilico.population import PopulationSpec, draw_population
from napari_movierecon.recording import Neurons, Trial

# Stream ids of SeedSequence((seed, stream, key)).
(
    _POPULATION,
    _CALIBRATION,
    _STIMULUS,
    _BEHAVIOR,
    _NOISE,
    _ORDER,
    _KINDS,
    _USER_BEHAVIOR,
    _USER_NOISE,
) = range(9)
# Rates are rounded to this step before noise is drawn, so that last-bit
# floating-point differences between BLAS builds do not change the samples.
RATE_DECIMALS = 4


@dataclass(frozen=True)
class TierLayout:
    """How many trials each tier holds. Oracle clips are each shown ``oracle_repeats`` times."""

    train: int = 400
    oracle_clips: int = 6
    oracle_repeats: int = 10
    final_test_main: int = 10
    final_test_bonus: int = 6

    def __post_init__(self) -> None:
        counts = asdict(self)
        if any(v < 0 for v in counts.values()):
            raise SimulationError(f"tier counts must be >= 0, got {counts}")
        if self.train < 1:
            raise SimulationError("the train tier needs at least one trial")


@dataclass(frozen=True)
class MouseSpec:
    """Everything that defines an in-silico mouse. Same spec -> identical arrays."""

    seed: int = 2025
    population: PopulationSpec = field(default_factory=PopulationSpec)
    tiers: TierLayout = field(default_factory=TierLayout)
    n_frames: int = 300
    noise_target_correlation: float = 0.4
    calibration_clips: int = 8

    def __post_init__(self) -> None:
        if self.n_frames < self.population.kernel_frames:
            raise SimulationError(
                f"n_frames ({self.n_frames}) must be >= kernel_frames "
                f"({self.population.kernel_frames})"
            )
        if not 0 < self.noise_target_correlation < 1:
            raise SimulationError("noise_target_correlation must lie in (0, 1)")
        if self.calibration_clips < 1:
            raise SimulationError("calibration_clips must be >= 1")

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> MouseSpec:
        data = dict(data)
        try:
            population = PopulationSpec.from_json(data.pop("population"))
            tiers = TierLayout(**data.pop("tiers"))
            return cls(population=population, tiers=tiers, **data)
        except (KeyError, TypeError) as exc:
            raise SimulationError(f"invalid mouse spec: {exc}") from exc


@dataclass(frozen=True)
class TrialPlan:
    """What trial ``index`` shows: its tier, the clip key (shared by repeats) and stimulus kind."""

    index: int
    tier: str
    clip_key: int
    kind: str
    pool: str


def _rng(seed: int, stream: int, key: int = 0) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence((seed, stream, key)))


def plan_trials(spec: MouseSpec) -> list[TrialPlan]:
    """Assign tiers, clips and stimulus kinds to trial indices (interleaved, like Sensorium)."""
    layout = spec.tiers
    entries: list[tuple[str, int, str, str]] = []
    kind_rng = _rng(spec.seed, _KINDS)
    for clip in range(layout.train):
        entries.append(("train", clip, stimuli.sample_stimulus_kind(kind_rng), "train"))
    offset = layout.train
    for clip in range(layout.oracle_clips):
        entries += [("oracle", offset + clip, "natural", "train")] * layout.oracle_repeats
    offset += layout.oracle_clips
    for clip in range(layout.final_test_main):
        entries.append(("final_test_main", offset + clip, "natural", "test"))
    offset += layout.final_test_main
    bonus_kinds = [k for k in stimuli.STIMULUS_KINDS if k != "natural"]
    for clip in range(layout.final_test_bonus):
        entries.append(
            ("final_test_bonus", offset + clip, bonus_kinds[clip % len(bonus_kinds)], "test")
        )
    order = _rng(spec.seed, _ORDER).permutation(len(entries))
    return [TrialPlan(i, *entries[j]) for i, j in enumerate(order)]


class InSilicoMouse:
    """A simulated mouse: parameters, calibration, and per-trial simulation."""

    def __init__(
        self,
        spec: MouseSpec,
        params: dict[str, np.ndarray],
        drive_mean: np.ndarray,
        drive_std: np.ndarray,
        noise_level: float,
        model: InSilicoV1 | None = None,
    ) -> None:
        self.spec = spec
        self.params = params
        self.drive_mean = drive_mean.astype(np.float32)
        self.drive_std = drive_std.astype(np.float32)
        self.noise_level = float(noise_level)
        self.plan = plan_trials(spec)
        if model is None:
            model = InSilicoV1(
                params,
                self.drive_mean,
                self.drive_std,
                kernel_frames=spec.population.kernel_frames,
            )
        self.model = model.eval()

    @classmethod
    def build(cls, spec: MouseSpec | None = None) -> InSilicoMouse:
        """Draw the population and calibrate drive statistics and noise on training stimuli."""
        spec = spec or MouseSpec()
        params = draw_population(spec.population, _rng(spec.seed, _POPULATION))
        model = InSilicoV1(params, kernel_frames=spec.population.kernel_frames)
        rng = _rng(spec.seed, _CALIBRATION)
        movies, behaviors = [], []
        for _ in range(spec.calibration_clips):
            kind = stimuli.sample_stimulus_kind(rng)
            movies.append(stimuli.make_stimulus(rng, kind, spec.n_frames, pool="train")[0])
            behaviors.append(generate_behavior(rng, spec.n_frames)[0])
        skip = model.context_frames
        with torch.no_grad():
            drives = [model.raw_drive(torch.from_numpy(m)[None]) for m in movies]
            pooled = torch.cat([d[0, :, skip:] for d in drives], dim=1).double()
            drive_mean = pooled.mean(dim=1).numpy()
            drive_std = pooled.std(dim=1).clamp_min(1e-6).numpy()
            model.drive_mean.copy_(torch.from_numpy(drive_mean))
            model.drive_std.copy_(torch.from_numpy(drive_std))
            clips = [
                _round_rates(model.rates_from_drive(d, torch.from_numpy(b)[None])[0])
                for d, b in zip(drives, behaviors, strict=True)
            ]
        subset = rng.choice(
            spec.population.n_neurons, min(1000, spec.population.n_neurons), replace=False
        )
        level = calibrate_noise_level(
            [c[subset, skip:] for c in clips],
            params["noise_dispersion"][subset],
            spec.noise_target_correlation,
            seed=spec.seed,
        )
        return cls(spec, params, drive_mean, drive_std, level, model=model)

    @cached_property
    def neurons(self) -> Neurons:
        return Neurons(ids=self.params["unit_ids"], xyz=self.params["xyz_um"])

    @property
    def n_trials(self) -> int:
        return len(self.plan)

    def stimulus(self, index: int) -> tuple[np.ndarray, dict]:
        """Movie (T, H, W) float32 0..255 shown on trial ``index``, and its description."""
        plan = self.plan[index]
        rng = _rng(self.spec.seed, _STIMULUS, plan.clip_key)
        return stimuli.make_stimulus(rng, plan.kind, self.spec.n_frames, pool=plan.pool)

    def behavior(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Behaviour (2, T) and pupil centre (2, T) of trial ``index``."""
        return generate_behavior(_rng(self.spec.seed, _BEHAVIOR, index), self.spec.n_frames)

    def rates(self, movie: np.ndarray, behavior: np.ndarray) -> np.ndarray:
        """Noise-free rates (N, T) float32 for a movie (T, H, W) and behaviour (2, T)."""
        with torch.no_grad():
            rates = self.model(torch.from_numpy(movie)[None], torch.from_numpy(behavior)[None])
        return _round_rates(rates[0])

    def respond(self, rates: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One noisy single-trial response (N, T) to noise-free ``rates``."""
        return noisy_responses(rates, self.params["noise_dispersion"], self.noise_level, rng)

    def trial(self, index: int) -> Trial:
        """Simulate trial ``index``; ``extras`` holds the noise-free ``rates`` and the stimulus."""
        plan = self.plan[index]
        movie, description = self.stimulus(index)
        behavior, pupil_center = self.behavior(index)
        noise = _rng(self.spec.seed, _NOISE, index)
        return self._simulate(
            index,
            plan.tier,
            movie,
            behavior,
            pupil_center,
            noise,
            {
                "stimulus": description,
                "clip_key": plan.clip_key,
            },
        )

    def present(self, movie: np.ndarray, key: int, tier: str = "final_test_main") -> Trial:
        """Show a user's movie (T, H, W) float32 0..255 to this mouse as trial number ``key``.

        Behaviour and noise come from streams of their own, keyed by ``key``, so
        presenting the same movie with the same key gives identical responses.
        """
        rng = _rng(self.spec.seed, _USER_BEHAVIOR, key)
        behavior, pupil_center = generate_behavior(rng, movie.shape[0])
        noise = _rng(self.spec.seed, _USER_NOISE, key)
        return self._simulate(key, tier, movie, behavior, pupil_center, noise, {})

    def _simulate(
        self,
        index: int,
        tier: str,
        movie: np.ndarray,
        behavior: np.ndarray,
        pupil_center: np.ndarray,
        noise: np.random.Generator,
        extras: dict,
    ) -> Trial:
        rates = self.rates(movie, behavior)
        return Trial(
            index=index,
            tier=tier,
            movie=movie,
            responses=self.respond(rates, noise),
            behavior=behavior,
            pupil_center=pupil_center,
            extras={"rates": rates, **extras},
        )

    def describe(self) -> dict:
        """JSON-serialisable identity: the spec and calibration results."""
        return {
            "spec": self.spec.to_json(),
            "noise_level": self.noise_level,
            "image_checksums": image_checksums(image_pool("train") + image_pool("test")),
        }


def _round_rates(rates: torch.Tensor) -> np.ndarray:
    return np.round(rates.double().numpy(), RATE_DECIMALS).astype(np.float32)
