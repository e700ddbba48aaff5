"""Dock widget and npe2 writer: export frames of image layers as mp4, gif, tiff or npy
with a JSON sidecar (runs' configs, populations, metrics, frame range).

Layers are exported as napari shows them (contrast limits and colormap) for video
formats; tiff/npy of one layer hold its raw values. Several layers go side by side
in one file, or one file per layer. Nothing is overwritten unless asked.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from napari.layers import Image
from napari.utils.colormaps import ensure_colormap
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QWidget,
)

from napari_movierecon._napari.session import TAG, check_same_trial
from napari_movierecon.errors import MovieReconError
from napari_movierecon.io.export import SUPPORTED_SUFFIXES, Panel, export_frames

FORMATS = ("mp4", "gif", "tiff", "npy")


def layer_panel(data: np.ndarray, limits, colormap, name: str, frames: range) -> Panel:
    """A Panel of ``frames`` of a layer's data: (T, H, W) sliced, (H, W) repeated."""
    data = np.asarray(data)
    if data.ndim == 2:
        cut = np.broadcast_to(data, (len(frames), *data.shape))
    elif data.ndim == 3:
        if frames.stop > data.shape[0]:
            raise MovieReconError(
                f"layer {name!r} has {data.shape[0]} frames; frames up to "
                f"{frames.stop - 1} were asked for"
            )
        cut = data[frames.start : frames.stop]
    else:
        raise MovieReconError(f"layer {name!r}: only 2-D or (T, H, W) images can be exported")
    lut = ensure_colormap(colormap).map(np.linspace(0.0, 1.0, 256))
    return Panel(frames=cut, limits=tuple(float(v) for v in limits), colormap=lut, name=name)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "layer"


def export_layers(
    layers,
    path: Path,
    frames: range,
    side_by_side: bool,
    fps: float,
    scale: int,
    overwrite: bool,
) -> list[Path]:
    """Export ``frames`` of ``layers`` to ``path`` (one file, or one per layer named
    ``<stem>_<layer><suffix>``), each with a JSON sidecar; returns the written paths."""
    if not layers:
        raise MovieReconError("choose at least one layer to export")
    if len(frames) == 0:
        raise MovieReconError(f"the frame range {frames.start}..{frames.stop - 1} is empty")
    if side_by_side:
        check_same_trial(layers)
    panels = [
        layer_panel(layer.data, layer.contrast_limits, layer.colormap, layer.name, frames)
        for layer in layers
    ]
    runs = {layer.name: layer.metadata[TAG] for layer in layers if TAG in layer.metadata}
    if side_by_side or len(layers) == 1:
        jobs = [(panels, path)]
    else:
        jobs = [
            ([panel], path.with_name(f"{path.stem}_{_slug(panel.name)}{path.suffix}"))
            for panel in panels
        ]
        existing = [target for _, target in jobs if target.exists()]
        if existing and not overwrite:
            raise MovieReconError(f"{existing[0]}: already exists; tick 'overwrite' to replace")
    written = []
    for chosen, target in jobs:
        record = {"layers": {p.name: runs.get(p.name) for p in chosen}}
        written += export_frames(
            chosen,
            target,
            fps=fps,
            scale=scale,
            record=record,
            overwrite=overwrite,
            first_frame=frames.start,
        )
    return written


def write_image(path: str, data, attributes: dict) -> list[str]:
    """npe2 single-layer writer: every frame of an image layer, as displayed for
    mp4/gif and raw for tiff/npy, with a JSON sidecar."""
    data = np.asarray(data)
    frames = range(data.shape[0] if data.ndim == 3 else 1)
    panel = layer_panel(
        data,
        attributes.get("contrast_limits") or (float(data.min()), float(data.max()) + 1e-6),
        attributes.get("colormap", "gray"),
        attributes.get("name", "layer"),
        frames,
    )
    record = {"layers": {panel.name: attributes.get("metadata", {}).get(TAG)}}
    try:
        written = export_frames([panel], path, record=record)
    except MovieReconError as err:
        show_error(f"movierecon: {err}")
        return []
    return [str(p) for p in written]


class ExportWidget(QWidget):
    """Pick layers, a frame range (current or typed), format, layout, scale and fps."""

    def __init__(self, napari_viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.layer_list = QListWidget()
        self.layer_list.setMaximumHeight(120)
        self.current_only = QCheckBox("current frame only")
        self.first = QSpinBox(minimum=0, maximum=10**6)
        self.last = QSpinBox(minimum=0, maximum=10**6)
        self.last.setValue(299)
        self.format = QComboBox()
        self.format.addItems(FORMATS)
        self.side_by_side = QCheckBox("side by side in one file")
        self.side_by_side.setChecked(True)
        self.scale = QSpinBox(minimum=1, maximum=16)
        self.scale.setValue(4)
        self.fps = QDoubleSpinBox(minimum=0.1, maximum=240.0, decimals=1)
        self.fps.setValue(30.0)
        self.path = QLineEdit(str(Path.home() / "movierecon_export"))
        browse = QPushButton("…")
        browse.setMaximumWidth(30)
        browse.clicked.connect(self._browse)
        self.overwrite = QCheckBox("overwrite existing files")
        self.export_button = QPushButton("Export")
        self.status = QLabel()
        self.status.setWordWrap(True)

        frames_row = QHBoxLayout()
        frames_row.addWidget(self.first)
        frames_row.addWidget(QLabel("to"))
        frames_row.addWidget(self.last)
        path_row = QHBoxLayout()
        path_row.addWidget(self.path)
        path_row.addWidget(browse)
        form = QFormLayout(self)
        form.addRow("layers", self.layer_list)
        form.addRow("frames", frames_row)
        form.addRow(self.current_only)
        form.addRow("format", self.format)
        form.addRow(self.side_by_side)
        form.addRow("scale", self.scale)
        form.addRow("fps", self.fps)
        form.addRow("file", path_row)
        form.addRow(self.overwrite)
        form.addRow(self.export_button)
        form.addRow(self.status)

        self.export_button.clicked.connect(self.export)
        for event in (napari_viewer.layers.events.inserted, napari_viewer.layers.events.removed):
            event.connect(self._refresh_layers)
        napari_viewer.layers.events.reordered.connect(self._refresh_layers)
        self._refresh_layers()

    def _image_layers(self) -> list[Image]:
        return [layer for layer in self.viewer.layers if isinstance(layer, Image)]

    def _refresh_layers(self, *_) -> None:
        checked = set(self.chosen_names())
        self.layer_list.clear()
        for layer in self._image_layers():
            item = QListWidgetItem(layer.name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(
                Qt.CheckState.Checked if layer.name in checked else Qt.CheckState.Unchecked
            )
            self.layer_list.addItem(item)

    def chosen_names(self) -> list[str]:
        items = (self.layer_list.item(i) for i in range(self.layer_list.count()))
        return [item.text() for item in items if item.checkState() == Qt.CheckState.Checked]

    def set_chosen(self, names: list[str]) -> None:
        for i in range(self.layer_list.count()):
            item = self.layer_list.item(i)
            item.setCheckState(
                Qt.CheckState.Checked if item.text() in names else Qt.CheckState.Unchecked
            )

    def frame_range(self) -> range:
        if self.current_only.isChecked():
            current = int(self.viewer.dims.current_step[0])
            return range(current, current + 1)
        return range(self.first.value(), self.last.value() + 1)

    def target(self) -> Path:
        """The typed path with the chosen format's suffix."""
        path = Path(self.path.text().strip()).expanduser()
        suffix = "." + self.format.currentText()
        return path if path.suffix.lower() in SUPPORTED_SUFFIXES else path.with_suffix(suffix)

    def export(self) -> list[Path]:
        """Export as set; a problem is shown and nothing is written."""
        layers = [self.viewer.layers[name] for name in self.chosen_names()]
        try:
            written = export_layers(
                layers,
                self.target(),
                self.frame_range(),
                self.side_by_side.isChecked(),
                self.fps.value(),
                self.scale.value(),
                self.overwrite.isChecked(),
            )
        except MovieReconError as err:
            self.status.setText(f"<font color='#e05050'>{err}</font>")
            show_error(f"movierecon export: {err}")
            return []
        text = "wrote " + ", ".join(str(p) for p in written)
        self.status.setText(text)
        show_info(f"movierecon: {text}")
        return written

    def _browse(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export to", self.path.text())
        if path:
            self.path.setText(path)
