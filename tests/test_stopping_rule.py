"""The stopping rule (config.holdout_fraction): held-out neurons pick the movie and say
when to stop, without ground truth."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_movierecon.encoders.fast import FastEncoder, FastEncoderConfig
from napari_movierecon.errors import MovieReconError
from napari_movierecon.reconstruct.config import preset
from napari_movierecon.reconstruct.engine import reconstruct
from napari_movierecon.reconstruct.holdout import split_holdout
from napari_movierecon.recording import GRAY_LEVEL

N_NEURONS, N_FRAMES = 60, 48


def encoder(seed: int = 0) -> FastEncoder:
    torch.manual_seed(seed)
    positions = np.random.default_rng(seed).uniform(-0.5, 0.5, (N_NEURONS, 2))
    config = FastEncoderConfig(channels=4, readout_channels=4)
    return FastEncoder(config, np.arange(N_NEURONS), positions=positions).eval()


def run(model, responses, config, truth=None):
    behavior = np.zeros((4, N_FRAMES), np.float32)
    return list(reconstruct(model, responses, np.arange(N_NEURONS), behavior, config, truth))


def test_split_is_seeded_disjoint_and_complete():
    neurons = np.arange(100, 300)
    fit, held = split_holdout(neurons, 0.1, seed=3)
    assert held.size == 20 and fit.size == 180
    assert np.array_equal(np.sort(np.concatenate([fit, held])), neurons)
    assert np.array_equal(held, split_holdout(neurons, 0.1, seed=3)[1])
    assert not np.array_equal(held, split_holdout(neurons, 0.1, seed=4)[1])
    assert split_holdout(neurons, None, seed=0)[1].size == 0
    with pytest.raises(MovieReconError, match="leaves none"):
        split_holdout(np.arange(2), 0.9, seed=0)


def test_config_refuses_bad_settings():
    with pytest.raises(MovieReconError, match="holdout_fraction"):
        preset("fast", holdout_fraction=1.5)
    with pytest.raises(MovieReconError, match="holdout_patience"):
        preset("fast", holdout_patience=0)


def test_the_rule_never_reads_ground_truth():
    """A run with ground truth and one without stop at the same iteration with the same
    movie: the truth only adds metrics."""
    model = encoder()
    rng = np.random.default_rng(1)
    truth = rng.uniform(0, 255, (N_FRAMES, 36, 64)).astype(np.float32)
    with torch.no_grad():
        rates = model(torch.from_numpy(truth)[None], torch.zeros(1, 4, N_FRAMES))[0].numpy()
    responses = rng.poisson(rates).astype(np.float32)
    config = preset("fast", iterations=30, holdout_fraction=0.2, holdout_patience=5)
    with_truth = run(model, responses, config, truth)
    without = run(model, responses, config)
    assert with_truth[-1].pixel_correlation is not None and without[-1].pixel_correlation is None
    assert [s.iteration for s in with_truth] == [s.iteration for s in without]
    assert with_truth[-1].chosen_iteration == without[-1].chosen_iteration
    assert np.array_equal(with_truth[-1].movie, without[-1].movie)
    assert [s.holdout_loss for s in with_truth] == [s.holdout_loss for s in without]


def test_it_stops_early_when_the_activity_says_nothing_about_the_movie():
    """Responses that are noise around the encoder's gray prediction: fitting them can only
    fit noise, so the held-out neurons are best predicted by (nearly) the gray start; the
    rule keeps that movie and stops after ``patience`` iterations."""
    model = encoder()
    gray = np.full((N_FRAMES, 36, 64), GRAY_LEVEL, np.float32)
    with torch.no_grad():
        rates = model(torch.from_numpy(gray)[None], torch.zeros(1, 4, N_FRAMES))[0].numpy()
    responses = np.random.default_rng(2).poisson(rates * 5).astype(np.float32) / 5
    free = run(model, responses, preset("fast", iterations=40))
    ruled = run(model, responses, preset("fast", iterations=40, holdout_fraction=0.3))
    patience = preset("fast").holdout_patience
    last = ruled[-1]
    assert last.chosen_iteration <= 3
    assert last.iteration == last.chosen_iteration + patience + 1 < 40
    assert np.abs(last.movie - GRAY_LEVEL).mean() < 0.5 * np.abs(free[-1].movie - GRAY_LEVEL).mean()
