"""A viewer with the in-silico sample open and every widget docked, ready to run."""

from __future__ import annotations

import pytest

from napari_movierecon._napari.launch import open_ready


class Ready:
    """The viewer, its docked widgets by name, and the shared session."""

    def __init__(self, viewer, widgets) -> None:
        self.viewer = viewer
        self.widgets = widgets
        self.recording = widgets["Recording and trial"]
        self.population = widgets["Neuron population"]
        self.run = widgets["Reconstruction"]
        self.plots = widgets["Plots"]
        self.export = widgets["Export"]
        self.session = self.run.session

    def set_params(self, **values) -> None:
        """Type values into the parameter editors (members=1 keeps test runs short)."""
        for name, value in values.items():
            editor = self.run.editor.editors[name]
            if hasattr(editor, "setValue"):
                editor.setValue(value)
            else:
                editor.setCurrentText(str(value))


@pytest.fixture
def ready(make_napari_viewer, qtbot) -> Ready:
    viewer = make_napari_viewer()
    widgets = open_ready(viewer)
    session = widgets["Reconstruction"].session
    qtbot.waitUntil(
        lambda: session.trial is not None and session.population is not None, timeout=60_000
    )
    yield Ready(viewer, widgets)
    for run in session.runs:
        if run.active:
            run.stop()
            qtbot.waitUntil(lambda run=run: not run.worker.is_running, timeout=10_000)
