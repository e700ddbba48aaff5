"""What a run will cost, shown before it starts, and the DwiseNeuro parts of opening.

``CostGate`` (in the Run widget): Run asks it first. It measures one pass of the job's
encoder on the job's device (``reconstruct.cost``): small encoders at once (well under
a second, in a thread joined at once), large ones such as DwiseNeuro (seconds per
pass on a CPU) in a worker. It shows the estimate and lets the run start when the
estimate is at most ``CONFIRM_ABOVE_S``; above it, the run starts only when Run is
pressed again for the same job (the label says so). ``cleared`` is emitted when a
background estimate lets a run start, so the widget can start it.

``MouseBox`` and ``open_both`` (in the Recording widget): the DwiseNeuro mouse (auto =
from the recording) and a generator, for a thread_worker, that opens the recording and
the encoder and yields a line per step (each member of a DwiseNeuro folder).
"""

from __future__ import annotations

from collections.abc import Generator
from concurrent.futures import ThreadPoolExecutor

from napari.qt.threading import create_worker
from qtpy.QtCore import Signal
from qtpy.QtWidgets import QLabel, QSpinBox

from napari_movierecon.encoders.checkpoint import check_neurons
from napari_movierecon.encoders.ensemble import members_of
from napari_movierecon.reconstruct.cost import CONFIRM_ABOVE_S, estimate_cost, format_duration
from napari_movierecon.reconstruct.engine import prepare_encoder
from napari_movierecon.sources import open_encoder_steps, open_recording

# Encoders with fewer parameters are measured in the GUI thread (one pass < 0.5 s).
MEASURE_AT_ONCE_BELOW = 2_000_000


def _job_key(job) -> tuple:
    return (id(job.encoder), job.config, job.trial.index, job.population.indices.tobytes())


def _estimate_in_short_thread(job):
    """``estimate_cost(job)`` in a thread that ends with it: torch's CPU thread team
    belongs to the thread that first runs parallel work, and a team left idle in the
    GUI thread competed with the run's worker for the cores (stopping a run took 10-40 %
    longer on 2 cores)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(estimate_cost, job).result()


class CostGate(QLabel):
    """The estimate of the run Run would start, and the confirmation above the threshold."""

    cleared = Signal()

    def __init__(self) -> None:
        super().__init__("cost: estimated when Run is pressed")
        self.setWordWrap(True)
        self.estimates: dict[tuple, object] = {}
        self._confirm_key: tuple | None = None
        self._worker = None

    @staticmethod
    def gates(encoder) -> bool:
        """Whether runs of ``encoder`` wait for their estimate: DwiseNeuro (window
        encoders, hours per clip at full size) and any other encoder of at least
        ``MEASURE_AT_ONCE_BELOW`` parameters. Our FastEncoder runs start at once (Run
        returns to the event loop; the job is built in the run's worker) whatever their
        size: their parameters are mostly per-neuron readout weights, cheap to apply."""
        from napari_movierecon.encoders.dwiseneuro import DwiseNeuroEncoder
        from napari_movierecon.encoders.fast import FastEncoder

        members = members_of(encoder)
        if any(isinstance(member, DwiseNeuroEncoder) for member in members):
            return True
        if all(isinstance(member, FastEncoder) for member in members):
            return False
        return sum(p.numel() for p in encoder.parameters()) >= MEASURE_AT_ONCE_BELOW

    def allows(self, job) -> bool:
        """True if ``job`` may start now; otherwise the label says why (estimating, or
        press Run again to confirm). Raises what the engine raises for a job it cannot
        run (MovieReconError)."""
        key = _job_key(job)
        estimate = self.estimates.get(key)
        if estimate is None:
            parameters = sum(p.numel() for p in job.encoder.parameters())
            if parameters >= MEASURE_AT_ONCE_BELOW:
                self._measure_in_worker(job, key)
                return False
            estimate = self.estimates[key] = _estimate_in_short_thread(job)
        self.show_estimate(estimate)
        if estimate.total_seconds <= CONFIRM_ABOVE_S or self._confirm_key == key:
            self._confirm_key = None
            return True
        self._ask_confirmation(key, estimate)
        return False

    def _ask_confirmation(self, key: tuple, estimate) -> None:
        self._confirm_key = key
        self.setText(
            f"<b>{estimate.describe()}</b><br>above {format_duration(CONFIRM_ABOVE_S)}: "
            "press Run again to start it"
        )

    def show_estimate(self, estimate) -> None:
        self.setText(f"cost: {estimate.describe()}")

    def _measure_in_worker(self, job, key: tuple) -> None:
        if self._worker is not None and self._worker.is_running:
            return
        self.setText(f"estimating the cost: one encoder pass on {job.config.device} …")
        worker = create_worker(estimate_cost, job, _ignore_errors=True)
        worker.returned.connect(lambda estimate: self._measured(key, estimate))
        worker.errored.connect(lambda error: self.setText(f"cost estimate failed: {error}"))
        self._worker = worker
        worker.start()

    def _measured(self, key: tuple, estimate) -> None:
        self.estimates[key] = estimate
        if estimate.total_seconds <= CONFIRM_ABOVE_S:
            self.show_estimate(estimate)
            self.cleared.emit()
        else:
            self._ask_confirmation(key, estimate)


class MouseBox(QSpinBox):
    """The DwiseNeuro readout to use; ``auto`` (None) finds it from the recording."""

    def __init__(self) -> None:
        super().__init__()
        self.setRange(-1, 63)
        self.setValue(-1)
        self.setSpecialValueText("auto (from the recording)")
        self.setToolTip("DwiseNeuro checkpoints: the mouse's readout index (0-9 published)")

    def mouse(self) -> int | None:
        return None if self.value() < 0 else self.value()


def open_both(
    recording_source: str, encoder_source: str, mouse: int | None = None
) -> Generator[str, None, tuple]:
    """Open the recording, then the encoder for it, yielding a line per step; returns
    (recording, encoder) whose neurons match."""
    yield f"opening {recording_source} …"
    recording = open_recording(recording_source)
    encoder = yield from open_encoder_steps(encoder_source, mouse, recording)
    check_neurons(encoder, recording.neurons.ids, recording.name)
    yield "preparing the encoder for reconstruction …"
    prepare_encoder(encoder)
    return recording, encoder
