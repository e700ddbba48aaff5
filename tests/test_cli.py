"""The movierecon command line: simulate writes readable folders; bad input exits cleanly."""

from __future__ import annotations

import numpy as np
import pytest

from napari_movierecon.cli import main
from napari_movierecon.insilico.ground_truth import load_ground_truth
from napari_movierecon.io.sensorium import SensoriumRecording

SMALL = ["--neurons", "150", "--seed", "11"]


def test_simulate_writes_chosen_tiers(tmp_path, capsys):
    out = tmp_path / "mouse"
    code = main(
        [
            "simulate",
            "--out",
            str(out),
            *SMALL,
            "--tiers",
            "oracle,final_test_main",
            "--max-per-tier",
            "2",
        ]
    )
    assert code == 0
    recording = SensoriumRecording(out)
    assert sorted(recording.tiers.tolist()) == ["final_test_main"] * 2 + ["oracle"] * 2
    assert len(recording.neurons) == 150
    assert recording.trial(0).movie.shape == (300, 36, 64)
    mouse, record = load_ground_truth(out)
    assert mouse.spec.seed == 11 and len(record["trials"]) == 4
    assert "wrote" in capsys.readouterr().out


def test_simulate_user_movie_matches_same_mouse(tmp_path):
    movie = np.random.default_rng(0).integers(0, 256, (90, 72, 128)).astype(np.uint8)
    np.save(tmp_path / "clip.npy", movie)
    out = tmp_path / "user"
    assert (
        main(
            [
                "simulate",
                "--movies",
                str(tmp_path / "clip.npy"),
                "--fps",
                "60",
                "--out",
                str(out),
                *SMALL,
            ]
        )
        == 0
    )
    recording = SensoriumRecording(out)
    assert len(recording) == 1 and recording.trial(0).length == 45
    native = tmp_path / "native"
    assert (
        main(["simulate", "--out", str(native), *SMALL, "--tiers", "train", "--max-per-tier", "1"])
        == 0
    )
    assert np.array_equal(SensoriumRecording(native).neurons.xyz, recording.neurons.xyz)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--movies", "missing.npy", "--fps", "30"], "missing.npy"),
        (["--tiers", "bogus"], "bogus"),
    ],
)
def test_bad_input_gives_one_line_error(tmp_path, capsys, arguments, message):
    code = main(["simulate", "--out", str(tmp_path / "o"), *SMALL, *arguments])
    assert code == 2
    err = capsys.readouterr().err
    assert "error:" in err and message in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_existing_output_is_not_overwritten(tmp_path, capsys):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    assert (
        main(["simulate", "--out", str(out), *SMALL, "--tiers", "train", "--max-per-tier", "1"])
        == 2
    )
    assert "already exists" in capsys.readouterr().err
    assert (out / "keep.txt").read_text() == "precious"
