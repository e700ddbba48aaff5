"""The in-silico mouse: determinism, calibration, coverage, ground truth on disk."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from napari_movierecon.errors import SimulationError
from napari_movierecon.insilico.ground_truth import load_ground_truth
from napari_movierecon.insilico.mouse import InSilicoMouse, MouseSpec, TierLayout
from napari_movierecon.insilico.noise import rate_response_correlation
from napari_movierecon.insilico.population import PopulationSpec
from napari_movierecon.insilico.screen import Screen
from napari_movierecon.insilico.simulate import (
    PresentedMoviesRecording,
    SimulatedRecording,
    sample_mouse,
    write_simulated,
)
from napari_movierecon.io.sensorium import SensoriumRecording

SMALL = MouseSpec(
    seed=7,
    population=PopulationSpec(n_neurons=300),
    tiers=TierLayout(
        train=4, oracle_clips=1, oracle_repeats=2, final_test_main=2, final_test_bonus=1
    ),
    n_frames=60,
    calibration_clips=2,
)


@pytest.fixture(scope="module")
def small_mouse() -> InSilicoMouse:
    return InSilicoMouse.build(SMALL)


def test_screen_matches_sensorium_geometry():
    screen = Screen()
    assert screen.degrees_per_pixel_at_centre == pytest.approx(3.4, abs=0.1)
    elevation, azimuth = screen.visual_angles
    assert azimuth.min() > -62 and azimuth.max() < 62
    assert elevation.max() > 40 and elevation.min() < -40
    # A flat screen: peripheral pixels subtend less angle than central ones.
    steps = np.diff(azimuth[18])
    assert steps[31] > steps[0] * 1.5


def test_same_seed_gives_identical_arrays_and_other_seeds_differ(small_mouse):
    again = InSilicoMouse.build(SMALL)
    for key, value in small_mouse.params.items():
        assert np.array_equal(value, again.params[key]), key
    assert small_mouse.noise_level == again.noise_level
    for index in range(again.n_trials):
        first, second = small_mouse.trial(index), again.trial(index)
        for name in ("movie", "responses", "behavior", "pupil_center"):
            assert np.array_equal(getattr(first, name), getattr(second, name)), (index, name)
    other = InSilicoMouse.build(replace(SMALL, seed=8))
    assert not np.array_equal(other.params["azimuth_deg"], small_mouse.params["azimuth_deg"])
    assert not np.array_equal(other.trial(0).responses, small_mouse.trial(0).responses)


def test_trials_do_not_depend_on_computation_order(small_mouse):
    late = small_mouse.trial(5)
    fresh = InSilicoMouse.build(SMALL)
    assert np.array_equal(fresh.trial(5).responses, late.responses)


def test_oracle_repeats_share_the_clip_but_not_the_noise(small_mouse):
    repeats = [p.index for p in small_mouse.plan if p.tier == "oracle"]
    first, second = (small_mouse.trial(i) for i in repeats)
    assert np.array_equal(first.movie, second.movie)
    assert not np.array_equal(first.responses, second.responses)


def test_test_tier_natural_movies_use_only_held_out_images(small_mouse):
    from napari_movierecon.insilico.images import image_pool

    for plan in small_mouse.plan:
        description = small_mouse.stimulus(plan.index)[1]
        used = set(description.get("images", []))
        if plan.tier.startswith("final_test"):
            assert used <= set(image_pool("test"))
        else:
            assert not used & set(image_pool("test"))


def test_model_is_differentiable_in_the_movie(small_mouse):
    trial = small_mouse.trial(0)
    movie = torch.from_numpy(trial.movie)[None].requires_grad_(True)
    rates = small_mouse.model(movie, torch.from_numpy(trial.behavior)[None])
    assert rates.shape == (1, 300, SMALL.n_frames) and bool((rates >= 0).all())
    rates.sum().backward()
    assert torch.isfinite(movie.grad).all() and movie.grad.abs().sum() > 0


def test_gabor_filters_hold_no_subnormal_floats(small_mouse):
    # Far Gabor tails underflow to subnormal float32 values, which change no drive but
    # make the simulator's matrix products ~50x slower on CPUs that handle them in
    # microcode; they must be stored as zeros.
    spatial = small_mouse.model.spatial
    tiny = torch.finfo(torch.float32).tiny
    assert (spatial == 0).any()  # the tails are there, as zeros
    assert not ((spatial != 0) & (spatial.abs() < tiny)).any()


def test_running_raises_gain_for_most_neurons(small_mouse):
    trial = small_mouse.trial(0)
    movie = torch.from_numpy(trial.movie)[None]
    still = torch.tensor([[20.0], [0.0]]).expand(2, SMALL.n_frames)[None]
    running = torch.tensor([[20.0], [30.0]]).expand(2, SMALL.n_frames)[None]
    with torch.no_grad():
        ratio = small_mouse.model(movie, running).sum(-1) / small_mouse.model(movie, still).sum(-1)
    assert float((ratio > 1).float().mean()) > 0.8


def test_behaviour_has_running_bouts_and_pupil_follows_running(small_mouse):
    runs, correlations = [], []
    for key in range(30):
        behavior, pupil_center = small_mouse.behavior(1000 + key)
        assert behavior.shape == (2, SMALL.n_frames) and pupil_center.shape == (2, SMALL.n_frames)
        runs.append(behavior[1] > 2.0)
        if 0.1 < runs[-1].mean() < 0.9:
            correlations.append(np.corrcoef(behavior[0], behavior[1])[0, 1])
        assert behavior[1].min() >= 0
    fractions = np.array([r.mean() for r in runs])
    assert (fractions > 0.5).any() and (fractions < 0.1).any()
    if correlations:
        assert np.mean(correlations) > 0


def test_bad_spec_is_refused():
    with pytest.raises(SimulationError, match="n_frames"):
        MouseSpec(n_frames=5)
    with pytest.raises(SimulationError, match="n_neurons"):
        PopulationSpec(n_neurons=0)
    with pytest.raises(SimulationError, match="train"):
        TierLayout(train=0)


def test_written_mouse_round_trips_and_rebuilds_the_oracle(small_mouse, tmp_path):
    recording = SimulatedRecording(small_mouse)
    out = write_simulated(recording, tmp_path / "mouse")
    folder = SensoriumRecording(out)
    assert np.array_equal(folder.tiers, recording.tiers)
    assert np.array_equal(folder.neurons.ids, recording.neurons.ids)
    for index in range(len(recording)):
        simulated, read = recording.trial(index), folder.trial(index)
        for name in ("movie", "responses", "behavior", "pupil_center"):
            assert np.array_equal(getattr(simulated, name), getattr(read, name)), (index, name)
    rebuilt, record = load_ground_truth(out)
    assert rebuilt.noise_level == small_mouse.noise_level
    assert len(record["trials"]) == len(recording)
    trial = folder.trial(3)
    rates = np.load(out / "meta" / "insilico" / "rates" / "3.npy")[:, : trial.length]
    assert np.array_equal(rates, rebuilt.rates(trial.movie, trial.behavior))


def test_corrupt_ground_truth_is_reported(small_mouse, tmp_path):
    out = write_simulated(SimulatedRecording(small_mouse), tmp_path / "m", trials=[0])
    weights = out / "meta" / "insilico" / "population.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(SimulationError, match=r"population\.safetensors"):
        load_ground_truth(out)


def test_user_movies_go_to_the_same_neurons(small_mouse, tmp_path):
    movie = np.full((45, 36, 64), 127.0, np.float32)
    movie[20:, :, :32] = 255.0
    recording = PresentedMoviesRecording([movie], ["flash.npy"], small_mouse)
    out = write_simulated(recording, tmp_path / "user")
    folder = SensoriumRecording(out)
    assert np.array_equal(folder.neurons.ids, small_mouse.neurons.ids)
    assert folder.trial(0).length == 45
    assert np.array_equal(folder.trial(0).movie, movie)


@pytest.mark.slow
def test_sample_mouse_noise_is_calibrated_on_held_out_clips():
    """The sample mouse: 8,000 neurons, corr(rate, single trial) averages 0.3-0.5 on test clips."""
    mouse = sample_mouse()
    recording = SimulatedRecording(mouse)
    assert len(mouse.neurons) == 8000
    skip = mouse.model.context_frames
    values = []
    for index in recording.trials_in("final_test_main")[:4]:
        trial = recording.trial(int(index))
        values.append(
            rate_response_correlation(trial.extras["rates"][:, skip:], trial.responses[:, skip:])
        )
    mean = float(np.nanmean(np.concatenate(values)))
    assert 0.3 <= mean <= 0.5


@pytest.mark.slow
def test_sample_mouse_covers_only_part_of_the_screen():
    mouse = sample_mouse()
    elevation, azimuth = Screen().visual_angles
    p = mouse.params
    distance = np.hypot(
        (azimuth.reshape(-1, 1) - p["azimuth_deg"]) / p["sigma_deg"],
        (elevation.reshape(-1, 1) - p["elevation_deg"]) / p["sigma_deg"],
    )
    covered = (distance < 2).sum(axis=1).reshape(Screen().shape)
    assert covered[18, 32] > 100  # the centre is well covered
    assert 0.2 < (covered >= 10).mean() < 0.9  # ... but not the whole screen
