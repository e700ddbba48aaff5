"""Dock widget: open a recording and an encoder, pick a tier and trial, show its
ground-truth movie (time on the slider) and what the trial is."""

from __future__ import annotations

import re
from functools import partial

from napari.qt.threading import create_worker
from napari.settings import get_settings
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QWidget,
)

from napari_movierecon._napari.cost_confirm import MouseBox, open_both
from napari_movierecon._napari.layers import truth_layer
from napari_movierecon._napari.session import TAG, find_layer, session_for
from napari_movierecon.errors import MovieReconError
from napari_movierecon.sources import SAMPLE

# Layers that belong to the open recording (one of each in the viewer).
RECORDING_ROLES = ("truth", "neurons", "map_scale")


def _path_row(edit: QLineEdit, browse) -> QWidget:
    row = QWidget()
    layout = QHBoxLayout(row)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(edit)
    button = QPushButton("…")
    button.setMaximumWidth(30)
    button.clicked.connect(browse)
    layout.addWidget(button)
    return row


class RecordingWidget(QWidget):
    """Recording source ("sample" or a Sensorium folder), encoder ("sample", a checkpoint
    or an ensemble folder), tier and trial. Loading runs in a worker thread."""

    def __init__(self, napari_viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.session = session_for(napari_viewer)
        self._worker = None
        self.recording_edit = QLineEdit(SAMPLE)
        self.encoder_edit = QLineEdit(SAMPLE)
        self.mouse_box = MouseBox()
        self.open_button = QPushButton("Open")
        self.tier_combo = QComboBox()
        self.trial_combo = QComboBox()
        self.show_button = QPushButton("Show trial")
        self.info = QLabel("no recording open")
        self.info.setWordWrap(True)
        self.info.setMinimumHeight(3 * self.info.fontMetrics().height())

        form = QFormLayout(self)
        form.addRow("recording", _path_row(self.recording_edit, self._browse_recording))
        form.addRow("encoder", _path_row(self.encoder_edit, self._browse_encoder))
        form.addRow("mouse", self.mouse_box)
        form.addRow(self.open_button)
        form.addRow("tier", self.tier_combo)
        form.addRow("trial", self.trial_combo)
        form.addRow(self.show_button)
        form.addRow(self.info)

        self.open_button.clicked.connect(lambda: self.open(None))
        self.tier_combo.currentTextChanged.connect(self._fill_trials)
        self.show_button.clicked.connect(lambda: self.show_trial(self.selected_trial()))
        self.viewer.layers.events.inserted.connect(self._adopt_inserted)
        self._set_enabled(False)
        truth = find_layer(self.viewer, "truth")
        if truth is not None:
            self._adopt(truth)

    # -- opening ---------------------------------------------------------------------
    def open(self, then_trial: int | None) -> None:
        """Open the typed recording and encoder in a worker; then show ``then_trial``."""
        self._busy("opening …")
        worker = create_worker(
            open_both,
            self.recording_edit.text().strip(),
            self.encoder_edit.text().strip(),
            self.mouse_box.mouse(),
            _ignore_errors=True,  # _failed handles them; napari also notifies
        )
        worker.yielded.connect(self.info.setText)
        worker.returned.connect(lambda pair: self._opened(*pair, then_trial))
        worker.errored.connect(self._failed)
        self._worker = worker
        worker.start()

    def _opened(self, recording, encoder, then_trial: int | None) -> None:
        self.session.set_recording(
            recording, self.recording_edit.text().strip(), encoder, self.encoder_edit.text().strip()
        )
        self.tier_combo.blockSignals(True)
        self.tier_combo.clear()
        self.tier_combo.addItems(sorted(set(recording.tiers.tolist())))
        self.tier_combo.blockSignals(False)
        tier = recording.tiers[then_trial] if then_trial is not None else "final_test_main"
        if self.tier_combo.findText(str(tier)) >= 0:
            self.tier_combo.setCurrentText(str(tier))
        self._fill_trials(self.tier_combo.currentText())
        self._set_enabled(True)
        self.info.setText(
            f"{recording.name}: {len(recording)} trials, {len(recording.neurons)} neurons"
        )
        if then_trial is not None:
            self.trial_combo.setCurrentText(str(then_trial))
            self.show_trial(then_trial)

    def _failed(self, error: Exception) -> None:
        """Show the problem here (napari's worker also raises a notification)."""
        self._set_enabled(self.session.recording is not None)
        self.open_button.setEnabled(True)
        message = str(error) if isinstance(error, MovieReconError) else repr(error)
        self.info.setText(f"error: {message}")

    # -- trials ----------------------------------------------------------------------
    def _fill_trials(self, tier: str) -> None:
        self.trial_combo.clear()
        if self.session.recording is not None and tier:
            self.trial_combo.addItems([str(i) for i in self.session.recording.trials_in(tier)])

    def selected_trial(self) -> int | None:
        text = self.trial_combo.currentText()
        return int(text) if text else None

    def show_trial(self, index: int | None) -> None:
        """Load trial ``index`` in a worker and show it as the ground-truth layer."""
        if index is None or self.session.recording is None:
            return
        self._busy(f"loading trial {index} …")
        worker = create_worker(self.session.recording.trial, index, _ignore_errors=True)
        worker.returned.connect(self._shown)
        worker.errored.connect(self._failed)
        self._worker = worker
        worker.start()

    def _shown(self, trial) -> None:
        recording = self.session.recording
        data, kwargs, _ = truth_layer(
            trial, recording.name, self.session.recording_source, recording.frame_rate
        )
        layer = find_layer(self.viewer, "truth")
        if layer is None:
            self.viewer.add_image(data, **kwargs)
        else:
            layer.data = data
            layer.name = kwargs["name"]
            layer.metadata = kwargs["metadata"]
        self.session.set_trial(trial)
        # the play button shows the movie at the recording's frame rate
        get_settings().application.playback_fps = max(1, round(recording.frame_rate))
        self._set_enabled(True)
        info = kwargs["metadata"][TAG]
        self.info.setText(
            f"trial {trial.index} ({trial.tier}): {trial.length} frames "
            f"({trial.length / recording.frame_rate:.1f} s at {recording.frame_rate:g} Hz), "
            "running "
            f"{info['mean_running_cm_s']:.1f} cm/s (mean)"
            + ("" if trial.responses is not None else "; no responses recorded")
        )

    # -- adopting layers opened elsewhere (sample data, reader) -----------------------
    def _adopt_inserted(self, event) -> None:
        """One ground truth, one neuron map and one scale bar at a time: a layer opened
        again from the same source is dropped; one from another source replaces the
        old one (and its recording is opened)."""
        layer = event.value
        info = layer.metadata.get(TAG, {})
        if info.get("role") not in RECORDING_ROLES or "file" in info:
            return
        older = [
            other
            for other in self.viewer.layers
            if other is not layer and other.metadata.get(TAG, {}).get("role") == info["role"]
        ]
        same = [other for other in older if other.metadata[TAG].get("source") == info.get("source")]
        # the layer list is being changed right now: remove after this event
        if same:
            QTimer.singleShot(0, partial(self._replace, [layer], None))
        elif older:
            QTimer.singleShot(0, partial(self._replace, older, layer))
        if info["role"] == "truth" and not same:
            self._adopt(layer)

    def _replace(self, old_layers, new_layer) -> None:
        """Remove ``old_layers``; ``new_layer`` takes back the name napari suffixed."""
        for layer in old_layers:
            if layer in self.viewer.layers:
                self.viewer.layers.remove(layer)
        if new_layer is not None:
            new_layer.name = re.sub(r" \[\d+\]$", "", new_layer.name)

    def _adopt(self, layer) -> None:
        info = layer.metadata[TAG]
        source, trial = info.get("source"), info.get("trial")
        if source is None or source == self.session.recording_source:
            return
        self.recording_edit.setText(str(source))
        self.open(int(trial) if trial is not None else None)

    # -- helpers ---------------------------------------------------------------------
    def _busy(self, text: str) -> None:
        self._set_enabled(False)
        self.open_button.setEnabled(False)
        self.info.setText(text)

    def _set_enabled(self, enabled: bool) -> None:
        self.open_button.setEnabled(True)
        for widget in (self.tier_combo, self.trial_combo, self.show_button):
            widget.setEnabled(enabled)

    def _browse_recording(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Sensorium mouse folder")
        if folder:
            self.recording_edit.setText(folder)

    def _browse_encoder(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Encoder checkpoint", filter="checkpoints (*.safetensors *.pth)"
        )
        if path:
            self.encoder_edit.setText(path)
