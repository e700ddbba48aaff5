"""The population picker's modes, the reader, and the full window as a user sees it."""

from __future__ import annotations

import numpy as np

from napari_movierecon._napari.reader import get_reader
from napari_movierecon.reconstruct.results import Reconstruction, save_reconstruction


def test_population_modes_count_and_highlight_live(ready):
    picker, session = ready.population, ready.session
    neurons = session.recording.neurons
    picker.mode.setCurrentText("top-k reliable")
    picker.top_k.setValue(500)
    chosen = session.population.indices
    assert len(chosen) == 500
    assert session.reliability[chosen].min() >= np.sort(session.reliability)[-500]
    assert "500 of 8000" in picker.count.text()
    # the run widget says what Run would start
    status = ready.run.status.text()
    assert "ready: trial" in status and "from 500 neurons" in status
    layer = picker._neurons_layer()
    pale = layer.face_color[:, 3] < 0.5
    assert pale.sum() == 8000 - 500 and not pale[chosen].any()

    picker.mode.setCurrentText("depth range")
    picker.depth_low.setValue(200.0)
    picker.depth_high.setValue(300.0)
    depth = neurons.xyz[:, 2]
    assert len(session.population) == int(((depth >= 200) & (depth <= 300)).sum())

    picker.name.setText("left half")
    picker.mode.setCurrentText("region on map")
    assert session.population is None  # nothing drawn yet
    assert "population is empty" in ready.run.status.text()
    region = picker._region()
    # a rectangle over the left half of the map, in the map's (y, x) µm
    region.add_polygons([np.array([[0, 0], [0, 500], [800, 500], [800, 0]], float)])
    inside = neurons.xyz[:, 0] <= 500
    assert len(session.population) == int(inside.sum())
    assert session.population.name == "left half"
    assert session.population.spec == "region:1 polygon"
    # a second polygon adds its neurons; both are kept as cortical (x, y) µm vertices
    region.add_polygons([np.array([[0, 1000], [0, 1200], [800, 1200], [800, 1000]], float)])
    x = neurons.xyz[:, 0]
    assert len(session.population) == int(((x <= 500) | ((x >= 1000) & (x <= 1200))).sum())
    assert session.population.spec == "region:2 polygons"
    population = session.population.population
    assert population.polygons[1] == (
        (1000.0, 0.0),
        (1200.0, 0.0),
        (1200.0, 800.0),
        (1000.0, 800.0),
    )
    # the outline is drawn a few screen pixels wide, not a fraction of one
    assert region.edge_width[0] * picker._neurons_layer().scale[-1] >= 0.4
    picker.clear_button.click()
    assert len(region.data) == 0 and session.population is None


def test_reader_opens_reconstruction_files_and_ignores_others(tmp_path):
    movie = np.full((30, 36, 64), 100.0, np.float32)
    path = save_reconstruction(
        Reconstruction(
            movie=movie,
            neuron_ids=np.arange(5),
            record={"trial": 3},
            truth=movie + 1,
            correlation_map=np.zeros((36, 64), np.float32),
            mask=np.ones((36, 64), bool),
        ),
        tmp_path / "run.safetensors",
    )
    layers = get_reader(str(path))(str(path))
    names = [kwargs["name"] for _, kwargs, _ in layers]
    assert names == [
        "run reconstruction",
        "run ground truth",
        "run correlation map",
        "run evaluation mask",
    ]
    np.testing.assert_array_equal(layers[0][0], movie)
    (tmp_path / "notes.txt").write_text("hello")
    assert get_reader(str(tmp_path / "notes.txt")) is None
    assert get_reader(str(tmp_path)) is None  # a folder without meta/ and data/


def test_full_window_screenshot_is_not_blank(ready, qtbot):
    qtbot.wait(200)
    image = ready.viewer.screenshot(canvas_only=False, flash=False)
    height, width = image.shape[:2]
    assert height > 500 and width > 800
    docks = ready.viewer.window._qt_window.findChildren(type(ready.run.parentWidget()))
    assert len(docks) >= 5
    rgb = image[..., :3].astype(float)
    assert rgb.std() > 20  # widgets, text and the movie, not one flat colour
    canvas = ready.viewer.screenshot(canvas_only=True, flash=False)[..., :3]
    assert canvas.std() > 10  # the movie and the neuron map are drawn


def test_a_sensorium_folder_opens_and_a_mismatched_encoder_is_reported(ready, tmp_path, qtbot):
    from napari_movierecon.io.sensorium import write_sensorium
    from tests.test_sensorium_io import make_recording

    tiny = make_recording(0, ["train", "oracle", "final_test_main"], [12, 12, 12], 20)
    folder = write_sensorium(tiny, tmp_path / "mouse", pad_to=12)
    layers = ready.viewer.open(folder, plugin="napari-movierecon")
    names = [layer.name for layer in layers]
    assert names == ["ground truth (trial 2)", "map scale (µm)", "neurons (20, cortical µm)"]
    # the recording widget adopts the folder; the sample encoder predicts other neurons
    assert ready.recording.recording_edit.text() == str(folder)
    qtbot.waitUntil(lambda: "error" in ready.recording.info.text(), timeout=30_000)
    assert "8000 neurons" in ready.recording.info.text()
    assert ready.recording.open_button.isEnabled()  # the viewer stays usable
    # the folder's layers replaced the sample's; opening it again adds nothing
    ready.viewer.open(folder, plugin="napari-movierecon")
    qtbot.wait(200)
    assert sorted(layer.name for layer in ready.viewer.layers) == sorted(names)
