"""Exporting movie layers' frames: formats, read-back, sidecar, refusals, atomicity."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from napari_movierecon.errors import MovieReconError
from napari_movierecon.io import export
from napari_movierecon.io.export import (
    GAP_PX,
    SUPPORTED_SUFFIXES,
    Panel,
    display_rgb,
    export_frames,
    read_frames,
)


def smooth_movie(frames: int = 12, height: int = 24, width: int = 32) -> np.ndarray:
    """A slowly drifting sine grating, (T, H, W) float32 in about -1..3."""
    t = np.arange(frames)[:, None, None] / frames
    y = np.linspace(0.0, 1.0, height)[None, :, None]
    x = np.linspace(0.0, 1.0, width)[None, None, :]
    return (1.0 + 1.8 * np.sin(2 * np.pi * (x + 0.5 * y + t))).astype(np.float32)


def random_movie(frames: int = 5, height: int = 7, width: int = 9, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(frames, height, width)).astype(np.float32)


def listing(folder) -> list[str]:
    return sorted(os.listdir(folder))


# ---------------------------------------------------------------- raw formats


@pytest.mark.parametrize("suffix", [".npy", ".tif", ".tiff"])
def test_raw_single_panel_reads_back_exactly(tmp_path, suffix):
    movie = random_movie()
    written = export_frames([Panel(movie, (-1.0, 1.0), name="recon")], tmp_path / f"m{suffix}")
    assert written == [tmp_path / f"m{suffix}"]
    back = read_frames(written[0])
    assert back.dtype == np.float32
    np.testing.assert_array_equal(back, movie)
    assert listing(tmp_path) == [f"m{suffix}"]


@pytest.mark.parametrize("suffix", [".npy", ".tif"])
def test_raw_scale_repeats_pixels(tmp_path, suffix):
    movie = random_movie()
    path = tmp_path / f"m{suffix}"
    export_frames([Panel(movie, (-1.0, 1.0))], path, scale=2)
    expected = np.repeat(np.repeat(movie, 2, axis=1), 2, axis=2)
    np.testing.assert_array_equal(read_frames(path), expected)


def test_raw_tiff_single_frame_keeps_time_axis(tmp_path):
    movie = random_movie(frames=1)
    export_frames([Panel(movie, (-1.0, 1.0))], tmp_path / "one.tif")
    np.testing.assert_array_equal(read_frames(tmp_path / "one.tif"), movie)


def test_raw_float64_input_is_stored_as_float32(tmp_path):
    movie = random_movie().astype(np.float64)
    export_frames([Panel(movie, (-1.0, 1.0))], tmp_path / "m.npy")
    back = read_frames(tmp_path / "m.npy")
    assert back.dtype == np.float32
    np.testing.assert_array_equal(back, movie.astype(np.float32))


@pytest.mark.parametrize("suffix", [".npy", ".tiff"])
def test_several_panels_write_displayed_rgb_side_by_side(tmp_path, suffix):
    left, right = random_movie(width=9), random_movie(width=5, seed=1)
    lut = np.array([[0.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    panels = [Panel(left, (-1.0, 1.0)), Panel(right, (0.0, 2.0), lut)]
    path = tmp_path / f"pair{suffix}"
    export_frames(panels, path)
    back = read_frames(path)
    assert back.dtype == np.uint8
    assert back.shape == (5, 7, 9 + GAP_PX + 5, 3)
    np.testing.assert_array_equal(back[:, :, :9], display_rgb(left, (-1.0, 1.0)))
    assert not back[:, :, 9 : 9 + GAP_PX].any()
    np.testing.assert_array_equal(back[:, :, 9 + GAP_PX :], display_rgb(right, (0.0, 2.0), lut))


# ---------------------------------------------------------------- display


def test_two_colour_lut_maps_lo_to_first_and_hi_to_last():
    lut = np.array([[1.0, 0.0, 0.0], [0.0, 0.5, 1.0]])
    values = np.array([-5.0, 2.0, 10.0, 20.0, 2.9, 9.1])
    rgb = display_rgb(values, (2.0, 10.0), lut)
    red, blue = [255, 0, 0], [0, 128, 255]
    np.testing.assert_array_equal(rgb, [red, red, blue, blue, red, blue])


def test_grey_display_rounds_to_255_levels_and_alpha_goes_over_black():
    values = np.array([0.0, 0.5, 1.0, 0.25])
    grey = display_rgb(values, (0.0, 1.0))
    np.testing.assert_array_equal(grey[:, 0], [0, 128, 255, 64])
    np.testing.assert_array_equal(grey[:, 0], grey[:, 2])
    half_white = np.array([[1.0, 1.0, 1.0, 0.5], [1.0, 1.0, 1.0, 0.5]])
    np.testing.assert_array_equal(display_rgb(np.array([1.0]), (0.0, 1.0), half_white), [[128] * 3])


# ---------------------------------------------------------------- gif


def test_gif_grey_single_panel_reads_back_exactly(tmp_path):
    movie = smooth_movie()
    movie[3:6] = movie[2]  # identical consecutive frames must stay separate frames
    path = tmp_path / "m.gif"
    export_frames([Panel(movie, (-0.5, 2.5))], path, fps=20)
    back = read_frames(path)
    assert back.shape == (12, 24, 32, 3)
    np.testing.assert_array_equal(back, display_rgb(movie, (-0.5, 2.5)))

    from PIL import Image

    with Image.open(path) as image:
        assert image.n_frames == 12
        assert image.info["duration"] == 50


def test_gif_colour_panels_with_scale_read_back_exactly(tmp_path):
    movie = smooth_movie(frames=4, height=6, width=8)
    lut = np.array([[0.0, 0.0, 0.0], [1.0, 0.5, 0.0], [1.0, 1.0, 1.0]])
    panels = [Panel(movie, (-1.0, 3.0)), Panel(movie, (-1.0, 3.0), lut)]
    path = tmp_path / "pair.gif"
    export_frames(panels, path, scale=3)
    back = read_frames(path)
    assert back.shape == (4, 18, (8 + GAP_PX + 8) * 3, 3)
    right = np.repeat(np.repeat(display_rgb(movie, (-1.0, 3.0), lut), 3, axis=1), 3, axis=2)
    np.testing.assert_array_equal(back[:, :, -24:], right)


# ---------------------------------------------------------------- mp4


def test_mp4_is_close_to_the_displayed_frames(tmp_path):
    movie = smooth_movie()
    path = tmp_path / "m.mp4"
    export_frames([Panel(movie, (-1.0, 3.0))], path, fps=15)
    back = read_frames(path)
    assert back.shape == (12, 24, 32, 3)
    error = np.abs(back.astype(np.float64) - display_rgb(movie, (-1.0, 3.0)))
    assert error.mean() < 3.0
    assert listing(tmp_path) == ["m.mp4"]


def test_mp4_size_with_scale_side_by_side_and_odd_padding(tmp_path):
    left, right = (
        smooth_movie(frames=5, height=9, width=10),
        smooth_movie(frames=5, height=9, width=7),
    )
    path = tmp_path / "pair.mp4"
    export_frames([Panel(left, (-1.0, 3.0)), Panel(right, (-1.0, 3.0))], path, scale=2)
    assert read_frames(path).shape == (5, 18, (10 + GAP_PX + 7) * 2, 3)

    odd = tmp_path / "odd.mp4"
    export_frames([Panel(right, (-1.0, 3.0))], odd, record={})
    back = read_frames(odd)
    assert back.shape == (5, 10, 8, 3)  # 9 x 7 padded to even with black
    assert back[:, -1].max() < 20 and back[:, :, -1].max() < 20
    sidecar = json.loads((tmp_path / "odd.mp4.json").read_text())
    assert (sidecar["export"]["height"], sidecar["export"]["width"]) == (10, 8)


# ---------------------------------------------------------------- sidecar


def test_sidecar_records_export_and_caller_record(tmp_path):
    movie = smooth_movie(frames=4, height=6, width=8)
    lut = np.linspace(0.0, 1.0, 256)[:, None].repeat(3, axis=1)
    panels = [Panel(movie, (0.0, 2.0), name="truth"), Panel(movie, (-1, 3), lut, name="recon")]
    record = {
        "config": {"steps": 100, "lr": np.float32(0.5)},
        "population": np.arange(3),
        "metrics": {"corr": 0.8, "undefined": float("nan")},
        "source": tmp_path / "rec",
    }
    written = export_frames(
        panels, tmp_path / "m.gif", fps=25, scale=2, record=record, first_frame=10
    )
    assert written == [tmp_path / "m.gif", tmp_path / "m.gif.json"]
    data = json.loads(written[1].read_text())
    info = data["export"]
    assert info["file"] == "m.gif" and info["format"] == "gif"
    assert info["frames"] == {"start": 10, "stop": 14, "count": 4}
    assert (info["fps"], info["scale"], info["gap_px"]) == (25.0, 2, GAP_PX)
    assert [p["name"] for p in info["panels"]] == ["truth", "recon"]
    assert [p["contrast_limits"] for p in info["panels"]] == [[0.0, 2.0], [-1.0, 3.0]]
    assert info["panels"][0]["colormap"] == "gray"
    assert (info["height"], info["width"]) == (12, (8 + GAP_PX + 8) * 2)
    assert data["record"] == {
        "config": {"steps": 100, "lr": 0.5},
        "population": [0, 1, 2],
        "metrics": {"corr": 0.8, "undefined": None},
        "source": str(tmp_path / "rec"),
    }


def test_no_sidecar_without_record(tmp_path):
    export_frames([Panel(random_movie(), (0, 1))], tmp_path / "m.npy")
    assert listing(tmp_path) == ["m.npy"]


def test_unserialisable_record_is_refused_before_writing(tmp_path):
    with pytest.raises(MovieReconError, match="record"):
        export_frames([Panel(random_movie(), (0, 1))], tmp_path / "m.npy", record={"f": object()})
    assert listing(tmp_path) == []


# ---------------------------------------------------------------- overwrite / atomicity


def test_refuses_to_overwrite_media_or_sidecar(tmp_path):
    panels = [Panel(random_movie(), (0, 1))]
    media = tmp_path / "m.mp4"
    media.write_bytes(b"precious")
    with pytest.raises(MovieReconError, match=r"m\.mp4"):
        export_frames(panels, media)
    assert media.read_bytes() == b"precious"

    sidecar = tmp_path / "n.npy.json"
    sidecar.write_text("{}")
    with pytest.raises(MovieReconError, match=r"n\.npy\.json"):
        export_frames(panels, tmp_path / "n.npy", record={})
    assert listing(tmp_path) == ["m.mp4", "n.npy.json"]
    assert sidecar.read_text() == "{}"


def test_overwrite_replaces_both_files(tmp_path):
    movie = random_movie()
    path = tmp_path / "m.npy"
    export_frames([Panel(movie * 0, (0, 1))], path, record={"run": 1})
    export_frames([Panel(movie, (0, 1))], path, record={"run": 2}, overwrite=True)
    np.testing.assert_array_equal(read_frames(path), movie)
    assert json.loads((tmp_path / "m.npy.json").read_text())["record"] == {"run": 2}
    assert listing(tmp_path) == ["m.npy", "m.npy.json"]


def test_unwritable_folder_is_named_and_left_empty(tmp_path):
    panels = [Panel(random_movie(), (0, 1))]
    if os.geteuid() == 0:  # root writes anywhere: use a "folder" that is a file
        blocker = tmp_path / "file.txt"
        blocker.write_text("x")
        target = blocker / "out.mp4"
        with pytest.raises(MovieReconError, match=r"file\.txt"):
            export_frames(panels, target, record={})
        assert listing(tmp_path) == ["file.txt"] and blocker.read_text() == "x"
        return
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        with pytest.raises(MovieReconError, match="locked"):
            export_frames(panels, locked / "out.mp4", record={})
        assert listing(locked) == []
    finally:
        locked.chmod(0o755)


def test_failure_while_encoding_leaves_nothing_behind(tmp_path, monkeypatch):
    calls = []

    def failing(rgb):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("encoder broke")
        return original(rgb)

    original = export._palette_image
    monkeypatch.setattr(export, "_palette_image", failing)
    with pytest.raises(MovieReconError, match="encoder broke"):
        export_frames([Panel(random_movie(), (0, 1))], tmp_path / "m.gif", record={})
    assert listing(tmp_path) == []


def test_failed_commit_restores_the_previous_files(tmp_path, monkeypatch):
    path = tmp_path / "m.npy"
    export_frames([Panel(random_movie(), (0, 1))], path, record={"run": 1})
    before = path.read_bytes(), (tmp_path / "m.npy.json").read_bytes()
    real_replace = os.replace

    def replace(src, dst):
        if str(dst).endswith(".json") and ".tmp-" in str(src):
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(export.os, "replace", replace)
    with pytest.raises(MovieReconError, match="No space left"):
        export_frames(
            [Panel(random_movie(seed=5), (0, 1))], path, record={"run": 2}, overwrite=True
        )
    assert (path.read_bytes(), (tmp_path / "m.npy.json").read_bytes()) == before
    assert listing(tmp_path) == ["m.npy", "m.npy.json"]


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("panels", "match"),
    [
        ([], "empty"),
        ([Panel(np.zeros((0, 4, 4)), (0, 1))], "no frames"),
        ([Panel(np.zeros((4, 4)), (0, 1))], r"\(T, H, W\)"),
        ([Panel(np.full((2, 3, 3), np.nan), (0, 1), name="bad")], "'bad'.*NaN"),
        ([Panel(np.zeros((2, 3, 3)), (0, 1)), Panel(np.zeros((3, 3, 3)), (0, 1))], "frames"),
        ([Panel(np.zeros((2, 3, 3)), (0, 1)), Panel(np.zeros((2, 4, 3)), (0, 1))], "height"),
        ([Panel(np.zeros((2, 3, 3)), (1, 1))], "lo < hi"),
        ([Panel(np.zeros((2, 3, 3)), (0, 1), np.zeros((256, 2)))], "lookup table"),
    ],
)
def test_bad_panels_are_refused(tmp_path, panels, match):
    with pytest.raises(MovieReconError, match=match):
        export_frames(panels, tmp_path / "m.mp4", record={})
    assert listing(tmp_path) == []


def test_unknown_suffix_lists_the_supported_ones(tmp_path):
    with pytest.raises(MovieReconError) as info:
        export_frames([Panel(random_movie(), (0, 1))], tmp_path / "m.avi")
    assert all(suffix in str(info.value) for suffix in SUPPORTED_SUFFIXES)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"scale": 0}, "scale"),
        ({"scale": 1.5}, "scale"),
        ({"scale": True}, "scale"),
        ({"fps": 0}, "fps"),
        ({"fps": float("nan")}, "fps"),
        ({"first_frame": -1}, "first_frame"),
    ],
)
def test_bad_options_are_refused(tmp_path, options, match):
    with pytest.raises(MovieReconError, match=match):
        export_frames([Panel(random_movie(), (0, 1))], tmp_path / "m.gif", **options)
    assert listing(tmp_path) == []


def test_read_frames_names_a_missing_file(tmp_path):
    with pytest.raises(MovieReconError, match=r"nothing\.mp4"):
        read_frames(tmp_path / "nothing.mp4")


def test_panels_of_different_trials_are_refused_side_by_side(tmp_path):
    movie = random_movie(seed=1)
    truth = Panel(movie, (0, 1), name="truth", trial=("mouse A", 3))
    same = Panel(movie, (0, 1), name="run", trial=(None, 3))  # recording unknown: trial decides
    export_frames([truth, same, Panel(movie, (0, 1), name="untagged")], tmp_path / "ok.gif")
    for other in (("mouse A", 4), ("mouse B", 3)):
        panel = Panel(movie, (0, 1), name="other", trial=other)
        with pytest.raises(MovieReconError, match="different trials cannot go side by side"):
            export_frames([truth, panel], tmp_path / "no.gif")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.gif"]
