"""The stopping-rule benchmark's tiers: settings are chosen on validation clips, and the
test tier runs on exactly the clips reconstruct_bench scores with settings it is given."""

from __future__ import annotations

import pytest

from benchmarks.reconstruct_bench import scored_clips
from benchmarks.stopping_bench import TEST, VALIDATION, clips_for, parse_args
from napari_movierecon.insilico.mouse import InSilicoMouse, MouseSpec, TierLayout
from napari_movierecon.insilico.population import PopulationSpec
from napari_movierecon.insilico.simulate import SimulatedRecording

SPEC = MouseSpec(
    seed=5,
    population=PopulationSpec(n_neurons=50),
    tiers=TierLayout(
        train=2, oracle_clips=3, oracle_repeats=2, final_test_main=6, final_test_bonus=0
    ),
    n_frames=40,
    calibration_clips=2,
)


@pytest.fixture(scope="module")
def recording() -> SimulatedRecording:
    return SimulatedRecording(InSilicoMouse.build(SPEC))


def test_test_tier_uses_the_scored_clips_and_never_validation_ones(recording):
    test = clips_for(recording, TEST, 5)
    assert test == scored_clips(recording, 5).tolist() and len(test) == 5
    assert all(recording.tiers[i] == TEST for i in test)
    validation = clips_for(recording, VALIDATION, 5)
    assert len(validation) == 3  # distinct clips, one trial each
    assert all(recording.tiers[i] == VALIDATION for i in validation)
    keys = {p.clip_key for p in recording.mouse.plan if p.index in validation}
    assert len(keys) == 3 and not set(test) & set(validation)


def test_test_tier_needs_fixed_settings(capsys):
    with pytest.raises(SystemExit):
        parse_args(["--tier", TEST, "--clips", "5", "--patience", "10"])
    assert "chooses nothing" in capsys.readouterr().err
    args = parse_args(["--tier", TEST, "--fraction", "0.1", "--patience", "10"])
    assert (args.fraction, args.patience) == (0.1, 10)
    assert parse_args([]).fraction == 0.1 and parse_args([]).tier == VALIDATION
