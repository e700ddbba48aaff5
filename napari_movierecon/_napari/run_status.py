"""The state of one run as evented data: the buttons, the status line and the plots
subscribe to its fields instead of each handling state strings of their own."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from psygnal import evented


class RunState(str, Enum):
    """Where a run is in its life. ``starting``: the worker builds the job and the engine;
    ``stopping``: Stop was pressed, the worker ends at its next yield."""

    IDLE = "idle"
    STARTING = "starting"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPING = "stopping"
    FINISHED = "finished"
    STOPPED = "stopped"
    FAILED = "failed"


ACTIVE = frozenset({RunState.STARTING, RunState.RUNNING, RunState.PAUSED, RunState.STOPPING})


@evented
@dataclass
class RunStatus:
    """``iteration`` of ``iterations`` done, the latest loss (Poisson NLL) and pixel
    correlation (None until known or without ground truth), and the error of a failed run.
    Every field change is a psygnal event: ``status.events.state.connect(...)``."""

    state: RunState = RunState.IDLE
    iteration: int = 0
    iterations: int = 0
    loss: float | None = None
    correlation: float | None = None
    error: str | None = None

    @property
    def active(self) -> bool:
        """A worker exists and has not ended."""
        return self.state in ACTIVE
