"""Dock widget: send the Run widget's current set-up (recording, encoder, parameters,
mask) with a list of trials and populations to ``movierecon batch`` instead of running
it in the viewer. It writes DIR/plan.toml and starts the command as a separate process
(QProcess: the GUI never waits on it); Stop sends it Ctrl-C, which keeps finished runs,
and Start again resumes. When the batch ends its table is docked.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from napari.utils.notifications import show_error
from qtpy.QtCore import QProcess
from qtpy.QtWidgets import (
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from napari_movierecon._napari.batch_table import BatchTableWidget, dock_batch_table
from napari_movierecon.batch.compose import compose_plan
from napari_movierecon.batch.report import is_batch_folder
from napari_movierecon.errors import MovieReconError
from napari_movierecon.io.atomic import atomic_write
from napari_movierecon.reconstruct.neurons import parse_population
from napari_movierecon.sources import SAMPLE

PLAN_NAME = "plan.toml"


def parse_trials(text: str) -> list[int]:
    """Trial indices from "3, 7, 10-12" (ranges inclusive)."""
    trials: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        low, dash, high = part.partition("-")
        try:
            if dash:
                trials += list(range(int(low), int(high) + 1))
            else:
                trials.append(int(part))
        except ValueError as err:
            raise MovieReconError(f"trials: {part!r} is not an index or a range a-b") from err
    if not trials:
        raise MovieReconError("trials: give at least one trial index")
    return list(dict.fromkeys(trials))


def _absolute(source: str) -> str:
    return source if source == SAMPLE else str(Path(source).resolve())


class BatchSendWidget(QWidget):
    """``process``: the running ``movierecon batch`` (a QProcess) or None."""

    def __init__(self, run_widget) -> None:
        super().__init__()
        self.run_widget = run_widget
        self.viewer = run_widget.viewer
        self.session = run_widget.session
        self.process: QProcess | None = None
        self.table: BatchTableWidget | None = None  # the table this widget docked
        self.trials_edit = QLineEdit()
        self.trials_edit.setPlaceholderText("e.g. 10, 20-24")
        self.populations_edit = QLineEdit()
        self.populations_edit.setPlaceholderText("e.g. all, random:0.5, random:0.25")
        self.folder_edit = QLineEdit()
        self.folder_edit.setPlaceholderText("output folder (created; resumed)")
        browse = QPushButton("…")
        browse.setMaximumWidth(30)
        browse.clicked.connect(self._browse)
        self.start_button = QPushButton("Start batch")
        self.stop_button = QPushButton("Stop")
        self.status = QLabel("the Run widget's parameters and mask are used")
        self.status.setWordWrap(True)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder_edit)
        folder_row.addWidget(browse)
        form = QFormLayout()
        form.addRow("trials", self.trials_edit)
        form.addRow("populations", self.populations_edit)
        form.addRow("folder", folder_row)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.stop_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.status)
        layout.addStretch(1)
        self.start_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(self.stop)
        self.session.trial_changed.connect(self._fill_defaults)
        self.session.population_changed.connect(self._fill_defaults)
        self._fill_defaults()
        self._sync_buttons()

    def _fill_defaults(self) -> None:
        """The shown trial and population, until the user types their own."""
        if self.session.trial is not None and not self.trials_edit.isModified():
            self.trials_edit.setText(str(self.session.trial.index))
        population = self.session.population
        if population is not None and not self.populations_edit.isModified():
            try:
                parse_population(population.spec).select(
                    self.session.recording.neurons, self.session.reliability
                )
                self.populations_edit.setText(population.spec)
            except MovieReconError:  # drawn regions have no spec string a plan can hold
                self.populations_edit.setText("all")

    def plan_text(self) -> str:
        """The plan Start would write; MovieReconError saying what is missing."""
        session = self.session
        if session.recording_source is None:
            raise MovieReconError("open a recording first")
        mask = self.run_widget.mask_edit.text().strip()
        populations = [p.strip() for p in self.populations_edit.text().split(",") if p.strip()]
        return compose_plan(
            _absolute(session.recording_source),
            _absolute(session.encoder_source),
            self.run_widget.editor.config(),
            parse_trials(self.trials_edit.text()),
            populations,
            _absolute(mask) if mask else None,
        )

    def start(self) -> None:
        """Write DIR/plan.toml and start ``movierecon batch`` on it (or say why not)."""
        if self.process is not None:
            return
        try:
            text = self.plan_text()
            if not self.folder_edit.text().strip():
                raise MovieReconError("choose an output folder")
            folder = Path(self.folder_edit.text().strip()).resolve()
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise MovieReconError(f"{folder}: cannot write here ({err.strerror})") from err
            plan = folder / PLAN_NAME
            atomic_write(
                plan,
                lambda handle: handle.write(text.encode()),
                overwrite=True,
                error=MovieReconError,
            )
        except MovieReconError as err:
            self.status.setText(f"<font color='#e05050'>not started: {err}</font>")
            show_error(f"movierecon: {err}")
            return
        process = QProcess(self)
        process.setProgram(sys.executable)
        process.setArguments(
            ["-m", "napari_movierecon.cli", "batch", str(plan), "--out", str(folder)]
        )
        process.readyReadStandardError.connect(self._on_output)
        process.readyReadStandardOutput.connect(self._on_output)
        process.finished.connect(lambda code, _status: self._on_finished(folder, code))
        self.process = process
        process.start()
        self.status.setText(f"batch started: {plan}")
        self._sync_buttons()

    def stop(self) -> None:
        """Ctrl-C the batch: it cancels what is left and keeps finished runs."""
        if self.process is not None and self.process.processId():
            os.kill(int(self.process.processId()), signal.SIGINT)
            self.status.setText("stopping …")

    def _on_output(self) -> None:
        text = bytes(self.process.readAllStandardError()).decode(errors="replace")
        text += bytes(self.process.readAllStandardOutput()).decode(errors="replace")
        lines = [line.strip() for line in text.replace("\r", "\n").splitlines() if line.strip()]
        if lines:
            self.status.setText(lines[-1])

    def _on_finished(self, folder: Path, code: int) -> None:
        self.process = None
        self._sync_buttons()
        outcome = {0: "finished", 1: "finished with failed runs", 130: "stopped"}
        self.status.setText(f"batch {outcome.get(code, f'ended with status {code}')}: {folder}")
        if is_batch_folder(folder):
            if self.table is not None and self.table.folder == folder:
                self.table.load(folder)
            else:
                self.table = dock_batch_table(self.viewer, folder)

    def _sync_buttons(self) -> None:
        self.start_button.setEnabled(self.process is None)
        self.stop_button.setEnabled(self.process is not None)

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Batch output folder")
        if folder:
            self.folder_edit.setText(folder)


def open_batch_sender(run_widget) -> BatchSendWidget:
    """Dock a BatchSendWidget for ``run_widget`` (the Run widget's "Batch…" button)."""
    widget = BatchSendWidget(run_widget)
    run_widget.viewer.window.add_dock_widget(
        widget, name="Send to batch", area="right", tabify=True
    )
    return widget
