"""Dock widget: optimization parameters, Run / Pause / Stop, and the list of runs.

Run reads what it needs from the widgets (config, mask path, trial, population) and
returns at once: the job is built and the engine set up in the run's worker thread
(see ``RunView``); a problem found there removes the run again and is shown. Runs are
named after their population (the name field overrides it), listed below the buttons
(double-click to rename) and can be saved to a reconstruction file or removed.
The status line and the buttons follow the newest run's ``RunStatus``.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import Qt, QTimer
from qtpy.QtGui import QColor
from qtpy.QtWidgets import (
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from napari_movierecon._napari.batch_send import open_batch_sender
from napari_movierecon._napari.config_editor import ConfigEditor
from napari_movierecon._napari.cost_confirm import CostGate
from napari_movierecon._napari.run_status import RunState
from napari_movierecon._napari.run_view import RunView, label_positions
from napari_movierecon._napari.session import TAG, find_layer, keep_active_layer, session_for
from napari_movierecon.errors import MovieReconError
from napari_movierecon.reconstruct.job import ReconstructionJob
from napari_movierecon.reconstruct.masks.file import cut_masks

SAVED_ROLES = {"reconstruction", "run_truth", "correlation_map", "mask"}
# the run names on the canvas, at the top-left corner of their panels
LABEL_TEXT = {"string": "{label}", "anchor": "upper_left", "color": "yellow", "size": 9}
TRUTH_LABEL = "ground truth"


def make_job(session_values: dict, config, mask_path: str) -> ReconstructionJob:
    """The job for ``session_values`` (recording, trial, encoder, encoder_source,
    population), ``config`` and the optional mask file; reads the mask file and checks
    the encoder against the recording, so it runs in the worker thread."""
    update_mask = eval_mask = mask_record = None
    if mask_path:
        update_mask, eval_mask, mask_record = cut_masks(
            Path(mask_path), config, session_values["encoder"].frame_shape
        )
    return ReconstructionJob(
        **session_values,
        config=config,
        update_mask=update_mask,
        eval_mask=eval_mask,
        mask_record=mask_record,
    )


class RunWidget(QWidget):
    """Runs are kept in ``session.runs``; Pause and Stop act on the newest live run."""

    def __init__(self, napari_viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.session = session_for(napari_viewer)
        self.current: RunView | None = None
        self._saved_layers: dict[str, dict] = {}

        self.editor = ConfigEditor()
        self.mask_edit = QLineEdit()
        self.mask_edit.setPlaceholderText("none (mask file from `movierecon mask`)")
        mask_browse = QPushButton("…")
        mask_browse.setMaximumWidth(30)
        mask_browse.clicked.connect(self._browse_mask)
        self.name_edit = QLineEdit()
        self.run_button = QPushButton("Run")
        self.pause_button = QPushButton("Pause")
        self.stop_button = QPushButton("Stop")
        self.cost = CostGate()
        self.cost.cleared.connect(self.start_run)
        # the newest run's progress is a line of text: progress bars (napari's activity
        # dock, QProgressBar) repaint the window synchronously, which holds the event loop
        self.batch_button = QPushButton("Batch…")
        self.batch_button.setToolTip(
            "send this set-up with a list of trials or populations to a batch"
        )
        self.status = QLabel("open a recording and pick a trial")
        self.status.setWordWrap(True)
        self.status.setMinimumHeight(2 * self.status.fontMetrics().height())
        self.run_list = QListWidget()
        self.run_list.setMaximumHeight(6 * self.run_list.fontMetrics().height())
        self.save_button = QPushButton("Save run…")
        self.remove_button = QPushButton("Remove run")

        mask_row = QHBoxLayout()
        mask_row.addWidget(self.mask_edit)
        mask_row.addWidget(mask_browse)
        top = QFormLayout()
        top.addRow("mask", mask_row)
        top.addRow("name", self.name_edit)
        # Run / Pause / Stop: other controls that act on starting runs go in this row
        self.buttons = QHBoxLayout()
        for button in (self.run_button, self.pause_button, self.stop_button, self.batch_button):
            self.buttons.addWidget(button)
        run_buttons = QHBoxLayout()
        run_buttons.addWidget(self.save_button)
        run_buttons.addWidget(self.remove_button)
        # the controls first (always in reach), the parameters below them
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(self.buttons)
        layout.addWidget(self.cost)
        layout.addWidget(self.status)
        layout.addWidget(QLabel("runs (double-click to rename; grey: another trial)"))
        layout.addWidget(self.run_list)
        layout.addLayout(run_buttons)
        layout.addSpacing(6)
        layout.addWidget(QLabel("parameters"))
        layout.addWidget(self.editor)

        self.run_button.clicked.connect(self.start_run)
        self.pause_button.clicked.connect(self.toggle_pause)
        self.stop_button.clicked.connect(self.stop_run)
        self.save_button.clicked.connect(self._save_selected)
        self.remove_button.clicked.connect(self._remove_selected)
        self.run_list.itemChanged.connect(self._renamed)
        for signal in (
            self.session.trial_changed,
            self.session.population_changed,
            self.session.recording_changed,
        ):
            signal.connect(self._show_readiness)
        for signal in (
            self.session.trial_changed,
            self.session.recording_changed,
            self.session.run_started,
            self.session.run_removed,
        ):
            signal.connect(self._list_runs)
        # a new run's label comes with its layers (_layers_added)
        for signal in (
            self.session.trial_changed,
            self.session.recording_changed,
            self.session.run_removed,
        ):
            signal.connect(self._draw_labels)
        self.session.mask_saved.connect(lambda path: self.mask_edit.setText(path))
        self.viewer.layers.events.inserted.connect(self._collect_saved)
        self.batch_button.clicked.connect(lambda: open_batch_sender(self))
        self._sync_buttons()
        self._show_readiness()

    @property
    def runs(self) -> list[RunView]:
        return self.session.runs

    # -- starting --------------------------------------------------------------------
    def _missing(self) -> str | None:
        """What Run still needs from the other widgets, or None."""
        session = self.session
        if session.recording is None or session.trial is None:
            return "open a recording and show a trial first"
        if session.population is None:
            return "the population is empty: choose at least one neuron"
        return None

    def _job_inputs(self) -> tuple[dict, object, str]:
        """What the job is built from, read in the Qt thread: the session's recording,
        trial, encoder and population, the validated config, the mask path."""
        if (missing := self._missing()) is not None:
            raise MovieReconError(missing)
        session = self.session
        values = {
            "recording": session.recording,
            "trial": session.trial,
            "encoder": session.encoder,
            "encoder_source": session.encoder_source,
            "population": session.population,
        }
        return values, self.editor.config(), self.mask_edit.text().strip()

    def build_job(self) -> ReconstructionJob:
        """The job the Run button would start (built here, in the calling thread);
        MovieReconError saying what is missing or wrong."""
        return make_job(*self._job_inputs())

    def start_run(self) -> RunView | None:
        """Start a run and return at once, or show why not (nothing starts then)."""
        if self.current is not None and self.current.active:
            self._refuse("a run is in progress: stop it first")
            return None
        try:
            values, config, mask_path = self._job_inputs()
            # large encoders (DwiseNeuro) cost hours: their estimate comes first (the job
            # is built here for it); small ones start at once and build in the worker
            if self.cost.gates(values["encoder"]) and not self.cost.allows(
                make_job(values, config, mask_path)
            ):
                return None
        except MovieReconError as err:
            self._refuse(str(err))
            return None
        population = values["population"]
        name = self._unique(self.name_edit.text().strip() or population.name)
        info = {
            "tier": values["trial"].tier,
            "population": population.population.to_dict(),
            "n_neurons": len(population),
            "config": config.to_json(),
        }
        run = RunView.live(self.viewer, name, values["trial"], values["recording"].name, info)
        run.status.events.connect(partial(self._on_status, run))
        run.layers_added.connect(self._layers_added)
        self.current = run
        self.session.add_run(run)
        run.start(partial(make_job, values, config, mask_path), config.iterations)
        QTimer.singleShot(0, run.add_layers)  # after this click has returned
        self.name_edit.clear()
        return run

    def _layers_added(self, run: RunView) -> None:
        self._draw_labels()
        self.viewer.reset_view()  # bring the new run's panels into view

    def _unique(self, name: str) -> str:
        """``name``, or ``name (2)``, ... if a run already has it (layer names are keys)."""
        taken = {run.name for run in self.runs}
        candidate, k = name, 1
        while candidate in taken:
            k += 1
            candidate = f"{name} ({k})"
        return candidate

    def _refuse(self, message: str) -> None:
        self.status.setText(f"<font color='#e05050'>not started: {message}</font>")
        show_error(f"movierecon: {message}")

    def _show_readiness(self) -> None:
        """Say what Run would start, or what is missing (only while no run is active)."""
        if self.current is not None and self.current.active:
            return
        missing = self._missing()
        if missing is not None:
            self.status.setText(missing)
        else:
            trial, population = self.session.trial, self.session.population
            self.name_edit.setPlaceholderText(f"run name (default: {population.name})")
            self.status.setText(
                f"ready: trial {trial.index} ({trial.tier}) from {len(population)} neurons "
                f"({population.name})"
            )

    # -- control ---------------------------------------------------------------------
    def toggle_pause(self) -> None:
        run = self.current
        if run is None:
            return
        if run.state == RunState.RUNNING:
            run.pause()
        elif run.state == RunState.PAUSED:
            run.resume()

    def stop_run(self) -> None:
        if self.current is not None:
            self.current.stop()

    def _on_status(self, run: RunView, *_) -> None:
        """The status line and the buttons follow the run's status."""
        if run is not self.current:
            return
        status = run.status
        if status.state == RunState.FAILED and run.job is None:
            # the job could not be built: the run never started, take it away again
            self.session.remove_run(run)
            self.current = None
            self._refuse(status.error)
            self._sync_buttons()
            return
        corr = ""
        if status.correlation is not None:
            corr = f", pixel correlation {status.correlation:.3f} ({run.caption})"
        if status.state == RunState.STARTING:
            text = f"{run.name}: starting …"
        elif run.active:
            text = (
                f"{run.name}: {status.state.value}, iteration {status.iteration}/"
                f"{status.iterations}"
                + (f", loss {status.loss:.4f}" if status.loss is not None else "")
                + corr
            )
        else:
            text = (
                f"{run.name}: {status.state.value} after {status.iteration} iterations"
                + corr
                + (f": {status.error}" if status.error else "")
            )
        self.status.setText(text)
        self._sync_buttons()

    def _sync_buttons(self) -> None:
        run = self.current
        state = run.state if run is not None else RunState.IDLE
        self.run_button.setEnabled(run is None or not run.active)
        self.pause_button.setEnabled(state in (RunState.RUNNING, RunState.PAUSED))
        self.stop_button.setEnabled(state in (RunState.STARTING, RunState.RUNNING, RunState.PAUSED))
        self.pause_button.setText("Resume" if state == RunState.PAUSED else "Pause")

    # -- the list of runs ------------------------------------------------------------
    def _list_runs(self, *_) -> None:
        self.run_list.blockSignals(True)
        self.run_list.clear()
        for run in self.runs:
            item = QListWidgetItem(run.name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable)
            item.setToolTip(f"{run.recording}, trial {run.trial}")
            if not self.session.shows(run):
                item.setForeground(QColor("#808080"))
                item.setToolTip(item.toolTip() + ": hidden (another trial is shown)")
            self.run_list.addItem(item)
        self.run_list.blockSignals(False)

    def _draw_labels(self, *_) -> None:
        """ "ground truth" over the shown ground truth and every shown run's name over its
        reconstruction and its map, once a run is shown (one points layer for all, kept
        when empty: adding a layer costs ~100 ms)."""
        shown = [run for run in self.runs if run.shown and run.complete]
        positions = [label_positions(run.row, run.shape[-2:]) for run in shown]
        names = [run.name for run in shown for _ in range(2)]
        truth = find_layer(self.viewer, "truth")
        if shown and truth is not None and truth.visible:
            positions.append(np.asarray(truth.translate[-2:], float)[None] + 1.0)
            names.append(TRUTH_LABEL)
        data = np.concatenate(positions) if positions else np.empty((0, 2))
        layer = find_layer(self.viewer, "run_labels")
        if layer is None and not shown:
            return
        if layer is None:
            with keep_active_layer(self.viewer):
                layer = self.viewer.add_points(
                    data,
                    name="run labels",
                    features={"label": names},
                    text=LABEL_TEXT,
                    size=0.1,
                    face_color="transparent",
                    border_width=0,
                    metadata={TAG: {"role": "run_labels"}},
                )
        else:
            layer.data = data
            layer.features = {"label": names}
            layer.refresh_text()

    def selected_run(self) -> RunView | None:
        row = self.run_list.currentRow()
        return self.runs[row] if 0 <= row < len(self.runs) else None

    def _renamed(self, item: QListWidgetItem) -> None:
        run = self.runs[self.run_list.row(item)]
        name = item.text().strip()
        if name and name != run.name and name not in {r.name for r in self.runs}:
            run.rename(name)
            self._draw_labels()
        self._list_runs()

    def remove_run(self, run: RunView) -> None:
        """Stop ``run`` if it is going, remove its layers, forget it."""
        if run is self.current:
            self.current = None
        self.session.remove_run(run)
        self._sync_buttons()
        self._show_readiness()

    def _remove_selected(self) -> None:
        if (run := self.selected_run()) is not None:
            self.remove_run(run)

    def save_run(self, run: RunView, path: str | Path) -> Path | None:
        """Save ``run`` to a reconstruction file (reopens beside its ground truth)."""
        try:
            written = run.save(path, overwrite=Path(path).exists())
        except MovieReconError as err:
            self.status.setText(f"<font color='#e05050'>not saved: {err}</font>")
            show_error(f"movierecon: {err}")
            return None
        show_info(f"movierecon: saved {run.name} to {written}")
        return written

    def _save_selected(self) -> None:
        run = self.selected_run() or self.current
        if run is None:
            return
        path, _ = QFileDialog.getSaveFileName(
            self, "Save reconstruction", f"{run.name}.safetensors", "reconstruction (*.safetensors)"
        )
        if path:
            self.save_run(run, path if path.endswith(".safetensors") else f"{path}.safetensors")

    # -- runs opened from files (reader) ---------------------------------------------
    def _collect_saved(self, event) -> None:
        """Gather the layers the reader adds for one file; adopt them once all are in."""
        info = event.value.metadata.get(TAG, {})
        if info.get("role") in SAVED_ROLES and "file" in info:
            if not self._saved_layers:
                QTimer.singleShot(0, self._adopt_saved)
            self._saved_layers.setdefault(info["file"], {})[info["role"]] = event.value

    def _adopt_saved(self) -> None:
        """Lay each opened file out as a run row; a file already open is not added twice."""
        pending, self._saved_layers = self._saved_layers, {}
        for file, layers in pending.items():
            if any(run.file == Path(file) for run in self.runs) or "reconstruction" not in layers:
                for layer in layers.values():
                    self.viewer.layers.remove(layer)
                continue
            layers["truth"] = layers.pop("run_truth", None)
            run = RunView.saved(self.viewer, {k: v for k, v in layers.items() if v}, Path(file))
            self.session.add_run(run)
        self._draw_labels()
        self.viewer.reset_view()

    def _browse_mask(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Mask file", filter="mask (*.safetensors)")
        if path:
            self.mask_edit.setText(path)
