"""Open napari with the plugin's widgets docked and the in-silico sample ready
(``movierecon view`` / ``make run``).

The window appears at once: the sample (the in-silico mouse, ~15 s to build the first
time, then read from the user cache) is built in a worker thread while a message on
the canvas and napari's activity dock say so. Every dock scrolls, so the window fits
a 1366 x 768 screen.
"""

from __future__ import annotations

PLUGIN = "napari-movierecon"
# Smallest height of a docked widget's scroll area (px): title bar and a few rows stay
# visible however small the screen; the rest scrolls.
DOCK_MIN_HEIGHT = 120
# Height the bottom docks (plots, export) start with (px).
BOTTOM_DOCK_HEIGHT = 220


def scrollable(widget):
    """``widget`` in a scroll area that may shrink to DOCK_MIN_HEIGHT (never narrower
    than the widget as first laid out)."""
    from qtpy.QtCore import Qt
    from qtpy.QtWidgets import QFrame, QScrollArea

    area = QScrollArea()
    area.setWidget(widget)
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
    scrollbar = area.verticalScrollBar().sizeHint().width()
    area.setMinimumWidth(widget.minimumSizeHint().width() + scrollbar + 8)
    area.setMinimumHeight(DOCK_MIN_HEIGHT)
    return area


def dock_all(viewer) -> dict:
    """Dock every widget of the plugin (the same ones the Plugins menu offers), each in
    a scroll area; returns {display name: widget}."""
    from qtpy.QtCore import Qt, QTimer

    from napari_movierecon._napari.activity_widget import ActivityWidget
    from napari_movierecon._napari.export_widget import ExportWidget
    from napari_movierecon._napari.mask_widget import MaskWidget
    from napari_movierecon._napari.plots_widget import PlotsWidget
    from napari_movierecon._napari.population_widget import PopulationWidget
    from napari_movierecon._napari.recording_widget import RecordingWidget
    from napari_movierecon._napari.run_widget import RunWidget

    # (name, widget class, dock area, share a tabbed dock with the previous one)
    docked = (
        ("Recording and trial", RecordingWidget, "right", False),
        ("Neuron population", PopulationWidget, "right", True),
        ("Masks", MaskWidget, "right", True),
        ("Reconstruction", RunWidget, "right", False),
        ("Export", ExportWidget, "bottom", False),
        ("Plots", PlotsWidget, "bottom", True),
        ("Neural activity", ActivityWidget, "bottom", True),
    )
    widgets, areas, docks = {}, {}, {}
    for name, cls, area, tabify in docked:
        widgets[name] = cls(viewer)
        areas[name] = scrollable(widgets[name])
        docks[name] = viewer.window.add_dock_widget(
            areas[name], name=name, area=area, tabify=tabify
        )
    # the tabs a user needs most once the sample is open
    for name in ("Neuron population", "Plots"):
        docks[name].raise_()
    # the canvas gets the height the plots do not need; the run dock most of the right
    window = docks["Plots"].parent()
    vertical = Qt.Orientation.Vertical
    window.resizeDocks([docks["Plots"]], [BOTTOM_DOCK_HEIGHT], vertical)
    height = window.height()
    right = [docks["Neuron population"], docks["Reconstruction"]]
    window.resizeDocks(right, [height // 3, 2 * height // 3], vertical)
    # the right column as wide as the run dock's controls need
    width = areas["Reconstruction"].minimumWidth()
    window.resizeDocks([docks["Reconstruction"]], [width], Qt.Orientation.Horizontal)
    # fit the view once the docks have taken their space (the canvas shrinks then)
    QTimer.singleShot(0, viewer.reset_view)
    return widgets


def open_ready(viewer) -> dict:
    """The sample opened and every widget docked (the widgets adopt the sample);
    builds the sample in this thread (for tests and scripts)."""
    viewer.open_sample(PLUGIN, "insilico_mouse")
    viewer.dims.set_point(0, 0)
    return dock_all(viewer)


def open_in_background(viewer):
    """Dock every widget now and build the sample in a worker thread; the canvas says
    what is happening until the sample's layers are added. Returns (widgets, worker)."""
    from napari.layers import Layer
    from napari.qt.threading import create_worker
    from napari.utils import progress

    from napari_movierecon._napari.sample import insilico_mouse

    widgets = dock_all(viewer)
    overlay = viewer.canvas.overlays["text"]
    overlay.text = "building the in-silico sample mouse … (first start ~15 s, then cached)"
    overlay.font_size = 14
    overlay.position = "top_center"
    overlay.visible = True
    busy = progress(total=0, desc="movierecon: in-silico sample")  # indeterminate bar

    def add(layer_data: list[tuple]) -> None:
        for data, kwargs, kind in layer_data:
            viewer.add_layer(Layer.create(data, kwargs, kind))
        viewer.dims.set_point(0, 0)
        viewer.reset_view()

    def done(*_) -> None:
        busy.close()
        overlay.visible = False

    def failed(error: Exception) -> None:
        busy.close()
        overlay.text = f"the sample could not be built: {error}"

    worker = create_worker(insilico_mouse, _ignore_errors=True)
    worker.returned.connect(add)
    worker.errored.connect(failed)
    worker.returned.connect(done)
    worker.start()
    return widgets, worker


def launch_viewer() -> None:
    """Start napari, dock the widgets, open the in-silico mouse sample in the background,
    run the event loop."""
    import napari

    viewer = napari.Viewer(title="napari-movierecon")
    open_in_background(viewer)
    napari.run()


def wait_ready(widgets: dict, timeout_s: float = 120.0) -> None:
    """Process Qt events until the widgets have adopted the sample (trial and population
    known); for scripts that drive the viewer without ``napari.run()``."""
    import time

    from qtpy.QtWidgets import QApplication

    session = widgets["Reconstruction"].session
    deadline = time.monotonic() + timeout_s
    while session.trial is None or session.population is None:
        if time.monotonic() > deadline:
            raise TimeoutError("the plugin did not become ready (sample not adopted)")
        QApplication.instance().processEvents()
        time.sleep(0.01)
