"""Resolution probes: the probe movies have the requested spectra, and movierecon probe
writes its table, record and figure."""

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
from napari_movierecon.reconstruct.probes import (
    GRATING_DIRECTION_DEG,
    ProbeSpec,
    grating_movie,
    half_fall_scale,
    noise_movie,
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


def test_cli_probe_writes_table_record_and_figure(tmp_path, capsys):
    torch.manual_seed(0)
    n = 40
    positions = np.random.default_rng(0).uniform(-0.6, 0.6, (n, 2))
    encoder = FastEncoder(FastEncoderConfig(channels=4, readout_channels=4), np.arange(n),
                          positions=positions)  # fmt: skip
    save_encoder(encoder.eval(), tmp_path / "tiny.safetensors", {"note": "random"})
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
