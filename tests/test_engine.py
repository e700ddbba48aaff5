"""The reconstruction engine: it reconstructs, streams, stops, and refuses bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_movierecon.encoders.base import behavior_input
from napari_movierecon.encoders.fast import FastEncoder, FastEncoderConfig, FrozenFastEncoder
from napari_movierecon.encoders.oracle import OracleEncoder
from napari_movierecon.errors import MovieReconError
from napari_movierecon.insilico.figures import coverage_map
from napari_movierecon.insilico.mouse import InSilicoMouse, MouseSpec, TierLayout
from napari_movierecon.insilico.population import PopulationSpec
from napari_movierecon.insilico.stimuli import drifting_grating
from napari_movierecon.reconstruct.config import preset
from napari_movierecon.reconstruct.cost import estimate_reconstruction_cost
from napari_movierecon.reconstruct.engine import prepare_encoder, reconstruct

SPEC = MouseSpec(
    seed=5,
    population=PopulationSpec(n_neurons=400),
    tiers=TierLayout(
        train=2, oracle_clips=1, oracle_repeats=1, final_test_main=1, final_test_bonus=0
    ),
    n_frames=90,
    calibration_clips=2,
)


@pytest.fixture(scope="module")
def mouse() -> InSilicoMouse:
    return InSilicoMouse.build(SPEC)


@pytest.fixture(scope="module")
def grating(mouse):
    """A simple held-out stimulus: a sine grating drifting at 2 Hz, 0.03 cycles/deg."""
    movie = drifting_grating(
        np.random.default_rng(0),
        90,
        n_segments=1,
        direction_deg=30.0,
        spatial_freq_cpd=0.03,
        temporal_freq_hz=2.0,
        contrast=0.8,
        waveform="sine",
        blank_probability=0.0,
    )
    trial = mouse.trial(0)
    rates = mouse.rates(movie, trial.behavior)
    mask = coverage_map(mouse.params, mouse.model.screen) >= 0.01 * len(mouse.neurons.ids)
    return movie, rates, behavior_input(trial), mask


def test_oracle_reconstructs_a_drifting_grating(mouse, grating):
    movie, rates, behavior, mask = grating
    config = preset("bauer2025", iterations=100, snapshot_every=25)
    snapshots = list(
        reconstruct(
            OracleEncoder(mouse.model),
            rates,
            np.arange(400),
            behavior,
            config,
            truth=movie,
            eval_mask=mask,
        )
    )
    assert [s.iteration for s in snapshots] == [25, 50, 75, 100]
    corr = [s.pixel_correlation for s in snapshots]
    assert corr[-1] > 0.8 and corr[-1] > corr[0]
    assert snapshots[-1].loss <= snapshots[0].loss
    last = snapshots[-1]
    assert last.movie.dtype == np.float32 and last.movie.shape == movie.shape
    assert last.movie.min() >= 0 and last.movie.max() <= 255
    assert last.correlation_map.shape == (36, 64) and last.frame_correlation.shape == (90,)
    assert last.skip_frames == 17
    # Each snapshot holds its own copy.
    assert not np.shares_memory(snapshots[0].movie, last.movie)


def small_ensemble(n: int = 30) -> list[FastEncoder]:
    config = FastEncoderConfig(channels=4, readout_channels=4)
    members = []
    for seed in range(2):
        torch.manual_seed(seed)
        positions = np.random.default_rng(seed).uniform(-0.5, 0.5, (n, 2))
        members.append(
            FastEncoder(config, np.arange(n), positions=positions).eval().requires_grad_(False)
        )
    return members


def test_a_prepared_encoder_starts_runs_without_building_its_frozen_form(monkeypatch):
    """What the napari Recording dock does on opening an encoder: every run after it
    (the first included) reuses the frozen members, and gives the same movie."""
    members = small_ensemble()
    responses = np.random.default_rng(0).gamma(1.0, 1.0, (30, 40)).astype(np.float32)
    config = preset("fast", iterations=4)
    prepare_encoder(members)
    built = []
    original = FrozenFastEncoder.__init__
    monkeypatch.setattr(
        FrozenFastEncoder,
        "__init__",
        lambda self, encoder: (built.append(encoder), original(self, encoder))[1],
    )
    runs = [
        list(reconstruct(members, responses, np.arange(30), np.zeros((4, 40)), config))[-1]
        for _ in range(2)
    ]
    assert built == []
    np.testing.assert_array_equal(runs[0].movie, runs[1].movie)
    unprepared = small_ensemble()  # the control: members nobody prepared are built once
    list(reconstruct(unprepared, responses, np.arange(30), np.zeros((4, 40)), config))
    assert [id(encoder) for encoder in built] == [id(encoder) for encoder in unprepared]


@pytest.mark.parametrize("strategy", ["separate", "gradient"])
def test_ensemble_strategies_stream_and_close_stops(strategy):
    members = small_ensemble()
    responses = np.random.default_rng(0).gamma(1.0, 1.0, (30, 40)).astype(np.float32)
    config = preset(
        "bauer2025",
        iterations=50,
        snapshot_every=2,
        ensemble=strategy,
        window_frames=16,
        window_stride=8,
    )
    run = reconstruct(members, responses, np.arange(10), np.zeros((4, 40)), config)
    first, second = next(run), next(run)
    assert (first.iteration, second.iteration) == (2, 4)
    assert second.encoder_frames > first.encoder_frames > 0
    assert not np.array_equal(first.movie, second.movie)
    run.close()
    with pytest.raises(StopIteration):
        next(run)


def test_window_batches_change_nothing_but_how_often_it_can_pause(monkeypatch):
    from napari_movierecon.reconstruct import engine

    members = small_ensemble()
    responses = np.random.default_rng(1).gamma(1.0, 1.0, (30, 40)).astype(np.float32)
    config = preset("bauer2025", iterations=3, window_frames=16, window_stride=4)

    def run(batch_frames, heartbeat=False):
        monkeypatch.setattr(engine, "BATCH_FRAMES", batch_frames)
        inputs = (members, responses, np.arange(30), np.zeros((4, 40)), config)
        # The generic path (one window at a time through the encoder), as for the oracle.
        return list(reconstruct(*inputs, heartbeat=heartbeat, share_frames=False))

    (whole,) = run(10_000)
    # 7 windows of 17 + 16 frames: 2 per batch of 66 frames -> 4 batches per member
    (batched,) = run(66)
    np.testing.assert_allclose(batched.movie, whole.movie, atol=1e-3)
    assert batched.loss == pytest.approx(whole.loss, rel=1e-5)
    assert batched.encoder_frames == whole.encoder_frames == 3 * 2 * 7 * 33
    assert run(66, heartbeat=True).count(None) == 3 * 2 * 4  # iterations x members x batches


@pytest.mark.parametrize(
    ("window_frames", "stride", "strategy"),
    [(16, 4, "separate"), (12, 5, "gradient"), (None, 8, "gradient")],
)
def test_shared_frames_give_the_per_window_reconstruction(window_frames, stride, strategy):
    """Windows sharing frames (one pass over the clip) equal every window through the
    encoder on its own: same movie, same losses (also the stopping rule's held-out
    losses), one clip of frames per member pass."""
    members = small_ensemble()
    rng = np.random.default_rng(2)
    responses = rng.gamma(1.0, 1.0, (30, 40)).astype(np.float32)
    behavior = rng.normal(size=(4, 40)).astype(np.float32)
    config = preset(
        "bauer2025",
        iterations=6,
        snapshot_every=3,
        window_frames=window_frames,
        window_stride=stride,
        ensemble=strategy,
        holdout_fraction=0.25,
    )
    neurons = np.arange(3, 25)

    def run(share_frames):
        inputs = (members, responses, neurons, behavior, config)
        return list(reconstruct(*inputs, share_frames=share_frames))

    shared, alone = run(True), run(False)
    for a, b in zip(shared, alone, strict=True):
        np.testing.assert_allclose(a.movie, b.movie, atol=1e-3)
        assert a.loss == pytest.approx(b.loss, rel=1e-5)
        assert a.holdout_loss == pytest.approx(b.holdout_loss, rel=1e-5)
    assert shared[-1].holdout_loss is not None
    assert shared[-1].encoder_frames == 6 * 2 * 40
    assert alone[-1].encoder_frames > shared[-1].encoder_frames


def test_cycle_drives_the_movie_by_one_member_per_iteration_in_turn():
    members = small_ensemble()
    responses = np.random.default_rng(3).gamma(1.0, 1.0, (30, 40)).astype(np.float32)
    inputs = (responses, np.arange(30), np.zeros((4, 40)))

    def final(encoders, iterations, ensemble):
        config = preset("fast", iterations=iterations, ensemble=ensemble, warmup_steps=0)
        return list(reconstruct(encoders, *inputs, config))[-1]

    first = final(members, 1, "cycle")
    np.testing.assert_allclose(first.movie, final(members[:1], 1, "gradient").movie, atol=1e-4)
    assert first.encoder_frames == 40  # one member's pass, not two
    two = final(members, 2, "cycle")
    assert not np.allclose(two.movie, final(members[:1], 2, "gradient").movie, atol=1e-3)
    config = preset("fast", iterations=10, ensemble="cycle")
    cost = estimate_reconstruction_cost(members, *inputs, config)
    assert (cost.members, cost.windows) == (1, 1)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"neurons": np.array([], dtype=int)}, "neuron selection is empty"),
        ({"neurons": np.array([0, 30])}, r"must lie in 0\.\.29"),
        ({"neurons": np.array([1, 1])}, "lists a neuron twice"),
        ({"responses": np.ones((30, 39))}, r"behaviour must be \(4, 39\)"),
        ({"responses": np.ones((29, 40))}, "N = 30"),
        ({"responses": np.full((30, 40), np.nan)}, "NaN"),
        ({"behavior": np.zeros((2, 40))}, r"behaviour must be \(4, 40\)"),
        ({"update_mask": np.ones((10, 10), bool)}, r"update mask must be \(36, 64\)"),
        ({"truth": np.zeros((40, 10, 10))}, "ground truth must be"),
        ({"responses": np.ones((30, 10)), "behavior": np.zeros((4, 10))}, "more than 17"),
    ],
)
def test_bad_input_is_refused_before_any_work(change, message):
    members = small_ensemble()
    args = {
        "responses": np.ones((30, 40)),
        "neurons": np.arange(5),
        "behavior": np.zeros((4, 40)),
        "truth": None,
        "update_mask": None,
    }
    args.update(change)
    with pytest.raises(MovieReconError, match=message):
        reconstruct(
            members,
            args["responses"],
            args["neurons"],
            args["behavior"],
            preset("bauer2025"),
            truth=args["truth"],
            update_mask=args["update_mask"],
        )


def test_encoders_of_other_neurons_are_refused():
    a, b = small_ensemble(30)[0], small_ensemble(20)[1]
    with pytest.raises(MovieReconError, match="predicts other neurons"):
        reconstruct([a, b], np.ones((30, 40)), np.arange(5), np.zeros((4, 40)), preset("bauer2025"))
