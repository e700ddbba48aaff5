"""Open napari with the plugin's widgets docked and the in-silico sample ready
(``movierecon view`` / ``make run``)."""

from __future__ import annotations

PLUGIN = "napari-movierecon"


def dock_all(viewer) -> dict:
    """Dock every widget of the plugin (the same ones the Plugins menu offers);
    returns {display name: widget}."""
    from qtpy.QtCore import QTimer

    from napari_movierecon._napari.activity_widget import ActivityWidget
    from napari_movierecon._napari.export_widget import ExportWidget
    from napari_movierecon._napari.plots_widget import PlotsWidget
    from napari_movierecon._napari.population_widget import PopulationWidget
    from napari_movierecon._napari.recording_widget import RecordingWidget
    from napari_movierecon._napari.run_widget import RunWidget

    # (name, widget class, dock area, share a tabbed dock with the previous one)
    docked = (
        ("Recording and trial", RecordingWidget, "right", False),
        ("Neuron population", PopulationWidget, "right", False),
        ("Reconstruction", RunWidget, "right", False),
        ("Export", ExportWidget, "bottom", False),
        ("Plots", PlotsWidget, "bottom", True),
        ("Neural activity", ActivityWidget, "bottom", True),
    )
    widgets = {}
    for name, cls, area, tabify in docked:
        widgets[name] = cls(viewer)
        viewer.window.add_dock_widget(widgets[name], name=name, area=area, tabify=tabify)
    # fit the view once the docks have taken their space (the canvas shrinks then)
    QTimer.singleShot(0, viewer.reset_view)
    return widgets


def open_ready(viewer) -> dict:
    """The sample opened and every widget docked (the widgets adopt the sample)."""
    viewer.open_sample(PLUGIN, "insilico_mouse")
    viewer.dims.set_point(0, 0)
    return dock_all(viewer)


def launch_viewer() -> None:
    """Start napari, open the in-silico mouse sample, dock the widgets, run the event loop."""
    import napari

    viewer = napari.Viewer(title="napari-movierecon")
    open_ready(viewer)
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
