"""Benchmark of the in-silico mouse: build time and simulation speed (``make bench``).

Prints medians over repeated runs: mouse build (population, filters, drive and
noise calibration) and per-trial simulation split into stimulus, behaviour,
noise-free rates and noise, for the sample mouse (8,000 neurons, 300 frames).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
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
    for index in range(args.trials):
        (movie, _), t_stimulus = _timed(mouse.stimulus, index)
        (behavior, _), t_behavior = _timed(mouse.behavior, index)
        rates, t_rates = _timed(mouse.rates, movie, behavior)
        _, t_noise = _timed(mouse.respond, rates, np.random.default_rng(index))
        for name, seconds in zip(stages, (t_stimulus, t_behavior, t_rates, t_noise), strict=True):
            stages[name].append(seconds)
    totals = [sum(parts) for parts in zip(*stages.values(), strict=True)]

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
