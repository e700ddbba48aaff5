"""Dock widget: what the neurons said. For a few chosen neurons, the recorded response
next to the encoder's prediction from the true movie and from a run's current
reconstruction, over the shown trial, with per-neuron correlations.

Neurons are chosen on the map (the neurons layer's selection: select mode, click or
shift-click) or as the top-k most reliable of the current population. Predictions
are computed in a worker thread (``reconstruct.activity``); while a run streams,
its prediction is recomputed as new snapshots arrive (one computation at a time).
A vertical line follows napari's frame slider. The traces save as CSV.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from napari.qt.threading import create_worker
from napari.utils.notifications import show_error
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from napari_movierecon._napari.session import find_layer, session_for
from napari_movierecon.encoders.base import behavior_input
from napari_movierecon.errors import MovieReconError
from napari_movierecon.reconstruct.activity import (
    NeuronActivity,
    neuron_activity,
    write_activity_csv,
)

MAX_SHOWN = 6
# Each neuron's plot stays readable; more than fit the dock scroll.
PLOT_MIN_PX = 90
NO_RUN = "(no run)"
# recorded, predicted from the true movie, predicted from the reconstruction
TRACES = (
    ("recorded", "#b0b0b0"),
    ("predicted from truth", "#60d060"),
    ("predicted from reconstruction", "#e05080"),
)
# correlation columns: recorded vs each prediction, and the two predictions
COLUMNS = ("unit", "rec~truth", "rec~recon", "truth~recon")
COLUMN_TIPS = (
    "unit id",
    "r: recorded vs predicted from the true movie",
    "r: recorded vs predicted from the reconstruction",
    "r: predicted from the true movie vs from the reconstruction",
)
CORRELATION_KEYS = ("recorded_vs_truth", "recorded_vs_reconstruction", "truth_vs_reconstruction")


def _compute(encoder, trial, neurons, movie, iteration, from_truth) -> NeuronActivity:
    """Worker body (no Qt here)."""
    return neuron_activity(
        encoder,
        trial.movie,
        trial.responses,
        behavior_input(trial),
        neurons,
        reconstruction=movie,
        from_truth=from_truth,
        iteration=iteration,
    )


class ActivityWidget(QWidget):
    """``neurons``: the shown neuron indices; ``activity``: the latest traces."""

    def __init__(self, napari_viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.session = session_for(napari_viewer)
        self.neurons = np.zeros(0, np.int64)
        self.activity: NeuronActivity | None = None
        self._truth: tuple[tuple, np.ndarray] | None = None  # (key, from_truth (n, T))
        self._worker = None
        self._pending = False
        self._map_layer = None

        self.top_k = QSpinBox(minimum=1, maximum=MAX_SHOWN)
        self.top_k.setValue(3)
        self.top_button = QPushButton("top-k of population")
        self.top_button.setToolTip("the k most reliable neurons of the chosen population")
        self.run_box = QComboBox()
        self.run_box.addItem(NO_RUN)
        self.run_box.setToolTip("the run whose reconstruction the encoder sees")
        self.save_button = QPushButton("Save CSV…")
        self.status = QLabel("select neurons on the map (select mode, shift-click for more)")
        self.status.setWordWrap(True)
        self.plots = pg.GraphicsLayoutWidget()
        self.plots.setMinimumHeight(PLOT_MIN_PX)
        scroll = QScrollArea()
        scroll.setWidget(self.plots)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        for column, tip in enumerate(COLUMN_TIPS):
            self.table.horizontalHeaderItem(column).setToolTip(tip)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setVisible(False)
        self.table.setMinimumWidth(260)

        controls = QHBoxLayout()
        controls.addWidget(QLabel("k"))
        controls.addWidget(self.top_k)
        controls.addWidget(self.top_button)
        controls.addWidget(QLabel("reconstruction of"))
        controls.addWidget(self.run_box, stretch=1)
        controls.addWidget(self.save_button)
        side = QVBoxLayout()
        side.addWidget(self.table)
        side.addWidget(self.status)
        body = QHBoxLayout()
        body.addWidget(scroll, stretch=3)
        body.addLayout(side, stretch=1)
        legend = QLabel(
            "  ".join(f"<font color='{colour}'>━ {name}</font>" for name, colour in TRACES)
            + " &nbsp; (Pearson r in the table)"
        )
        layout = QVBoxLayout(self)
        layout.addLayout(controls)
        layout.addWidget(legend)
        layout.addLayout(body, stretch=1)

        self._cursors: list[pg.InfiniteLine] = []
        self.curves: list[list[pg.PlotDataItem]] = []
        self.top_button.clicked.connect(self.show_top_k)
        self.save_button.clicked.connect(self._save_dialog)
        self.run_box.currentTextChanged.connect(lambda *_: self.refresh())
        self.viewer.dims.events.current_step.connect(self._follow_slider)
        self.session.recording_changed.connect(self._adopt_map)
        self.session.trial_changed.connect(self._trial_changed)
        self.session.run_started.connect(self._add_run)
        for run in self.session.runs:
            self._add_run(run)
        self._adopt_map()

    # -- choosing neurons and runs -----------------------------------------------------
    def _adopt_map(self, *_) -> None:
        """Follow the selection of the neurons layer (it is replaced per recording)."""
        layer = find_layer(self.viewer, "neurons")
        if layer is self._map_layer:
            return
        self._map_layer = layer
        if layer is not None:
            layer.selected_data.events.items_changed.connect(self._map_selected)

    def _map_selected(self, *_) -> None:
        chosen = np.array(sorted(self._map_layer.selected_data), dtype=np.int64)
        if chosen.size:
            self.show_neurons(chosen)

    def show_top_k(self) -> None:
        """The k most reliable neurons of the session's population."""
        population, reliability = self.session.population, self.session.reliability
        if population is None:
            self.status.setText("choose a population first")
            return
        indices = population.indices
        if reliability is not None:
            order = np.argsort(-np.asarray(reliability)[indices], kind="stable")
            indices = indices[order]
        self.show_neurons(np.sort(indices[: self.top_k.value()]))

    def show_neurons(self, neurons: np.ndarray) -> None:
        """Show ``neurons`` (indices; at most ``MAX_SHOWN``)."""
        neurons = np.asarray(neurons, dtype=np.int64)
        if neurons.size > MAX_SHOWN:
            neurons = neurons[:MAX_SHOWN]
        self.neurons = neurons
        self._build_plots()
        self.refresh()

    def _add_run(self, run) -> None:
        self.run_box.addItem(run.name)
        run.updated.connect(lambda *_: self._run_updated(run))
        self.run_box.setCurrentText(run.name)

    def _run(self):
        name = self.run_box.currentText()
        return next((run for run in self.session.runs if run.name == name), None)

    def _run_updated(self, run) -> None:
        if run is self._run():
            self.refresh()

    def _trial_changed(self) -> None:
        self._truth = None
        self.refresh()

    # -- computing ---------------------------------------------------------------------
    def refresh(self) -> None:
        """Recompute the traces in a worker (queued if one is running)."""
        session = self.session
        if not self.neurons.size or session.trial is None or session.encoder is None:
            return
        if session.trial.responses is None:
            self.status.setText(f"trial {session.trial.index} has no recorded responses")
            return
        if self._worker is not None:
            self._pending = True
            return
        run = self._run()
        movie = iteration = None
        if run is not None and run.last is not None:
            if run.job.trial.index != session.trial.index:
                self.status.setText(f"{run.name} reconstructs another trial than the shown one")
            else:
                movie, iteration = run.last.movie, run.last.iteration
        truth_key = (id(session.trial), tuple(self.neurons.tolist()))
        cached = self._truth is not None and self._truth[0] == truth_key
        from_truth = self._truth[1] if cached else None
        self._worker = create_worker(
            _compute,
            session.encoder,
            session.trial,
            self.neurons,
            movie,
            iteration,
            from_truth,
            _start_thread=False,
        )
        self._worker.returned.connect(lambda activity: self._show(activity, truth_key))
        self._worker.errored.connect(self._failed)
        self._worker.finished.connect(self._done)
        self._worker.start()

    def _done(self) -> None:
        self._worker = None
        if self._pending:
            self._pending = False
            self.refresh()

    def _failed(self, error: Exception) -> None:
        self.status.setText(f"<font color='#e05050'>{error}</font>")

    # -- showing -------------------------------------------------------------------------
    def _build_plots(self) -> None:
        self.plots.clear()
        self.plots.setMinimumHeight(PLOT_MIN_PX * max(1, len(self.neurons)))
        self._cursors, self.curves = [], []
        for row, neuron in enumerate(self.neurons):
            plot = self.plots.addPlot(row=row, col=0)
            plot.setLabel("left", f"unit {self._unit_id(neuron)}")
            if row:
                plot.setXLink(self.plots.getItem(0, 0))
            curves = [
                plot.plot([], [], pen=pg.mkPen(colour, width=1.5), name=name)
                for name, colour in TRACES
            ]
            cursor = pg.InfiniteLine(angle=90, pen=pg.mkPen("#888", width=1))
            plot.addItem(cursor)
            self.curves.append(curves)
            self._cursors.append(cursor)
        if self.curves:
            self.plots.getItem(len(self.curves) - 1, 0).setLabel("bottom", "frame")
        self._follow_slider()

    def _unit_id(self, neuron: int) -> int:
        return int(self.session.recording.neurons.ids[neuron])

    def _show(self, activity: NeuronActivity, truth_key: tuple) -> None:
        if not np.array_equal(activity.unit_ids, [self._unit_id(n) for n in self.neurons]):
            return  # the choice changed meanwhile; the queued refresh follows
        self.activity = activity
        self._truth = (truth_key, activity.from_truth)
        traces = (activity.recorded, activity.from_truth, activity.from_reconstruction)
        for row, curves in enumerate(self.curves):
            for curve, trace in zip(curves, traces, strict=True):
                curve.setData([] if trace is None else trace[row])
        correlations = activity.correlations()
        self.table.setRowCount(len(activity.unit_ids))
        for row, unit in enumerate(activity.unit_ids):
            cells = [str(int(unit))] + [
                f"{correlations[name][row]:.3f}" if name in correlations else "–"
                for name in CORRELATION_KEYS
            ]
            for column, text in enumerate(cells):
                self.table.setItem(row, column, QTableWidgetItem(text))
        run = "no reconstruction yet"
        if activity.iteration is not None:
            run = f"{self.run_box.currentText()} at iteration {activity.iteration}"
        self.status.setText(
            f"{len(activity.unit_ids)} neurons, trial {self.session.trial.index}; {run}; "
            f"correlations skip the first {activity.skip_frames} frames"
        )

    def _follow_slider(self, *_) -> None:
        frame = self.viewer.dims.current_step[0] if self.viewer.dims.ndim else 0
        for cursor in self._cursors:
            cursor.setValue(frame)

    # -- saving --------------------------------------------------------------------------
    def save_csv(self, path) -> None:
        """Write the shown traces (see ``NeuronActivity.csv_text``) to ``path``."""
        if self.activity is None:
            raise MovieReconError("nothing to save: choose neurons first")
        write_activity_csv(self.activity, path)
        self.status.setText(f"wrote {path}")

    def _save_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save activity", filter="CSV (*.csv)")
        if path:
            try:
                self.save_csv(path)
            except MovieReconError as err:
                self.status.setText(f"<font color='#e05050'>{err}</font>")
                show_error(f"movierecon: {err}")
