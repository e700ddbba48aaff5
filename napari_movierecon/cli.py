"""The ``movierecon`` command line.

    movierecon simulate --out DIR [--seed S] [--tiers train,oracle] [--max-per-tier K]
    movierecon simulate --movies A.mp4 B.npy --fps 60 --out DIR
    movierecon figures --out docs/figures
    movierecon view            # napari with the plugin and the in-silico sample open

Every anticipated problem (bad input, unwritable path, ...) ends with a
one-line ``error: ...`` message and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from napari_movierecon.errors import MovieReconError

EXIT_USAGE = 2


class _Progress:
    """A one-line progress report on stderr: ``label done/total (rate/s, eta)``."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.start = time.perf_counter()

    def __call__(self, done: int, total: int) -> None:
        elapsed = time.perf_counter() - self.start
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (total - done) / rate if rate > 0 else float("nan")
        end = "\n" if done >= total else ""
        print(
            f"\r{self.label} {done}/{total} ({rate:.2f}/s, eta {eta:.0f} s)",
            end=end,
            file=sys.stderr,
            flush=True,
        )


def _mouse_spec(args: argparse.Namespace):
    from napari_movierecon.insilico.mouse import MouseSpec

    spec = MouseSpec(seed=args.seed)
    if args.neurons is not None:
        spec = replace(spec, population=replace(spec.population, n_neurons=args.neurons))
    return spec


def _select_trials(recording, tiers: str | None, max_per_tier: int | None) -> list[int] | None:
    """Trial indices to write: the chosen tiers, at most ``max_per_tier`` of each."""
    if tiers is None and max_per_tier is None:
        return None
    import numpy as np

    names = tiers.split(",") if tiers else sorted(set(recording.tiers.tolist()))
    chosen: list[int] = []
    for name in names:
        indices = recording.trials_in(name.strip())
        chosen += indices[:max_per_tier].tolist() if max_per_tier else indices.tolist()
    return sorted(np.unique(chosen).tolist())


def run_simulate(args: argparse.Namespace) -> None:
    from napari_movierecon.insilico.movie_input import load_user_movie
    from napari_movierecon.insilico.simulate import (
        PresentedMoviesRecording,
        SimulatedRecording,
        sample_mouse,
        write_simulated,
    )

    started = time.perf_counter()
    print(f"building in-silico mouse (seed {args.seed}) ...", file=sys.stderr, flush=True)
    mouse = sample_mouse(_mouse_spec(args))
    if args.movies:
        movies = [load_user_movie(path, fps=args.fps) for path in args.movies]
        recording = PresentedMoviesRecording(movies, [str(p) for p in args.movies], mouse)
        trials = None
    else:
        recording = SimulatedRecording(mouse)
        trials = _select_trials(recording, args.tiers, args.max_per_tier)
    out = write_simulated(
        recording,
        args.out,
        trials=trials,
        overwrite=args.overwrite,
        progress=_Progress("simulating trials"),
    )
    size = sum(p.stat().st_size for p in Path(out).rglob("*") if p.is_file())
    print(
        f"wrote {out} ({len(trials) if trials is not None else len(recording)} trials, "
        f"{len(mouse.neurons)} neurons, {size / 1e6:.1f} MB) in "
        f"{time.perf_counter() - started:.1f} s"
    )


def run_figures(args: argparse.Namespace) -> None:
    from napari_movierecon.insilico.figures import make_figures

    for path in make_figures(Path(args.out)):
        print(path)


def run_view(args: argparse.Namespace) -> None:
    from napari_movierecon._napari.launch import launch_viewer

    launch_viewer()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="movierecon",
        description="Movie reconstruction from mouse visual-cortex activity.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    sim = commands.add_parser(
        "simulate",
        help="write the in-silico mouse (or its responses to your movies) as a Sensorium folder",
    )
    sim.add_argument("--out", required=True, type=Path, help="output folder (must not exist)")
    sim.add_argument("--seed", type=int, default=2025, help="mouse seed (2025 = the sample mouse)")
    sim.add_argument("--neurons", type=int, default=None, help="population size (default 8000)")
    sim.add_argument("--tiers", default=None, help="comma-separated tiers to write (default: all)")
    sim.add_argument(
        "--max-per-tier", type=int, default=None, help="write at most this many trials of each tier"
    )
    sim.add_argument(
        "--movies",
        nargs="+",
        type=Path,
        default=None,
        help="your own movies (.npy (T,H,W) or video files) to show the same mouse",
    )
    sim.add_argument(
        "--fps",
        type=float,
        default=None,
        help="frame rate of .npy movies (video files carry their own)",
    )
    sim.add_argument("--overwrite", action="store_true", help="replace an existing folder")
    sim.set_defaults(run=run_simulate)

    fig = commands.add_parser("figures", help="draw the in-silico mouse figures for docs/")
    fig.add_argument("--out", type=Path, default=Path("docs/figures"))
    fig.set_defaults(run=run_figures)

    view = commands.add_parser("view", help="open napari with the plugin and the in-silico sample")
    view.set_defaults(run=run_view)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run: Callable[[argparse.Namespace], None] = args.run
    try:
        run(args)
    except MovieReconError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("\ninterrupted; nothing was written", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
