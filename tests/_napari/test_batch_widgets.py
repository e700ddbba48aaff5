"""Batch in napari: a batch folder opens as a table whose rows show their run beside its
ground truth; the Run widget sends its set-up to a real `movierecon batch` process."""

from __future__ import annotations

import numpy as np
import pytest

from napari_movierecon._napari.batch_send import BatchSendWidget, parse_trials
from napari_movierecon._napari.batch_table import BatchTableWidget
from napari_movierecon._napari.reader import get_reader
from napari_movierecon._napari.run_widget import RunWidget
from napari_movierecon._napari.session import TAG
from napari_movierecon.batch.plan import parse_plan
from napari_movierecon.batch.report import read_summary, write_report
from napari_movierecon.batch.runs import expand
from napari_movierecon.batch.table import collect_rows, result_path
from napari_movierecon.batch.task import execute_run
from napari_movierecon.encoders.checkpoint import save_encoder
from napari_movierecon.encoders.fast import FastEncoder, FastEncoderConfig
from napari_movierecon.errors import MovieReconError
from napari_movierecon.insilico.mouse import InSilicoMouse, MouseSpec, TierLayout
from napari_movierecon.insilico.population import PopulationSpec
from napari_movierecon.insilico.simulate import SimulatedRecording, write_simulated
from napari_movierecon.reconstruct.neurons import AllNeurons, Selection
from napari_movierecon.reconstruct.results import load_reconstruction
from napari_movierecon.sources import open_encoder, open_recording

SPEC = MouseSpec(
    seed=6,
    population=PopulationSpec(n_neurons=100),
    tiers=TierLayout(
        train=1, oracle_clips=1, oracle_repeats=1, final_test_main=2, final_test_bonus=0
    ),
    n_frames=40,
    calibration_clips=1,
)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(recording folder, encoder file) of a tiny mouse and an untrained small encoder."""
    folder = tmp_path_factory.mktemp("tiny")
    recording = SimulatedRecording(InSilicoMouse.build(SPEC))
    write_simulated(recording, folder / "mouse")
    config = FastEncoderConfig(kernel_frames=5, channels=4, readout_channels=4)
    encoder = folder / "encoder.safetensors"
    save_encoder(FastEncoder(config, recording.neurons.ids), encoder, {})
    return folder / "mouse", encoder


def test_batch_folder_opens_as_a_table_and_shows_a_run(make_napari_viewer, tiny, tmp_path):
    mouse, encoder = tiny
    plan = f"""
populations = ["all", "random:0.5"]
[[recording]]
source = "{mouse}"
ids = [0, 1]
[[encoder]]
source = "{encoder}"
[[preset]]
name = "fast"
iterations = 3
"""
    runs = expand(parse_plan(plan, tmp_path / "plan.toml"))
    out = tmp_path / "batch"
    (out / "runs").mkdir(parents=True)
    for run in runs:  # the batch's own task code, in this process
        assert execute_run(run, str(out))["status"] == "done"
    write_report(out, collect_rows(runs, out), figures=False)

    viewer = make_napari_viewer()
    reader = get_reader(str(out))
    assert reader is not None and reader(str(out)) == [(None,)]
    tables = [w for w in viewer.window._qt_window.findChildren(BatchTableWidget)]
    assert len(tables) == 1
    table = tables[0]
    assert table.table.rowCount() == 4 and len(table.rows) == 4
    assert [row["key"] for row in table.rows] == [run.key for run in runs]

    table.select(3)
    shown = {layer.metadata[TAG]["role"]: layer for layer in viewer.layers}
    saved = load_reconstruction(result_path(out, runs[3].key))
    np.testing.assert_array_equal(shown["batch_reconstruction"].data, saved.movie)
    np.testing.assert_array_equal(shown["batch_truth"].data, saved.truth)
    np.testing.assert_array_equal(shown["batch_correlation_map"].data, saved.correlation_map)
    assert saved.record["trial"] == runs[3].trial == 1
    # another row reuses the same three layers
    table.select(0)
    assert len(viewer.layers) == 3
    np.testing.assert_array_equal(
        viewer.layers["batch reconstruction"].data,
        load_reconstruction(result_path(out, runs[0].key)).movie,
    )


def test_parse_trials():
    assert parse_trials("3, 7, 10-12, 7") == [3, 7, 10, 11, 12]
    with pytest.raises(MovieReconError, match="x"):
        parse_trials("1, x")


def test_run_widget_sends_its_setup_to_a_batch(make_napari_viewer, qtbot, tiny, tmp_path):
    mouse, encoder_path = tiny
    viewer = make_napari_viewer()
    run_widget = RunWidget(viewer)
    session = run_widget.session
    recording, encoder = open_recording(str(mouse)), open_encoder(str(encoder_path))
    session.set_recording(recording, str(mouse), encoder, str(encoder_path))
    session.set_trial(recording.trial(0))
    session.set_population(Selection(AllNeurons(), np.arange(encoder.n_neurons)))
    run_widget.editor.load_preset("fast")
    run_widget.editor.editors["iterations"].setValue(3)

    run_widget.batch_button.click()
    sender = viewer.window._qt_window.findChildren(BatchSendWidget)[0]
    assert sender.trials_edit.text() == "0" and sender.populations_edit.text() == "all"
    sender.trials_edit.setText("0-1")
    sender.populations_edit.setText("all, random:0.5")
    sender.folder_edit.setText(str(tmp_path / "sent"))
    sender.start()
    assert sender.process is not None  # the GUI goes on while the batch runs
    qtbot.waitUntil(lambda: sender.process is None, timeout=180_000)
    assert "finished" in sender.status.text(), sender.status.text()
    rows = read_summary(tmp_path / "sent" / "summary.csv")
    assert len(rows) == 4 and {row["status"] for row in rows} == {"done"}
    assert {row["iterations"] for row in rows} == {"3"}
    assert sender.table is not None and sender.table.table.rowCount() == 4
