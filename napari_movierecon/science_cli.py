"""The ``movierecon distill`` and ``movierecon probe`` subcommands: argument parsing and
printing only; the work is in ``encoders.distill`` and ``reconstruct.probes``.

    movierecon distill --teacher ENCODER --recording R --out DIR [--members K]
    movierecon probe --encoder E [--recording R] --kind noise|gratings --out DIR
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from napari_movierecon.cli import _add_mouse_option, _training_reporter
from napari_movierecon.errors import MovieReconError


def run_distill(args: argparse.Namespace) -> None:
    import torch

    from napari_movierecon.encoders.checkpoint import save_ensemble
    from napari_movierecon.encoders.distill import distill_encoder
    from napari_movierecon.encoders.train import TrainConfig
    from napari_movierecon.sources import check_device, open_encoder, open_recording

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.members < 1:
        raise MovieReconError("--members must be >= 1")
    if args.extra_movies < 0:
        raise MovieReconError("--extra-movies must be >= 0")
    if args.out.exists() and not args.overwrite:
        raise MovieReconError(f"{args.out}: already exists; pass --overwrite to replace it")
    check_device(args.device)
    recording = open_recording(args.recording)
    teacher = open_encoder(args.teacher, mouse=args.mouse, recording=recording)
    students, records = [], []
    for k in range(args.members):
        chosen = {"epochs": args.epochs} if args.epochs else {}
        config = TrainConfig(
            seed=args.seed + k, max_train_trials=args.max_train_trials, device=args.device, **chosen
        )
        student, record = distill_encoder(
            teacher,
            recording,
            args.extra_movies,
            config=config,
            callback=_training_reporter(k, args.members),
        )
        print(
            f"student {k + 1}: best validation correlation with the teacher "
            f"{record['validation_correlation_mean']:.4f} (epoch {record['best_epoch'] + 1}), "
            f"{record['seconds']:.0f} s",
            file=sys.stderr,
        )
        students.append(student.cpu())
        records.append(record)
    out = save_ensemble(students, records, args.out, overwrite=args.overwrite)
    size = sum(p.stat().st_size for p in out.iterdir())
    teacher_id = records[0]["distilled_from"]["weights_sha256"][:12]
    print(f"wrote {out} ({len(students)} students of teacher {teacher_id}, {size / 1e6:.1f} MB)")


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
    distill.add_argument("--recording", required=True, help="Sensorium mouse folder or 'sample'")
    distill.add_argument("--out", required=True, type=Path, help="student ensemble folder")
    distill.add_argument("--members", type=int, default=1, help="students (seeds differ)")
    distill.add_argument(
        "--extra-movies",
        type=int,
        default=200,
        help="generated movies (training image pool) labelled by the teacher, besides the "
        "recording's training movies (default 200)",
    )
    distill.add_argument("--seed", type=int, default=0, help="seed of student 1 (student k: +k)")
    distill.add_argument("--epochs", type=int, default=None, help="at most this many (default 12)")
    distill.add_argument("--max-train-trials", type=int, default=None)
    distill.add_argument("--device", default="cpu", help="cpu or cuda")
    distill.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    distill.add_argument("--overwrite", action="store_true", help="replace an existing folder")
    _add_mouse_option(distill)
    distill.set_defaults(run=run_distill)


def add_science_parsers(commands) -> None:
    """Register ``distill`` and ``probe`` on the ``movierecon`` subcommands."""
    add_distill_parser(commands)
