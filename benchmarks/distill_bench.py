"""Distilling the sample ensemble (3 FastEncoders) into one FastEncoder student.

Trains the student on the sample mouse's training movies plus ``--extra-movies``
generated ones, all labelled by the ensemble (``encoders.distill``; or reuses
``--student DIR``), then reports on the scored clips (``final_test_main``, never used
for training or choosing anything): teacher's and student's single-trial correlation
(and the in-silico oracle's), the student's agreement with the teacher, and the
``fast`` reconstruction of ``--clips`` clips with each (masked pixel correlation and
wall time, as reconstruct_bench). Writes OUT/distill_bench.md. ``--epochs E`` runs the
whole E-epoch schedule (patience E); ``--init`` starts the student from the teacher's
first member (``movierecon distill --init``).

    python -m benchmarks.distill_bench --extra-movies 200 --clips 5 \
        --mask bench_out/mask.safetensors
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.reconstruct_bench import run_one
from napari_movierecon.correlation import row_correlation
from napari_movierecon.encoders.base import behavior_input
from napari_movierecon.encoders.checkpoint import load_encoder, save_ensemble
from napari_movierecon.encoders.distill import distill_encoder
from napari_movierecon.encoders.ensemble import members_of
from napari_movierecon.encoders.evaluate import evaluate_encoders
from napari_movierecon.encoders.train import TrainConfig
from napari_movierecon.insilico.figures import COVERAGE_MIN_FRACTION, coverage_map
from napari_movierecon.reconstruct.config import preset
from napari_movierecon.reconstruct.masks.file import cut_masks
from napari_movierecon.sources import open_encoder, open_recording


def agreement(student, teacher, recording, indices) -> float:
    """Mean per-neuron correlation of the student's rates with the teacher's."""
    skip = max(student.context_frames, teacher.context_frames)
    scores = []
    with torch.no_grad():
        for index in indices:
            trial = recording.trial(int(index))
            movie = torch.from_numpy(trial.movie)[None]
            behavior = torch.from_numpy(behavior_input(trial))[None]
            a, b = student(movie, behavior)[0, :, skip:], teacher(movie, behavior)[0, :, skip:]
            scores.append(row_correlation(a.numpy(), b.numpy(), constant=0.0).mean())
    return float(np.mean(scores))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--extra-movies", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--learning-rate", type=float, default=None)
    parser.add_argument(
        "--init",
        action="store_true",
        help="start the student from the teacher's first member instead of from the data",
    )
    parser.add_argument("--student", type=Path, default=None, help="reuse this student")
    parser.add_argument("--clips", type=int, default=5)
    parser.add_argument("--mask", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("bench_out/distill"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    recording = open_recording("sample")
    teacher = open_encoder("sample")
    started = time.perf_counter()
    if args.student is None:
        chosen = {"seed": 0}
        if args.epochs:
            chosen |= {"epochs": args.epochs, "patience": args.epochs}
        if args.learning_rate:
            chosen["learning_rate"] = args.learning_rate
        config = TrainConfig(**chosen)
        init = teacher.members[0] if args.init else None
        student, record = distill_encoder(
            teacher, recording, args.extra_movies, config=config, init=init
        )
        args.student = args.out / "student"
        save_ensemble([student], [record], args.student, overwrite=True)
    student = load_encoder(args.student)
    train_seconds = time.perf_counter() - started
    scored = evaluate_encoders(
        {"teacher": teacher, "student": student}, recording, "final_test_main"
    )
    clips = recording.trials_in("final_test_main")[: args.clips]
    if args.mask is None:
        mouse = recording.mouse
        coverage = coverage_map(mouse.params, mouse.model.screen)
        mask, update_mask = coverage >= COVERAGE_MIN_FRACTION * len(mouse.neurons.ids), None
    else:
        update_mask, mask, _ = cut_masks(args.mask, preset("fast"), recording.frame_shape)
    runs = {name: [] for name in ("teacher", "student")}
    for index in clips:
        trial = recording.trial(int(index))
        for name, encoder in (("teacher", teacher), ("student", student)):
            runs[name].append(run_one(encoder, trial, preset("fast"), mask, None, update_mask))
            print(name, int(index), runs[name][-1]["correlation"], flush=True)
    corr = {n: statistics.mean(r["correlation"] for r in rs) for n, rs in runs.items()}
    secs = {n: statistics.median(r["seconds"] for r in rs) for n, rs in runs.items()}
    summary = {n: e.summary() for n, e in scored.items()}
    start = members_of(student)[0].record.get("initialised_from")
    lines = [
        f"# Distillation of the sample ensemble into one student ({args.threads} CPU threads)",
        "",
        f"Student: {args.student} ({args.extra_movies} extra movies; "
        + (f"started from {start['source']} ({start['weights_sha256'][:12]}); " if start else "")
        + f"{'trained' if train_seconds > 60 else 'reused'}, {train_seconds:.0f} s).",
        "",
        "| encoder | test single-trial correlation | / oracle | fast reconstruction "
        f"({len(clips)} clips, mean) | wall time per clip (median) |",
        "|---|---|---|---|---|",
    ]
    for name in ("teacher", "student"):
        s = summary[name]
        lines.append(
            f"| {name} | {s['single_trial']:.4f} | {s.get('ratio_to_oracle', float('nan')):.3f} "
            f"| {corr[name]:.3f} | {secs[name]:.1f} s |"
        )
    lines += [
        "",
        f"Student / teacher: test correlation "
        f"{summary['student']['single_trial'] / summary['teacher']['single_trial']:.3f}, "
        f"reconstruction {corr['student'] / corr['teacher']:.3f}, time "
        f"{secs['student'] / secs['teacher']:.3f}; student-teacher rate agreement on the test "
        f"clips {agreement(student, teacher, recording, clips):.3f}.",
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "distill_bench.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
