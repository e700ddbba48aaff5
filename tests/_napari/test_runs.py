"""Runs in the viewer: live streaming into one layer, pause/resume, stop, several runs,
refusals that start nothing."""

from __future__ import annotations

import numpy as np

from napari_movierecon._napari.session import TAG

SHORT = {"members": 1, "snapshot_every": 1}


def _wait_finished(qtbot, run, timeout=120_000):
    qtbot.waitUntil(
        lambda: not run.active and not run.worker.is_running and run.complete, timeout=timeout
    )


def test_a_run_streams_into_the_same_layers(ready, qtbot):
    ready.set_params(iterations=6, **SHORT)
    layers_before = len(ready.viewer.layers)
    run = ready.run.start_run()
    with qtbot.waitSignal(run.layers_added, timeout=10_000):
        pass  # the run's layers arrive after Run has returned
    movie_layer, map_layer = run.movie_layer, run.map_layer
    seen = []
    run.updated.connect(
        lambda snapshot: seen.append(
            (
                id(ready.viewer.layers[movie_layer.name]),
                movie_layer.data.copy(),
                map_layer.data.copy(),
                snapshot,
            )
        )
    )
    _wait_finished(qtbot, run)
    assert run.state == "finished"
    assert len(seen) >= 3
    assert {layer_id for layer_id, *_ in seen} == {id(movie_layer)}
    # one reconstruction, one map, and the canvas labels of the runs
    assert len(ready.viewer.layers) == layers_before + 3
    # the movie moves away from gray and keeps changing; the correlation map updates
    assert not np.array_equal(seen[0][1], seen[-1][1])
    assert not np.array_equal(seen[0][2], seen[-1][2])
    assert np.abs(map_layer.data).max() > 0.1
    assert movie_layer.data.dtype == np.float32
    np.testing.assert_array_equal(movie_layer.data, run.last.movie)
    # each snapshot was shown as it came, and showing later ones (written into the
    # layer's own array) left the snapshots that others keep untouched
    for _, shown, _, snapshot in seen:
        np.testing.assert_array_equal(shown, snapshot.movie)
    record = movie_layer.metadata[TAG]["record"]
    assert record["completed"] and record["iterations_done"] == 6
    assert record["population"] == {"kind": "all", "name": "all"}
    # the plots follow: one point per snapshot, per-frame curve over the whole trial
    loss_curve, corr_curve, frame_curve = ready.plots.curves[run]
    assert len(corr_curve.getData()[0]) == len(seen)
    assert len(loss_curve.getData()[0]) == len(seen)
    assert len(frame_curve.getData()[0]) == run.job.trial.length


def test_pause_holds_resume_continues_stop_ends_the_run(ready, qtbot):
    ready.set_params(iterations=500, **SHORT)
    run = ready.run.start_run()
    updates = []
    run.updated.connect(lambda snapshot: updates.append(snapshot.iteration))
    qtbot.waitUntil(lambda: len(updates) >= 1, timeout=60_000)

    with qtbot.waitSignal(run.worker.paused, timeout=5_000):  # the worker really paused
        ready.run.toggle_pause()
    assert ready.run.pause_button.text() == "Resume"
    qtbot.wait(300)  # a snapshot already on its way may still land
    held = len(updates)
    qtbot.wait(2_000)
    assert len(updates) == held, "updates arrived while paused"

    ready.run.toggle_pause()
    qtbot.waitUntil(lambda: len(updates) >= held + 2, timeout=60_000)

    ready.run.stop_run()  # how quickly: benchmarks/napari_bench.py
    qtbot.waitUntil(lambda: not run.worker.is_running, timeout=5_000)
    qtbot.waitUntil(lambda: run.state == "stopped", timeout=2_000)
    assert run.last.iteration < 500
    assert run.movie_layer in ready.viewer.layers
    np.testing.assert_array_equal(run.movie_layer.data, run.last.movie)
    assert not run.movie_layer.metadata[TAG]["record"]["completed"]
    assert ready.run.run_button.isEnabled()


def test_a_second_run_with_another_population_adds_its_own_layers(ready, qtbot):
    ready.set_params(iterations=2, **SHORT)
    first = ready.run.start_run()
    _wait_finished(qtbot, first)
    ready.population.mode.setCurrentText("random fraction")
    ready.population.fraction.setValue(0.25)
    assert len(ready.session.population) == 2000
    second = ready.run.start_run()
    _wait_finished(qtbot, second)
    names = {layer.name for layer in ready.viewer.layers}
    for run in (first, second):
        assert {f"{run.name} reconstruction", f"{run.name} correlation map"} <= names
    assert first.movie_layer is not second.movie_layer
    population = second.movie_layer.metadata[TAG]["population"]
    assert (population["kind"], population["fraction"], population["seed"]) == ("random", 0.25, 0)
    assert second.job.population.indices.size == 2000
    # the second run sits in its own row, next to the first
    assert second.movie_layer.translate[1] > first.movie_layer.translate[1]
    assert set(ready.plots.curves) == {first, second}


def test_bad_parameters_and_empty_populations_start_nothing(ready, qtbot):
    layers_before = len(ready.viewer.layers)
    ready.set_params(learning_rate=0.0)
    assert "learning_rate must be > 0" in ready.run.editor.problem.text()
    assert ready.run.start_run() is None
    assert "learning_rate must be > 0" in ready.run.status.text()

    ready.run.editor.load_preset("fast")
    ready.set_params(members=7)  # the sample ensemble has 3: found in the worker's set-up
    refused = ready.run.start_run()
    qtbot.waitUntil(lambda: "7 ensemble members" in ready.run.status.text(), timeout=30_000)
    assert "not started" in ready.run.status.text()
    assert refused not in ready.session.runs and not refused.layers
    assert ready.run.run_button.isEnabled()

    ready.run.editor.load_preset("fast")
    ready.population.mode.setCurrentText("depth range")
    ready.population.depth_low.setValue(5000.0)
    ready.population.depth_high.setValue(6000.0)
    assert ready.session.population is None
    assert "no neuron" in ready.population.count.text()
    assert ready.run.start_run() is None
    assert "population is empty" in ready.run.status.text()
    assert len(ready.viewer.layers) == layers_before
    assert ready.session.runs == []


def test_an_error_inside_a_run_is_reported_and_the_viewer_stays_usable(ready, qtbot, monkeypatch):
    from napari_movierecon.reconstruct import engine

    calls = []
    original = engine._SharedFramesObjective.gradients  # the sample ensemble's path

    def failing(self, movie, batch):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("simulated out-of-memory in the encoder")
        return original(self, movie, batch)

    monkeypatch.setattr(engine._SharedFramesObjective, "gradients", failing)
    ready.set_params(iterations=10, **SHORT)
    run = ready.run.start_run()
    _wait_finished(qtbot, run)
    assert run.state == "failed"
    qtbot.wait(200)
    assert "simulated out-of-memory" in ready.run.status.text(), (run.error, run.history)
    assert ready.run.run_button.isEnabled() and not ready.run.stop_button.isEnabled()
    assert run.movie_layer in ready.viewer.layers  # what it had so far stays
    monkeypatch.undo()
    ready.set_params(iterations=1)
    again = ready.run.start_run()
    _wait_finished(qtbot, again)
    assert again.state == "finished"
