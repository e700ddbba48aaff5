"""The stopping rule (config.holdout_fraction) on clips of the sample mouse.

For each preset, every clip is reconstructed twice with the sample ensemble and all
neurons: without the rule (its correlation at every snapshot: the best the run reached,
which only ground truth can pick, and its final one) and with it (the movie it chose,
the iteration it chose and the one it stopped at). Mask as in reconstruct_bench: the
RF-coverage mask, or ``--mask FILE`` (estimated on training trials) for update and
scoring. ``--iterations``/``--members`` shorten a preset (bauer2025's full run is ~12-14
min per clip on 2 cores with the sample ensemble); the table says what ran.

Two tiers, never mixed:

- ``--tier oracle`` (default): distinct validation clips, where the rule's settings
  (``--fraction``, ``--patience``) are chosen by comparing runs; table
  ``OUT/stopping_bench.md``.
- ``--tier final_test_main``: the scored test clips, the same first ``--clips`` that
  reconstruct_bench scores. These runs CHOOSE NOTHING: ``--fraction`` and ``--patience``
  must be given, fixed to the values chosen on validation clips, and the table
  (``OUT/stopping_test.md``) only reports what those fixed settings give: final
  correlation without and with the rule, the iteration the rule chose, the iterations
  run and saved.

Every run is logged in ``OUT/runs.jsonl`` keyed by tier, clip, settings, encoder, mask
and threads; ``--resume`` reuses them, so both tiers can share one ``--out``.

    python -m benchmarks.stopping_bench --presets fast --clips 4
    python -m benchmarks.stopping_bench --presets fast --tier final_test_main --clips 5 \
        --fraction 0.1 --patience 10
    python -m benchmarks.stopping_bench --presets bauer2025 --iterations 300 --members 1 \
        --clips 2 --mask bench_out/mask.safetensors
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import numpy as np
import torch

from benchmarks.bauer2025_speed_bench import trial_run
from benchmarks.reconstruct_bench import scored_clips
from benchmarks.run_log import RunLog, files_digest
from napari_movierecon.insilico.figures import COVERAGE_MIN_FRACTION, coverage_map
from napari_movierecon.insilico.mouse import plan_trials
from napari_movierecon.insilico.simulate import SimulatedRecording
from napari_movierecon.reconstruct.config import preset
from napari_movierecon.reconstruct.masks.file import cut_masks
from napari_movierecon.sources import SAMPLE_ENCODER, open_encoder, open_recording

VALIDATION, TEST = "oracle", "final_test_main"
DEFAULT_FRACTION = 0.1


def validation_clips(recording: SimulatedRecording, count: int) -> list[int]:
    """The first trial of each of the first ``count`` distinct oracle-tier clips."""
    seen, chosen = set(), []
    for plan in plan_trials(recording.mouse.spec):
        if plan.tier == VALIDATION and plan.clip_key not in seen:
            seen.add(plan.clip_key)
            chosen.append(plan.index)
    return sorted(chosen)[:count]


def clips_for(recording: SimulatedRecording, tier: str, count: int) -> list[int]:
    """Trials of ``tier``: validation clips, or the test clips reconstruct_bench scores."""
    if tier == VALIDATION:
        return validation_clips(recording, count)
    if tier == TEST:
        return [int(index) for index in scored_clips(recording, count)]
    raise ValueError(f"unknown tier {tier!r}; use {VALIDATION} or {TEST}")


def run_clip(encoder, trial, config, mask, update_mask) -> dict:
    """Correlation at every snapshot, the last snapshot's iteration and chosen iteration."""
    trajectory, last = [], None
    for last in trial_run(encoder, trial, config, update_mask, mask):
        trajectory.append([last.iteration, round(last.pixel_correlation, 4)])
    return {
        "trajectory": trajectory,
        "final": last.pixel_correlation,
        "stopped_at": last.iteration,
        "chosen": last.chosen_iteration,
        "seconds": last.elapsed_s,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--presets", default="fast")
    parser.add_argument(
        "--tier",
        choices=(VALIDATION, TEST),
        default=VALIDATION,
        help=f"{VALIDATION}: validation clips (choose settings here); {TEST}: the scored "
        "test clips, fixed --fraction and --patience, nothing chosen",
    )
    parser.add_argument("--clips", type=int, default=4, help="distinct clips of the tier")
    parser.add_argument("--iterations", type=int, default=None, help="shorten the presets")
    parser.add_argument("--members", type=int, default=None, help="ensemble members used")
    parser.add_argument(
        "--fraction",
        type=float,
        default=None,
        help=f"held-out neurons (default {DEFAULT_FRACTION} on validation clips; required "
        f"on {TEST})",
    )
    parser.add_argument(
        "--patience",
        type=int,
        default=None,
        help=f"iterations (default: the preset's, on validation clips; required on {TEST})",
    )
    parser.add_argument("--mask", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("bench_out/stopping"))
    parser.add_argument("--resume", action="store_true", help="reuse runs in OUT/runs.jsonl")
    args = parser.parse_args(argv)
    if args.tier == TEST and (args.fraction is None or args.patience is None):
        parser.error(
            f"--tier {TEST} chooses nothing: give --fraction and --patience, the settings "
            f"chosen on {VALIDATION} (validation) clips"
        )
    if args.fraction is None:
        args.fraction = DEFAULT_FRACTION
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)

    recording = open_recording("sample")
    mouse = recording.mouse
    encoder = open_encoder("sample")
    if args.mask is None:
        coverage = coverage_map(mouse.params, mouse.model.screen)
        mask = coverage >= COVERAGE_MIN_FRACTION * len(mouse.neurons.ids)
        update_mask, mask_id = None, "rf-coverage"
    else:
        update_mask, mask, _ = cut_masks(args.mask, preset("fast"), recording.frame_shape)
        mask_id = files_digest([args.mask])
    encoder_id = "sample ensemble " + files_digest(SAMPLE_ENCODER.glob("*.safetensors"))
    log = RunLog(args.out / "runs.jsonl", args.resume)
    clips = clips_for(recording, args.tier, args.clips)
    common = (
        f"{args.threads} CPU threads, sample mouse and ensemble, {args.tier}-tier trials "
        f"{clips}, mask {mask_id}"
    )
    if args.tier == VALIDATION:
        lines = [f"# Stopping rule on validation clips ({common})", ""]
    else:
        lines = [
            f"# Stopping rule on the scored test clips ({common})",
            "",
            f"Fixed settings from the command line (holdout fraction {args.fraction}, "
            f"patience {args.patience}), chosen on {VALIDATION}-tier (validation) clips; "
            "nothing is chosen on these clips. `best` needs ground truth and is shown for "
            "comparison only.",
            "",
        ]
    lines += [
        "| preset | clip | best (iteration, needs truth) | final without rule | with rule "
        "(chosen iteration) | stopped at | iterations saved |",
        "|---|---|---|---|---|---|---|",
    ]
    summary = []
    for name in args.presets.split(","):
        changes = {"snapshot_every": 1}
        if args.iterations:
            changes["iterations"] = args.iterations
        if args.members:
            changes["members"] = args.members
        off = preset(name, **changes)
        rule = {"holdout_fraction": args.fraction}
        if args.patience:
            rule["holdout_patience"] = args.patience
        on = off.replace(**rule)
        rows = []
        for index in clips:
            results = {}
            for label, config in (("off", off), ("on", on)):
                key = {
                    "tier": args.tier,
                    "config": config.to_json(),
                    "encoder": encoder_id,
                    "trial": index,
                    "mask": mask_id,
                    "threads": args.threads,
                }
                results[label], _ = log.run(
                    key,
                    lambda config=config, index=index: run_clip(
                        encoder, recording.trial(index), config, mask, update_mask
                    ),
                )
            scored = [p for p in results["off"]["trajectory"] if np.isfinite(p[1])]  # not gray
            best_iteration, best = max(scored, key=lambda p: p[1])
            row = {
                "best": best,
                "final": results["off"]["final"],
                "rule": results["on"]["final"],
                "stopped_at": results["on"]["stopped_at"],
                "saved": off.iterations - results["on"]["stopped_at"],
            }
            rows.append(row)
            lines.append(
                f"| {name} | {index} | {best:.3f} ({best_iteration}) | {row['final']:.3f} | "
                f"{row['rule']:.3f} ({results['on']['chosen']}) | {row['stopped_at']} "
                f"| {row['saved']} |"
            )
            print(lines[-1], flush=True)
        mean = {k: statistics.mean(r[k] for r in rows) for k in rows[0]}
        summary.append(
            f"| {name} ({off.iterations} iterations, members {off.members or 'all'}, "
            f"holdout {args.fraction}, patience {on.holdout_patience}) | {len(rows)} | "
            f"{mean['best']:.3f} | {mean['final']:.3f} | {mean['rule']:.3f} | "
            f"{mean['stopped_at']:.0f} | {mean['saved']:.0f} of {off.iterations} |"
        )
    lines += [
        "",
        "| preset (as run) | clips | best, mean (needs truth) | final without rule, mean | "
        "with rule, mean | iterations run with rule, mean | iterations saved, mean |",
        "|---|---|---|---|---|---|---|",
        *summary,
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    table = "stopping_bench.md" if args.tier == VALIDATION else "stopping_test.md"
    (args.out / table).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
