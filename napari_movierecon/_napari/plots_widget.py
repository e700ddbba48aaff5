"""Dock widget: pyqtgraph curves of every run — loss and pixel correlation against
iteration, and the latest per-frame correlation against frame. Clicking the
per-frame plot moves napari's time slider to that frame; a vertical line follows
the slider."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from qtpy.QtWidgets import QHBoxLayout, QWidget

from napari_movierecon._napari.session import session_for

PENS = ("#f0a030", "#40b0f0", "#e05080", "#60d060", "#b080f0", "#f0e040")


class PlotsWidget(QWidget):
    """One set of curves per run of the session; they follow the run's ``updated`` signal."""

    def __init__(self, napari_viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.loss_plot = pg.PlotWidget(title="loss (Poisson NLL)")
        self.corr_plot = pg.PlotWidget(title="pixel correlation")
        self.frame_plot = pg.PlotWidget(title="per-frame correlation (click: go to frame)")
        for plot, x_label in (
            (self.loss_plot, "iteration"),
            (self.corr_plot, "iteration"),
            (self.frame_plot, "frame"),
        ):
            plot.setLabel("bottom", x_label)
            plot.addLegend(offset=(-5, 5))
            plot.setMinimumSize(220, 160)
        self.corr_plot.setYRange(-0.2, 1.0)
        self.frame_plot.setYRange(-1.0, 1.0)
        self.frame_plot.setXRange(0, 300)  # a Sensorium trial's length, until a run says
        self.frame_line = pg.InfiniteLine(angle=90, pen=pg.mkPen("#888", width=1))
        self.frame_plot.addItem(self.frame_line)
        layout = QHBoxLayout(self)
        for plot in (self.loss_plot, self.corr_plot, self.frame_plot):
            layout.addWidget(plot)
        self.curves: dict[str, tuple] = {}
        self.frame_plot.scene().sigMouseClicked.connect(self._clicked)
        self.viewer.dims.events.current_step.connect(self._follow_slider)
        self._follow_slider()
        session = session_for(napari_viewer)
        for run in session.runs:
            self.add_run(run)
        session.run_started.connect(self.add_run)

    def add_run(self, run) -> None:
        pen = pg.mkPen(PENS[len(self.curves) % len(PENS)], width=2)
        self.curves[run.name] = (
            self.loss_plot.plot([], [], pen=pen, name=run.name),
            self.corr_plot.plot([], [], pen=pen, name=run.name),
            self.frame_plot.plot([], [], pen=pen, name=run.name),
        )
        self.frame_plot.setXRange(0, run.job.trial.length)
        run.updated.connect(lambda snapshot: self._update(run))

    def _update(self, run) -> None:
        loss_curve, corr_curve, frame_curve = self.curves[run.name]
        history = np.array(
            [(i, loss, np.nan if c is None else c) for i, loss, c in run.history], dtype=float
        )
        loss_curve.setData(history[:, 0], history[:, 1])
        if np.isfinite(history[:, 2]).any():
            corr_curve.setData(history[:, 0], history[:, 2])
        per_frame = run.last.frame_correlation
        if per_frame is not None:
            frame_curve.setData(np.arange(len(per_frame)), np.nan_to_num(per_frame))

    def _clicked(self, event) -> None:
        box = self.frame_plot.getPlotItem().vb
        if not self.frame_plot.sceneBoundingRect().contains(event.scenePos()):
            return
        frame = round(box.mapSceneToView(event.scenePos()).x())
        self.go_to_frame(frame)

    def go_to_frame(self, frame: int) -> None:
        """Move napari's time slider (axis 0) to ``frame``, clipped to the range."""
        if self.viewer.dims.ndim < 3:
            return
        last = int(self.viewer.dims.nsteps[0]) - 1
        self.viewer.dims.set_current_step(0, int(np.clip(frame, 0, last)))

    def _follow_slider(self, *_) -> None:
        if self.viewer.dims.ndim >= 3:
            self.frame_line.setValue(self.viewer.dims.current_step[0])
