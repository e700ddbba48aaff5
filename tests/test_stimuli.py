"""In-silico stimuli: output conventions, image pools, grating/noise spectra, user movies."""

from __future__ import annotations

import json
import re
from itertools import pairwise

import imageio_ffmpeg
import numpy as np
import pytest

from napari_movierecon.errors import SimulationError
from napari_movierecon.insilico import images, stimuli
from napari_movierecon.insilico.movie_input import load_user_movie, resample_movie
from napari_movierecon.insilico.screen import Screen
from napari_movierecon.recording import SCREEN_SHAPE

GENERATORS = {
    "natural": stimuli.natural_movie,
    "grating": stimuli.drifting_grating,
    "pink_noise": stimuli.pink_noise,
    "dots": stimuli.moving_dots,
}


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


# --- output conventions -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", stimuli.STIMULUS_KINDS)
def test_stimulus_follows_output_conventions(kind):
    movie, description = stimuli.make_stimulus(_rng(0), kind)
    assert movie.shape == (300, *SCREEN_SHAPE)
    assert movie.dtype == np.float32
    assert movie.min() >= 0 and movie.max() <= 255
    assert np.array_equal(movie, np.round(movie))
    assert 80 < movie.mean() < 180 and movie.std() > 5
    assert description["kind"] == kind and description["n_frames"] == 300
    assert json.loads(json.dumps(description)) == description


@pytest.mark.parametrize("kind", stimuli.STIMULUS_KINDS)
def test_stimulus_is_deterministic_per_seed(kind):
    first, first_description = stimuli.make_stimulus(_rng(7), kind, n_frames=60)
    again, again_description = stimuli.make_stimulus(_rng(7), kind, n_frames=60)
    other, _ = stimuli.make_stimulus(_rng(8), kind, n_frames=60)
    assert np.array_equal(first, again) and first_description == again_description
    assert not np.array_equal(first, other)


@pytest.mark.parametrize("kind", stimuli.STIMULUS_KINDS)
@pytest.mark.parametrize("n_frames", [1, 45])
def test_generators_honour_length(kind, n_frames):
    movie = GENERATORS[kind](_rng(3), n_frames)
    assert movie.shape == (n_frames, *SCREEN_SHAPE) and movie.dtype == np.float32
    assert np.array_equal(movie, stimuli.make_stimulus(_rng(3), kind, n_frames)[0])


def test_generators_accept_another_screen():
    screen = Screen(shape=(18, 32))
    for generator in GENERATORS.values():
        assert generator(_rng(1), 20, screen).shape == (20, 18, 32)


@pytest.mark.parametrize("n_frames", [0, -3, 2.5, True, "300"])
def test_bad_length_is_rejected(n_frames):
    with pytest.raises(SimulationError, match="n_frames"):
        stimuli.make_stimulus(_rng(0), "grating", n_frames)


def test_unknown_kind_and_pool_are_rejected():
    with pytest.raises(SimulationError, match="kind"):
        stimuli.make_stimulus(_rng(0), "checkerboard")
    with pytest.raises(SimulationError, match="pool"):
        stimuli.make_stimulus(_rng(0), "natural", pool="validation")
    with pytest.raises(SimulationError, match="pool"):
        stimuli.make_stimulus(_rng(0), "dots", pool="validation")


@pytest.mark.parametrize(
    "params",
    [
        {"spatial_freq_cpd": 0.0},
        {"temporal_freq_hz": -1.0},
        {"contrast": 1.5},
        {"waveform": "triangle"},
        {"n_segments": 0},
        {"direction_deg": float("nan")},
    ],
)
def test_bad_grating_parameters_are_rejected(params):
    with pytest.raises(SimulationError, match=next(iter(params))):
        stimuli.drifting_grating(_rng(0), 30, **params)


def test_bad_dot_and_noise_parameters_are_rejected():
    with pytest.raises(SimulationError, match="n_dots"):
        stimuli.moving_dots(_rng(0), 10, n_dots=0)
    with pytest.raises(SimulationError, match="boundary"):
        stimuli.moving_dots(_rng(0), 10, boundary="sticky")
    with pytest.raises(SimulationError, match="temporal_corner_hz"):
        stimuli.pink_noise(_rng(0), 10, temporal_corner_hz=0.0)


# --- the mix ----------------------------------------------------------------------------------


def test_kind_mix_is_mostly_natural():
    rng = _rng(0)
    draws = [stimuli.sample_stimulus_kind(rng) for _ in range(2000)]
    assert set(draws) == set(stimuli.STIMULUS_KINDS)
    assert 0.5 < draws.count("natural") / len(draws) < 0.6


def test_kind_weights_are_validated_and_used():
    assert {stimuli.sample_stimulus_kind(_rng(s), {"dots": 2.0}) for s in range(20)} == {"dots"}
    for weights in ({"movie": 1.0}, {"dots": -1.0}, {"dots": 0.0}, {"dots": float("nan")}):
        with pytest.raises(SimulationError):
            stimuli.sample_stimulus_kind(_rng(0), weights)


# --- natural images ---------------------------------------------------------------------------


def test_image_pools_are_disjoint_and_load():
    train, test = images.image_pool("train"), images.image_pool("test")
    assert test == ("chelsea", "coffee", "rocket", "gravel")
    assert not set(train) & set(test) and len(train) >= 10
    for name in train + test:
        image = images.load_image(name)
        assert image.ndim == 2 and image.dtype == np.float64
        assert min(image.shape) >= 150
        assert 0 <= image.min() and image.max() <= 255 and image.std() > 10
    checksums = images.image_checksums(list(test))
    assert set(checksums) == set(test)
    assert all(re.fullmatch(r"[0-9a-f]{64}", digest) for digest in checksums.values())


def test_unknown_or_missing_image_is_reported(monkeypatch, tmp_path):
    with pytest.raises(SimulationError, match="lena"):
        images.load_image("lena")
    with pytest.raises(SimulationError, match="pool"):
        images.image_pool("validation")
    monkeypatch.setattr(images, "_data_dir", lambda: tmp_path)
    with pytest.raises(SimulationError, match=r"chelsea\.png"):
        images.load_image("chelsea")
    with pytest.raises(SimulationError, match=r"rocket\.jpg"):
        images.image_checksums(["rocket"])


@pytest.mark.parametrize("pool", ["train", "test"])
def test_natural_movies_draw_only_from_their_pool(pool):
    allowed = set(images.image_pool(pool))
    used = set()
    for seed in range(4):
        _, description = stimuli.make_stimulus(_rng(seed), "natural", pool=pool)
        segment_images = {segment["image"] for segment in description["segments"]}
        assert description["pool"] == pool
        assert set(description["images"]) == segment_images
        used |= segment_images
    assert used <= allowed and len(used) >= 2


def test_natural_clips_differ_in_brightness():
    _, description = stimuli.make_stimulus(_rng(5), "natural")
    segments = description["segments"]
    assert len(segments) >= 3
    assert segments[0]["start"] == 0 and segments[-1]["stop"] == 300
    assert all(a["stop"] == b["start"] for a, b in pairwise(segments))
    assert all(100 <= s["mean"] <= 160 and 30 <= s["contrast"] <= 60 for s in segments)


# --- gratings ---------------------------------------------------------------------------------


def _peak_frequency(angles: np.ndarray, values: np.ndarray) -> float:
    """Dominant spatial frequency (cycles/deg) of ``values`` sampled at ``angles`` (deg)."""
    grid = np.arange(angles.min(), angles.max(), 0.25)
    resampled = np.interp(grid, angles, values)
    resampled = (resampled - resampled.mean()) * np.hanning(grid.size)
    spectrum = np.abs(np.fft.rfft(resampled, n=16 * grid.size))
    return float(np.fft.rfftfreq(16 * grid.size, d=0.25)[np.argmax(spectrum)])


@pytest.mark.parametrize("sf", [0.02, 0.04, 0.08])
def test_grating_has_requested_spatial_frequency(sf):
    screen = Screen()
    elevation, azimuth = screen.visual_angles
    row, col = SCREEN_SHAPE[0] // 2, SCREEN_SHAPE[1] // 2
    horizontal = stimuli.drifting_grating(
        _rng(0),
        3,
        n_segments=1,
        direction_deg=0.0,
        spatial_freq_cpd=sf,
        contrast=1.0,
        waveform="sine",
    )
    vertical = stimuli.drifting_grating(
        _rng(0),
        3,
        n_segments=1,
        direction_deg=90.0,
        spatial_freq_cpd=sf,
        contrast=1.0,
        waveform="sine",
    )
    found_h = _peak_frequency(azimuth[row], horizontal[0, row])
    found_v = _peak_frequency(elevation[::-1, col], vertical[0, ::-1, col])
    assert found_h == pytest.approx(sf, rel=0.1)
    assert found_v == pytest.approx(sf, rel=0.15)
    assert np.ptp(horizontal[0, :, col]) <= 2  # direction 0: constant along elevation


def test_grating_drifts_at_requested_temporal_frequency_and_direction():
    movie = stimuli.drifting_grating(
        _rng(1),
        300,
        n_segments=1,
        direction_deg=0.0,
        spatial_freq_cpd=0.04,
        temporal_freq_hz=2.0,
        contrast=1.0,
    )
    trace = movie[:, 18, 32] - movie[:, 18, 32].mean()
    peak_hz = np.fft.rfftfreq(300, d=1 / 30)[np.argmax(np.abs(np.fft.rfft(trace)))]
    assert peak_hz == pytest.approx(2.0, abs=0.05)
    # 2 Hz / 0.04 cpd = 50 deg/s towards +azimuth: frame 3 is frame 0 shifted right by 5 deg.
    azimuth = Screen().visual_angles[1][18]
    grid = np.arange(-40.0, 40.0, 0.25)
    first, later = (np.interp(grid, azimuth, movie[i, 18]) for i in (0, 3))
    shifts = np.arange(-40, 41)
    errors = [np.mean((np.roll(first, s)[60:-60] - later[60:-60]) ** 2) for s in shifts]
    assert shifts[int(np.argmin(errors))] * 0.25 == pytest.approx(5.0, abs=0.5)


def test_grating_changes_and_blanks():
    movie, description = stimuli.make_stimulus(_rng(2), "grating")
    segments = description["segments"]
    assert 2 <= len(segments) <= 4
    assert segments[0]["start"] == 0 and segments[-1]["stop"] == 300
    for segment in segments:
        assert 0.015 <= segment["spatial_freq_cpd"] <= 0.12
        assert 0.5 <= segment["temporal_freq_hz"] <= 4.0
        assert segment["stop"] - segment["start"] >= 30
        blank = movie[segment["start"] : segment["start"] + segment["blank_frames"]]
        assert np.all(blank == 128)


# --- pink noise and dots ----------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pink_noise_power_falls_with_frequency(seed):
    movie = stimuli.pink_noise(_rng(seed))
    centred = movie - movie.mean()
    spatial = (np.abs(np.fft.fft2(centred)) ** 2).mean(axis=0)
    radius = np.hypot(*np.meshgrid(np.fft.fftfreq(36), np.fft.fftfreq(64), indexing="ij"))
    low, high = (radius > 0) & (radius <= 0.1), radius >= 0.3
    assert spatial[low].mean() > 10 * spatial[high].mean()
    temporal = (np.abs(np.fft.rfft(centred, axis=0)) ** 2).mean(axis=(1, 2))
    hz = np.fft.rfftfreq(300, d=1 / 30)
    assert temporal[(hz > 0) & (hz <= 0.5)].mean() > 4 * temporal[hz >= 8].mean()
    assert abs(movie.mean() - 128) < 3


def test_dots_are_disks_on_gray():
    movie, description = stimuli.make_stimulus(_rng(4), "dots")
    assert 1 <= len(description["dots"]) <= 8
    values, counts = np.unique(movie, return_counts=True)
    assert values[np.argmax(counts)] == 128  # the background
    single = stimuli.moving_dots(_rng(4), 60, n_dots=1, boundary="bounce")
    assert np.all((single != 128).sum(axis=(1, 2)) > 0)  # a bouncing dot never leaves


# --- user movies ------------------------------------------------------------------------------


def test_npy_at_60_fps_halves_the_frame_count(tmp_path):
    movie = np.tile(np.arange(300, dtype=np.uint8)[:, None, None] % 200, (1, 72, 128))
    path = tmp_path / "movie.npy"
    np.save(path, movie)
    out = load_user_movie(path, fps=60)
    assert out.shape == (150, *SCREEN_SHAPE) and out.dtype == np.float32
    assert np.array_equal(out[:, 0, 0], movie[::2, 0, 0])


def test_resample_area_averages_the_centred_window():
    frame = np.zeros((100, 128))
    frame[14:86] = np.kron(np.arange(36 * 64).reshape(36, 64) % 251, np.ones((2, 2)))
    out = resample_movie(frame[None], fps=30)
    assert np.array_equal(out[0], np.arange(36 * 64).reshape(36, 64) % 251)


def test_resample_converts_value_conventions():
    rgb = np.zeros((4, 36, 64, 4), np.float32)
    rgb[..., 1] = 1.0  # pure green, alpha ignored
    assert np.all(resample_movie(rgb, 30) == round(0.7154 * 255))
    assert np.all(resample_movie(np.full((2, 36, 64), 300.0), 30) == 255)
    assert np.all(resample_movie(np.full((2, 36, 64), 7, np.int16), 30) == 7)
    halfway = resample_movie(np.stack([np.zeros((36, 64)), np.full((36, 64), 100.0)]), 15)
    assert halfway.shape[0] == 4 and np.array_equal(halfway[:, 0, 0], [0, 50, 100, 100])


def test_mp4_is_read_resized_and_resampled(tmp_path):
    path = tmp_path / "clip.mp4"
    levels = np.linspace(60, 200, 20)
    writer = imageio_ffmpeg.write_frames(str(path), (128, 72), fps=15, macro_block_size=8)
    writer.send(None)
    for level in levels:
        writer.send(np.full((72, 128, 3), level, np.uint8).tobytes())
    writer.close()
    out = load_user_movie(path)
    assert out.shape == (40, *SCREEN_SHAPE) and out.dtype == np.float32
    assert np.array_equal(out, np.round(out))
    assert np.abs(out.mean(axis=(1, 2))[::2] - levels).max() < 6


def _save(tmp_path, name, array):
    path = tmp_path / name
    np.save(path, array)
    return path


@pytest.mark.parametrize(
    ("case", "fps", "message"),
    [
        ("missing", 30, "no such"),
        ("extension", 30, "unsupported"),
        ("corrupt", None, "cannot read"),
        ("ndim", 30, "shape"),
        ("dtype", 30, "dtype"),
        ("nan", 30, "NaN"),
        ("empty", 30, "no frames"),
        ("no_fps", None, "fps"),
        ("zero_fps", 0, "fps"),
        ("negative_fps_video", -5, "fps"),
    ],
)
def test_bad_user_movies_name_the_file(tmp_path, case, fps, message):
    frames = np.zeros((5, 36, 64), np.uint8)
    if case == "missing":
        path = tmp_path / "absent.npy"
    elif case == "extension":
        path = tmp_path / "notes.txt"
        path.write_text("not a movie")
    elif case in ("corrupt", "negative_fps_video"):
        path = tmp_path / f"{case}.mp4"
        path.write_bytes(_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
        if case == "negative_fps_video":
            writer = imageio_ffmpeg.write_frames(str(path), (64, 48), fps=10, macro_block_size=8)
            writer.send(None)
            writer.send(np.zeros((48, 64, 3), np.uint8).tobytes())
            writer.close()
    else:
        array = {
            "ndim": frames[0],
            "dtype": np.full((5, 36, 64), "a"),
            "nan": np.full((5, 36, 64), np.nan),
            "empty": frames[:0],
        }.get(case, frames)
        path = _save(tmp_path, f"{case}.npy", array)
    with pytest.raises(SimulationError, match=message) as caught:
        load_user_movie(path, fps=fps)
    assert path.name in str(caught.value)
