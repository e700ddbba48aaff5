"""Recorded vs predicted activity of chosen neurons: predictions, correlations, CSV."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from napari_movierecon.encoders.base import behavior_input
from napari_movierecon.encoders.fast import FastEncoder, FastEncoderConfig
from napari_movierecon.errors import MovieReconError
from napari_movierecon.reconstruct.activity import (
    CSV_COLUMNS,
    neuron_activity,
    predict_rates,
    write_activity_csv,
)
from tests.test_sensorium_io import make_recording


@pytest.fixture(scope="module")
def setup():
    recording = make_recording(0, ["final_test_main"], [30], 40)
    torch.manual_seed(0)
    positions = np.random.default_rng(0).uniform(-0.5, 0.5, (40, 2))
    config = FastEncoderConfig(channels=4, readout_channels=4)
    encoder = FastEncoder(config, recording.neurons.ids, positions=positions).eval()
    return encoder, recording.trial(0)


def test_predictions_of_a_subset_are_the_full_predictions_rows(setup):
    encoder, trial = setup
    behavior = behavior_input(trial)
    every = predict_rates(encoder, trial.movie, behavior, np.arange(40))
    some = predict_rates(encoder, trial.movie, behavior, np.array([3, 17]))
    assert every.shape == (40, 30) and some.shape == (2, 30)
    np.testing.assert_allclose(some, every[[3, 17]], rtol=1e-5)
    with pytest.raises(MovieReconError, match="does not fit"):
        predict_rates(encoder, trial.movie[:, :10], behavior, np.arange(2))


def test_correlations_compare_recorded_truth_and_reconstruction(setup):
    encoder, trial = setup
    neurons = np.array([0, 5, 9])
    behavior = behavior_input(trial)
    activity = neuron_activity(encoder, trial.movie, trial.responses, behavior, neurons)
    assert activity.from_reconstruction is None
    assert set(activity.correlations()) == {"recorded_vs_truth"}
    np.testing.assert_array_equal(activity.unit_ids, trial_ids(encoder, neurons))
    np.testing.assert_array_equal(activity.recorded, trial.responses[neurons])
    # the encoder's prediction for the shown movie, scored after its context frames
    predicted = predict_rates(encoder, trial.movie, behavior, neurons)
    np.testing.assert_allclose(activity.from_truth, predicted, rtol=1e-5)
    skip = encoder.context_frames
    expected = [
        np.corrcoef(r[skip:], p[skip:])[0, 1]
        for r, p in zip(activity.recorded, predicted, strict=True)
    ]
    np.testing.assert_allclose(activity.correlations()["recorded_vs_truth"], expected, atol=1e-5)

    # a reconstruction equal to the truth predicts the same; a flipped one does not
    same = neuron_activity(
        encoder, trial.movie, trial.responses, behavior, neurons, reconstruction=trial.movie
    ).correlations()
    np.testing.assert_allclose(same["truth_vs_reconstruction"], 1.0, atol=1e-5)
    np.testing.assert_allclose(same["recorded_vs_reconstruction"], same["recorded_vs_truth"])
    flipped = neuron_activity(
        encoder,
        trial.movie,
        trial.responses,
        behavior,
        neurons,
        reconstruction=255.0 - trial.movie,
        from_truth=activity.from_truth,
    ).correlations()
    assert (flipped["truth_vs_reconstruction"] < 0.999).all()
    with pytest.raises(MovieReconError, match="neuron selection is empty"):
        neuron_activity(encoder, trial.movie, trial.responses, behavior, np.array([], int))


def trial_ids(encoder, neurons):
    return np.asarray(encoder.unit_ids)[neurons]


def test_csv_has_one_row_per_frame_and_neuron(setup, tmp_path):
    encoder, trial = setup
    neurons = np.array([2, 7])
    activity = neuron_activity(
        encoder,
        trial.movie,
        trial.responses,
        behavior_input(trial),
        neurons,
        reconstruction=trial.movie * 0.5,
    )
    path = write_activity_csv(activity, tmp_path / "activity.csv")
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) == 1 + 30 * 2
    frame, unit, recorded, truth, recon = rows[1 + 2 * 4 + 1]  # frame 4, second neuron
    assert int(frame) == 4 and int(unit) == activity.unit_ids[1]
    assert float(recorded) == pytest.approx(trial.responses[7, 4], rel=1e-6)
    assert float(truth) == pytest.approx(activity.from_truth[1, 4], rel=1e-6)
    assert float(recon) == pytest.approx(activity.from_reconstruction[1, 4], rel=1e-6)
    assert [p.name for p in tmp_path.iterdir()] == ["activity.csv"]  # no temporary left
