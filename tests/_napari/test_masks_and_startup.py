"""The mask dock (compute, show, use; Stop) and the start-up that shows the window
before the sample is built."""

from __future__ import annotations

from napari_movierecon._napari.launch import open_in_background
from napari_movierecon.insilico.mouse_cache import CACHE_ENV


def test_a_coverage_mask_is_computed_shown_and_used_by_the_next_run(
    ready, qtbot, tmp_path, monkeypatch
):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    masks = ready.widgets["Masks"]
    masks.method.setCurrentText("coverage")
    masks.compute()
    assert masks.running and not masks.compute_button.isEnabled()
    qtbot.waitUntil(lambda: not masks.running, timeout=120_000)
    assert masks.mask_file is not None and masks.mask_file.is_file()
    assert masks.mask_file.parent == tmp_path / "masks"
    assert "coverage mask (alpha)" in [layer.name for layer in ready.viewer.layers]
    assert ready.run.mask_edit.text() == str(masks.mask_file)
    ready.set_params(iterations=1, members=1, snapshot_every=1)
    run = ready.run.start_run()
    qtbot.waitUntil(lambda: not run.active, timeout=120_000)
    assert run.caption.startswith("evaluation mask, first")
    assert run.mask_layer in ready.viewer.layers  # drawn over the run's reconstruction
    assert tuple(run.mask_layer.translate) == tuple(run.movie_layer.translate[-2:])
    assert "evaluation mask" in ready.run.status.text()


def test_stop_ends_a_transparency_mask_and_shows_nothing(ready, qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    masks = ready.widgets["Masks"]
    masks.method.setCurrentText("transparency")
    masks.iterations.setValue(1000)
    masks.compute()
    qtbot.waitUntil(lambda: masks.bar.value() >= 1, timeout=120_000)
    masks.stop()
    qtbot.waitUntil(lambda: not masks.running, timeout=30_000)
    assert "stopped" in masks.status.text()
    assert masks.mask_file is None
    assert not any("mask (alpha)" in layer.name for layer in ready.viewer.layers)
    assert masks.compute_button.isEnabled()


def test_the_window_is_usable_while_the_sample_builds(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    widgets, _ = open_in_background(viewer)
    # the docks are there and the canvas says what is going on before any layer exists
    assert len(viewer.layers) == 0
    assert set(widgets) == {
        "Recording and trial",
        "Neuron population",
        "Masks",
        "Reconstruction",
        "Export",
        "Plots",
        "Neural activity",
    }
    overlay = viewer.canvas.overlays["text"]
    assert overlay.visible and "building" in overlay.text
    session = widgets["Reconstruction"].session
    qtbot.waitUntil(
        lambda: session.trial is not None and session.population is not None, timeout=120_000
    )
    assert not overlay.visible
    assert [layer.metadata["movierecon"]["role"] for layer in viewer.layers] == [
        "truth",
        "map_scale",
        "neurons",
    ]
