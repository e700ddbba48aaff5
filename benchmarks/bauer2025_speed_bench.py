"""bauer2025 with windows sharing frames against every window on its own (``make bench``).

A full bauer2025 clip (1000 iterations) took ~55 min on 2 CPU cores with every
window through the encoder on its own; this runs a shortened protocol instead:
``--iterations`` iterations of bauer2025 on the first test clip of the sample mouse
with the sample ensemble, the same seed, once per path, ``--repeats`` times
alternating the two paths (so both see the same machine load). Reports each path's
seconds per iteration (median over repeats), the speed-up (median of per-repeat
ratios), the largest per-pixel difference between the two final movies (gray
levels), and both movies' masked pixel correlation. The per-window path
(``share_frames=False``: plain FastEncoder modules, every window through the
encoder on its own) is the engine's path before frame sharing, and still its path
for encoders that cannot share frames (the oracle).

    python -m benchmarks.bauer2025_speed_bench --mask bench_out/mask.safetensors
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from napari_movierecon.cli import device_name
from napari_movierecon.encoders.base import behavior_input
from napari_movierecon.reconstruct.config import preset
from napari_movierecon.reconstruct.engine import reconstruct
from napari_movierecon.reconstruct.masks.file import cut_masks
from napari_movierecon.sources import open_encoder, open_recording

PATHS = {
    "frozen encoder, windows share frames": True,
    "plain encoder, every window on its own (before)": False,
}


def trial_run(encoder, trial, config, update_mask, eval_mask, share_frames=True):
    """The engine's snapshot generator for a trial of all the encoder's neurons."""
    return reconstruct(
        encoder,
        trial.responses,
        np.arange(encoder.n_neurons),
        behavior_input(trial),
        config,
        truth=trial.movie,
        update_mask=update_mask,
        eval_mask=eval_mask,
        share_frames=share_frames,
    )


def final_snapshot(encoder, trial, config, update_mask, eval_mask, share_frames):
    """(last snapshot, seconds) of one run."""
    started = time.perf_counter()
    *_, last = trial_run(encoder, trial, config, update_mask, eval_mask, share_frames)
    return last, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--mask", type=Path, default=None, help="mask file (movierecon mask)")
    parser.add_argument("--device", type=device_name, default="cpu", help="cpu or cuda")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    recording = open_recording("sample")
    trial_index = int(recording.trials_in("final_test_main")[0])
    trial = recording.trial(trial_index)
    encoder = open_encoder("sample")
    config = preset(
        "bauer2025",
        iterations=args.iterations,
        snapshot_every=args.iterations,
        device=args.device,
    )
    update_mask = eval_mask = None
    if args.mask is not None:
        update_mask, eval_mask, _ = cut_masks(args.mask, config, recording.frame_shape)

    seconds = {name: [] for name in PATHS}
    finals = {}
    for _ in range(args.repeats):
        for name, share in PATHS.items():
            last, elapsed = final_snapshot(encoder, trial, config, update_mask, eval_mask, share)
            seconds[name].append(elapsed / args.iterations)
            finals[name] = last

    shared, alone = (finals[name] for name in PATHS)
    print(
        f"# bauer2025, {args.iterations} iterations, test clip {trial_index}, sample ensemble "
        f"({len(encoder)} members), {args.device}, {args.threads} torch threads, "
        f"{'mask ' + str(args.mask) if args.mask else 'no mask'}"
    )
    for name in PATHS:
        times = ", ".join(f"{t:.3g}" for t in seconds[name])
        print(
            f"{name}: {statistics.median(seconds[name]):.3g} s per iteration "
            f"(median of {args.repeats}: {times}); masked correlation "
            f"{finals[name].pixel_correlation:.4f}; encoder frames {finals[name].encoder_frames:,}"
        )
    ratios = [a / s for s, a in zip(*seconds.values(), strict=True)]
    print(f"speed-up (median of per-repeat ratios): {statistics.median(ratios):.2f}x")
    difference = np.abs(shared.movie.astype(np.float64) - alone.movie).max()
    print(f"max |pixel difference| between the final movies: {difference:.2e} gray levels")


if __name__ == "__main__":
    main()
