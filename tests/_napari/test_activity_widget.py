"""The neural activity view: chosen neurons' recorded and predicted traces, their
correlations, the time cursor, following a run, and the CSV."""

from __future__ import annotations

import csv

import numpy as np

from napari_movierecon.reconstruct.activity import CSV_COLUMNS


def _traces(widget, row):
    return [curve.getData()[1] for curve in widget.curves[row]]


def test_map_selection_shows_recorded_and_predicted_traces(ready, qtbot):
    widget = ready.widgets["Neural activity"]
    layer = ready.population._neurons_layer()
    layer.selected_data = {40, 7}
    assert widget.neurons.tolist() == [7, 40]
    qtbot.waitUntil(lambda: widget.activity is not None, timeout=60_000)
    recorded, truth, recon = _traces(widget, 0)
    trial = ready.session.trial
    np.testing.assert_array_equal(recorded, trial.responses[7])
    assert truth.shape == (trial.length,) and np.isfinite(truth).all()
    assert recon is None or len(recon) == 0  # no run yet
    assert widget.table.rowCount() == 2
    assert widget.table.item(1, 0).text() == str(ready.session.recording.neurons.ids[40])
    assert -1 <= float(widget.table.item(0, 1).text()) <= 1
    assert widget.table.item(0, 2).text() == "–"
    ready.viewer.dims.set_current_step(0, 123)
    assert widget._cursors[1].value() == 123


def test_a_run_adds_its_prediction_and_the_csv_holds_all_three(ready, qtbot, tmp_path):
    widget = ready.widgets["Neural activity"]
    widget.top_k.setValue(2)
    widget.show_top_k()
    reliability = ready.session.reliability
    assert set(widget.neurons) == set(np.argsort(-reliability)[:2])
    ready.set_params(iterations=2, members=1, snapshot_every=1)
    run = ready.run.start_run()
    assert widget.run_box.currentText() == run.name
    qtbot.waitUntil(
        lambda: not run.active and not run.worker.is_running and run.complete, timeout=120_000
    )
    qtbot.waitUntil(
        lambda: widget.activity is not None and widget.activity.iteration == 2, timeout=60_000
    )
    for row in range(2):
        recorded, truth, recon = _traces(widget, row)
        assert len(recorded) == len(truth) == len(recon) == ready.session.trial.length
        assert not np.allclose(recon, truth)  # a 2-iteration movie is not the truth
    assert all(widget.table.item(r, 2).text() != "–" for r in range(2))

    path = tmp_path / "activity.csv"
    widget.save_csv(path)
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) == 2 * ready.session.trial.length
    ids = {int(r["unit_id"]) for r in rows}
    assert ids == set(ready.session.recording.neurons.ids[widget.neurons].tolist())
    assert all(r["predicted_from_reconstruction"] != "" for r in rows)
