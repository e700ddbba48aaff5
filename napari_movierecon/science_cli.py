"""The ``movierecon distill`` and ``movierecon probe`` subcommands: argument parsing and
printing only; the work is in ``encoders.distill`` and ``reconstruct.probes``.

    movierecon distill --teacher ENCODER --recording R --out DIR [--members K]
    movierecon probe --encoder E [--recording R] --kind noise|gratings --out DIR
        [--seeds K] [--oracle]
"""

from __future__ import annotations

import argparse
import sys

from napari_movierecon.cli import (
    _add_compute_options,
    _add_encoder_option,
    _add_mask_options,
    _add_mouse_option,
    _add_neurons_option,
    _add_overwrite_option,
    _add_preset_options,
    _add_recording_option,
    _add_training_options,
    _progress,
    _use_threads,
    path_arg,
    positive_int,
    seed_int,
    train_members,
)
from napari_movierecon.errors import MovieReconError
from napari_movierecon.io.atomic import check_target


def run_distill(args: argparse.Namespace) -> None:
    from napari_movierecon.encoders.distill import distill_encoder
    from napari_movierecon.sources import open_encoder, open_recording

    _use_threads(args)
    check_target(args.out, args.overwrite, folder=True)
    recording = open_recording(args.recording)
    teacher = open_encoder(args.teacher, mouse=args.mouse, recording=recording)

    def train_one(model_config, config, report, init):
        return distill_encoder(
            teacher, recording, args.extra_movies, model_config, config, report, init
        )

    records, out, megabytes = train_members(args, train_one, "student", " with the teacher")
    teacher_id = records[0]["distilled_from"]["weights_sha256"][:12]
    print(f"wrote {out} ({len(records)} students of teacher {teacher_id}, {megabytes:.1f} MB)")


def add_distill_parser(commands) -> None:
    distill = commands.add_parser(
        "distill",
        help="train FastEncoder students to reproduce a teacher encoder's predictions",
    )
    distill.add_argument(
        "--teacher",
        required=True,
        help="any encoder: checkpoint, ensemble folder, DwiseNeuro .pth/folder or 'sample'",
    )
    _add_recording_option(distill)
    distill.add_argument("--out", required=True, type=path_arg, help="student ensemble folder")
    distill.add_argument("--members", type=positive_int, default=1, help="students (seeds differ)")
    distill.add_argument(
        "--extra-movies",
        type=seed_int,
        default=200,
        help="generated movies (training image pool) labelled by the teacher, besides the "
        "recording's training movies (default 200)",
    )
    distill.add_argument(
        "--seed", type=seed_int, default=0, help="seed of student 1 (student k: +k)"
    )
    _add_training_options(distill)
    _add_compute_options(distill)
    _add_overwrite_option(distill, "folder")
    _add_mouse_option(distill)
    distill.set_defaults(run=run_distill)


def _scales(text: str | None) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise MovieReconError(f"scales must be comma-separated numbers, got {text!r}") from None


def _probe_population(args: argparse.Namespace, encoder, recording):
    """(neuron indices, population record, behaviour (4, T) or None) for ``probe``."""
    import numpy as np

    from napari_movierecon.encoders.base import behavior_input
    from napari_movierecon.encoders.checkpoint import check_neurons
    from napari_movierecon.reconstruct.neurons import (
        Selection,
        encoder_reliability,
        parse_population,
    )

    population = parse_population(args.neurons)
    if recording is None:
        if args.neurons != "all":
            raise MovieReconError("--neurons other than 'all' needs --recording")
        return np.arange(encoder.n_neurons), population.to_dict(), None
    check_neurons(encoder, recording.neurons.ids, recording.name)
    chosen = Selection.of(population, recording.neurons, encoder_reliability(encoder))
    tier = "oracle" if len(recording.trials_in("oracle")) else "train"
    trial = recording.trial(int(recording.trials_in(tier)[0]))
    if trial.length < args.frames:
        raise MovieReconError(
            f"{recording.name}: trial {trial.index} has {trial.length} frames of behaviour; "
            f"--frames must be <= {trial.length}"
        )
    return chosen.indices, population.to_dict(), behavior_input(trial)


def _probe_oracle(args: argparse.Namespace, encoder, recording):
    """The in-silico ground truth for ``probe --oracle``: the mouse of an in-silico
    recording ('sample', or a folder written by ``movierecon simulate``), or without a
    recording the sample mouse when the encoder was trained on it; otherwise
    MovieReconError."""
    from pathlib import Path

    import numpy as np

    from napari_movierecon.encoders.ensemble import members_of
    from napari_movierecon.encoders.oracle import OracleEncoder
    from napari_movierecon.insilico.ground_truth import GROUND_TRUTH_DIR, load_ground_truth
    from napari_movierecon.sources import SAMPLE, open_recording

    if recording is not None:
        mouse = getattr(recording, "mouse", None)
        if mouse is None and (Path(args.recording) / GROUND_TRUTH_DIR).is_dir():
            mouse, _ = load_ground_truth(args.recording)
        if mouse is None:
            raise MovieReconError(
                f"--oracle needs the in-silico mouse: {recording.name} has no ground truth "
                "(give --recording sample or a folder written by 'movierecon simulate')"
            )
        return OracleEncoder(mouse.model)
    trained_on = (getattr(members_of(encoder)[0], "record", None) or {}).get("recording")
    sample = None if trained_on is None else open_recording(SAMPLE)
    if (
        sample is None
        or trained_on != sample.name
        or not np.array_equal(encoder.unit_ids, sample.neurons.ids)
    ):
        raise MovieReconError(
            "--oracle needs the in-silico mouse: without --recording the encoder must be one "
            "trained on the sample mouse; give the in-silico --recording"
        )
    return OracleEncoder(sample.mouse.model)


def run_probe(args: argparse.Namespace) -> None:
    import json

    from napari_movierecon.io.atomic import staged_directory
    from napari_movierecon.reconstruct.config import default_preset, preset
    from napari_movierecon.reconstruct.masks.file import cut_masks
    from napari_movierecon.reconstruct.probes import (
        ProbeSpec,
        behavior_for,
        plot_probes,
        probe_table,
        run_probes,
    )
    from napari_movierecon.sources import open_encoder, open_recording

    _use_threads(args)
    check_target(args.out, args.overwrite, folder=True)
    changes = {
        k: v
        for k, v in {"spatial": _scales(args.spatial), "temporal": _scales(args.temporal)}.items()
        if v is not None
    }
    spec = ProbeSpec.for_kind(
        args.kind,
        n_frames=args.frames,
        poisson=args.poisson,
        seed=args.seed,
        n_seeds=args.seeds,
        **changes,
    )
    recording = None if args.recording is None else open_recording(args.recording)
    encoder = open_encoder(args.encoder, mouse=args.mouse, recording=recording)
    neurons, population, behavior = _probe_population(args, encoder, recording)
    oracle = _probe_oracle(args, encoder, recording) if args.oracle else None
    if behavior is None:
        behavior = behavior_for(encoder, args.frames)
    overrides = {"device": args.device}
    if args.iterations is not None:
        overrides["iterations"] = args.iterations
    config = preset(args.preset or default_preset(encoder), **overrides)
    update_mask = eval_mask = None
    if args.mask is not None:
        update_mask, eval_mask, _ = cut_masks(args.mask, config, encoder.frame_shape)
    print(
        f"{len(spec.probes())} {args.kind} probes of {args.frames} frames x {spec.n_seeds} "
        f"seed(s), {len(neurons)} neurons, preset {config.preset}"
        + (", and the in-silico oracle" if oracle is not None else ""),
        file=sys.stderr,
    )
    with _progress("probe runs") as progress:
        record = run_probes(
            encoder, spec, config, neurons, behavior, eval_mask, update_mask, progress, oracle
        )
    record |= {
        "encoder": str(args.encoder),
        "recording": None if recording is None else recording.name,
        "population": population,
        "mask": None if args.mask is None else str(args.mask),
    }
    table = probe_table(record)
    with staged_directory(args.out, overwrite=args.overwrite) as staging:
        (staging / "probe.json").write_text(json.dumps(record, indent=1))
        (staging / "probe.md").write_text(table + "\n")
        plot_probes(record, staging / "probe.png")
    print(table)
    print(f"wrote {args.out} (probe.json, probe.md, probe.png)")


def add_probe_parser(commands) -> None:
    probe = commands.add_parser(
        "probe",
        help="resolution probes: reconstruct noise or gratings of varying spatial and "
        "temporal scale from the encoder's own responses",
    )
    _add_encoder_option(probe)
    probe.add_argument(
        "--recording",
        default=None,
        help="Sensorium mouse folder or 'sample': neurons for --neurons and the behaviour "
        "shown with the probes (default: the encoder's training-mean behaviour)",
    )
    probe.add_argument("--kind", required=True, choices=("noise", "gratings"))
    probe.add_argument("--out", required=True, type=path_arg, help="output folder")
    probe.add_argument(
        "--spatial",
        default=None,
        help="spatial scales, comma-separated: noise sigma in px (default 0.5,1,2,4,8), "
        "grating period in px (default 4,8,16,32,64)",
    )
    probe.add_argument(
        "--temporal",
        default=None,
        help="temporal scales: noise sigma in frames (default 0.5,1,2,4,8), grating period "
        "in frames (default 4,8,15,30,60)",
    )
    probe.add_argument("--frames", type=positive_int, default=150, help="frames per probe movie")
    probe.add_argument(
        "--poisson", action="store_true", help="Poisson-sample the responses (seeded)"
    )
    probe.add_argument(
        "--seed", type=seed_int, default=0, help="first seed: noise movies and Poisson samples"
    )
    probe.add_argument(
        "--seeds",
        type=positive_int,
        default=1,
        help="seeds per probe (--seed, --seed+1, ...): mean +- sd per probe, the half-fall "
        "scale from the mean (default 1; gratings need --poisson for more)",
    )
    probe.add_argument(
        "--oracle",
        action="store_true",
        help="also reconstruct every probe with the in-silico mouse's ground truth as "
        "response generator and encoder, the upper bound (needs the in-silico mouse: "
        "--recording sample or an encoder trained on it; an oracle run costs ~3-4x a "
        "'fast' run of the sample ensemble)",
    )
    _add_preset_options(probe)
    _add_neurons_option(probe)
    _add_mask_options(probe, npy_masks=False)
    _add_compute_options(probe)
    _add_overwrite_option(probe, "folder")
    _add_mouse_option(probe)
    probe.set_defaults(run=run_probe)


def add_science_parsers(commands) -> None:
    """Register ``distill`` and ``probe`` on the ``movierecon`` subcommands."""
    add_distill_parser(commands)
    add_probe_parser(commands)
