"""Dock widget: pyqtgraph curves of every run — loss and pixel correlation against
iteration, and the latest per-frame correlation against frame. Clicking the
per-frame plot moves napari's time slider to that frame; a vertical line follows
the slider. Curves follow each run's ``RunStatus`` and go when the run is removed;
the correlation plots' titles say over which pixels and frames they are computed."""

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
            plot.setMinimumSize(200, 120)
        self.corr_plot.setYRange(-0.2, 1.0)
        self.frame_plot.setYRange(-1.0, 1.0)
        self.frame_plot.setXRange(0, 300)  # a Sensorium trial's length, until a run says
        self.frame_line = pg.InfiniteLine(angle=90, pen=pg.mkPen("#888", width=1))
        self.frame_plot.addItem(self.frame_line)
        layout = QHBoxLayout(self)
        for plot in (self.loss_plot, self.corr_plot, self.frame_plot):
            layout.addWidget(plot)
        self.curves: dict = {}  # RunView -> (loss, correlation, per-frame) curves
        self._added = 0  # runs plotted so far (picks each new run's colour)
        self.frame_plot.scene().sigMouseClicked.connect(self._clicked)
        self.viewer.dims.events.current_step.connect(self._follow_slider)
        self._follow_slider()
        session = session_for(napari_viewer)
        for run in session.runs:
            self.add_run(run)
        session.run_started.connect(self.add_run)
        session.run_removed.connect(self.remove_run)

    def add_run(self, run) -> None:
        if run.file is not None:
            return  # a run opened from a file has no history to plot
        pen = pg.mkPen(PENS[self._added % len(PENS)], width=2)
        self._added += 1
        self.curves[run] = (
            self.loss_plot.plot([], [], pen=pen, name=run.name),
            self.corr_plot.plot([], [], pen=pen, name=run.name),
            self.frame_plot.plot([], [], pen=pen, name=run.name),
        )
        self.frame_plot.setXRange(0, run.shape[0])
        run.status.events.iteration.connect(lambda *_: self._update(run))

    def remove_run(self, run) -> None:
        """Take the run's curves off the plots."""
        plots = (self.loss_plot, self.corr_plot, self.frame_plot)
        for plot, curve in zip(plots, self.curves.pop(run, ()), strict=False):
            plot.removeItem(curve)

    def _update(self, run) -> None:
        if run not in self.curves or run.last is None:
            return
        if run.caption and run.caption not in self.corr_plot.getPlotItem().titleLabel.text:
            # two short lines: a 1366-px window gives each plot ~440 px
            self.corr_plot.setTitle(f"pixel correlation<br>({run.caption})", size="9pt")
            # per-frame correlations skip no frame
            self.frame_plot.setTitle(
                f"per-frame correlation ({run.mask_name})<br>click: go to frame", size="9pt"
            )
        loss_curve, corr_curve, frame_curve = self.curves[run]
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
