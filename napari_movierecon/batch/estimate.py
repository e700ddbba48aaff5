"""What a batch will cost, from one measured optimisation step per (encoder, preset).

One step of a run is one pass of every window of every member, forward and backward,
so a run costs about ``iterations`` x the measured step. Measured in this process on
the first run of each group, with the threads a worker will use; nothing is written.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from napari_movierecon.batch.runs import Run
from napari_movierecon.batch.task import build_job

MEASURED_STEPS = 3  # the first step warms up; the next ones are timed


@dataclass(frozen=True)
class GroupCost:
    """``step_s``: seconds per optimisation step; ``run_s`` per run; ``runs`` in the group."""

    encoder: str
    preset: str
    step_s: float
    run_s: float
    runs: int


def measure_step(run: Run, torch_threads: int | None) -> float:
    """Seconds of one optimisation step of ``run`` (steps 2..MEASURED_STEPS, averaged)."""
    if torch_threads:
        torch.set_num_threads(torch_threads)
    probe = replace(run, config=run.config.replace(iterations=MEASURED_STEPS, snapshot_every=1))
    snapshots = list(build_job(probe).start())
    return (snapshots[-1].elapsed_s - snapshots[0].elapsed_s) / (len(snapshots) - 1)


def estimate(runs: list[Run], torch_threads: int | None) -> list[GroupCost]:
    """Cost of ``runs`` per (encoder, preset) group, one measurement each."""
    groups: dict[tuple[str, str], list[Run]] = {}
    for run in runs:
        groups.setdefault((run.encoder_name, run.preset), []).append(run)
    costs = []
    for (encoder, preset), members in groups.items():
        step = measure_step(members[0], torch_threads)
        costs.append(
            GroupCost(encoder, preset, step, step * members[0].config.iterations, len(members))
        )
    return costs
