"""Export from the viewer: every format reads back equal to the layers' frames in the
chosen range; side by side, sidecars, refusals; the npe2 writer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from napari.utils.colormaps import ensure_colormap

from napari_movierecon._napari.writer import write_image
from napari_movierecon.errors import MovieReconError
from napari_movierecon.io.export import LABEL_PX, display_rgb, read_frames

FIRST, LAST = 5, 14


def _setup(ready, tmp_path, fmt, names, side_by_side=True):
    widget = ready.export
    widget.set_chosen(names)
    widget.first.setValue(FIRST)
    widget.last.setValue(LAST)
    widget.format.setCurrentText(fmt)
    widget.side_by_side.setChecked(side_by_side)
    widget.scale.setValue(1)
    widget.path.setText(str(tmp_path / "clip"))
    return widget


def _displayed(layer, frames):
    lut = ensure_colormap(layer.colormap).map(np.linspace(0, 1, 256))
    return display_rgb(frames, layer.contrast_limits, lut)


@pytest.mark.parametrize("fmt", ["npy", "tiff"])
def test_raw_formats_read_back_equal_to_the_layer(ready, tmp_path, fmt):
    truth = ready.viewer.layers[0]
    widget = _setup(ready, tmp_path, fmt, [truth.name])
    written = widget.export()
    assert [p.name for p in written] == [f"clip.{fmt}", f"clip.{fmt}.json"]
    np.testing.assert_array_equal(read_frames(written[0]), truth.data[FIRST : LAST + 1])
    sidecar = json.loads(written[1].read_text())
    assert sidecar["export"]["frames"] == {"start": FIRST, "stop": LAST + 1, "count": 10}


def test_gif_reads_back_as_displayed(ready, tmp_path):
    truth = ready.viewer.layers[0]
    widget = _setup(ready, tmp_path, "gif", [truth.name])
    written = widget.export()
    frames = read_frames(written[0])
    np.testing.assert_array_equal(frames, _displayed(truth, truth.data[FIRST : LAST + 1]))


def test_side_by_side_mp4_of_a_run_with_its_record(ready, tmp_path, qtbot):
    ready.set_params(iterations=2, members=1, snapshot_every=1)
    run = ready.run.start_run()
    qtbot.waitUntil(
        lambda: not run.active and not run.worker.is_running and run.complete, timeout=120_000
    )
    truth = ready.viewer.layers[0]
    names = [truth.name, run.movie_layer.name, run.map_layer.name]
    widget = _setup(ready, tmp_path, "mp4", names)
    widget.scale.setValue(2)
    widget.labels.setChecked(False)
    written = widget.export()
    frames = read_frames(written[0])
    assert frames.shape == (10, 72, (3 * 64 + 2 * 4) * 2, 3)
    # the left panel is the ground truth as displayed (lossy codec: small error)
    expected = _displayed(truth, truth.data[FIRST : LAST + 1]).repeat(2, 1).repeat(2, 2)
    assert np.abs(frames[:, :, :128].astype(float) - expected).mean() < 3
    record = json.loads(written[1].read_text())["record"]["layers"]
    assert record[run.movie_layer.name]["record"]["population"]["kind"] == "all"
    assert record[run.movie_layer.name]["config"]["iterations"] == 2


def test_one_file_per_layer_and_no_silent_overwrite(ready, tmp_path):
    truth = ready.viewer.layers[0]
    ready.viewer.add_image(np.zeros((300, 36, 64), np.float32), name="zeros")
    widget = _setup(ready, tmp_path, "npy", [truth.name, "zeros"], side_by_side=False)
    written = widget.export()
    assert sorted(p.name for p in written if p.suffix == ".npy") == [
        "clip_ground_truth_trial_10.npy",
        "clip_zeros.npy",
    ]
    stamp = written[0].stat().st_mtime_ns
    assert widget.export() == []
    assert "already exists" in widget.status.text()
    assert written[0].stat().st_mtime_ns == stamp
    widget.overwrite.setChecked(True)
    assert len(widget.export()) == 4


def test_bad_exports_are_refused_and_write_nothing(ready, tmp_path):
    truth = ready.viewer.layers[0]
    widget = _setup(ready, tmp_path, "mp4", [])
    assert widget.export() == [] and "at least one layer" in widget.status.text()
    widget.set_chosen([truth.name])
    widget.first.setValue(290)
    widget.last.setValue(310)
    assert widget.export() == [] and "300 frames" in widget.status.text()
    assert list(tmp_path.iterdir()) == []


def test_current_frame_only(ready, tmp_path):
    truth = ready.viewer.layers[0]
    widget = _setup(ready, tmp_path, "npy", [truth.name])
    ready.viewer.dims.set_current_step(0, 42)
    widget.current_only.setChecked(True)
    written = widget.export()
    np.testing.assert_array_equal(read_frames(written[0]), truth.data[42:43])


def test_npe2_writer_exports_every_frame(tmp_path):
    movie = np.random.default_rng(0).uniform(0, 255, (6, 36, 64)).astype(np.float32)
    attributes = {"name": "movie", "contrast_limits": (0, 255), "colormap": "gray", "metadata": {}}
    written = write_image(str(tmp_path / "movie.tif"), movie, attributes)
    np.testing.assert_array_equal(read_frames(written[0]), movie)
    # napari's save dialog asks before replacing; the writer then replaces atomically
    written = write_image(str(tmp_path / "movie.tif"), movie[:2], attributes)
    np.testing.assert_array_equal(read_frames(written[0]), movie[:2])


def test_npe2_writer_errors_propagate_to_napari(tmp_path):
    attributes = {"name": "movie", "contrast_limits": (0, 255), "colormap": "gray"}
    with pytest.raises(MovieReconError, match=r"unknown file type '\.avi'"):
        write_image(str(tmp_path / "movie.avi"), np.zeros((2, 4, 4)), attributes)
    with pytest.raises(MovieReconError, match="NaN"):
        write_image(str(tmp_path / "movie.npy"), np.full((2, 4, 4), np.nan), attributes)
    assert list(tmp_path.iterdir()) == []


def test_an_existing_folder_receives_the_export(ready, tmp_path):
    truth = ready.viewer.layers[0]
    widget = _setup(ready, tmp_path, "npy", [truth.name])
    widget.path.setText(str(tmp_path))
    written = widget.export()
    assert [p.name for p in written] == ["movierecon_export.npy", "movierecon_export.npy.json"]
    assert all(p.parent == tmp_path for p in written)


def test_a_suffix_that_disagrees_with_the_format_is_refused(ready, tmp_path):
    truth = ready.viewer.layers[0]
    widget = _setup(ready, tmp_path, "mp4", [truth.name])
    widget.path.setText(str(tmp_path / "clip.gif"))
    assert widget.export() == []
    assert "ends in .gif but the format is mp4" in widget.status.text()
    widget.path.setText(str(tmp_path / "clip.TIF"))
    widget.format.setCurrentText("tiff")
    assert [p.name for p in widget.export()] == ["clip.TIF", "clip.TIF.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.TIF", "clip.TIF.json"]


def test_arrays_keep_the_layers_pixels_and_overwrite_is_asked_in_user_words(ready, tmp_path):
    truth = ready.viewer.layers[0]
    widget = _setup(ready, tmp_path, "tiff", [truth.name])
    widget.scale.setValue(4)  # for videos; arrays stay at the layer's size
    assert not widget.scale.isEnabled()
    written = widget.export()
    assert read_frames(written[0]).shape == (10, 36, 64)
    assert widget.export() == []
    text = widget.status.text()
    assert "tick 'overwrite existing files'" in text and "overwrite=True" not in text


def test_side_by_side_labels_are_burned_in_above_the_panels(ready, tmp_path):
    truth = ready.viewer.layers[0]
    ready.viewer.add_image(np.zeros((300, 36, 64), np.float32), name="zeros")
    widget = _setup(ready, tmp_path, "gif", [truth.name, "zeros"])
    widget.scale.setValue(2)
    widget.labels.setChecked(True)
    labelled = read_frames(widget.export()[0])
    assert labelled.shape == (10, LABEL_PX + 72, (2 * 64 + 4) * 2, 3)
    strip = labelled[0, :LABEL_PX]
    assert strip[:, : 64 * 2].max() == 255 and strip[:, 68 * 2 :].max() == 255  # two names
    np.testing.assert_array_equal(
        labelled[:, LABEL_PX:, :128],
        _displayed(truth, truth.data[FIRST : LAST + 1]).repeat(2, 1).repeat(2, 2),
    )
    widget.labels.setChecked(False)
    widget.overwrite.setChecked(True)
    assert read_frames(widget.export()[0]).shape == (10, 72, (2 * 64 + 4) * 2, 3)


def test_panels_of_different_trials_are_not_put_side_by_side(ready, tmp_path):
    truth = ready.viewer.layers[0]
    info = truth.metadata["movierecon"]
    other = ready.viewer.add_image(
        np.zeros((300, 36, 64), np.float32),
        name="run of another trial",
        metadata={"movierecon": {"recording": info["recording"], "trial": info["trial"] + 1}},
    )
    widget = _setup(ready, tmp_path, "mp4", [truth.name, other.name])
    assert widget.export() == []
    assert "panels of different trials cannot go side by side" in widget.status.text()
    assert list(tmp_path.iterdir()) == []
    widget.side_by_side.setChecked(False)  # one file per layer is fine
    assert len(widget.export()) == 4


def test_napari_save_reaches_the_writer_and_reports_its_error(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    viewer.add_image(np.full((3, 8, 8), np.nan, np.float32), name="bad")
    with pytest.raises(MovieReconError, match="NaN or infinite"):
        viewer.layers.save(str(tmp_path / "bad.npy"), plugin="napari-movierecon")
    viewer.layers.clear()
    viewer.add_image(np.ones((3, 8, 8), np.float32), name="ok")
    written = viewer.layers.save(str(tmp_path / "ok.npy"), plugin="napari-movierecon")
    assert sorted(Path(p).name for p in written) == ["ok.npy", "ok.npy.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.npy", "ok.npy.json"]
