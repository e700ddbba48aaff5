"""Dock widget: a resolution-probe result (``movierecon probe --out DIR``). Shows what
the run measured (encoder, population, preset), its table (one row per probe movie)
and pyqtgraph curves of correlation against spatial and temporal scale (log axes),
with the half-fall scales marked. Opening a probe folder or its probe.json (File >
Open, drag and drop) docks it at the bottom, full width (``read_probe``); its "…"
button opens another result in the same dock.
"""

from __future__ import annotations

import html
import math
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from napari.utils.notifications import show_error
from qtpy.QtCore import Qt, QTimer
from qtpy.QtWidgets import (
    QAbstractItemView,
    QBoxLayout,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from napari_movierecon._napari.launch import scrollable
from napari_movierecon._napari.plots_widget import PENS
from napari_movierecon.errors import MovieReconError
from napari_movierecon.reconstruct.probe_result import (
    AXES,
    RECORD_NAME,
    ProbeResult,
    load_probe_result,
    record_path,
)

MIN_WIDTH = 420  # axis, both scales and the correlation visible without scrolling
PLOT_SIZE = (150, 130)  # smallest plot (px)
ROW_HEIGHT = 22  # table rows (px): a short bottom dock still shows a few
WIDE_PX = 900  # wider than this: table and curves side by side
DOCK_SHARE = 0.45  # of the window's height, for a newly docked result (bottom)


class ProbeWidget(QWidget):
    """``result``: the ProbeResult shown, None until one opened; ``dock``: the dock
    holding it (set by ``dock_probe_result``)."""

    def __init__(self, napari_viewer, path: str | Path | None = None) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.result: ProbeResult | None = None
        self.dock = None
        self.path_edit = QLineEdit()
        self.path_edit.setPlaceholderText("probe folder or probe.json (movierecon probe --out)")
        self.path_edit.returnPressed.connect(self._load_typed)
        browse = QPushButton("…")
        browse.setMaximumWidth(30)
        browse.setToolTip("choose a probe.json")
        browse.clicked.connect(self._browse)
        reload_button = QPushButton("Reload")
        reload_button.clicked.connect(self._load_typed)
        self.summary = QLabel("open a probe result")
        self.summary.setWordWrap(True)
        self.summary.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.half_fall = QLabel()
        self.half_fall.setWordWrap(True)
        self.key = QLabel()  # the curves' colours, when there are several
        self.key.setWordWrap(True)
        self.key.hide()
        self.table = QTableWidget(0, 0)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.setMinimumWidth(MIN_WIDTH)
        self.table.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Ignored)
        self.table.verticalHeader().setDefaultSectionSize(ROW_HEIGHT)
        self.plots = {}
        plots = QHBoxLayout()
        for axis in AXES:
            plot = pg.PlotWidget()
            plot.setLogMode(x=True)
            plot.setMinimumSize(*PLOT_SIZE)
            # no preferred height: the dock's height, not pyqtgraph's 500 px hint, decides
            plot.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Ignored)
            self.plots[axis] = plot
            plots.addWidget(plot)
        top = QHBoxLayout()
        top.addWidget(self.path_edit)
        top.addWidget(browse)
        top.addWidget(reload_button)
        info = QWidget()
        info_layout = QVBoxLayout(info)
        info_layout.setContentsMargins(0, 0, 0, 0)
        info_layout.addLayout(top)
        info_layout.addWidget(self.summary)
        info_layout.addWidget(self.table, stretch=1)
        self.curves = curves = QWidget()
        curves_layout = QVBoxLayout(curves)
        curves_layout.setContentsMargins(0, 0, 0, 0)
        curves_layout.addWidget(self.half_fall)
        curves_layout.addWidget(self.key)
        curves_layout.addLayout(plots, stretch=1)
        # side by side in a wide dock (the bottom one), stacked in a narrow one
        self.box = QBoxLayout(QBoxLayout.Direction.TopToBottom, self)
        self.box.addWidget(info, stretch=1)
        self.box.addWidget(curves, stretch=1)
        self._show(None)
        if path is not None:
            self.load(path)

    def resizeEvent(self, event) -> None:
        wide = event.size().width() >= WIDE_PX
        direction = QBoxLayout.Direction.LeftToRight if wide else QBoxLayout.Direction.TopToBottom
        if self.box.direction() != direction:
            self.box.setDirection(direction)
        super().resizeEvent(event)

    def load(self, path: str | Path) -> None:
        """Show the probe result at ``path`` (folder or probe.json); an error message in
        red (and a napari notification) otherwise, with nothing else shown."""
        self.path_edit.setText(str(path))
        try:
            result = load_probe_result(path)
        except MovieReconError as err:
            self._show(None)
            self.summary.setText(
                f"<font color='#e05050'>{html.escape(str(err), quote=False)}</font>"
            )
            show_error(f"movierecon: {err}")
            return
        self._show(result)

    def _show(self, result: ProbeResult | None) -> None:
        self.result = result
        self.table.setRowCount(0)
        for plot in self.plots.values():
            plot.clear()
        # nothing but the message (or the prompt) until a result is open
        self.table.setVisible(result is not None)
        self.curves.setVisible(result is not None)
        if result is None:
            self.table.setColumnCount(0)
            self.half_fall.setText("")
            self.key.hide()
            return
        self.summary.setText(result.summary())
        self.half_fall.setText(result.half_fall_text())
        headers, cells = result.table()
        self.table.setColumnCount(len(headers))
        self.table.setHorizontalHeaderLabels(["\n".join(filter(None, h)) for h in headers])
        self.table.setRowCount(len(cells))
        for r, line in enumerate(cells):
            for c, text in enumerate(line):
                item = QTableWidgetItem(text)
                side = Qt.AlignmentFlag.AlignLeft if c == 0 else Qt.AlignmentFlag.AlignRight
                item.setTextAlignment(side | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(r, c, item)
        for axis, plot in self.plots.items():
            self._plot(result, axis, plot)
        # a key above both plots (a legend would cover a short plot's curves)
        curves = result.curves(AXES[0])
        self.key.setText(
            " &nbsp; ".join(
                f"<font color='{PENS[k % len(PENS)]}'>{'╍╍' if c.oracle else '━━'} {c.title}</font>"
                for k, c in enumerate(curves)
            )
        )
        self.key.setVisible(len(curves) > 1)

    def _plot(self, result: ProbeResult, axis: str, plot: pg.PlotWidget) -> None:
        """The sweep's curves against log scale (the oracle's dashed), ± sd over seeds as
        error bars; the half-fall scales as vertical lines."""
        plot.setLabel("bottom", f"{axis} scale: {result.unit(axis)}")
        curves = result.curves(axis)
        lowest = 0.0
        for k, curve in enumerate(curves):
            style = Qt.PenStyle.DashLine if curve.oracle else Qt.PenStyle.SolidLine
            pen = pg.mkPen(PENS[k % len(PENS)], width=2, style=style)
            plot.plot(
                curve.scales, curve.values, pen=pen, symbol="s" if curve.oracle else "o",
                symbolSize=6, symbolBrush=pen.color(), name=curve.title, connect="finite",
            )  # fmt: skip
            if np.nan_to_num(curve.sd).any():
                # an item of its own: the plot's log x mode does not reach it
                bars = pg.ErrorBarItem(
                    x=np.log10(curve.scales), y=curve.values, height=2 * curve.sd,
                    beam=0.03, pen=pg.mkPen(PENS[k % len(PENS)], width=1),
                )  # fmt: skip
                plot.addItem(bars)
            if np.isfinite(curve.values).any():
                lowest = min(lowest, float(np.nanmin(curve.values - curve.sd)))
        # ticks at the swept scales (pyqtgraph's log ticks crowd a narrow plot)
        ticks = [(math.log10(s), f"{s:g}") for s in curves[0].scales]
        plot.getAxis("bottom").setTicks([ticks, []])
        plot.setLabel("left", "correlation")
        # one curve: what it is in the title; several: the key says, and the plots keep
        # the height a title would take
        plot.setTitle(f"{curves[0].title}" if len(curves) == 1 else None, size="9pt")
        for sweep in result.sweeps:
            half = result.half_fall_scale(axis, sweep)
            if half is None:
                continue
            oracle = sweep == "oracle"
            style = Qt.PenStyle.DotLine if oracle else Qt.PenStyle.DashLine
            label = f"{'oracle ' if oracle else ''}half-fall {half:.2f}"
            line = pg.InfiniteLine(
                math.log10(half), angle=90, pen=pg.mkPen("#aaa", width=1, style=style),
                label=label, labelOpts={"position": 0.2 if oracle else 0.1, "color": "#ccc"},
            )  # fmt: skip
            plot.addItem(line)
        plot.setYRange(lowest - 0.05 if lowest < 0 else 0.0, 1.0)

    def _load_typed(self) -> None:
        text = self.path_edit.text().strip()
        if text:
            self.load(text)

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Probe result", "", f"probe record ({RECORD_NAME});;JSON (*.json)"
        )
        if path:
            self.load(path)


def dock_probe_result(viewer, path: str | Path) -> ProbeWidget:
    """Dock a ProbeWidget showing ``path``; a result already docked is reloaded and
    shown instead of docking it twice."""
    for widget in viewer.window._qt_window.findChildren(ProbeWidget):
        shown = widget.result
        if shown is not None and shown.path == record_path(path).resolve():
            widget.load(path)
            widget.dock.show()  # it may have been hidden
            widget.dock.raise_()
            return widget
    widget = ProbeWidget(viewer, path)
    file = record_path(path).resolve()
    name = file.parent.name if file.name == RECORD_NAME else file.name
    dock = viewer.window.add_dock_widget(
        scrollable(widget), name=f"Probe {name}", area="bottom", tabify=True
    )
    dock.raise_()
    widget.dock = dock
    # the full width and more height than the run plots: the result is what the user opened
    window = viewer.window._qt_window
    height = int(DOCK_SHARE * window.height())
    # once the new dock is laid out (resizing it before has no effect)
    QTimer.singleShot(0, lambda: window.resizeDocks([dock], [height], Qt.Orientation.Vertical))
    return widget


def read_probe(path) -> list[tuple]:
    """npe2 reader of a probe folder or probe.json: docks its result in the current
    viewer (a bad file shows its error there); no layer is added (``[(None,)]``)."""
    import napari

    viewer = napari.current_viewer()
    if viewer is None:
        raise MovieReconError(f"{path}: a probe result opens in a napari viewer")
    dock_probe_result(viewer, path)
    return [(None,)]
