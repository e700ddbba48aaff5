"""Choosing the ``fast`` preset on validation clips only (never the scored test clips).

Runs candidate configs on the first trial of each of ``--clips`` distinct
validation clips (``oracle`` tier) of the sample mouse with the sample ensemble and
the mask file's update and evaluation masks (estimated on training trials), and
prints, per candidate, the mean masked pixel correlation and mean seconds at
the iterations in SHOWN_ITERATIONS (every early one, for the first picture, then
a few later ones), so one run also shows what fewer iterations would reach.
Candidates run interleaved clip by clip, so machine load hits them alike.

    python -m benchmarks.tune_fast --mask bench_out/mask.safetensors --clips 3
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.bauer2025_speed_bench import trial_run
from napari_movierecon.insilico.simulate import SimulatedRecording
from napari_movierecon.reconstruct.config import preset
from napari_movierecon.reconstruct.masks.file import cut_masks
from napari_movierecon.sources import open_encoder, open_recording

CANDIDATES = {
    "fast": {},
    "3-step warm-up (fast before 2026-12-03)": {"warmup_steps": 3},
    "1-step warm-up": {"warmup_steps": 1},
    "step 8000": {"learning_rate": 8000.0},
    "step 12000": {"learning_rate": 12000.0},
}
# Snapshots printed: the early ones decide the first picture, the late ones the result.
SHOWN_ITERATIONS = (1, 2, 3, 4, 6, 8, 16, 24, 32, 40)


def validation_trials(recording: SimulatedRecording, clips: int) -> list[int]:
    """The first trial of each of the first ``clips`` distinct validation clips."""
    plan = recording.mouse.plan
    first = {}
    for index in recording.trials_in("oracle"):
        first.setdefault(plan[int(index)].clip_key, int(index))
    return list(first.values())[:clips]


def trajectory(encoder, trial, config, update_mask, eval_mask) -> list[tuple[int, float, float]]:
    """(iteration, masked correlation, seconds since start) at every snapshot."""
    started = time.perf_counter()
    run = trial_run(encoder, trial, config, update_mask, eval_mask)
    return [(s.iteration, s.pixel_correlation, time.perf_counter() - started) for s in run]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mask", type=Path, required=True)
    parser.add_argument("--clips", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=40)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", default="", help="comma-separated candidate names")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    recording = open_recording("sample")
    encoder = open_encoder("sample")
    base = preset("fast", iterations=args.iterations, snapshot_every=1)
    update_mask, eval_mask, _ = cut_masks(args.mask, base, recording.frame_shape)
    names = [n for n in args.only.split(",") if n] or list(CANDIDATES)
    trials = validation_trials(recording, args.clips)
    runs = {name: [] for name in names}
    for index in trials:
        trial = recording.trial(index)
        for name in names:
            config = base.replace(**CANDIDATES[name])
            runs[name].append(trajectory(encoder, trial, config, update_mask, eval_mask))
    print(f"# validation trials {trials}, {args.threads} torch threads, mask {args.mask}")
    for name in names:
        curves = np.array(runs[name])  # (clips, snapshots, 3)
        mean = curves.mean(0)
        points = "; ".join(
            f"it {int(i)}: {c:.3f} @ {s:.1f} s" for i, c, s in mean if i in SHOWN_ITERATIONS
        )
        print(f"{name}: {points}")


if __name__ == "__main__":
    main()
