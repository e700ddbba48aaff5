"""A run's life as a user sees it: set-up off the Qt thread, Stop that really stops,
runs that belong to their trial, saving and reopening, removal, honest captions,
a window that fits a laptop screen."""

from __future__ import annotations

import gc
import threading
import time
import weakref

import numpy as np
import pytest

from napari_movierecon._napari import run_widget as run_widget_module
from napari_movierecon._napari.export_widget import export_layers
from napari_movierecon._napari.run_status import RunState
from napari_movierecon._napari.session import TAG, find_layer
from napari_movierecon.errors import MovieReconError
from napari_movierecon.reconstruct.job import ReconstructionJob
from napari_movierecon.reconstruct.results import load_reconstruction

SHORT = {"members": 1, "snapshot_every": 1}


def _finish(qtbot, run, timeout=120_000):
    qtbot.waitUntil(
        lambda: not run.active and not run.worker.is_running and run.complete, timeout=timeout
    )


def _other_trial(ready) -> int:
    shown = ready.session.trial.index
    return next(int(i) for i in ready.session.recording.trials_in("final_test_main") if i != shown)


def _show(ready, qtbot, index: int) -> None:
    with qtbot.waitSignal(ready.session.trial_changed, timeout=60_000):
        ready.recording.show_trial(index)


def test_the_window_fits_a_1366x768_screen(ready, qtbot):
    window = ready.viewer.window._qt_window
    hint = window.minimumSizeHint()
    assert hint.width() <= 1366 and hint.height() <= 768, hint
    window.resize(1366, 768)
    qtbot.wait(100)
    assert window.height() <= 768 and window.width() <= 1366
    canvas = ready.viewer.window._qt_viewer.canvas.native
    assert canvas.height() >= 200 and canvas.width() >= 400  # room to see the movie


def test_run_returns_before_the_job_and_engine_are_built(ready, qtbot, monkeypatch):
    built_in, started_in = [], []
    make_job, start = run_widget_module.make_job, ReconstructionJob.start

    def recording_make_job(*args):
        built_in.append(threading.current_thread())
        return make_job(*args)

    def recording_start(self, *args, **kwargs):
        started_in.append(threading.current_thread())
        return start(self, *args, **kwargs)

    monkeypatch.setattr(run_widget_module, "make_job", recording_make_job)
    monkeypatch.setattr(ReconstructionJob, "start", recording_start)
    ready.set_params(iterations=1, **SHORT)
    layers = len(ready.viewer.layers)
    run = ready.run.start_run()
    assert run.state in (RunState.STARTING, RunState.RUNNING)
    assert not ready.run.run_button.isEnabled() and ready.run.stop_button.isEnabled()
    # napari's layer adds (~100 ms each) come after the click, one per event-loop turn
    assert len(ready.viewer.layers) == layers and ready.run.run_list.count() == 1
    with qtbot.waitSignal(run.layers_added, timeout=10_000):
        pass
    assert {"reconstruction", "correlation_map"} <= set(run.layers)
    _finish(qtbot, run)
    assert run.state == RunState.FINISHED
    main = threading.main_thread()
    assert built_in and started_in
    assert main not in built_in and main not in started_in


def test_iterations_start_once_the_runs_layers_are_in(ready, qtbot, monkeypatch):
    """The worker sets up while the layers are added, but iterates only after: both at
    once share the CPU and slow the first picture down."""
    from napari_movierecon._napari.run_view import RunView

    add_map = RunView._add_map_layer

    def slow_add_map(self):  # a slow canvas: the worker would be done before it
        time.sleep(1.5)
        add_map(self)

    monkeypatch.setattr(RunView, "_add_map_layer", slow_add_map)
    ready.set_params(iterations=4, **SHORT)
    run = ready.run.start_run()
    order = []
    run.layers_added.connect(lambda *_: order.append(("layers", len(run.history))))
    with qtbot.waitSignal(run.layers_added, timeout=30_000):
        pass
    _finish(qtbot, run)
    assert order == [("layers", 0)]  # no snapshot had arrived when the layers were in
    assert [it for it, *_ in run.history] == [1, 2, 3, 4]


def test_stop_in_the_first_iteration_really_stops(ready, qtbot):
    ready.set_params(iterations=500, members=3, snapshot_every=1)
    run = ready.run.start_run()
    states = []
    run.status.events.state.connect(lambda state: states.append(state))
    qtbot.waitUntil(lambda: run.job is not None, timeout=60_000)  # set-up done, iterating
    ready.run.stop_run()
    assert run.state == RunState.STOPPING
    _finish(qtbot, run, timeout=10_000)
    assert run.state == RunState.STOPPED and states[-2:] == [RunState.STOPPING, RunState.STOPPED]
    assert run.last is None or run.last.iteration <= 1
    seen = len(run.history)
    qtbot.wait(500)
    assert len(run.history) == seen  # nothing streams after the end
    assert ready.run.run_button.isEnabled() and not ready.run.stop_button.isEnabled()
    assert "stopped" in ready.run.status.text()


def test_runs_are_named_after_their_population_and_belong_to_their_trial(ready, qtbot, tmp_path):
    ready.set_params(iterations=1, **SHORT)
    ready.population.name.setText("my neurons")
    ready.population.mode.setCurrentText("top-k reliable")
    first = ready.run.start_run()
    _finish(qtbot, first)
    assert first.name == "my neurons"
    assert {f"my neurons {part}" for part in ("reconstruction", "correlation map")} <= {
        layer.name for layer in ready.viewer.layers
    }
    for layer in first.layers.values():
        info = layer.metadata[TAG]
        assert info["recording"] == ready.session.recording.name
        assert info["trial"] == ready.session.trial.index
    # the canvas label says which panel is which
    labels = find_layer(ready.viewer, "run_labels")
    assert list(labels.features["label"]) == ["my neurons", "my neurons", "ground truth"]
    # every correlation on screen says what it was computed over
    assert "full frame, first" in ready.run.status.text() and "frames skipped" in first.caption
    assert first.caption in ready.plots.corr_plot.getPlotItem().titleLabel.text
    assert first.map_layer.colorbar.visible

    shown_trial = ready.session.trial.index
    _show(ready, qtbot, _other_trial(ready))
    assert not any(layer.visible for layer in first.layers.values())
    second = ready.run.start_run()
    _finish(qtbot, second)
    assert second.name == "my neurons (2)"
    # the new trial's run takes the first row, next to the new ground truth
    truth = find_layer(ready.viewer, "truth")
    np.testing.assert_array_equal(
        second.movie_layer.translate[-2:], truth.translate[-2:] + np.array([0, 64 + 4])
    )
    with pytest.raises(MovieReconError, match="different trials"):
        export_layers(
            [first.movie_layer, second.movie_layer],
            tmp_path / "x.mp4",
            range(0, 2),
            side_by_side=True,
            fps=30,
            scale=1,
            overwrite=False,
        )
    assert not (tmp_path / "x.mp4").exists()

    _show(ready, qtbot, shown_trial)
    assert all(layer.visible for layer in first.layers.values())
    assert not any(layer.visible for layer in second.layers.values())

    first.rename("renamed")
    assert first.movie_layer.name == "renamed reconstruction"
    ready.run.run_list.item(0).setText("renamed again")  # as a double-click edit does
    assert first.movie_layer.name == "renamed again reconstruction"
    labels = find_layer(ready.viewer, "run_labels")  # shown runs only: the first
    assert list(labels.features["label"]) == ["renamed again", "renamed again", "ground truth"]


def test_a_saved_run_reopens_beside_its_own_ground_truth_once(ready, qtbot, tmp_path):
    ready.set_params(iterations=2, **SHORT)
    run = ready.run.start_run()
    _finish(qtbot, run)
    path = ready.run.save_run(run, tmp_path / "saved.safetensors")
    saved = load_reconstruction(path)
    np.testing.assert_array_equal(saved.movie, run.last.movie)
    assert saved.record["trial"] == run.trial and saved.record["completed"]
    np.testing.assert_array_equal(saved.truth, ready.session.trial.movie)

    before = len(ready.viewer.layers)
    ready.viewer.open(str(path), plugin="napari-movierecon")
    qtbot.waitUntil(lambda: len(ready.session.runs) == 2, timeout=5_000)
    reopened = ready.session.runs[-1]
    assert reopened.file == path.resolve() and reopened.state == RunState.FINISHED
    # truth, reconstruction and map: one row of its own, under the live run's
    truth, movie = reopened.layers["truth"], reopened.movie_layer
    assert len(ready.viewer.layers) == before + 3
    assert truth.translate[-2:][0] == movie.translate[-2:][0] > run.movie_layer.translate[-2]
    assert truth.translate[-1] == 0 and movie.translate[-1] == 64 + 4
    np.testing.assert_array_equal(truth.data, ready.session.trial.movie)

    ready.viewer.open(str(path), plugin="napari-movierecon")
    qtbot.wait(200)
    assert len(ready.viewer.layers) == before + 3 and len(ready.session.runs) == 2


def _two_runs_remove_first(ready, qtbot):
    """Two finished runs, the first removed; a weak reference to it and the second."""
    first = ready.run.start_run()
    _finish(qtbot, first)
    second = ready.run.start_run()
    _finish(qtbot, second)
    layers = list(first.layers.values())
    ready.run.remove_run(first)
    assert not any(layer in ready.viewer.layers for layer in layers)
    assert first not in ready.session.runs and first not in ready.plots.curves
    return weakref.ref(first), second


def test_removing_a_run_frees_its_layers(ready, qtbot):
    ready.set_params(iterations=1, **SHORT)
    gone, second = _two_runs_remove_first(ready, qtbot)
    assert ready.run.run_list.count() == 1
    # the second run moves up into the first row
    assert second.movie_layer.translate[-2] == 0
    gc.collect()
    assert gone() is None


def test_fast_encoders_start_at_once_whatever_their_size():
    """The sample ensemble's block readouts make it larger than the size above which
    other encoders wait for a cost estimate; a FastEncoder run still starts at once."""
    from napari_movierecon._napari.cost_confirm import MEASURE_AT_ONCE_BELOW, CostGate
    from napari_movierecon.sources import open_encoder

    sample = open_encoder("sample")
    assert sum(p.numel() for p in sample.parameters()) >= MEASURE_AT_ONCE_BELOW
    assert not CostGate.gates(sample)
