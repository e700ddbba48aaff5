"""Dock widget: export frames of image layers as mp4, gif, tiff or npy with a JSON
sidecar (runs' configs, populations, metrics, frame range).

Layers are exported as napari shows them (contrast limits and colormap) for video
formats; tiff/npy of one layer hold its raw values at the layer's own size (the
scale applies to mp4/gif only). Several layers go side by side in one file (their
names optionally drawn above them; layers of different trials are refused), or one
file per layer. The target is a file name (its suffix, if any, must match the
format) or an existing folder, which receives ``movierecon_export.<format>``.
Nothing is overwritten unless 'overwrite' is ticked.
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
    QVBoxLayout,
    QWidget,
)

from napari_movierecon._napari.session import TAG
from napari_movierecon.errors import MovieReconError
from napari_movierecon.io.atomic import TargetExists
from napari_movierecon.io.export import SUPPORTED_SUFFIXES, Panel, export_frames

FORMATS = ("mp4", "gif", "tiff", "npy")
VIDEO_FORMATS = ("mp4", "gif")
# The file an existing folder chosen as target receives (plus _<layer> per layer).
DEFAULT_STEM = "movierecon_export"
OVERWRITE_HINT = "tick 'overwrite existing files' to replace it"


def layer_trial(metadata: dict) -> tuple[str | None, int] | None:
    """(recording, trial) a layer's frames belong to, from this plugin's tag, or None."""
    info = metadata.get(TAG, {})
    if info.get("trial") is None:
        return None
    return info.get("recording"), int(info["trial"])


def layer_panel(
    data: np.ndarray,
    limits,
    colormap,
    name: str,
    frames: range,
    trial: tuple[str | None, int] | None = None,
) -> Panel:
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
    limits = tuple(float(v) for v in limits)
    return Panel(frames=cut, limits=limits, colormap=lut, name=name, trial=trial)


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
    labels: bool = False,
) -> list[Path]:
    """Export ``frames`` of ``layers`` to ``path`` (one file, or one per layer named
    ``<stem>_<layer><suffix>``), each with a JSON sidecar; returns the written paths.
    ``scale`` enlarges mp4/gif only; ``labels`` draws the layers' names above them
    when several go side by side."""
    if not layers:
        raise MovieReconError("choose at least one layer to export")
    if len(frames) == 0:
        raise MovieReconError(f"the frame range {frames.start}..{frames.stop - 1} is empty")
    panels = [
        layer_panel(
            layer.data,
            layer.contrast_limits,
            layer.colormap,
            layer.name,
            frames,
            layer_trial(layer.metadata),
        )
        for layer in layers
    ]
    if path.suffix.lower() not in tuple(f".{fmt}" for fmt in VIDEO_FORMATS):
        scale = 1
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
            raise TargetExists(existing[0])
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
            labels=labels and len(chosen) > 1,
        )
    return written


class ExportWidget(QWidget):
    """Pick layers, a frame range (current or typed), format, layout, scale and fps."""

    def __init__(self, napari_viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.layer_list = QListWidget()
        self.layer_list.setMinimumHeight(60)
        self.current_only = QCheckBox("current only")
        self.current_only.setToolTip("export only the frame the slider shows")
        self.first = QSpinBox(minimum=0, maximum=10**6)
        self.last = QSpinBox(minimum=0, maximum=10**6)
        self.last.setValue(299)
        self.format = QComboBox()
        self.format.addItems(FORMATS)
        self.side_by_side = QCheckBox("side by side")
        self.side_by_side.setToolTip(
            "the layers left to right in one file (unticked: one file per layer)"
        )
        self.side_by_side.setChecked(True)
        self.labels = QCheckBox("names above")
        self.labels.setChecked(True)
        self.labels.setToolTip("side by side: draw each layer's name above its panel")
        self.scale = QSpinBox(minimum=1, maximum=16)
        self.scale.setValue(4)
        self.scale.setToolTip(
            "mp4/gif: enlarge by pixel repetition; tiff/npy keep the layer's own pixels"
        )
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

        def row(*items) -> QHBoxLayout:
            layout = QHBoxLayout()
            for item in items:
                if isinstance(item, str):
                    layout.addWidget(QLabel(item))
                else:
                    layout.addWidget(item, stretch=1 if isinstance(item, QLineEdit) else 0)
            return layout

        # two columns (layers | settings) keep the dock short on laptop screens
        form = QFormLayout()
        form.addRow("frames", row(self.first, "to", self.last, self.current_only))
        form.addRow("format", row(self.format, self.side_by_side, self.labels))
        form.addRow("scale", row(self.scale, "fps", self.fps))
        form.addRow("file", row(self.path, browse))
        form.addRow(row(self.overwrite, self.export_button))
        form.addRow(self.status)
        layers = QVBoxLayout()
        layers.addWidget(QLabel("layers"))
        layers.addWidget(self.layer_list)
        columns = QHBoxLayout(self)
        columns.addLayout(layers, stretch=1)
        columns.addLayout(form, stretch=2)

        self.path.setToolTip(
            "a file name (no suffix: the format's) or an existing folder, which receives "
            f"{DEFAULT_STEM}.<format>"
        )
        self.export_button.clicked.connect(self.export)
        self.format.currentTextChanged.connect(self._format_changed)
        self.side_by_side.toggled.connect(self._format_changed)
        self._format_changed()
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
        """The file to write: an existing folder receives ``DEFAULT_STEM.<format>``; a
        name without a known suffix gets the format's; a suffix of another format is
        refused (MovieReconError) rather than silently chosen over the format box."""
        text = self.path.text().strip()
        if not text:
            raise MovieReconError("type a file name or a folder to export to")
        path = Path(text).expanduser()
        fmt = self.format.currentText()
        if path.is_dir():
            return path / f"{DEFAULT_STEM}.{fmt}"
        suffix = path.suffix.lower()
        if suffix not in SUPPORTED_SUFFIXES:
            return path.with_name(f"{path.name}.{fmt}")
        if {".tif": "tiff"}.get(suffix, suffix[1:]) != fmt:
            raise MovieReconError(
                f"the file name ends in {path.suffix} but the format is {fmt}: "
                "change the name or the format"
            )
        return path

    def _format_changed(self, *_) -> None:
        video = self.format.currentText() in VIDEO_FORMATS
        self.scale.setEnabled(video)
        self.labels.setEnabled(self.side_by_side.isChecked())

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
                labels=self.labels.isChecked() and self.labels.isEnabled(),
            )
        except TargetExists as err:
            return self._refuse(f"{err.path}: already exists; {OVERWRITE_HINT}")
        except MovieReconError as err:
            return self._refuse(str(err))
        text = "wrote " + ", ".join(str(p) for p in written)
        self.status.setText(text)
        show_info(f"movierecon: {text}")
        return written

    def _refuse(self, message: str) -> list[Path]:
        self.status.setText(f"<font color='#e05050'>{message}</font>")
        show_error(f"movierecon export: {message}")
        return []

    def _browse(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export to", self.path.text())
        if path:
            self.path.setText(path)
