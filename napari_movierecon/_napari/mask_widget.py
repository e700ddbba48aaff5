"""Dock widget: compute where the chosen neurons look (``reconstruct.masks``: coverage,
fast; or the reference's transparency mask, on training trials only), with progress
and Stop, show the alpha map over the ground truth and save it as a mask file that
the next runs use (the Reconstruction dock's mask field is filled in)."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from napari.qt.threading import create_worker
from napari.utils.notifications import show_info
from qtpy.QtCore import QObject, Signal
from qtpy.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QWidget,
)

from napari_movierecon._napari.session import TAG, find_layer, session_for
from napari_movierecon.errors import MovieReconError
from napari_movierecon.insilico.mouse_cache import cache_dir
from napari_movierecon.reconstruct.masks.coverage import coverage_mask
from napari_movierecon.reconstruct.masks.file import METHODS, save_mask
from napari_movierecon.reconstruct.masks.transparency import ITERATIONS, transparency_mask


class MaskStopped(MovieReconError):
    """Stop was pressed while a mask was being computed."""


class _Relay(QObject):
    """Carries the worker's progress to the Qt thread (a queued Qt signal)."""

    advanced = Signal(int, int)


def compute_mask(method: str, session_values: dict, iterations: int, progress):
    """The mask of ``method`` for the session's encoder, recording and population
    (``session_values``); ``progress(done, total)`` may raise to stop. Runs in a worker."""
    encoder, recording = session_values["encoder"], session_values["recording"]
    neurons = session_values["population"].indices
    if method == "transparency":
        return transparency_mask(
            encoder, recording, neurons, iterations=iterations, progress=progress
        )
    return coverage_mask(encoder, neurons, recording=recording, progress=progress)


class MaskWidget(QWidget):
    """``mask_file``: where the last mask was saved (it is also put in the run widget's
    mask field through ``session.mask_saved``)."""

    def __init__(self, napari_viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.session = session_for(napari_viewer)
        self.method = QComboBox()
        self.method.addItems(list(reversed(METHODS)))  # coverage (seconds) first
        self.iterations = QSpinBox(minimum=1, maximum=100_000)
        self.iterations.setValue(ITERATIONS)
        self.iterations.setToolTip("transparency only: optimisation steps on training trials")
        self.compute_button = QPushButton("Compute mask")
        self.stop_button = QPushButton("Stop")
        self.bar = QProgressBar()
        self.status = QLabel("coverage: seconds; transparency (the reference's): minutes")
        self.status.setWordWrap(True)
        self.mask_file: Path | None = None
        self._worker = None
        self._stop = threading.Event()
        self._relay = _Relay()
        self._relay.advanced.connect(self._advanced)

        buttons = QHBoxLayout()
        buttons.addWidget(self.compute_button)
        buttons.addWidget(self.stop_button)
        form = QFormLayout(self)
        form.addRow("method", self.method)
        form.addRow("iterations", self.iterations)
        form.addRow(buttons)
        form.addRow(self.bar)
        form.addRow(self.status)
        self.compute_button.clicked.connect(self.compute)
        self.stop_button.clicked.connect(self.stop)
        self.method.currentTextChanged.connect(self._method_changed)
        self._method_changed(self.method.currentText())
        self.stop_button.setEnabled(False)

    def _method_changed(self, method: str) -> None:
        self.iterations.setEnabled(method == "transparency")

    @property
    def running(self) -> bool:
        return self._worker is not None

    def compute(self) -> None:
        """Start computing the mask of the chosen method for the current population."""
        session = self.session
        if self.running:
            return
        if session.recording is None or session.population is None:
            self.status.setText("open a recording and choose a population first")
            return
        values = {
            "encoder": session.encoder,
            "recording": session.recording,
            "population": session.population,
        }
        self._stop.clear()

        def progress(done: int, total: int) -> None:
            if self._stop.is_set():
                raise MaskStopped("mask computation stopped")
            self._relay.advanced.emit(done, total)

        method = self.method.currentText()
        self._worker = create_worker(
            compute_mask, method, values, self.iterations.value(), progress, _ignore_errors=True
        )
        self._worker.returned.connect(self._done)
        self._worker.errored.connect(self._failed)
        self.bar.setRange(0, 0)  # busy until the first progress report
        self.status.setText(f"{method} mask of {len(session.population)} neurons …")
        self.compute_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self._worker.start()

    def stop(self) -> None:
        """Stop at the next progress report (nothing is shown or saved)."""
        self._stop.set()

    def _advanced(self, done: int, total: int) -> None:
        self.bar.setRange(0, total)
        self.bar.setValue(done)

    def _finish(self, text: str) -> None:
        self._worker = None
        self.compute_button.setEnabled(True)
        self.stop_button.setEnabled(False)
        self.bar.setRange(0, 1)
        self.status.setText(text)

    def _failed(self, error: Exception) -> None:
        self.bar.setValue(0)
        if isinstance(error, MaskStopped):
            self._finish("stopped: no mask")
        else:
            self._finish(f"<font color='#e05050'>error: {error}</font>")

    def _done(self, mask) -> None:
        self.bar.setValue(self.bar.maximum())
        self.show_mask(mask)
        recording = self.session.recording.name
        path = cache_dir() / "masks" / f"{mask.method}-{recording}-{self.session.population.name}"
        path = path.with_name(path.name.replace(" ", "_") + ".safetensors")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.mask_file = save_mask(mask, path, overwrite=True)
        except (OSError, MovieReconError) as err:
            self._finish(f"shown, not saved: {err}")
            return
        self.session.mask_saved.emit(str(self.mask_file))
        update, evaluation = mask.update_mask(), mask.eval_mask()
        self._finish(
            f"{mask.method} mask: update {update.sum()} px, evaluation {evaluation.sum()} px "
            f"of {update.size}; saved to {self.mask_file} and used by the next runs"
        )
        show_info(f"movierecon: {mask.method} mask saved to {self.mask_file}")

    def show_mask(self, mask) -> None:
        """The alpha map (H, W) over the ground truth (one mask layer, replaced)."""
        layer = find_layer(self.viewer, "mask_alpha")
        name = f"{mask.method} mask (alpha)"
        alpha = np.asarray(mask.alpha, dtype=np.float32)
        if layer is None:
            self.viewer.add_image(
                alpha,
                name=name,
                colormap="magma",
                contrast_limits=(0.0, 1.0),
                opacity=0.5,
                metadata={TAG: {"role": "mask_alpha", "method": mask.method}},
            )
        else:
            layer.data, layer.name = alpha, name
            layer.metadata[TAG]["method"] = mask.method
