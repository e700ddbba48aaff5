"""The shipped sample ensemble: what it was trained on, that it fits the sample mouse,
and that it predicts held-out clips."""

from __future__ import annotations

import numpy as np
import torch

from napari_movierecon.encoders.checkpoint import check_neurons
from napari_movierecon.encoders.evaluate import evaluate_encoders
from napari_movierecon.insilico.simulate import SimulatedRecording
from napari_movierecon.sources import SAMPLE_ENCODER, open_encoder

MAX_BYTES = 25 * 2**20


def test_sample_ensemble_is_small_and_trained_on_the_training_tier_only():
    files = sorted(SAMPLE_ENCODER.glob("member_*.safetensors"))
    assert len(files) >= 3
    assert sum(f.stat().st_size for f in files) <= MAX_BYTES
    ensemble = open_encoder("sample")
    recording = SimulatedRecording()
    train = set(recording.trials_in("train").tolist())
    held_out = set(recording.trials_in("final_test_main").tolist()) | set(
        recording.trials_in("final_test_bonus").tolist()
    )
    seeds = set()
    for member in ensemble.members:
        record = member.record
        assert record["recording"] == recording.name
        assert record["train_tier"] == "train" and record["validation_tier"] == "oracle"
        assert set(record["train_trials"]) <= train
        assert not set(record["train_trials"] + record["validation_trials"]) & held_out
        seeds.add(record["train_config"]["seed"])
    assert len(seeds) == len(ensemble)


def test_sample_ensemble_predicts_held_out_clips_of_the_sample_mouse():
    recording = SimulatedRecording()
    ensemble = open_encoder("sample")
    check_neurons(ensemble, recording.neurons.ids, recording.name)
    torch.manual_seed(0)
    result = evaluate_encoders({"sample": ensemble}, recording, "final_test_main", max_trials=2)
    summary = result["sample"].summary()
    # Far above chance, below the noise ceiling.
    assert 0.2 < summary["single_trial"] < summary["oracle_single_trial"]
    assert np.isfinite(result["sample"].single_trial).all()
