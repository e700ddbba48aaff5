"""Distillation: a FastEncoder student learns a teacher's predictions (movierecon distill)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from napari_movierecon.cli import main
from napari_movierecon.encoders.base import behavior_input
from napari_movierecon.encoders.checkpoint import load_encoder, save_encoder
from napari_movierecon.encoders.data import TrialCache
from napari_movierecon.encoders.distill import TeacherLabelledRecording, distill_encoder
from napari_movierecon.encoders.ensemble import Ensemble
from napari_movierecon.encoders.fast import FastEncoder, FastEncoderConfig
from napari_movierecon.encoders.identity import encoder_identity
from napari_movierecon.encoders.train import (
    TrainConfig,
    build_encoder,
    per_neuron_correlation,
    train_encoder,
)
from napari_movierecon.errors import CheckpointError, MovieReconError
from napari_movierecon.insilico.mouse import InSilicoMouse, MouseSpec, TierLayout
from napari_movierecon.insilico.population import PopulationSpec
from napari_movierecon.insilico.simulate import SimulatedRecording, write_simulated
from napari_movierecon.insilico.stimuli import make_stimulus

TINY = MouseSpec(
    seed=7,
    population=PopulationSpec(n_neurons=150),
    tiers=TierLayout(
        train=10, oracle_clips=1, oracle_repeats=2, final_test_main=1, final_test_bonus=0
    ),
    n_frames=90,
    calibration_clips=2,
)
# point readouts: a block readout's 144 weights per neuron need more than 10 clips
SMALL = FastEncoderConfig(temporal_channels=4, channels=8, readout_channels=8, readout_block=0)
QUICK = TrainConfig(
    epochs=8, batch_clips=2, crop_frames=60, learning_rate=0.03, warmup_steps=4, position_trials=12
)


@pytest.fixture(scope="module")
def recording() -> SimulatedRecording:
    return SimulatedRecording(InSilicoMouse.build(TINY))


@pytest.fixture(scope="module")
def teacher(recording) -> FastEncoder:
    """A tiny teacher of another size than the student, trained on the mouse."""
    config = FastEncoderConfig(temporal_channels=4, channels=4, readout_channels=4, readout_block=0)
    model, _ = train_encoder(recording, config, replace(QUICK, epochs=4, seed=3))
    return model


def held_out_agreement(encoder, teacher, recording) -> float:
    """Mean per-neuron correlation of ``encoder``'s rates with the teacher's on movies
    neither saw (test image pool and other kinds), with a recorded trial's behaviour."""
    trial = recording.trial(int(recording.trials_in("final_test_main")[0]))
    behavior = torch.from_numpy(behavior_input(trial))[None]
    rng = np.random.default_rng(99)
    scores = []
    for kind in ("natural", "grating", "dots"):
        movie, _ = make_stimulus(rng, kind, trial.length, "test")
        movie = torch.from_numpy(movie)[None]
        with torch.no_grad():
            student, target = encoder(movie, behavior)[0], teacher(movie, behavior)[0]
        skip = encoder.context_frames
        scores.append(per_neuron_correlation(student[:, skip:].numpy(), target[:, skip:].numpy()))
    return float(np.mean(scores))


def test_labelled_recording_holds_the_teachers_rates(recording, teacher):
    labelled = TeacherLabelledRecording(recording, teacher, extra_movies=3, seed=1)
    assert (labelled.tiers == "train").sum() == 13 and (labelled.tiers == "oracle").sum() == 2
    extra = labelled.trial(10)  # the first generated movie
    assert extra.extras["stimulus"]["kind"] and "rates" not in extra.extras
    again = TeacherLabelledRecording(recording, teacher, extra_movies=3, seed=1).trial(10)
    assert np.array_equal(extra.movie, again.movie)
    with torch.no_grad():
        expected = teacher(
            torch.from_numpy(extra.movie)[None], torch.from_numpy(behavior_input(extra))[None]
        )[0].numpy()
    np.testing.assert_allclose(extra.responses, expected, rtol=1e-6)
    shown = labelled.trial(0)
    assert np.array_equal(shown.movie, recording.trial(int(recording.trials_in("train")[0])).movie)


def test_distilling_a_tiny_teacher_converges(recording, teacher):
    config = QUICK
    student, record = distill_encoder(
        teacher, recording, extra_movies=10, model_config=SMALL, config=config
    )
    labelled = TeacherLabelledRecording(recording, teacher, extra_movies=10)
    untrained = build_encoder(
        labelled, TrialCache(labelled), labelled.trials_in("train"), SMALL, config
    ).eval()
    trained_score = held_out_agreement(student, teacher, recording)
    untrained_score = held_out_agreement(untrained, teacher, recording)
    assert trained_score > 0.6 and trained_score > untrained_score + 0.3
    assert record["distilled_from"] == encoder_identity(teacher)
    assert record["extra_movies"] == 10 and record["recording"] == recording.name


def test_cli_distill_writes_students_that_name_their_teacher(tmp_path, recording, teacher):
    folder = tmp_path / "mouse"
    write_simulated(recording, folder)
    teacher.source = "teacher"
    save_encoder(teacher, tmp_path / "teacher.safetensors", {"note": "random"})
    out = tmp_path / "students"
    args = ["distill", "--teacher", str(tmp_path / "teacher.safetensors"), "--recording",
            str(folder), "--out", str(out), "--members", "2", "--epochs", "1",
            "--extra-movies", "2", "--threads", "2"]  # fmt: skip
    assert main(args) == 0
    students = load_encoder(out)
    assert len(students) == 2
    digest = encoder_identity(load_encoder(tmp_path / "teacher.safetensors"))["weights_sha256"]
    for member in students.members:
        assert member.record["distilled_from"]["weights_sha256"] == digest
    assert main(args) == 2  # the folder exists: refused, not overwritten


def test_a_student_started_from_the_teachers_weights_begins_as_the_teacher(recording, teacher):
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    barely = replace(QUICK, epochs=1, learning_rate=1e-7)
    warm, record = distill_encoder(teacher, recording, 2, config=barely, init=teacher)
    cold, _ = distill_encoder(teacher, recording, 2, config=barely)
    assert held_out_agreement(warm, teacher, recording) > 0.999
    assert held_out_agreement(cold, teacher, recording) < 0.9
    assert record["initialised_from"] == encoder_identity(teacher)
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())


def test_starting_weights_of_another_architecture_or_mouse_are_refused(recording, teacher):
    with pytest.raises(MovieReconError, match="architecture asked for"):
        train_encoder(recording, SMALL, QUICK, init=teacher)
    with pytest.raises(MovieReconError, match="only start training from a FastEncoder"):
        train_encoder(recording, None, QUICK, init=Ensemble([teacher]))
    fewer = replace(TINY, population=PopulationSpec(n_neurons=120))
    other = SimulatedRecording(InSilicoMouse.build(fewer))
    with pytest.raises(CheckpointError, match="trained on another recording"):
        train_encoder(other, None, QUICK, init=teacher)


def test_cli_train_starts_each_member_from_the_init_weights(tmp_path, recording, teacher):
    folder = tmp_path / "mouse"
    write_simulated(recording, folder)
    save_encoder(teacher, tmp_path / "start.safetensors", {"note": "tiny"})
    out = tmp_path / "members"
    args = ["train", "--recording", str(folder), "--out", str(out), "--members", "2",
            "--epochs", "1", "--learning-rate", "1e-7", "--init",
            str(tmp_path / "start.safetensors"), "--threads", "2"]  # fmt: skip
    assert main(args) == 0
    start = load_encoder(tmp_path / "start.safetensors")
    for member in load_encoder(out).members:
        assert member.config == teacher.config
        assert member.record["initialised_from"] == encoder_identity(start)
        assert member.record["train_config"]["learning_rate"] == 1e-7
        assert held_out_agreement(member, teacher, recording) > 0.999
    wider = [*args, "--channels", "16", "--overwrite"]
    assert main(wider) == 2  # another architecture than the weights': refused
    assert len(load_encoder(out)) == 2  # and the folder there is left as it was
