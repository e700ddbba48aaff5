"""Dock widget: a batch folder's table (``movierecon batch --out DIR``). Choosing a row
shows that run's ground truth, reconstruction and correlation map side by side, in one
row of panels above the viewer's own runs; the same three layers are reused for every
row chosen. Opening a batch folder (File > Open Folder) docks it (``read_batch``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from napari.utils.notifications import show_error
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from napari_movierecon._napari.session import TAG, panel_translate
from napari_movierecon.batch.report import SUMMARY, is_batch_folder, read_summary
from napari_movierecon.errors import MovieReconError
from napari_movierecon.reconstruct.results import load_reconstruction

# (column shown, summary.csv column, format of numbers)
SHOWN = (
    ("status", "status", None),
    ("trial", "trial", None),
    ("population", "population", None),
    ("correlation", "pixel_correlation", "{:.3f}"),
    ("neurons", "n_neurons", None),
    ("preset", "preset", None),
    ("seed", "seed", None),
    ("seconds", "seconds", "{:.1f}"),
    ("encoder", "encoder", None),
    ("error", "error", None),
)
PANELS = (
    ("truth", "ground truth", "gray", (0.0, 255.0)),
    ("reconstruction", "reconstruction", "gray", (0.0, 255.0)),
    ("correlation_map", "correlation map", "PiYG", (-1.0, 1.0)),
)
MIN_TABLE_WIDTH = 470  # status .. correlation visible without scrolling
BATCH_ROW = -1  # the panels' row: above the viewer's runs (rows 0, 1, ...)


def _cell(value: str, number_format: str | None) -> QTableWidgetItem:
    """A table cell; numbers sort as numbers."""
    item = QTableWidgetItem()
    try:
        number = float(value)
    except ValueError:
        item.setText(value)
    else:
        item.setData(
            Qt.ItemDataRole.DisplayRole,
            number if number_format is None else float(number_format.format(number)),
        )
    item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
    return item


class BatchTableWidget(QWidget):
    """``rows``: the summary rows shown (dicts of strings), in file order."""

    def __init__(self, napari_viewer, folder: str | Path | None = None) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.rows: list[dict] = []
        self.folder: Path | None = None
        self.folder_edit = QLineEdit()
        self.folder_edit.setPlaceholderText("batch folder (movierecon batch --out DIR)")
        browse = QPushButton("…")
        browse.setMaximumWidth(30)
        browse.clicked.connect(self._browse)
        reload_button = QPushButton("Reload")
        reload_button.clicked.connect(lambda: self.load(self.folder_edit.text().strip()))
        self.table = QTableWidget(0, len(SHOWN))
        self.table.setHorizontalHeaderLabels([name for name, _, _ in SHOWN])
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setMinimumWidth(MIN_TABLE_WIDTH)
        self.table.itemSelectionChanged.connect(self._on_selection)
        self.status = QLabel("open a batch folder")
        self.status.setWordWrap(True)
        top = QHBoxLayout()
        top.addWidget(self.folder_edit)
        top.addWidget(browse)
        top.addWidget(reload_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.table, stretch=1)
        layout.addWidget(self.status)
        if folder is not None:
            self.load(folder)

    def load(self, folder: str | Path) -> None:
        """Show the table of ``folder``; an error message (and an empty table) otherwise."""
        folder = Path(folder)
        self.folder_edit.setText(str(folder))
        if not is_batch_folder(folder):
            self._fail(f"{folder}: not a batch folder (no {SUMMARY} and runs/)")
            return
        self.folder = folder
        self.rows = read_summary(folder / SUMMARY)
        self.table.setSortingEnabled(False)
        self.table.setRowCount(len(self.rows))
        for r, row in enumerate(self.rows):
            for c, (_, column, number_format) in enumerate(SHOWN):
                item = _cell(row.get(column, ""), number_format)
                item.setData(Qt.ItemDataRole.UserRole, r)
                self.table.setItem(r, c, item)
        self.table.setSortingEnabled(True)
        done = sum(row["status"] == "done" for row in self.rows)
        self.status.setText(f"{folder.name}: {len(self.rows)} runs, {done} done; choose a row")

    def select(self, index: int) -> None:
        """Choose the run at ``index`` of ``rows`` (as a click on its row does)."""
        for r in range(self.table.rowCount()):
            if self.table.item(r, 0).data(Qt.ItemDataRole.UserRole) == index:
                self.table.selectRow(r)
                return

    def _on_selection(self) -> None:
        items = self.table.selectedItems()
        if items:
            self.show_run(self.rows[items[0].data(Qt.ItemDataRole.UserRole)])

    def show_run(self, row: dict) -> None:
        """Ground truth | reconstruction | correlation map of the run ``row``."""
        if row["status"] != "done" or not row.get("file"):
            self.status.setText(f"run {row['key']}: {row['status']} {row.get('error', '')}")
            return
        path = self.folder / row["file"]
        try:
            result = load_reconstruction(path)
        except MovieReconError as err:
            self._fail(str(err))
            return
        frames = result.movie.shape[1:]
        arrays = {
            "truth": result.truth,
            "reconstruction": result.movie,
            "correlation_map": result.correlation_map,
        }
        record = result.record
        label = (
            f"trial {record.get('trial')}, {row['population']}, {row['preset']}, seed {row['seed']}"
        )
        for column, (role, title, colormap, limits) in enumerate(PANELS):
            data = arrays[role]
            if data is None:
                data = np.zeros(frames, np.float32)
            self._panel(
                role,
                f"batch {title}",
                data,
                colormap,
                limits,
                panel_translate(BATCH_ROW, column, frames)[-2:],
                str(path),
            )
        score = row["pixel_correlation"]
        self.status.setText(
            f"{record.get('recording')} {label}: pixel correlation {float(score):.3f}"
            if score
            else label
        )

    def _panel(self, role, name, data, colormap, limits, translate, path) -> None:
        """Replace the data of this widget's ``role`` layer, or add it once."""
        role = f"batch_{role}"
        for layer in self.viewer.layers:
            if layer.metadata.get(TAG, {}).get("role") == role:
                if layer.data.ndim == data.ndim:
                    layer.data = data
                    layer.metadata = {TAG: {"role": role, "file": path}}
                    return
                self.viewer.layers.remove(layer)
                break
        self.viewer.add_image(
            data,
            name=name,
            colormap=colormap,
            contrast_limits=limits,
            translate=translate,
            metadata={TAG: {"role": role, "file": path}},
        )

    def _fail(self, message: str) -> None:
        self.status.setText(f"<font color='#e05050'>{message}</font>")
        show_error(f"movierecon: {message}")

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Batch folder")
        if folder:
            self.load(folder)


def dock_batch_table(viewer, folder: str | Path) -> BatchTableWidget:
    widget = BatchTableWidget(viewer, folder)
    viewer.window.add_dock_widget(
        widget, name=f"Batch {Path(folder).name}", area="right", tabify=True
    )
    return widget


def read_batch(path) -> list[tuple]:
    """npe2 reader of a batch folder: docks its table in the current viewer; no layer
    is added until a row is chosen (``[(None,)]`` tells napari the folder was read)."""
    import napari

    viewer = napari.current_viewer()
    if viewer is None:
        raise MovieReconError(f"{path}: a batch folder opens in a napari viewer")
    dock_batch_table(viewer, path)
    return [(None,)]
