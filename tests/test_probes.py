"""Resolution probes: the probe movies have the requested spectra, several seeds give a
spread and repeat exactly, the in-silico oracle's curve comes with the encoder's, and
movierecon probe writes its table, record and figure."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from napari_movierecon.cli import main
from napari_movierecon.encoders.checkpoint import save_encoder
from napari_movierecon.encoders.fast import FastEncoder, FastEncoderConfig
from napari_movierecon.errors import MovieReconError
from napari_movierecon.io.sensorium import SensoriumRecording
from napari_movierecon.reconstruct.config import preset
from napari_movierecon.reconstruct.probes import (
    GRATING_DIRECTION_DEG,
    ProbeSpec,
    grating_movie,
    half_fall_scale,
    noise_movie,
    probe_table,
    run_probes,
)

SHAPE = (36, 64)


def autocorrelation_half_width(movie: np.ndarray, axis: int) -> float:
    """Lag (interpolated) where the movie's autocorrelation along ``axis`` falls to 0.5,
    from the power spectrum (Wiener-Khinchin; the noise is periodic)."""
    centred = movie - movie.mean()
    power = np.abs(np.fft.fft(centred, axis=axis)) ** 2
    acf = np.fft.ifft(power, axis=axis).real
    acf = np.moveaxis(acf, axis, 0).reshape(acf.shape[axis], -1).sum(axis=1)
    acf /= acf[0]
    k = int(np.argmax(acf < 0.5))
    return (k - 1) + (acf[k - 1] - 0.5) / (acf[k - 1] - acf[k])


@pytest.mark.parametrize(("sigma_px", "sigma_frames"), [(1.5, 4.0), (4.0, 1.5)])
def test_noise_has_the_requested_correlation_lengths(sigma_px, sigma_frames):
    movie = noise_movie(np.random.default_rng(0), 400, SHAPE, sigma_px, sigma_frames)
    assert movie.shape == (400, *SHAPE) and movie.dtype == np.float32
    # Gaussian smoothing by sigma: autocorrelation exp(-d^2 / (4 sigma^2)), half at
    # d = 2 sigma sqrt(ln 2)
    expected = {0: sigma_frames, 1: sigma_px, 2: sigma_px}
    for axis, sigma in expected.items():
        measured = autocorrelation_half_width(movie, axis)
        assert measured == pytest.approx(2 * sigma * math.sqrt(math.log(2)), rel=0.1)


def test_gratings_have_the_requested_frequencies():
    period_px, period_frames = 16.0, 15.0
    movie = grating_movie(150, SHAPE, period_px, period_frames)
    assert 0 <= movie.min() and movie.max() <= 255
    temporal = np.abs(np.fft.rfft(movie[:, 10, 20] - movie[:, 10, 20].mean()))
    assert np.argmax(temporal) == 150 / period_frames  # 10 cycles in 150 frames: 2 Hz
    row = movie[0, 0] - movie[0, 0].mean()
    spectrum = np.abs(np.fft.rfft(row * np.hanning(row.size), n=8192))
    along_x = np.fft.rfftfreq(8192)[np.argmax(spectrum)]  # cycles per px along x
    expected = math.cos(math.radians(GRATING_DIRECTION_DEG)) / period_px
    assert along_x == pytest.approx(expected, rel=0.05)


def test_half_fall_scale():
    scales = [1, 2, 4, 8, 16]
    assert half_fall_scale(scales, [0.1, 0.3, 0.6, 0.8, 0.7]) == pytest.approx(
        2 ** (1 + (0.3 - 0.4) / (0.3 - 0.6)), rel=1e-6
    )
    assert half_fall_scale(scales, [0.5, 0.6, 0.7, 0.8, 0.8]) is None


def test_spec_refuses_bad_scales():
    with pytest.raises(MovieReconError, match="positive"):
        ProbeSpec.for_kind("noise", spatial=(0.0, 1.0))
    with pytest.raises(MovieReconError, match="unknown probe kind"):
        ProbeSpec.for_kind("dots")


def tiny_encoder(unit_ids: np.ndarray) -> FastEncoder:
    torch.manual_seed(0)
    positions = np.random.default_rng(0).uniform(-0.6, 0.6, (len(unit_ids), 2))
    config = FastEncoderConfig(channels=4, readout_channels=4)
    return FastEncoder(config, unit_ids, positions=positions).eval()


def test_spec_refuses_seeds_that_cannot_differ():
    with pytest.raises(MovieReconError, match="--poisson"):
        ProbeSpec.for_kind("gratings", n_seeds=2)
    assert ProbeSpec.for_kind("gratings", n_seeds=2, poisson=True).seeds() == [0, 1]
    with pytest.raises(MovieReconError, match="seed"):
        ProbeSpec.for_kind("noise", n_seeds=0)


def test_seeds_give_a_spread_and_repeat_exactly():
    encoder = tiny_encoder(np.arange(30))
    spec = ProbeSpec.for_kind(
        "noise", spatial=(4.0,), temporal=(2.0,), n_frames=40, poisson=True, n_seeds=2
    )
    config = preset("fast", iterations=3)
    behavior = np.zeros((4, 40), np.float32)
    neurons = np.arange(30)
    record = run_probes(encoder, spec, config, neurons, behavior)
    assert record["oracle"] is None and record["spec"]["n_seeds"] == 2
    for row in record["rows"]:
        assert row["seeds"] == [0, 1] and len(row["correlations"]) == 2
        assert row["correlation"] == pytest.approx(np.mean(row["correlations"]))
        assert row["correlation_sd"] == pytest.approx(np.std(row["correlations"], ddof=1))
        assert row["correlation_sd"] > 0  # other noise movie, other Poisson sample
    again = run_probes(encoder, spec, config, neurons, behavior)
    for row, repeat in zip(record["rows"], again["rows"], strict=True):
        assert {**row, "seconds": 0} == {**repeat, "seconds": 0}
    # a seed's run does not depend on the seeds run with it
    alone = run_probes(encoder, ProbeSpec(**{**spec.__dict__, "seed": 1, "n_seeds": 1}),
                       config, neurons, behavior)  # fmt: skip
    for row, single in zip(record["rows"], alone["rows"], strict=True):
        assert single["correlations"] == [row["correlations"][1]]
        assert single["correlation_sd"] == 0
    table = probe_table(record)
    assert "+-" in table and "over 2 seeds" in table and "oracle" not in table


def test_an_oracle_of_other_neurons_is_refused():
    spec = ProbeSpec.for_kind("noise", spatial=(4.0,), temporal=(2.0,), n_frames=40)
    encoder, other = tiny_encoder(np.arange(30)), tiny_encoder(np.arange(1, 31))
    with pytest.raises(MovieReconError, match="oracle's neurons"):
        run_probes(encoder, spec, preset("fast", iterations=3), np.arange(30),
                   np.zeros((4, 40), np.float32), oracle=other)  # fmt: skip


def test_table_reads_records_without_seeds_or_oracle():
    row = {"axis": "spatial", "spatial": 1.0, "temporal": 2.0, "correlation": 0.5,
           "full_frame_correlation": 0.4, "iterations": 3, "seconds": 1.0}  # fmt: skip
    record = {
        "spec": {"kind": "noise"},
        "units": {"spatial": "sigma (px)", "temporal": "sigma (frames)"},
        "rows": [row],
        "half_fall_scale": {"spatial": None, "temporal": None},
    }
    table = probe_table(record)
    assert "| spatial | 1 | 2 | 0.500 | 0.400 |" in table and "One seed" in table


def test_cli_probe_with_the_in_silico_oracle(tmp_path):
    mouse_dir = tmp_path / "mouse"
    simulate = ["simulate", "--out", str(mouse_dir), "--neurons", "60", "--seed", "3",
                "--tiers", "oracle", "--max-per-tier", "1"]  # fmt: skip
    assert main(simulate) == 0
    unit_ids = SensoriumRecording(mouse_dir).neurons.ids
    save_encoder(tiny_encoder(unit_ids), tmp_path / "tiny.safetensors", {"note": "random"})
    out = tmp_path / "probe"
    args = ["probe", "--encoder", str(tmp_path / "tiny.safetensors"), "--recording",
            str(mouse_dir), "--kind", "noise", "--out", str(out), "--frames", "40",
            "--spatial", "1,4", "--temporal", "2", "--iterations", "3", "--oracle",
            "--threads", "1"]  # fmt: skip
    assert main(args) == 0
    record = json.loads((out / "probe.json").read_text())
    oracle = record["oracle"]
    assert "oracle" in oracle["encoder"] and set(oracle["half_fall_scale"]) == {
        "spatial",
        "temporal",
    }
    scales = [(r["axis"], r["spatial"], r["temporal"]) for r in record["rows"]]
    assert [(r["axis"], r["spatial"], r["temporal"]) for r in oracle["rows"]] == scales
    for row in oracle["rows"]:
        assert -1 <= row["correlation"] <= 1 and -1 <= row["full_frame_correlation"] <= 1
        assert row["iterations"] == 3
    # the oracle is not the encoder: its own responses and reconstructions
    assert [r["correlation"] for r in oracle["rows"]] != [r["correlation"] for r in record["rows"]]
    assert "in-silico oracle (mask)" in (out / "probe.md").read_text()


def test_cli_probe_oracle_needs_the_in_silico_mouse(tmp_path, capsys):
    save_encoder(tiny_encoder(np.arange(40)), tmp_path / "tiny.safetensors", {"note": "random"})
    args = ["probe", "--encoder", str(tmp_path / "tiny.safetensors"), "--kind", "noise",
            "--out", str(tmp_path / "probe"), "--frames", "40", "--oracle"]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "--oracle needs the in-silico mouse" in err and "Traceback" not in err
    assert not (tmp_path / "probe").exists()


def test_cli_probe_writes_table_record_and_figure(tmp_path, capsys):
    n = 40
    encoder = tiny_encoder(np.arange(n))
    save_encoder(encoder, tmp_path / "tiny.safetensors", {"note": "random"})
    out = tmp_path / "probe"
    args = ["probe", "--encoder", str(tmp_path / "tiny.safetensors"), "--kind", "noise",
            "--out", str(out), "--frames", "40", "--spatial", "1,4", "--temporal", "1,4",
            "--iterations", "3", "--poisson", "--threads", "2"]  # fmt: skip
    assert main(args) == 0
    record = json.loads((out / "probe.json").read_text())
    assert [(r["axis"], r["spatial"], r["temporal"]) for r in record["rows"]] == [
        ("spatial", 1.0, 2.0),
        ("spatial", 4.0, 2.0),
        ("temporal", 2.0, 1.0),
        ("temporal", 2.0, 4.0),
    ]
    assert all(-1 <= r["correlation"] <= 1 and r["iterations"] == 3 for r in record["rows"])
    assert record["n_neurons"] == n and set(record["half_fall_scale"]) == {"spatial", "temporal"}
    assert "| spatial | 1 | 2 |" in (out / "probe.md").read_text()
    assert (out / "probe.png").read_bytes()[:4] == b"\x89PNG"
    assert "Half-fall scale" in capsys.readouterr().out
    assert main(args) == 2  # exists: refused
    assert main([*args[:-2], "--neurons", "top:5"]) == 2  # needs a recording
