"""Dock widget: optimization parameters and Run / Pause / Resume / Stop.

Run builds a ``ReconstructionJob`` from the session (trial, encoder, population),
the typed parameters and the optional mask file; any problem is shown and nothing
starts. Each run gets its own named layers (see ``RunView``), so runs can be compared.
"""

from __future__ import annotations

from pathlib import Path

from napari.utils.notifications import show_error
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from napari_movierecon._napari.batch_send import open_batch_sender
from napari_movierecon._napari.config_editor import ConfigEditor
from napari_movierecon._napari.run_view import RunView
from napari_movierecon._napari.session import session_for
from napari_movierecon.errors import MovieReconError
from napari_movierecon.reconstruct.job import ReconstructionJob
from napari_movierecon.reconstruct.masks import cut_masks


class RunWidget(QWidget):
    """Runs are kept in ``session.runs``; Pause and Stop act on the newest."""

    def __init__(self, napari_viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.session = session_for(napari_viewer)
        self.editor = ConfigEditor()
        self.mask_edit = QLineEdit()
        self.mask_edit.setPlaceholderText("none (mask file from `movierecon mask`)")
        mask_browse = QPushButton("…")
        mask_browse.setMaximumWidth(30)
        mask_browse.clicked.connect(self._browse_mask)
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("run name (default: run N)")
        self.run_button = QPushButton("Run")
        self.pause_button = QPushButton("Pause")
        self.stop_button = QPushButton("Stop")
        self.batch_button = QPushButton("Batch…")
        self.batch_button.setToolTip(
            "send this set-up with a list of trials or populations to a batch"
        )
        self.status = QLabel("open a recording and pick a trial")
        self.status.setWordWrap(True)
        self.status.setMinimumHeight(2 * self.status.fontMetrics().height())

        scroll = QScrollArea()
        scroll.setWidget(self.editor)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(self.editor.sizeHint().width() + 20)
        scroll.setMinimumHeight(320)
        mask_row = QHBoxLayout()
        mask_row.addWidget(self.mask_edit)
        mask_row.addWidget(mask_browse)
        top = QFormLayout()
        top.addRow("mask", mask_row)
        top.addRow("name", self.name_edit)
        buttons = QHBoxLayout()
        for button in (self.run_button, self.pause_button, self.stop_button, self.batch_button):
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.addWidget(scroll, stretch=1)
        layout.addSpacing(6)
        layout.addLayout(top)
        layout.addLayout(buttons)
        layout.addWidget(self.status)

        self.run_button.clicked.connect(self.start_run)
        self.pause_button.clicked.connect(self.toggle_pause)
        self.stop_button.clicked.connect(self.stop_run)
        self.batch_button.clicked.connect(lambda: open_batch_sender(self))
        self.session.trial_changed.connect(self._show_readiness)
        self.session.population_changed.connect(self._show_readiness)
        self.session.recording_changed.connect(self._show_readiness)
        self._sync_buttons()
        self._show_readiness()

    @property
    def runs(self) -> list[RunView]:
        return self.session.runs

    @property
    def current(self) -> RunView | None:
        return self.runs[-1] if self.runs else None

    # -- starting --------------------------------------------------------------------
    def _missing(self) -> str | None:
        """What Run still needs from the other widgets, or None."""
        session = self.session
        if session.recording is None or session.trial is None:
            return "open a recording and show a trial first"
        if session.population is None:
            return "the population is empty: choose at least one neuron"
        return None

    def build_job(self) -> ReconstructionJob:
        """The job the Run button would start; MovieReconError saying what is missing."""
        if (missing := self._missing()) is not None:
            raise MovieReconError(missing)
        session = self.session
        config = self.editor.config()
        update_mask = eval_mask = mask_record = None
        if self.mask_edit.text().strip():
            update_mask, eval_mask, mask_record = cut_masks(
                Path(self.mask_edit.text().strip()), config, session.encoder.frame_shape
            )
        return ReconstructionJob(
            recording=session.recording,
            trial=session.trial,
            encoder=session.encoder,
            encoder_source=session.encoder_source,
            population=session.population,
            config=config,
            update_mask=update_mask,
            eval_mask=eval_mask,
            mask_record=mask_record,
        )

    def start_run(self) -> RunView | None:
        """Start a run, or show why not (nothing starts then)."""
        if self.current is not None and self.current.active:
            self._refuse("a run is in progress: stop it first")
            return None
        try:
            job = self.build_job()
            name = self.name_edit.text().strip() or f"run {len(self.runs) + 1}"
            row = len(self.runs)
            view = RunView(self.viewer, job, name, row)
            try:
                view.start()
            except MovieReconError:
                for layer in (view.movie_layer, view.map_layer, view.mask_layer):
                    if layer is not None:
                        self.viewer.layers.remove(layer)
                raise
        except MovieReconError as err:
            self._refuse(str(err))
            return None
        view.updated.connect(self._on_update)
        view.ended.connect(lambda state: self._on_end(view, state))
        self.session.add_run(view)
        self.viewer.reset_view()  # bring the new run's panels into view
        self.name_edit.clear()
        self.status.setText(f"{name}: started ({len(job.population)} neurons)")
        self._sync_buttons()
        return view

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
            self.status.setText(
                f"ready: trial {trial.index} ({trial.tier}) from {len(population)} neurons "
                f"({population.name})"
            )

    # -- control ---------------------------------------------------------------------
    def toggle_pause(self) -> None:
        run = self.current
        if run is None:
            return
        if run.state == "running":
            run.pause()
            self.status.setText(f"{run.name}: paused")
        elif run.state == "paused":
            run.resume()
            self.status.setText(f"{run.name}: running")
        self._sync_buttons()

    def stop_run(self) -> None:
        if self.current is not None:
            self.current.stop()
            self.status.setText(f"{self.current.name}: stopping …")

    def _on_update(self, snapshot) -> None:
        run = self.current
        if not run.active:  # a snapshot delivered after the end signal
            self._on_end(run, run.state)
            return
        corr = snapshot.pixel_correlation
        self.status.setText(
            f"{run.name}: iteration {snapshot.iteration}/{snapshot.iterations}, "
            f"loss {snapshot.loss:.4f}"
            + (f", pixel correlation {corr:.3f}" if corr is not None else "")
            + f", {snapshot.elapsed_s:.1f} s"
        )

    def _on_end(self, run: RunView, state: str) -> None:
        corr = run.last.pixel_correlation if run.last is not None else None
        iteration = run.last.iteration if run.last is not None else 0
        self.status.setText(
            f"{run.name}: {state} after {iteration} iterations"
            + (f", pixel correlation {corr:.3f}" if corr is not None else "")
            + (f": {run.error}" if run.error else "")
        )
        self._sync_buttons()

    def _sync_buttons(self) -> None:
        run = self.current
        active = run is not None and run.active
        self.run_button.setEnabled(not active)
        self.pause_button.setEnabled(active)
        self.stop_button.setEnabled(active)
        self.pause_button.setText(
            "Resume" if run is not None and run.state == "paused" else "Pause"
        )

    def _browse_mask(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Mask file", filter="mask (*.safetensors)")
        if path:
            self.mask_edit.setText(path)
