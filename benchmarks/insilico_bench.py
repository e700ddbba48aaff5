"""Benchmark of the in-silico mouse: build time and simulation speed (``make bench``).

Prints medians over repeated runs: mouse build (population, filters, drive and
noise calibration) and per-trial simulation split into stimulus, behaviour,
noise-free rates and noise, for the sample mouse (8,000 neurons, 300 frames).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from napari_movierecon.insilico.mouse import InSilicoMouse, MouseSpec


def _timed(fn, *args):
    start = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--builds", type=int, default=3)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    build_times = []
    for _ in range(args.builds):
        mouse, seconds = _timed(InSilicoMouse.build, MouseSpec())
        build_times.append(seconds)

    stages: dict[str, list[float]] = {"stimulus": [], "behaviour": [], "rates": [], "noise": []}
    totals = []
    for index in range(args.trials):
        (movie, _), t_stim = _timed(mouse.stimulus, index)
        (behavior, _), t_beh = _timed(mouse.behavior, index)
        rates, t_rates = _timed(mouse.rates, movie, behavior)
        _, t_noise = _timed(mouse.trial, index)  # full trial: includes all stages again
        stages["stimulus"].append(t_stim)
        stages["behaviour"].append(t_beh)
        stages["rates"].append(t_rates)
        totals.append(t_noise)
    stages["noise"] = [
        max(t - s - b - r, 0.0)
        for t, s, b, r in zip(
            totals, stages["stimulus"], stages["behaviour"], stages["rates"], strict=True
        )
    ]

    print(f"# in-silico mouse benchmark ({args.threads} torch threads)")
    print(
        f"build (median of {args.builds}): {statistics.median(build_times):.2f} s "
        f"(all: {', '.join(f'{t:.2f}' for t in build_times)})"
    )
    median_trial = statistics.median(totals)
    print(
        f"trial simulation (median of {args.trials}): {median_trial:.3f} s "
        f"= {1 / median_trial:.2f} trials/s"
    )
    for name, values in stages.items():
        print(f"  {name:10s} {statistics.median(values) * 1000:7.1f} ms")


if __name__ == "__main__":
    main()
