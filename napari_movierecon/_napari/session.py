"""What the dock widgets of one viewer share: the open recording and encoder, the
shown trial, the chosen population, and the runs. Widgets talk through its
psygnal signals, never to each other.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
from psygnal import Signal

from napari_movierecon.allocator import release_freed_memory
from napari_movierecon.reconstruct.neurons import Selection, encoder_reliability
from napari_movierecon.recording import Recording, Trial

# Layer metadata key under which this plugin tags the layers it owns or reads.
TAG = "movierecon"
GAP_PX = 4.0  # between panels of a row
ROW_GAP_PX = 8.0  # between rows: room for the run names drawn above each row's panels


class Session:
    """Evented state of the plugin in one viewer (all access from the Qt thread)."""

    recording_changed = Signal()
    trial_changed = Signal()
    population_changed = Signal()
    run_started = Signal(object)
    run_removed = Signal(object)
    mask_saved = Signal(str)  # path of a mask file made in the GUI, for the next runs

    def __init__(self) -> None:
        self.recording: Recording | None = None
        self.recording_source: str | None = None
        self.encoder = None
        self.encoder_source: str | None = None
        self.reliability: np.ndarray | None = None
        self.trial: Trial | None = None
        self.population: Selection | None = None
        self.runs: list = []  # RunView objects, oldest first

    def set_recording(self, recording: Recording, source: str, encoder, encoder_source: str):
        self.recording, self.recording_source = recording, source
        self.encoder, self.encoder_source = encoder, encoder_source
        self.reliability = encoder_reliability(encoder)
        self.trial = None
        self.arrange()
        self.recording_changed.emit()

    def set_trial(self, trial: Trial) -> None:
        self.trial = trial
        self.arrange()
        self.trial_changed.emit()

    def set_population(self, population: Selection | None) -> None:
        self.population = population
        self.population_changed.emit()

    def add_run(self, run) -> None:
        self.runs.append(run)
        self.arrange()
        self.run_started.emit(run)

    def remove_run(self, run) -> None:
        """Stop ``run``, remove its layers and forget it (its memory is returned)."""
        run.remove()
        self.runs.remove(run)
        self.arrange()
        self.run_removed.emit(run)
        release_freed_memory()  # reconstructions keep freed memory for reuse (allocator.py)

    def shows(self, run) -> bool:
        """Whether ``run`` belongs beside the shown ground truth: same recording and
        trial. A run opened from a file carries its own ground truth and always shows."""
        if run.file is not None:
            return True
        return (
            self.recording is not None
            and self.trial is not None
            and (run.recording, run.trial) == (self.recording.name, self.trial.index)
        )

    def arrange(self) -> None:
        """One row per shown run, oldest first, next to the ground truth (row 0); a saved
        run shows its own ground truth in column 0, so it never takes row 0. Runs of
        other trials or recordings are hidden. The first shown run's correlation map
        carries the colour bar (every map has the same scale, -1..1)."""
        row = shown = 0
        for run in self.runs:
            visible = self.shows(run)
            if visible and run.file is not None:
                row = max(row, 1)
            run.place(row, visible, colorbar=visible and shown == 0)
            row += visible
            shown += visible


_SESSIONS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def session_for(viewer) -> Session:
    """The one Session of ``viewer`` (created on first use)."""
    if viewer not in _SESSIONS:
        _SESSIONS[viewer] = Session()
    return _SESSIONS[viewer]


def panel_translate(row: int, column: int, frame_shape: tuple[int, int]) -> tuple[float, float]:
    """(y, x) offset in screen pixels of the panel at ``row``, ``column`` of the side-by-side
    layout: column 0 ground truth, 1 reconstruction, 2 correlation map; one row per run."""
    height, width = frame_shape
    return row * (height + ROW_GAP_PX), column * (width + GAP_PX)


def find_layer(viewer, role: str):
    """The first layer this plugin tagged with ``role`` ("truth", "neurons"), or None."""
    for layer in viewer.layers:
        if layer.metadata.get(TAG, {}).get("role") == role:
            return layer
    return None


@contextmanager
def keep_active_layer(viewer) -> Iterator[None]:
    """Layers added in the body do not become the active layer: a starting run does not
    take the layer controls from the layer the user works on, and the add is ~25 %
    cheaper (no switch of the controls). Uses napari's ``_activate_on_insert`` flag of
    the layer list; where it is missing, adds behave as usual."""
    layers = viewer.layers
    previous = getattr(layers, "_activate_on_insert", None)
    if previous is None:
        yield
        return
    layers._activate_on_insert = False
    try:
        yield
    finally:
        layers._activate_on_insert = previous
