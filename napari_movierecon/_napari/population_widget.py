"""Dock widget: choose the neurons whose activity drives a reconstruction.

The neurons are a Points layer at their cortical (x, y) positions coloured by the
encoder's reliability; the chosen ones keep their colour, the others turn pale, and
the count updates as the choice changes. Modes: all, random fraction (seeded),
top-k most reliable, a region drawn on the map (Shapes layer: every polygon drawn
counts), a depth range. The choice is a ``Population`` (see reconstruct/neurons.py),
published to the session as a ``Selection``.
"""

from __future__ import annotations

import numpy as np
from napari.utils.colormaps import ensure_colormap
from qtpy.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QStackedWidget,
    QWidget,
)

from napari_movierecon._napari.layers import neuron_map_layer
from napari_movierecon._napari.session import TAG, find_layer, session_for
from napari_movierecon.errors import MovieReconError
from napari_movierecon.reconstruct.neurons import (
    AllNeurons,
    DepthRange,
    Population,
    RandomFraction,
    Region,
    Selection,
    TopK,
)

MODES = ("all", "random fraction", "top-k reliable", "region on map", "depth range")
UNCHOSEN_RGBA = (0.75, 0.75, 0.75, 0.25)
# Outline of drawn regions in world (movie-pixel) units: about 2-3 screen pixels when
# the movie fills the canvas (the map's data units are µm, 14 µm per movie pixel).
REGION_EDGE_PX = 0.5


def _form(*rows) -> QWidget:
    page = QWidget()
    form = QFormLayout(page)
    form.setContentsMargins(0, 0, 0, 0)
    for label, widget in rows:
        form.addRow(label, widget)
    return page


class PopulationWidget(QWidget):
    """Picks ``session.population`` live; an empty choice sets it to None with a message."""

    def __init__(self, napari_viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.session = session_for(napari_viewer)
        self.mode = QComboBox()
        self.mode.addItems(MODES)
        self.fraction = QDoubleSpinBox(decimals=3, minimum=0.0, maximum=1.0, singleStep=0.05)
        self.fraction.setValue(0.25)
        self.seed = QSpinBox(minimum=0, maximum=2**31 - 1)
        self.top_k = QSpinBox(minimum=0, maximum=10**6)
        self.top_k.setValue(1000)
        self.draw_button = QPushButton("Draw polygons on the map")
        self.draw_button.setToolTip(
            "every polygon drawn counts (a neuron inside any of them is chosen); "
            "vertices are kept in cortical µm"
        )
        self.clear_button = QPushButton("Clear")
        self.clear_button.setToolTip("remove every drawn polygon")
        self.depth_low = QDoubleSpinBox(minimum=-1e4, maximum=1e4, suffix=" µm")
        self.depth_high = QDoubleSpinBox(minimum=-1e4, maximum=1e4, suffix=" µm")
        self.depth_low.setValue(200.0)
        self.depth_high.setValue(300.0)
        self.name = QLineEdit()
        self.name.setPlaceholderText("name (default: how it was chosen)")
        self.count = QLabel("no recording open")
        self.count.setWordWrap(True)

        self.pages = QStackedWidget()
        every = QLabel("every neuron the encoder models (map colour: encoder reliability)")
        every.setWordWrap(True)
        self.pages.addWidget(every)
        self.pages.addWidget(_form(("fraction", self.fraction), ("seed", self.seed)))
        self.pages.addWidget(_form(("k", self.top_k)))
        region_page = QWidget()
        region_row = QHBoxLayout(region_page)
        region_row.setContentsMargins(0, 0, 0, 0)
        region_row.addWidget(self.draw_button, stretch=1)
        region_row.addWidget(self.clear_button)
        self.pages.addWidget(region_page)
        self.pages.addWidget(_form(("from", self.depth_low), ("to", self.depth_high)))

        form = QFormLayout(self)
        form.addRow("mode", self.mode)
        form.addRow(self.pages)
        form.addRow("name", self.name)
        form.addRow(self.count)

        self.mode.currentIndexChanged.connect(self.pages.setCurrentIndex)
        for signal in (
            self.mode.currentIndexChanged,
            self.fraction.valueChanged,
            self.seed.valueChanged,
            self.top_k.valueChanged,
            self.depth_low.valueChanged,
            self.depth_high.valueChanged,
            self.name.textChanged,
        ):
            signal.connect(self.update_population)
        self.draw_button.clicked.connect(self._start_drawing)
        self.clear_button.clicked.connect(self._clear_region)
        self.session.recording_changed.connect(self._recording_changed)
        self._region_layer = None
        if self.session.recording is not None:
            self._recording_changed()

    # -- the neurons layer ---------------------------------------------------------
    def _recording_changed(self) -> None:
        recording = self.session.recording
        data, kwargs, _ = neuron_map_layer(
            recording.neurons, self.session.reliability, self.session.recording_source
        )
        layer = find_layer(self.viewer, "neurons")
        source = layer.metadata[TAG].get("source") if layer is not None else None
        if layer is None or source != self.session.recording_source or len(layer.data) != len(data):
            if layer is not None:  # another recording's map
                self.viewer.layers.remove(layer)
            self.viewer.add_points(data, **kwargs)
        self._colours = self._base_colours()
        self.top_k.setMaximum(len(recording.neurons))
        self.update_population()

    def _neurons_layer(self):
        return find_layer(self.viewer, "neurons")

    def _base_colours(self) -> np.ndarray:
        """(N, 4) RGBA by reliability (or depth), the colour of chosen neurons."""
        reliability = self.session.reliability
        values = (
            reliability if reliability is not None else self.session.recording.neurons.xyz[:, 2]
        )
        values = np.asarray(values, dtype=np.float64)
        low, high = np.percentile(values, [1, 99])
        scaled = np.clip((values - low) / max(high - low, 1e-9), 0, 1)
        return ensure_colormap("viridis").map(scaled)

    # -- choosing ------------------------------------------------------------------
    def chosen(self) -> Population:
        """The population the controls describe (named as typed, else by its spec)."""
        name = self.name.text().strip()
        mode = self.mode.currentText()
        if mode == "all":
            return AllNeurons(name=name)
        if mode == "random fraction":
            return RandomFraction(fraction=self.fraction.value(), seed=self.seed.value(), name=name)
        if mode == "top-k reliable":
            return TopK(k=self.top_k.value(), name=name)
        if mode == "depth range":
            return DepthRange(
                low_um=self.depth_low.value(), high_um=self.depth_high.value(), name=name
            )
        polygons = self._region_polygons()
        if not polygons:
            raise MovieReconError("draw a region (one or more polygons) on the neuron map first")
        return Region(polygons=polygons, name=name)

    def update_population(self, *_) -> None:
        """Recompute the choice, highlight it, count it, publish it to the session."""
        if self.session.recording is None:
            return
        total = len(self.session.recording.neurons)
        try:
            selection = Selection.of(
                self.chosen(), self.session.recording.neurons, self.session.reliability
            )
        except MovieReconError as err:
            self.count.setText(f"<font color='#e05050'>{err}</font>")
            self._highlight(np.zeros(total, bool))
            self.session.set_population(None)
            return
        mask = np.zeros(total, bool)
        mask[selection.indices] = True
        self._highlight(mask)
        self.count.setText(
            f"{len(selection)} of {total} neurons chosen ({selection.name}"
            + (f"; {selection.spec}" if selection.spec != selection.name else "")
            + ")"
        )
        self.session.set_population(selection)

    def _highlight(self, chosen: np.ndarray) -> None:
        layer = self._neurons_layer()
        if layer is None or len(layer.data) != len(chosen):
            return
        colours = np.where(chosen[:, None], self._colours, UNCHOSEN_RGBA)
        layer.face_color = colours
        layer.refresh()

    # -- drawing a region -----------------------------------------------------------
    def _start_drawing(self) -> None:
        layer = self._region()
        self.viewer.layers.selection.active = layer
        layer.mode = "add_polygon"

    def _clear_region(self) -> None:
        layer = self._region_layer
        if layer is not None and layer in self.viewer.layers and len(layer.data):
            layer.data = []

    def _region(self):
        """The Shapes layer holding the region, in the neuron map's coordinates."""
        if self._region_layer is None or self._region_layer not in self.viewer.layers:
            points = self._neurons_layer()
            self._region_layer = self.viewer.add_shapes(
                name="population region",
                ndim=2,
                scale=points.scale,
                translate=points.translate,
                face_color=[1, 1, 1, 0.1],
                edge_color="white",
                edge_width=REGION_EDGE_PX / points.scale[-1],
                metadata={TAG: {"role": "region"}},
            )
            self._region_layer.events.data.connect(self._region_edited)
        return self._region_layer

    def _region_edited(self, *_) -> None:
        if self.mode.currentText() != "region on map":
            self.mode.setCurrentText("region on map")
        else:
            self.update_population()

    def _region_polygons(self) -> list[np.ndarray]:
        """Every drawn shape with >= 3 vertices as cortical (x, y) µm (K, 2) arrays."""
        layer = self._region_layer
        if layer is None or layer not in self.viewer.layers:
            return []
        # shapes hold (y, x) in the map's data units (µm); lines and paths of two points
        # enclose nothing and are left out
        return [np.asarray(shape)[:, -2:][:, ::-1] for shape in layer.data if len(shape) >= 3]
