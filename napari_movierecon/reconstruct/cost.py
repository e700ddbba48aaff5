"""What a reconstruction will cost, stated before it starts, from one measured pass.

One batch of windows of the first member goes through the same forward+backward the
engine runs (on the run's device, with the run's data), is timed, and the time is
scaled by the windows per member per iteration, the members and the iterations.
One window goes through first, untimed: the first pass also pays one-time costs
(memory the allocator then keeps, thread start-up, kernel selection) that made a
cold measurement up to 2.7x too high for DwiseNeuro on 2 CPU cores.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from napari_movierecon.allocator import retain_freed_memory
from napari_movierecon.encoders.base import behavior_input
from napari_movierecon.encoders.ensemble import members_of
from napari_movierecon.reconstruct.engine import build_objectives
from napari_movierecon.recording import GRAY_LEVEL

# The Run widget asks before starting a run estimated above this (seconds): an hour.
# `fast` runs of our encoders take seconds to minutes, bauer2025 with them about an
# hour per clip on 2 CPU cores, DwiseNeuro on a CPU hours (fast_window) to weeks.
CONFIRM_ABOVE_S = 3600.0


@dataclass(frozen=True)
class CostEstimate:
    """Seconds per window (forward+backward of one loss window of one member), windows
    per member per iteration, members run per iteration (1 under ``cycle``),
    iterations and the resulting wall time."""

    seconds_per_window: float
    windows: int
    members: int
    iterations: int
    device: str

    @property
    def seconds_per_iteration(self) -> float:
        return self.seconds_per_window * self.windows * self.members

    @property
    def total_seconds(self) -> float:
        return self.seconds_per_iteration * self.iterations

    def describe(self) -> str:
        """One line: the estimate and what it is made of."""
        return (
            f"estimated {format_duration(self.total_seconds)} on {self.device}: "
            f"{self.iterations} iterations x {self.members} member(s) x {self.windows} "
            f"window(s) x {self.seconds_per_window:.3g} s per window (one pass measured)"
        )


def format_duration(seconds: float) -> str:
    """``42 s``, ``12.5 min``, ``3.2 h`` or ``2.4 days``."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def estimate_cost(job) -> CostEstimate:
    """The estimate for a ``ReconstructionJob`` (see the module docstring)."""
    trial = job.trial
    return estimate_reconstruction_cost(
        job.encoder, trial.responses, job.population.indices, behavior_input(trial), job.config
    )


def estimate_reconstruction_cost(encoder, responses, neurons, behavior, config) -> CostEstimate:
    """The estimate for ``engine.reconstruct`` with the same arguments."""
    members = members_of(encoder, config.members)
    retain_freed_memory()  # as the run will
    device = torch.device(config.device)
    responses = np.asarray(responses, dtype=np.float32)
    neurons = np.asarray(neurons, dtype=np.int64).ravel()
    behavior = np.asarray(behavior, dtype=np.float32)
    objective = build_objectives(members[:1], responses, neurons, behavior, config, device)[0]
    movie = torch.full((responses.shape[1], *members[0].frame_shape), GRAY_LEVEL, device=device)
    batch = objective.batches[0]
    _timed(objective, movie, slice(batch.start, batch.start + 1))  # warm-up
    seconds = _timed(objective, movie, batch)
    windows_in_batch = len(objective.starts[batch])
    return CostEstimate(
        seconds / windows_in_batch,
        len(objective.starts),
        1 if config.ensemble == "cycle" else len(members),  # members run per iteration
        config.iterations,
        str(device),
    )


def _timed(objective, movie, batch) -> float:
    started = time.perf_counter()
    grad, _ = objective.gradients(movie, batch)
    if grad.is_cuda:
        torch.cuda.synchronize(grad.device)
    return time.perf_counter() - started
