"""One reconstruction run in the viewer: its worker thread and its own layers.

The engine runs in a napari ``thread_worker`` generator that yields after every
batch of windows through the encoder, so Pause and Stop take effect within a
fraction of an iteration.
Snapshots arrive in the Qt thread, where the run's reconstruction and
correlation-map layers are updated in place (never re-added) and the activity
dock's progress bar advances.
"""

from __future__ import annotations

import numpy as np
from napari.qt.threading import create_worker
from napari.utils import progress
from napari.utils.notifications import show_info
from psygnal import Signal

from napari_movierecon._napari.session import TAG, panel_translate
from napari_movierecon.errors import MovieReconError
from napari_movierecon.reconstruct.engine import GRAY_LEVEL, Snapshot
from napari_movierecon.reconstruct.job import ReconstructionJob

CORRELATION_COLORMAP = "PiYG"


class RunFailed(MovieReconError):
    """An error inside a running reconstruction (e.g. torch running out of memory)."""


def _stream(engine):
    """Worker body: pass the engine's items through (None = heartbeat)."""
    try:
        yield from engine
    except RuntimeError as err:
        # superqt's generator worker takes a RuntimeError for "the worker was deleted"
        # and drops it without any signal, which would leave the run hanging; torch
        # raises RuntimeErrors (out of memory, device errors), so pass them on as ours.
        raise RunFailed(f"{type(err).__name__}: {err}") from err


class RunView:
    """A run named ``name`` drawn in row ``row`` of the side-by-side layout.

    ``history`` holds (iteration, loss, pixel correlation) per snapshot; ``last`` the
    latest Snapshot; ``state`` is one of ready, running, paused, finished, stopped,
    failed.
    """

    updated = Signal(object)
    ended = Signal(str)

    def __init__(self, viewer, job: ReconstructionJob, name: str, row: int) -> None:
        self.viewer = viewer
        self.job = job
        self.name = name
        self.history: list[tuple[int, float, float | None]] = []
        self.last: Snapshot | None = None
        self.state = "ready"
        self.error: str | None = None
        self._worker = None
        self._engine = None
        self._progress = None
        shape = job.trial.movie.shape
        info = {
            "run": name,
            "population": {"name": job.population.name, "spec": job.population.spec},
            "n_neurons": len(job.population),
            "config": job.config.to_json(),
            "trial": job.trial.index,
        }
        self.movie_layer = viewer.add_image(
            np.full(shape, GRAY_LEVEL, dtype=np.float32),
            name=f"{name} reconstruction",
            colormap="gray",
            contrast_limits=(0.0, 255.0),
            translate=(0.0, *panel_translate(row, 1, shape[1:])),
            metadata={TAG: {"role": "reconstruction", **info}},
        )
        self.map_layer = viewer.add_image(
            np.zeros(shape[1:], dtype=np.float32),
            name=f"{name} correlation map",
            colormap=CORRELATION_COLORMAP,
            contrast_limits=(-1.0, 1.0),
            translate=panel_translate(row, 2, shape[1:]),
            metadata={TAG: {"role": "correlation_map", **info}},
        )
        self.mask_layer = None
        if job.eval_mask is not None:
            self.mask_layer = viewer.add_image(
                job.eval_mask.astype(np.float32),
                name=f"{name} evaluation mask",
                colormap="cyan",
                contrast_limits=(0.0, 1.0),
                opacity=0.25,
                blending="additive",
                translate=panel_translate(row, 1, shape[1:]),
                metadata={TAG: {"role": "mask", **info}},
            )

    # -- control ---------------------------------------------------------------------
    def start(self) -> None:
        """Check the inputs in this thread (errors raise here, nothing starts), then run."""
        self._engine = self.job.start(heartbeat=True)
        self._progress = progress(total=self.job.config.iterations, desc=self.name)
        worker = create_worker(_stream, self._engine, _ignore_errors=True)
        worker.yielded.connect(self._on_item)
        worker.errored.connect(self._on_error)
        worker.aborted.connect(lambda: self._end("stopped"))
        worker.finished.connect(self._on_finished)
        self._worker = worker
        self.state = "running"
        worker.start()

    def pause(self) -> None:
        if self.state == "running":
            self._worker.pause()
            self.state = "paused"

    def resume(self) -> None:
        if self.state == "paused":
            self._worker.resume()
            self.state = "running"

    def stop(self) -> None:
        """Ask the worker to stop at its next yield (within one batch of windows)."""
        if self.state in ("running", "paused"):
            if self.state == "paused":
                self._worker.resume()
            self._worker.quit()

    @property
    def worker(self):
        return self._worker

    @property
    def active(self) -> bool:
        return self.state in ("running", "paused")

    # -- streaming -------------------------------------------------------------------
    def _on_item(self, item) -> None:
        if item is None:
            return
        snapshot: Snapshot = item
        self.last = snapshot
        self.history.append((snapshot.iteration, snapshot.loss, snapshot.pixel_correlation))
        self.movie_layer.data = snapshot.movie.astype(np.float32, copy=False)
        if snapshot.correlation_map is not None:
            self.map_layer.data = np.nan_to_num(snapshot.correlation_map).astype(np.float32)
        self.movie_layer.metadata[TAG]["iteration"] = snapshot.iteration
        if self.active:
            self._progress.update(snapshot.iteration - self._progress.n)
        else:  # Qt may deliver the last snapshot after the end signal
            self._store_record()
        self.updated.emit(snapshot)

    def _on_error(self, error: Exception) -> None:
        """napari's worker has already raised a notification with the error."""
        self.error = str(error) if isinstance(error, MovieReconError) else repr(error)
        self._end("failed")

    def _on_finished(self) -> None:
        if self.state in ("running", "paused"):
            done = self.last is not None and self.last.iteration == self.last.iterations
            self._end("finished" if done else "stopped")
        if self._engine is not None:
            self._engine.close()

    def _store_record(self) -> None:
        """The reproducible record of the result so far, kept in the layers' metadata."""
        if self.last is not None:
            record = self.job.result(self.last, completed=self.state == "finished").record
            for layer in (self.movie_layer, self.map_layer):
                layer.metadata[TAG]["record"] = record

    def _end(self, state: str) -> None:
        if not self.active:
            return
        self.state = state
        if self._progress is not None:
            self._progress.close()
        self._store_record()
        if state == "finished":
            corr = self.last.pixel_correlation if self.last else None
            text = f"{corr:.3f}" if corr is not None else "n/a"
            show_info(f"movierecon {self.name} finished: pixel correlation {text}")
        self.ended.emit(state)
