"""One reconstruction run in the viewer: its worker thread, its own layers, its status.

Everything slow happens in a napari ``thread_worker`` generator: building the job
(reading the mask file, checking the encoder against the recording), then the
engine's set-up and its iterations. The engine yields after every batch of windows
(its heartbeat), so Pause and Stop take effect within a fraction of an iteration.
Items arrive in the Qt thread, where the run's layers are updated in place (never
re-added) and its ``RunStatus`` changes; widgets subscribe to that status.

A live run's layers are added one per event-loop turn after Run returns: napari takes
~50-150 ms to add one image layer (its vispy visual and layer controls), so adding them
all in the Run click would hold the event loop for several hundred ms. The worker builds
the job and sets up the engine meanwhile, then waits (yielding, so Stop is immediate)
until the layers are in before it iterates: on 2 cores the two at once share the CPU and
the GIL, and the first iterations took ~3x longer than alone, delaying the first picture
by more than the layers cost.

A run saved to a reconstruction file and opened again is a RunView too (``saved``):
same layers and layout, no worker.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
from napari.qt.threading import create_worker
from napari.utils.notifications import show_info
from psygnal import Signal
from qtpy.QtCore import QTimer

from napari_movierecon._napari.run_status import RunState, RunStatus
from napari_movierecon._napari.session import TAG, keep_active_layer, panel_translate
from napari_movierecon.allocator import release_freed_memory
from napari_movierecon.errors import MovieReconError
from napari_movierecon.reconstruct.engine import Snapshot
from napari_movierecon.reconstruct.job import ReconstructionJob
from napari_movierecon.reconstruct.results import save_reconstruction
from napari_movierecon.recording import GRAY_LEVEL

CORRELATION_COLORMAP = "PiYG"
# Layout column of each role (0 ground truth, 1 reconstruction, 2 correlation map).
COLUMNS = {"truth": 0, "reconstruction": 1, "mask": 1, "correlation_map": 2}


class RunFailed(MovieReconError):
    """An error inside a running reconstruction (e.g. torch running out of memory)."""


# How often a worker waiting for its run's layers yields (for Pause and Stop), seconds.
LAYERS_WAIT_S = 0.01


def _work(build: Callable[[], ReconstructionJob], layers_ready: threading.Event):
    """Worker body: build the job and set up the engine, hand the job over (the set-up
    succeeded), wait until ``layers_ready`` is set, then pass the engine's items through
    (None = heartbeat). Everything here runs off the Qt thread."""
    try:
        job = build()
        yield None  # Stop pressed while the job was built takes effect here
        engine = job.start(heartbeat=True)
        try:
            yield job
            while not layers_ready.wait(LAYERS_WAIT_S):
                yield None
            yield from engine
        finally:
            engine.close()
    except RuntimeError as err:
        # superqt's generator worker takes a RuntimeError for "the worker was deleted"
        # and drops it without any signal, which would leave the run hanging; torch
        # raises RuntimeErrors (out of memory, device errors), so pass them on as ours.
        raise RunFailed(f"{type(err).__name__}: {err}") from err


def correlation_caption(mask: str, skipped_frames: int) -> str:
    """What a pixel correlation was computed over, e.g. "full frame, first 10 frames
    skipped"; shown next to every correlation on screen."""
    return f"{mask}, first {skipped_frames} frames skipped"


class RunView:
    """A run named ``name`` from ``recording`` trial ``trial``, drawn as one row of the
    side-by-side layout. ``shape`` is its movie's (T, H, W); ``layers`` maps a role
    (reconstruction, correlation_map, mask; truth for saved runs) to its layer (a live
    run's arrive after Run returns; ``layers_added`` says when all are there);
    ``history`` holds (iteration, loss, pixel correlation) per snapshot; ``last`` the
    latest Snapshot; ``status`` the evented state.
    """

    updated = Signal(object)
    ended = Signal(object)
    layers_added = Signal(object)

    def __init__(
        self, viewer, name: str, recording: str, trial: int, layers: dict, info: dict, shape
    ) -> None:
        self.viewer = viewer
        self.name = name
        self.recording = recording
        self.trial = trial
        self.layers = layers
        self.info = info  # what every layer's metadata carries (run, recording, trial, ...)
        self.shape = tuple(shape)
        self.removed = False
        self._steps: list[Callable[[], None]] = []  # layers still to add, one per turn
        self.status = RunStatus()
        self.history: list[tuple[int, float, float | None]] = []
        self.last: Snapshot | None = None
        self.job: ReconstructionJob | None = None
        self.mask_name = ""  # pixels the correlations are computed over
        self.caption = ""  # ... and the frames they skip, shown with every correlation
        self.file: Path | None = None
        self.row, self.shown = 0, True  # where the layout put it (see Session.arrange)
        self.colorbar = False
        self._worker = None
        self._layers_ready = threading.Event()  # set once add_layers is done (or removed)

    # -- construction ----------------------------------------------------------------
    @classmethod
    def live(cls, viewer, name: str, trial, recording: str, info: dict) -> RunView:
        """A run about to start on ``trial`` (its movie gives the shape); ``info`` goes
        into its layers' metadata. Its layers, a gray reconstruction and an empty
        correlation map (or the latest snapshot's), are added by ``add_layers``."""
        info = {"run": name, "recording": recording, "trial": trial.index, **info}
        run = cls(viewer, name, recording, trial.index, {}, info, trial.movie.shape)
        run._steps = [run._add_movie_layer, run._add_map_layer, run._show_colorbar]
        return run

    @classmethod
    def saved(cls, viewer, layers: dict, file: Path) -> RunView:
        """A run opened from a reconstruction file (layers added by the reader)."""
        record = layers["reconstruction"].metadata[TAG]["record"]
        metrics = record.get("metrics", {})
        name = f"{file.stem} (saved, trial {record.get('trial')})"
        info = {k: v for k, v in layers["reconstruction"].metadata[TAG].items() if k != "role"}
        shape = layers["reconstruction"].data.shape
        run = cls(viewer, name, record.get("recording"), record.get("trial"), layers, info, shape)
        run.file = file
        done = RunState.FINISHED if record.get("completed") else RunState.STOPPED
        run.status.iteration = int(record.get("iterations_done", 0))
        run.status.correlation = metrics.get("pixel_correlation")
        run.status.loss = metrics.get("loss")
        if "mask" in metrics:
            run.mask_name = metrics["mask"]
            run.caption = correlation_caption(metrics["mask"], metrics.get("skipped_frames", 0))
        run.status.state = done
        return run

    # -- layout ----------------------------------------------------------------------
    @property
    def movie_layer(self):
        return self.layers["reconstruction"]

    @property
    def map_layer(self):
        return self.layers["correlation_map"]

    @property
    def mask_layer(self):
        return self.layers.get("mask")

    @property
    def complete(self) -> bool:
        """Whether every layer of the run is in the viewer."""
        return not self._steps and "correlation_map" in self.layers

    def place(self, row: int, visible: bool, colorbar: bool = False) -> None:
        """Put the run's panels in ``row`` of the layout; hide them when not ``visible``;
        ``colorbar``: show the correlation colour bar (one for all runs: same scale).
        Layers added later are placed the same way."""
        self.row, self.shown, self.colorbar = row, visible, colorbar
        for role, layer in self.layers.items():
            self._place_layer(role, layer)
        if "correlation_map" in self.layers and self._show_colorbar not in self._steps:
            self._show_colorbar()

    def _place_layer(self, role: str, layer) -> None:
        # each change redraws the canvas: change only what differs
        offset = panel_translate(self.row, COLUMNS[role], self.shape[-2:])
        offset = (0.0,) * (layer.ndim - 2) + offset
        if not np.array_equal(layer.translate, offset):
            layer.translate = offset
        if layer.visible != self.shown:
            layer.visible = self.shown

    def _show_colorbar(self) -> None:
        bar, show = self.map_layer.colorbar, self.shown and self.colorbar
        if bar.visible != show:
            bar.position = "bottom_left"  # below the neuron map, not on a panel
            bar.visible = show

    # -- layers, one per event-loop turn ---------------------------------------------
    def add_layers(self) -> None:
        """Add the run's missing layers, one per event-loop turn, then emit
        ``layers_added`` and let the worker iterate; does nothing once the run is removed."""
        if self.removed:
            return
        if self._steps:
            with keep_active_layer(self.viewer):
                self._steps.pop(0)()
            QTimer.singleShot(0, self.add_layers)
        else:
            self._layers_ready.set()
            self.layers_added.emit(self)

    def _metadata(self, role: str) -> dict:
        return {TAG: {"role": role, **self.info}}

    def _add_movie_layer(self) -> None:
        if self.last is None:
            movie = np.full(self.shape, GRAY_LEVEL, dtype=np.float32)
        else:
            movie = self.last.movie.astype(np.float32)  # the layer's own: _show writes into it
        layer = self.viewer.add_image(
            movie,
            name=f"{self.name} reconstruction",
            colormap="gray",
            contrast_limits=(0.0, 255.0),
            metadata=self._metadata("reconstruction"),
        )
        self._adopt("reconstruction", layer)
        if self.job is not None and self.job.eval_mask is not None:
            self._steps.insert(0, self._add_mask_layer)

    def _add_map_layer(self) -> None:
        layer = self.viewer.add_image(
            self._map_data(),
            name=f"{self.name} correlation map",
            colormap=CORRELATION_COLORMAP,
            contrast_limits=(-1.0, 1.0),
            metadata=self._metadata("correlation_map"),
        )
        self._adopt("correlation_map", layer)

    def _add_mask_layer(self) -> None:
        """The evaluation mask over the run's reconstruction panel."""
        layer = _mask_layer(self.viewer, self.job.eval_mask, self.name, self.info)
        self._adopt("mask", layer)

    def _adopt(self, role: str, layer) -> None:
        self.layers[role] = layer
        self._place_layer(role, layer)

    def _map_data(self) -> np.ndarray:
        """The latest correlation map (NaN, e.g. constant pixels, shown as 0), (H, W)."""
        if self.last is None or self.last.correlation_map is None:
            return np.zeros(self.shape[1:], dtype=np.float32)
        return np.nan_to_num(self.last.correlation_map).astype(np.float32)

    def rename(self, name: str) -> None:
        """Give the run a new name: its layers follow (the canvas labels are redrawn by
        the run widget)."""
        name = name.strip()
        if not name or name == self.name:
            return
        for layer in self.layers.values():
            layer.name = layer.name.replace(self.name, name, 1)
            layer.metadata[TAG]["run"] = name
        self.info["run"] = name
        self.name = name

    # -- control ---------------------------------------------------------------------
    def start(self, build: Callable[[], ReconstructionJob], iterations: int) -> None:
        """Start the worker; ``build`` makes the job in the worker thread."""
        self.status.iterations = iterations
        self.status.state = RunState.STARTING
        worker = create_worker(_work, build, self._layers_ready, _ignore_errors=True)
        worker.yielded.connect(self._on_item)
        worker.errored.connect(self._on_error)
        worker.finished.connect(self._on_finished)
        self._worker = worker
        worker.start()

    def pause(self) -> None:
        if self.status.state == RunState.RUNNING:
            self._worker.pause()
            self.status.state = RunState.PAUSED

    def resume(self) -> None:
        if self.status.state == RunState.PAUSED:
            self._worker.resume()
            self.status.state = RunState.RUNNING

    def stop(self) -> None:
        """Ask the worker to stop at its next yield (within one batch of windows)."""
        if self.status.state in (RunState.STARTING, RunState.RUNNING, RunState.PAUSED):
            if self.status.state == RunState.PAUSED:
                self._worker.resume()
            self.status.state = RunState.STOPPING
            self._worker.quit()

    @property
    def worker(self):
        return self._worker

    @property
    def state(self) -> RunState:
        return self.status.state

    @property
    def active(self) -> bool:
        return self.status.active

    # -- streaming -------------------------------------------------------------------
    def _on_item(self, item) -> None:
        if self.removed:  # removed while the worker was ending
            return
        if isinstance(item, ReconstructionJob):
            self.job = item
            # the mask is known once the mask file is read: it goes over the movie layer
            if item.eval_mask is not None and "reconstruction" in self.layers:
                with keep_active_layer(self.viewer):
                    self._add_mask_layer()
            if self.status.state == RunState.STARTING:
                self.status.state = RunState.RUNNING
            return
        if item is None:
            return
        snapshot: Snapshot = item
        self.last = snapshot
        if not self.caption:
            self.mask_name = "evaluation mask" if self.job.eval_mask is not None else "full frame"
            self.caption = correlation_caption(self.mask_name, snapshot.skip_frames)
        self.history.append((snapshot.iteration, snapshot.loss, snapshot.pixel_correlation))
        self.info["iteration"] = snapshot.iteration
        if "reconstruction" in self.layers:
            _show(self.movie_layer, snapshot.movie)
            self.movie_layer.metadata[TAG]["iteration"] = snapshot.iteration
        if "correlation_map" in self.layers and snapshot.correlation_map is not None:
            _show(self.map_layer, self._map_data())
        self.status.loss = snapshot.loss
        self.status.correlation = snapshot.pixel_correlation
        self.updated.emit(snapshot)
        self.status.iteration = snapshot.iteration  # last: subscribers read the history
        if not self.active:  # Qt may deliver the last snapshot after the end signal
            self._store_record()

    def _on_error(self, error: Exception) -> None:
        """napari's worker has already raised a notification with the error."""
        self.status.error = str(error) if isinstance(error, MovieReconError) else repr(error)
        self._end(RunState.FAILED)

    def _on_finished(self) -> None:
        if self.active:
            done = self.last is not None and self.last.iteration == self.last.iterations
            self._end(RunState.FINISHED if done else RunState.STOPPED)

    def result(self):
        """The reconstruction so far as a ``Reconstruction`` (None before the first
        snapshot)."""
        if self.job is None or self.last is None:
            return None
        return self.job.result(self.last, completed=self.status.state == RunState.FINISHED)

    def save(self, path: str | Path, overwrite: bool = False) -> Path:
        """Write the run to a reconstruction file (``movierecon reconstruct --out``'s
        format); MovieReconError when there is nothing to save or the path is bad."""
        result = self.result()
        if result is None:
            raise MovieReconError(f"{self.name}: nothing to save yet (no snapshot)")
        return save_reconstruction(result, path, overwrite=overwrite)

    def _store_record(self) -> None:
        """The reproducible record of the result so far, kept in the layers' metadata."""
        result = self.result()
        if result is not None:
            self.info["record"] = result.record
            for role in ("reconstruction", "correlation_map"):
                if role in self.layers:
                    self.layers[role].metadata[TAG]["record"] = result.record

    def _end(self, state: RunState) -> None:
        if not self.active:
            return
        self.status.state = state
        self._store_record()
        if state == RunState.FINISHED:
            corr = self.last.pixel_correlation if self.last else None
            text = f"{corr:.3f} ({self.caption})" if corr is not None else "n/a"
            show_info(f"movierecon {self.name} finished: pixel correlation {text}")
        self.ended.emit(state)

    def remove(self) -> None:
        """Stop the worker if any, take the layers out of the viewer and drop every
        reference to the run's arrays (movie, job, engine), so their memory returns."""
        self.stop()
        self.removed = True
        self._steps = []
        self._layers_ready.set()
        if self._worker is not None and self._worker.is_running:
            # its arrays are freed when the worker ends: give the memory back then
            self._worker.finished.connect(release_freed_memory)
        for layer in self.layers.values():
            if layer in self.viewer.layers:
                self.viewer.layers.remove(layer)
        self.layers = {}
        self.job = self.last = None
        self.history = []
        for signal in (self.status.events, self.updated, self.ended, self.layers_added):
            signal.disconnect()  # subscribers' closures hold the run


def _show(layer, data: np.ndarray) -> None:
    """Show ``data`` in ``layer``: copied into the layer's own array when it has the same
    shape (every snapshot of a run), then redrawn. Giving napari a new array instead makes
    it recompute the viewer's dimensions and every layer's extent (~25 ms a layer on
    2 CPU cores, in the GUI thread, per snapshot)."""
    current = layer.data
    if (
        isinstance(current, np.ndarray)
        and current.shape == data.shape
        and current.dtype == np.float32
        and current.flags.writeable
    ):
        np.copyto(current, data)
        layer.refresh(extent=False, highlight=False)
    else:
        layer.data = data.astype(np.float32)


def _mask_layer(viewer, mask: np.ndarray, name: str, info: dict):
    return viewer.add_image(
        mask.astype(np.float32),
        name=f"{name} evaluation mask",
        colormap="cyan",
        contrast_limits=(0.0, 1.0),
        opacity=0.25,
        blending="additive",
        metadata={TAG: {"role": "mask", **info}},
    )


def label_positions(row: int, frame_shape) -> np.ndarray:
    """(y, x) of a run's two canvas labels: top-left corners of its reconstruction and
    map panels in layout row ``row``, (2, 2)."""
    corners = [panel_translate(row, column, frame_shape) for column in (1, 2)]
    return np.array(corners, dtype=float) + 1.0
