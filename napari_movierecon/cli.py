"""The ``movierecon`` command line.

    movierecon simulate --out DIR [--seed S] [--tiers train,oracle] [--max-per-tier K]
    movierecon simulate --movies A.mp4 B.npy --fps 60 --out DIR
    movierecon train --recording sample|DIR --out ENSEMBLE [--members 3]
    movierecon evaluate --recording sample|DIR --encoder ENSEMBLE [--tier final_test_main]
    movierecon mask --recording sample|DIR --encoder sample|CKPT --out MASK.safetensors
    movierecon reconstruct --recording sample|DIR --trial I --encoder sample|CKPT --out F
    movierecon convert --encoder MODEL.pth|FOLDS_DIR --recording DIR [--mouse K] --out F
    movierecon distill --teacher ENCODER --recording R --out DIR [--members K]
    movierecon probe --encoder E [--recording R] --kind noise|gratings --out DIR
    movierecon batch PLAN.toml --out DIR [--dry-run] [--scheduler ADDR | --cluster slurm]
    movierecon figures --out docs/figures
    movierecon view            # napari with the plugin and the in-silico sample open

``--encoder`` also takes a DwiseNeuro ``model-*.pth`` or a folder of them
(``fold_*/model-*.pth``): ``--mouse K`` picks the readout, else the recording decides.

Every anticipated problem (bad input, unwritable path, ...) ends with a
one-line ``error: ...`` message and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from napari_movierecon.errors import MovieReconError
from napari_movierecon.io.atomic import check_target

EXIT_USAGE = 2


@contextmanager
def _progress(label: str) -> Iterator[Callable[[int, int], None]]:
    """A ``progress(done, total)`` callback drawing a tqdm bar labelled ``label`` on stderr
    from its first call; the bar is closed on leaving, also when the work ends early."""
    from tqdm import tqdm

    bar = None

    def report(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, desc=label, file=sys.stderr)
        bar.update(done - bar.n)

    try:
        yield report
    finally:
        if bar is not None:
            bar.close()


# ---------------------------------------------------------------- argument types


def _integer(text: str, low: int, high: int | None = None) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < low or (high is not None and value > high):
        span = f">= {low}" if high is None else f"in {low}..{high}"
        raise argparse.ArgumentTypeError(f"must be an integer {span}, got {value}")
    return value


def positive_int(text: str) -> int:
    """A count where 0 or negative makes no sense."""
    return _integer(text, 1)


def iteration_count(text: str) -> int:
    """Reconstruction iterations: >= 2, since a preset that warms up (``bauer2025``) leaves
    the gray start unchanged at its first step (learning rate 0)."""
    return _integer(text, 2)


def seed_int(text: str) -> int:
    """A seed or index: >= 0."""
    return _integer(text, 0)


def thread_count(text: str) -> int:
    """Torch CPU threads: 1 .. the cores of this machine (more only slows torch down)."""
    import os

    return _integer(text, 1, os.cpu_count() or 1)


def positive_float(text: str) -> float:
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def open_fraction(text: str) -> float:
    """A fraction strictly between 0 and 1."""
    value = positive_float(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"must be a fraction between 0 and 1, got {text}")
    return value


def device_name(text: str) -> str:
    """A torch device that exists on this machine (``sources.check_device``)."""
    from napari_movierecon.sources import check_device

    try:
        return check_device(text)
    except MovieReconError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def path_arg(text: str) -> Path:
    """A non-empty path."""
    if not text.strip():
        raise argparse.ArgumentTypeError("the path is empty")
    return Path(text)


# ---------------------------------------------------------------- shared options
# Option blocks that several subcommands take, defined once.


def _add_recording_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--recording", required=True, help="Sensorium mouse folder or 'sample'")


def _add_encoder_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--encoder", required=True, help="checkpoint, ensemble folder or 'sample'")


def _add_mouse_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--mouse",
        type=seed_int,
        default=None,
        help="DwiseNeuro checkpoints: readout K (default: the mouse of the recording, by "
        "folder name or neuron count)",
    )


def _add_neurons_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--neurons", default="all", help="all | random:F[:SEED] | top:K | ids:PATH (default all)"
    )


def _add_preset_options(parser: argparse.ArgumentParser) -> None:
    """--preset and --iterations of a reconstruction."""
    parser.add_argument(
        "--preset",
        default=None,
        help="fast, bauer2025 or fast_window (default: fast_window for DwiseNeuro, else fast)",
    )
    parser.add_argument(
        "--iterations", type=iteration_count, default=None, help="override the preset's"
    )


def _add_mask_options(parser: argparse.ArgumentParser, npy_masks: bool) -> None:
    """--mask (a file from ``movierecon mask``), and with ``npy_masks`` the alternative
    --update-mask / --eval-mask .npy files."""
    if npy_masks:
        parser.add_argument("--update-mask", type=path_arg, default=None, help=".npy (H, W) bool")
        parser.add_argument("--eval-mask", type=path_arg, default=None, help=".npy (H, W) bool")
    parser.add_argument(
        "--mask",
        type=path_arg,
        default=None,
        help="mask file from 'movierecon mask' (update and evaluation masks at the preset's "
        "thresholds)" + ("; not with --update-mask/--eval-mask" if npy_masks else ""),
    )


def _add_training_options(parser: argparse.ArgumentParser) -> None:
    """--epochs, --patience, --learning-rate, --max-train-trials, --init and the FastEncoder
    architecture options (--readout-block, --temporal-channels, --channels,
    --readout-channels) of encoder training."""
    parser.add_argument(
        "--epochs", type=positive_int, default=None, help="at most this many (default 20)"
    )
    parser.add_argument(
        "--learning-rate",
        type=positive_float,
        default=None,
        help="AdamW's peak learning rate, after the warm-up (default 0.01)",
    )
    parser.add_argument(
        "--init",
        default=None,
        help="start from the weights of this FastEncoder checkpoint or ensemble folder "
        "('sample': the sample ensemble), member k from its member k (cycling), instead of "
        "from the data; its architecture is used",
    )
    parser.add_argument(
        "--patience",
        type=positive_int,
        default=None,
        help="stop after this many epochs without a better validation score (default 3; "
        "raise it with --epochs, whose cosine schedule keeps the learning rate high longer)",
    )
    parser.add_argument("--max-train-trials", type=positive_int, default=None)
    parser.add_argument(
        "--readout-block",
        type=seed_int,
        default=None,
        help="FastEncoder readout: 0 = one point per neuron; k >= 2 = also free weights on "
        "a k x k block of feature-map pixels around it (default 3; docs/encoders.md)",
    )
    parser.add_argument(
        "--temporal-channels",
        type=positive_int,
        default=None,
        help="FastEncoder core: number of causal temporal filters (default 8)",
    )
    parser.add_argument(
        "--channels",
        type=positive_int,
        default=None,
        help="FastEncoder core: feature channels of the spatial stage (default 16; the sample "
        "ensemble: 24)",
    )
    parser.add_argument(
        "--readout-channels",
        type=positive_int,
        default=None,
        help="FastEncoder: feature channels each neuron reads (default 16; the sample "
        "ensemble: 24)",
    )


def _add_compute_options(parser: argparse.ArgumentParser) -> None:
    """--device and --threads (see ``_use_threads``)."""
    parser.add_argument("--device", type=device_name, default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=thread_count, default=None, help="torch CPU threads")


def _use_threads(args: argparse.Namespace) -> None:
    """Torch's CPU threads set to ``--threads``, when given."""
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)


def _add_overwrite_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--overwrite", action="store_true", help=f"replace an existing {what}")


# ---------------------------------------------------------------- commands


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
        chosen += indices.tolist() if max_per_tier is None else indices[:max_per_tier].tolist()
    return sorted(np.unique(chosen).tolist())


def run_simulate(args: argparse.Namespace) -> None:
    from napari_movierecon.insilico.movie_input import load_user_movie
    from napari_movierecon.insilico.simulate import (
        PresentedMoviesRecording,
        SimulatedRecording,
        sample_mouse,
        write_simulated,
    )

    check_target(args.out, args.overwrite, folder=True)
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
    with _progress("simulating trials") as progress:
        out = write_simulated(
            recording, args.out, trials=trials, overwrite=args.overwrite, progress=progress
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


@contextmanager
def _training_reporter(member: int, members: int) -> Iterator[Callable]:
    """Training callback: a progress bar of the steps, a line per validation (stderr)."""
    from tqdm import tqdm

    with _progress(f"member {member + 1}/{members} steps") as progress:

        def report(event) -> None:
            if event.validation_correlation is None:
                progress(event.step, event.total_steps)
            else:
                tqdm.write(
                    f"member {member + 1}/{members} epoch {event.epoch + 1}: validation "
                    f"correlation {event.validation_correlation:.4f}",
                    file=sys.stderr,
                )

        yield report


def train_members(args: argparse.Namespace, train_one: Callable, kind: str, versus: str = ""):
    """Train ``args.members`` encoders (seed ``args.seed`` + k; ``--epochs``, ``--patience``,
    ``--learning-rate``, ``--max-train-trials``, ``--init``, the architecture options,
    ``--device``) with ``train_one(model_config, config, report, init) -> (encoder,
    record)`` (``init``: the FastEncoder to start from, or None), print each one's
    validation score (``kind`` k: best validation correlation ``versus`` ...) and save
    them as an ensemble folder at ``args.out``. Returns (records, the folder, its size
    in MB)."""
    from napari_movierecon.encoders.checkpoint import save_ensemble
    from napari_movierecon.encoders.fast import FastEncoderConfig
    from napari_movierecon.encoders.train import TrainConfig

    names = ("readout_block", "temporal_channels", "channels", "readout_channels")
    core = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    starts = _initial_members(args.init)
    # starting from weights takes their architecture, unless options ask for another
    model_config = FastEncoderConfig(**core) if core or not starts else None  # checked now
    members, records = [], []
    for k in range(args.members):
        chosen = {
            name: getattr(args, name)
            for name in ("epochs", "patience", "learning_rate")
            if getattr(args, name) is not None
        }
        config = TrainConfig(
            seed=args.seed + k,
            max_train_trials=args.max_train_trials,
            device=args.device,
            **chosen,
        )
        init = starts[k % len(starts)] if starts else None
        with _training_reporter(k, args.members) as report:
            encoder, record = train_one(model_config, config, report, init)
        print(
            f"{kind} {k + 1}: best validation correlation{versus} "
            f"{record['validation_correlation_mean']:.4f} (epoch {record['best_epoch'] + 1}), "
            f"{record['seconds']:.0f} s",
            file=sys.stderr,
        )
        members.append(encoder.cpu())
        records.append(record)
    out = save_ensemble(members, records, args.out, overwrite=args.overwrite)
    return records, out, sum(p.stat().st_size for p in out.iterdir()) / 1e6


def _initial_members(source: str | None) -> list:
    """The members of the encoder that ``--init`` names (empty without it); training
    refuses any that is not a FastEncoder of the recording's neurons."""
    from napari_movierecon.encoders.ensemble import members_of
    from napari_movierecon.sources import open_encoder

    return [] if source is None else list(members_of(open_encoder(source)))


def run_train(args: argparse.Namespace) -> None:
    from napari_movierecon.encoders.data import TrialCache
    from napari_movierecon.encoders.train import train_encoder
    from napari_movierecon.sources import open_recording

    _use_threads(args)
    check_target(args.out, args.overwrite, folder=True)
    recording = open_recording(args.recording)
    cache = TrialCache(recording)

    def train_one(model_config, config, report, init):
        return train_encoder(
            recording, model_config, config, callback=report, cache=cache, init=init
        )

    records, out, megabytes = train_members(args, train_one, "member")
    print(f"wrote {out} ({len(records)} members, {megabytes:.1f} MB)")


def run_evaluate(args: argparse.Namespace) -> None:
    import json

    from napari_movierecon.encoders.checkpoint import check_neurons
    from napari_movierecon.encoders.ensemble import Ensemble
    from napari_movierecon.encoders.evaluate import evaluate_encoders
    from napari_movierecon.sources import open_recording

    _use_threads(args)
    if args.json is not None:
        check_target(args.json, args.overwrite)
    recording = open_recording(args.recording)
    encoder = _open_encoder(args, recording)
    check_neurons(encoder, recording.neurons.ids, recording.name)
    encoders = {"encoder": encoder}
    if isinstance(encoder, Ensemble) and len(encoder) > 1:
        encoders = {f"member {k}": m for k, m in enumerate(encoder.members)}
        encoders["ensemble"] = encoder
    with _progress(f"evaluating on {args.tier}") as progress:
        results = evaluate_encoders(
            {name: e.to(args.device) for name, e in encoders.items()},
            recording,
            args.tier,
            max_trials=args.max_trials,
            device=args.device,
            progress=progress,
        )
    summaries = {name: result.summary() for name, result in results.items()}
    for name, summary in summaries.items():
        line = f"{name:10s} single-trial correlation {summary['single_trial']:.4f}"
        if "to_noise_free" in summary:
            line += (
                f" | to noise-free rates {summary['to_noise_free']:.4f}"
                f" | / oracle {summary['ratio_to_oracle']:.3f}"
            )
        print(line)
    if "oracle_single_trial" in summary:
        print(f"{'oracle':10s} single-trial correlation {summary['oracle_single_trial']:.4f}")
    if args.json:
        from napari_movierecon.io.atomic import atomic_write

        text = json.dumps(
            {"recording": recording.name, "encoder": str(args.encoder), "results": summaries},
            indent=1,
        )
        atomic_write(
            args.json,
            lambda handle: handle.write(text.encode()),
            overwrite=args.overwrite,
            error=MovieReconError,
        )


def _load_mask(path: Path | None):
    """An (H, W) boolean mask from a .npy file, or None."""
    if path is None:
        return None
    from napari_movierecon.io.npy import load_npy

    mask = load_npy(path, "biuf")
    if mask.ndim != 2:
        raise MovieReconError(f"{path}: a mask must be 2-D (H, W), got shape {mask.shape}")
    return mask.astype(bool)


def _masks_for(args: argparse.Namespace, config, frame_shape, recording_name: str):
    """Update and evaluation masks (H, W) bool or None, and a record of how they were
    given: ``--mask FILE`` (cut at the config's thresholds) or ``--update-mask`` /
    ``--eval-mask`` .npy files."""
    if args.mask is None:
        record = {
            "update_mask": None if args.update_mask is None else str(args.update_mask),
            "eval_mask": None if args.eval_mask is None else str(args.eval_mask),
        }
        return _load_mask(args.update_mask), _load_mask(args.eval_mask), record
    from napari_movierecon.reconstruct.masks.file import cut_masks

    update, evaluation, record = cut_masks(args.mask, config, frame_shape)
    if record["estimated_on"] not in (None, recording_name):
        print(
            f"warning: {args.mask} was estimated on {record['estimated_on']}, not {recording_name}",
            file=sys.stderr,
        )
    return update, evaluation, record


def run_reconstruct(args: argparse.Namespace) -> None:
    from napari_movierecon.encoders.checkpoint import check_neurons
    from napari_movierecon.reconstruct.config import default_preset, preset
    from napari_movierecon.reconstruct.job import ReconstructionJob
    from napari_movierecon.reconstruct.neurons import (
        Selection,
        encoder_reliability,
        parse_population,
    )
    from napari_movierecon.reconstruct.results import save_reconstruction
    from napari_movierecon.sources import open_recording

    _use_threads(args)
    if args.mask is not None and (args.update_mask is not None or args.eval_mask is not None):
        raise MovieReconError("--mask cannot be combined with --update-mask or --eval-mask")
    check_target(args.out, args.overwrite)
    changes = {"device": args.device}
    if args.iterations is not None:
        changes["iterations"] = args.iterations
    if args.holdout is not None:
        changes["holdout_fraction"] = args.holdout
    if args.holdout_patience is not None:
        changes["holdout_patience"] = args.holdout_patience
    recording = open_recording(args.recording)
    trial = recording.trial(args.trial)
    encoder = _open_encoder(args, recording)
    check_neurons(encoder, recording.neurons.ids, recording.name)
    args.preset = args.preset or default_preset(encoder)
    config = preset(args.preset, **changes)
    population = parse_population(args.neurons)
    neurons = Selection.of(population, recording.neurons, encoder_reliability(encoder))
    update_mask, eval_mask, mask_record = _masks_for(
        args, config, encoder.frame_shape, recording.name
    )
    job = ReconstructionJob(
        recording=recording,
        trial=trial,
        encoder=encoder,
        encoder_source=str(args.encoder),
        population=neurons,
        config=config,
        update_mask=update_mask,
        eval_mask=eval_mask,
        mask_record=mask_record,
    )
    _print_cost(job)
    run = job.start()
    print(
        f"reconstructing {recording.name} trial {trial.index} ({trial.tier}, {trial.length} "
        f"frames) from {len(neurons)} neurons, preset {args.preset}",
        file=sys.stderr,
    )
    snapshot = None
    with _progress("iterations") as progress:
        for snapshot in run:
            progress(snapshot.iteration, snapshot.iterations)
    result = job.result(snapshot)
    save_reconstruction(result, args.out, overwrite=args.overwrite)
    if snapshot.chosen_iteration is not None:
        print(
            f"stopping rule: kept the movie after {snapshot.chosen_iteration} iterations "
            f"(stopped after {snapshot.iteration})",
            file=sys.stderr,
        )
    print(
        f"pixel correlation {snapshot.pixel_correlation:.4f} ({result.record['metrics']['mask']}, "
        f"first {snapshot.skip_frames} frames skipped), {snapshot.elapsed_s:.1f} s; "
        f"wrote {args.out}"
    )


def run_mask(args: argparse.Namespace) -> None:
    from napari_movierecon.encoders.checkpoint import check_neurons
    from napari_movierecon.reconstruct.masks.coverage import coverage_mask
    from napari_movierecon.reconstruct.masks.file import save_mask
    from napari_movierecon.reconstruct.masks.transparency import ITERATIONS, transparency_mask
    from napari_movierecon.reconstruct.neurons import encoder_reliability, parse_population
    from napari_movierecon.sources import open_recording

    _use_threads(args)
    if args.iterations is not None and args.method != "transparency":
        raise MovieReconError("--iterations applies to --method transparency only")
    check_target(args.out, args.overwrite)
    recording = open_recording(args.recording)
    encoder = _open_encoder(args, recording)
    check_neurons(encoder, recording.neurons.ids, recording.name)
    population = parse_population(args.neurons)
    neurons = population.select(recording.neurons, encoder_reliability(encoder))
    if args.method == "transparency":
        iterations = args.iterations or ITERATIONS
        print(
            f"transparency mask of {recording.name} from {len(neurons)} neurons: "
            f"{iterations} iterations on training trials",
            file=sys.stderr,
        )
        with _progress("iterations") as progress:
            mask = transparency_mask(
                encoder,
                recording,
                neurons,
                iterations=iterations,
                seed=args.seed,
                device=args.device,
                progress=progress,
            )
    else:
        mask = coverage_mask(
            encoder, neurons, recording=recording, seed=args.seed, device=args.device
        )
    mask.record["encoder"]["argument"] = str(args.encoder)
    mask.record["neurons"] = population.to_dict()
    save_mask(mask, args.out, overwrite=args.overwrite)
    update, evaluation = mask.update_mask(), mask.eval_mask()
    print(
        f"{mask.method} mask: update mask (alpha >= {mask.record['update_threshold']}) "
        f"{int(update.sum())} px, evaluation mask (alpha >= {mask.record['eval_threshold']}) "
        f"{int(evaluation.sum())} px of {update.size}; "
        f"{mask.record['timings']['seconds']:.1f} s; wrote {args.out}"
    )


def _open_encoder(args: argparse.Namespace, recording):
    """The ``--encoder`` for ``recording`` on a ``--device`` that exists here (checked
    first); DwiseNeuro checkpoints take ``--mouse`` or find the mouse from the recording."""
    from napari_movierecon.sources import check_device, open_encoder

    check_device(args.device)
    return open_encoder(args.encoder, mouse=args.mouse, recording=recording)


def _print_cost(job) -> None:
    """The run's estimated wall time, from one measured pass on its device (stderr)."""
    from napari_movierecon.reconstruct.cost import estimate_cost

    print(f"estimating the cost ({job.config.device}) ...", file=sys.stderr, flush=True)
    print(estimate_cost(job).describe(), file=sys.stderr, flush=True)


def run_convert(args: argparse.Namespace) -> None:
    from napari_movierecon.encoders.argus_checkpoint import convert_argus
    from napari_movierecon.sources import open_recording

    check_target(args.out, args.overwrite, folder=Path(args.encoder).is_dir())
    recording = open_recording(args.recording)
    with _progress("converting members") as progress:
        out = convert_argus(
            args.encoder,
            args.out,
            mouse=args.mouse,
            unit_ids=recording.neurons.ids,
            recording_name=recording.name,
            overwrite=args.overwrite,
            progress=progress,
        )
    files = [out] if out.is_file() else sorted(out.iterdir())
    size = sum(p.stat().st_size for p in files)
    print(f"wrote {out} ({len(files)} file(s), {size / 1e6:.1f} MB) for {recording.name}")


def _add_convert_parser(commands) -> None:
    convert = commands.add_parser(
        "convert",
        help="write one mouse of a DwiseNeuro model-*.pth (or fold_*/ folder) as our "
        "safetensors checkpoint (ensemble folder)",
    )
    convert.add_argument("--encoder", required=True, help="model-*.pth or folder of them")
    convert.add_argument(
        "--recording", required=True, help="the mouse's Sensorium folder (its unit ids)"
    )
    _add_mouse_option(convert)
    convert.add_argument(
        "--out", required=True, type=path_arg, help=".safetensors file (folder for a folder)"
    )
    _add_overwrite_option(convert, "output")
    convert.set_defaults(run=run_convert)


def _print_runs(runs, out_dir: Path) -> None:
    from napari_movierecon.batch.table import result_path

    for run in runs:
        state = "done" if result_path(out_dir, run.key).is_file() else "to do"
        print(f"{state:6s} {run.describe()}")


def _print_estimate(runs, threads: int | None, parallel: int | None) -> None:
    from napari_movierecon.batch.estimate import estimate

    if not runs:
        print("nothing to run: every run has its result file")
        return
    print(
        f"measuring one step per encoder and preset ({threads or 'default'} torch threads) ...",
        file=sys.stderr,
    )
    total = 0.0
    for cost in estimate(runs, threads):
        total += cost.run_s * cost.runs
        print(
            f"{cost.encoder} / {cost.preset}: {cost.step_s:.3f} s per step, "
            f"~{cost.run_s:.1f} s per run x {cost.runs} runs"
        )
    line = f"estimated {total / 3600:.2f} h of worker time for {len(runs)} runs"
    if parallel:
        line += f"; ~{total / parallel / 3600:.2f} h on {parallel} parallel worker(s)"
    print(line)


def run_batch_command(args: argparse.Namespace) -> int:
    """Exit status: 0 all runs done, 1 some failed (the count is printed), 130 Ctrl-C."""
    from dataclasses import asdict
    from dataclasses import replace as changed

    from napari_movierecon.batch.cluster import connect, local_size
    from napari_movierecon.batch.plan import cluster_options, load_plan
    from napari_movierecon.batch.runner import run_batch, unfinished, write_table
    from napari_movierecon.batch.runs import expand

    plan = load_plan(args.plan)
    workers = plan.workers
    if args.workers is not None:
        workers = changed(workers, n=args.workers)
    if args.threads_per_worker is not None:
        workers = changed(workers, threads=args.threads_per_worker)
    flags = {
        name: getattr(args, name)
        for name in ("queue", "account", "cores", "memory", "walltime", "gpus", "jobs")
        if getattr(args, name) is not None
    }
    cluster = plan.cluster
    if flags:
        values = {**asdict(plan.cluster), "job_extra": list(plan.cluster.job_extra), **flags}
        cluster = cluster_options(values, "command-line cluster options")
    runs = expand(plan)
    todo = unfinished(runs, args.out)
    print(f"{args.plan}: {len(runs)} runs, {len(runs) - len(todo)} already done", file=sys.stderr)
    if args.dry_run:
        _print_runs(runs, args.out)
        if args.scheduler:  # its workers are unknown until connected
            threads, parallel = workers.threads, None
        elif args.cluster or plan.cluster.kind:
            threads = max(1, cluster.cores // cluster.processes)
            parallel = cluster.jobs * cluster.processes
        else:
            parallel, threads = local_size(workers, plan.device)
        _print_estimate(todo, threads, parallel)
        return 0
    with connect(plan.device, workers, cluster, args.scheduler, args.cluster) as connection:
        print(f"{connection.description}; {connection.dashboard}", file=sys.stderr)
        outcome = run_batch(
            runs,
            args.out,
            connection.client,
            connection.torch_threads,
            connection.exclusive,
            progress=not args.no_progress,
            figures=not args.no_figures,
        )
    rows = outcome.rows
    if outcome.interrupted:  # count the runs that ended while the cluster was closing
        rows, _ = write_table(runs, args.out, figures=not args.no_figures)
    done = sum(row["status"] == "done" for row in rows)
    print(
        f"{done}/{len(runs)} runs done ({outcome.skipped} were already done), "
        f"{outcome.failed} failed; wrote {args.out / 'summary.csv'} and {args.out / 'report.md'}"
    )
    if outcome.interrupted:
        print(
            "\ninterrupted: finished runs are kept; run the same command to resume", file=sys.stderr
        )
        return 130
    if outcome.failed:
        print(
            f"error: {outcome.failed} of {len(todo)} runs failed (see {args.out / 'summary.csv'})",
            file=sys.stderr,
        )
        return 1
    return 0


def _add_batch_parser(commands) -> None:
    from napari_movierecon.batch.plan import CLUSTER_KINDS

    batch = commands.add_parser(
        "batch", help="run a plan of many reconstructions on Dask (laptop or cluster), resumably"
    )
    batch.add_argument("plan", type=path_arg, help="plan file (TOML; see docs/batch.md)")
    batch.add_argument(
        "--out", required=True, type=path_arg, help="batch folder (created; resumed)"
    )
    batch.add_argument(
        "--dry-run",
        action="store_true",
        help="list the runs and estimate their cost; write nothing",
    )
    batch.add_argument("--scheduler", default=None, help="address of a running Dask scheduler")
    batch.add_argument(
        "--cluster",
        choices=CLUSTER_KINDS,
        default=None,
        help="start workers as batch jobs (dask-jobqueue); options from the plan",
    )
    batch.add_argument("--workers", type=positive_int, default=None, help="local worker processes")
    batch.add_argument(
        "--threads-per-worker",
        type=thread_count,
        default=None,
        help="torch threads per worker (each runs one run at a time)",
    )
    for name, kind, text in (
        ("queue", str, "batch queue / partition"),
        ("account", str, "account / project to charge"),
        ("cores", positive_int, "cores per job"),
        ("memory", str, "memory per job, e.g. 32GB"),
        ("walltime", str, "job wall time HH:MM:SS"),
        ("gpus", seed_int, "GPUs per job"),
        ("jobs", positive_int, "jobs to start"),
    ):
        batch.add_argument(
            f"--{name}", type=kind, default=None, help=f"{text} (overrides the plan)"
        )
    batch.add_argument("--no-progress", action="store_true", help="no progress bar")
    batch.add_argument("--no-figures", action="store_true", help="summary and report only")
    batch.set_defaults(run=run_batch_command)


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
    sim.add_argument("--out", required=True, type=path_arg, help="output folder (must not exist)")
    sim.add_argument(
        "--seed", type=seed_int, default=2025, help="mouse seed (2025 = the sample mouse)"
    )
    sim.add_argument(
        "--neurons", type=positive_int, default=None, help="population size (default 8000)"
    )
    sim.add_argument("--tiers", default=None, help="comma-separated tiers to write (default: all)")
    sim.add_argument(
        "--max-per-tier",
        type=positive_int,
        default=None,
        help="write at most this many trials of each tier",
    )
    sim.add_argument(
        "--movies",
        nargs="+",
        type=path_arg,
        default=None,
        help="your own movies (.npy (T,H,W) or video files) to show the same mouse",
    )
    sim.add_argument(
        "--fps",
        type=positive_float,
        default=None,
        help="frame rate of .npy movies (video files carry their own)",
    )
    _add_overwrite_option(sim, "folder")
    sim.set_defaults(run=run_simulate)

    fig = commands.add_parser("figures", help="draw the in-silico mouse figures for docs/")
    fig.add_argument("--out", type=path_arg, default=Path("docs/figures"))
    fig.set_defaults(run=run_figures)

    train = commands.add_parser(
        "train", help="train an encoder ensemble on a recording's training tier"
    )
    _add_recording_option(train)
    train.add_argument("--out", required=True, type=path_arg, help="ensemble folder to write")
    train.add_argument(
        "--members", type=positive_int, default=3, help="ensemble size (seeds differ)"
    )
    train.add_argument("--seed", type=seed_int, default=0, help="seed of member 1 (member k: +k)")
    _add_training_options(train)
    _add_compute_options(train)
    _add_overwrite_option(train, "folder")
    train.set_defaults(run=run_train)

    evaluate = commands.add_parser(
        "evaluate", help="per-neuron single-trial correlation of an encoder on a tier"
    )
    _add_recording_option(evaluate)
    _add_encoder_option(evaluate)
    evaluate.add_argument("--tier", default="final_test_main")
    evaluate.add_argument("--max-trials", type=positive_int, default=None)
    _add_compute_options(evaluate)
    evaluate.add_argument("--json", type=path_arg, default=None, help="also write the means here")
    _add_overwrite_option(evaluate, "--json")
    _add_mouse_option(evaluate)
    evaluate.set_defaults(run=run_evaluate)

    rec = commands.add_parser(
        "reconstruct", help="reconstruct one trial's movie from its responses"
    )
    _add_recording_option(rec)
    rec.add_argument("--trial", required=True, type=seed_int, help="trial index")
    _add_encoder_option(rec)
    _add_preset_options(rec)
    _add_neurons_option(rec)
    rec.add_argument(
        "--holdout",
        type=open_fraction,
        default=None,
        help="stopping rule: hold out this fraction of the neurons from the loss and keep the "
        "movie that predicts them best (override the preset's)",
    )
    rec.add_argument(
        "--holdout-patience",
        type=positive_int,
        default=None,
        help="stopping rule: stop after this many iterations without improvement",
    )
    _add_mask_options(rec, npy_masks=True)
    _add_compute_options(rec)
    rec.add_argument("--out", required=True, type=path_arg, help="result file (.safetensors)")
    _add_overwrite_option(rec, "file")
    _add_mouse_option(rec)
    rec.set_defaults(run=run_reconstruct)

    _add_batch_parser(commands)

    mask = commands.add_parser(
        "mask", help="estimate where the neurons look: update and evaluation masks in one file"
    )
    _add_recording_option(mask)
    _add_encoder_option(mask)
    mask.add_argument(
        "--method",
        choices=("transparency", "coverage"),
        default="transparency",
        help="transparency (the reference's, ~1 min on 2 CPU threads) or coverage (seconds)",
    )
    mask.add_argument(
        "--iterations",
        type=positive_int,
        default=None,
        help="transparency iterations (default 1000)",
    )
    _add_neurons_option(mask)
    mask.add_argument("--seed", type=seed_int, default=0, help="trials, clips and noise movies")
    _add_compute_options(mask)
    mask.add_argument("--out", required=True, type=path_arg, help="mask file (.safetensors)")
    _add_overwrite_option(mask, "file")
    _add_mouse_option(mask)
    mask.set_defaults(run=run_mask)

    _add_convert_parser(commands)

    from napari_movierecon.science_cli import add_science_parsers

    add_science_parsers(commands)

    view = commands.add_parser("view", help="open napari with the plugin and the in-silico sample")
    view.set_defaults(run=run_view)
    return parser


def _os_error_text(exc: OSError) -> str:
    """``path: reason`` of an OSError, in one line."""
    where = exc.filename if exc.filename is not None else "input/output"
    return f"{where}: {exc.strerror or exc}".replace("\n", " ")


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:  # argparse has printed its usage and error line
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    run: Callable[[argparse.Namespace], int | None] = args.run
    try:
        code = run(args)
    except MovieReconError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:  # what users cause: permissions, a full disk, a vanished file
        print(f"error: {_os_error_text(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("\ninterrupted; nothing was written", file=sys.stderr)
        return 130
    return code or 0


if __name__ == "__main__":
    sys.exit(main())
