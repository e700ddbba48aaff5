"""Reconstruction benchmark on held-out test clips of the sample mouse.

For each preset and encoder (the shipped sample ensemble, and the in-silico
oracle as the upper bound with the same protocol), reconstructs the first
``--clips`` clips of ``final_test_main`` from all neurons and reports the
masked pixel correlation (mean +- sd), wall time per clip, frames pushed
through the encoder, and the process's peak memory. Scoring mask: screen
pixels inside >= 1 % of the population's 2-sigma receptive fields (in-silico
ground truth, used for scoring only), or with ``--mask FILE`` the reference's
way: a mask file estimated on training trials (``movierecon mask``) whose
update mask drives every run and whose evaluation mask scores it. Writes a
Markdown table and a PNG of correlation against wall time (the final scores,
and each preset's mean correlation during the run) to ``--out``, and every
finished run (with its correlation at each snapshot) to ``--out``/runs.jsonl;
``--resume`` reuses the runs already there with the same settings (a bauer2025
clip takes ~12-14 min on 2 cores with the sample ensemble, so its 5 clips can be
spread over several sessions; ``--device cuda`` runs them on a GPU). The code's
version is not part of those settings: after changing the engine, use a new ``--out``.

    python -m benchmarks.reconstruct_bench --presets fast --clips 5 --fractions 0.125,0.25,0.5,1
    movierecon mask --recording sample --encoder sample --out bench_out/mask.safetensors
    python -m benchmarks.reconstruct_bench --presets fast,bauer2025 \
        --mask bench_out/mask.safetensors --resume
"""

from __future__ import annotations

import argparse
import copy
import resource
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.run_log import RunLog, files_digest
from benchmarks.timing import device_label
from napari_movierecon.cli import device_name
from napari_movierecon.encoders.base import behavior_input
from napari_movierecon.encoders.oracle import OracleEncoder
from napari_movierecon.insilico.figures import COVERAGE_MIN_FRACTION, coverage_map
from napari_movierecon.reconstruct.config import preset
from napari_movierecon.reconstruct.engine import reconstruct
from napari_movierecon.reconstruct.masks.file import cut_masks
from napari_movierecon.reconstruct.neurons import parse_population
from napari_movierecon.sources import SAMPLE_ENCODER, open_encoder, open_recording

# A "first picture": the first snapshot whose masked pixel correlation reaches this.
FIRST_PICTURE_CORRELATION = 0.5


def scored_clips(recording, count: int) -> np.ndarray:
    """The clips the benchmarks score: the first ``count`` final_test_main trials."""
    return recording.trials_in("final_test_main")[:count]


def run_one(encoder, trial, config, mask, neurons=None, update_mask=None) -> dict:
    started = time.perf_counter()
    run = reconstruct(
        encoder,
        trial.responses,
        np.arange(encoder.n_neurons) if neurons is None else neurons,
        behavior_input(trial),
        config,
        truth=trial.movie,
        update_mask=update_mask,
        eval_mask=mask,
    )
    trajectory = []  # [iteration, pixel correlation] at every snapshot
    first_picture = None  # seconds from the call to the first snapshot scoring >= 0.5
    for snapshot in run:
        trajectory.append([snapshot.iteration, round(snapshot.pixel_correlation, 4)])
        if first_picture is None and snapshot.pixel_correlation >= FIRST_PICTURE_CORRELATION:
            first_picture = time.perf_counter() - started
    return {
        "correlation": snapshot.pixel_correlation,
        "first_picture_s": first_picture,
        "trajectory": trajectory,
        "seconds": time.perf_counter() - started,
        "encoder_frames": snapshot.encoder_frames,
        # the process's peak so far (what this run needed at most, plus earlier runs' residue)
        "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--presets", default="fast")
    parser.add_argument("--encoders", default="ensemble,oracle")
    parser.add_argument("--clips", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--device",
        type=device_name,
        default="cpu",
        help="where the runs optimise (cpu or cuda; part of each run's settings)",
    )
    parser.add_argument(
        "--fractions",
        default="",
        help="population curve: comma-separated fractions of neurons (random, seed 0) "
        "for the first preset with the ensemble, e.g. 0.125,0.25,0.5,1",
    )
    parser.add_argument(
        "--mask",
        type=Path,
        default=None,
        help="mask file (movierecon mask, training trials only): its update mask drives "
        "every run and its evaluation mask scores it, instead of the RF-coverage mask",
    )
    parser.add_argument(
        "--trials", default="", help="comma-separated test trials (default: the first --clips)"
    )
    parser.add_argument("--out", type=Path, default=Path("bench_out"))
    parser.add_argument(
        "--resume",
        action="store_true",
        help="reuse the runs in OUT/runs.jsonl made with the same preset settings, encoder, "
        "mask, clip, neurons and threads instead of repeating them",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    recording = open_recording("sample")
    mouse = recording.mouse
    # The oracle on a copy of the simulator: a run moves its encoder to --device, and the
    # clips are still simulated on the CPU.
    oracle = OracleEncoder(copy.deepcopy(mouse.model))
    encoders = {"ensemble": open_encoder("sample"), "oracle": oracle}
    if args.mask is None:
        coverage = coverage_map(mouse.params, mouse.model.screen)
        mask = coverage >= COVERAGE_MIN_FRACTION * len(mouse.neurons.ids)
        update_mask, mask_text = None, "RF coverage >= 1 % of neurons, no update mask"
        mask_id = "rf-coverage"
    else:
        update_mask, mask, _ = cut_masks(args.mask, preset("fast"), recording.frame_shape)
        mask_text = f"evaluation mask of {args.mask}; update mask {int(update_mask.sum())} px"
        mask_id = files_digest([args.mask])
    encoder_ids = {
        "ensemble": "sample ensemble " + files_digest(SAMPLE_ENCODER.glob("*.safetensors")),
        "oracle": f"oracle of {recording.name}",
    }
    log = RunLog(args.out / "runs.jsonl", args.resume)
    used = []  # every result in the tables

    def logged_run(preset_name, encoder_name, index, neurons_spec, neurons=None) -> dict:
        config = preset(preset_name, device=args.device)
        key = {
            "preset": preset_name,
            "config": config.to_json(),
            "encoder": encoder_ids[encoder_name],
            "trial": int(index),
            "neurons": neurons_spec,
            "mask": mask_id,
            "threads": args.threads,
        }
        result, reused = log.run(
            key,
            lambda: run_one(
                encoders[encoder_name],
                recording.trial(int(index)),  # simulated only when the run is not reused
                config,
                mask,
                neurons,
                update_mask,
            ),
        )
        print(
            preset_name,
            encoder_name,
            neurons_spec,
            int(index),
            {name: value for name, value in result.items() if name != "trajectory"},
            "(from runs.jsonl)" if reused else "",
            flush=True,
        )
        used.append(result)
        return result

    clips = recording.trials_in("final_test_main")
    if args.trials:
        wanted = np.array([int(t) for t in args.trials.split(",")])
        if not np.isin(wanted, clips).all():
            raise SystemExit(f"--trials must be final_test_main trials: {clips.tolist()}")
        clips = wanted
    else:
        clips = scored_clips(recording, args.clips)
    rows = []
    for preset_name in args.presets.split(","):
        for encoder_name in [name for name in args.encoders.split(",") if name]:
            runs = [logged_run(preset_name, encoder_name, index, "all") for index in clips]
            corr = [r["correlation"] for r in runs]
            rows.append(
                {
                    "preset": preset_name,
                    "encoder": encoder_name,
                    "clips": len(runs),
                    "corr_mean": statistics.mean(corr),
                    "corr_sd": statistics.stdev(corr) if len(corr) > 1 else 0.0,
                    "seconds": statistics.median(r["seconds"] for r in runs),
                    "encoder_frames": runs[0]["encoder_frames"],
                    "first_picture": _first_picture(runs),
                    "trajectory": _mean_trajectory(runs),
                }
            )
    curve = []
    for fraction in [float(f) for f in args.fractions.split(",") if f]:
        spec = f"random:{fraction}:0"
        neurons = parse_population(spec).select(recording.neurons)
        first_preset = args.presets.split(",")[0]
        corr = [
            logged_run(first_preset, "ensemble", index, spec, neurons)["correlation"]
            for index in clips
        ]
        curve.append((fraction, len(neurons), statistics.mean(corr), statistics.stdev(corr)))
    peak_gb = max(result["peak_gb"] for result in used)
    where = f"{device_label(args.device)}, {args.threads} torch threads"
    lines = [
        f"# Reconstruction benchmark ({where}, sample mouse, "
        f"final_test_main clips {clips.tolist()})",
        "",
        "| preset | encoder | clips | pixel correlation (mean +- sd) | wall time per clip "
        f"(median) | first picture >= {FIRST_PICTURE_CORRELATION} (median) | encoder frames "
        "per clip |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['preset']} | {r['encoder']} | {r['clips']} | {r['corr_mean']:.3f} "
            f"+- {r['corr_sd']:.3f} | {r['seconds']:.1f} s | {r['first_picture']} | "
            f"{r['encoder_frames']:,} |"
        )
    if curve:
        lines += ["", "| neurons (random, seed 0) | pixel correlation (mean +- sd) |", "|---|---|"]
        lines += [f"| {f:.1%} ({n}) | {m:.3f} +- {s:.3f} |" for f, n, m, s in curve]
    lines += [
        "",
        f"Peak memory of the benchmark process(es): {peak_gb:.2f} GB. Scoring mask: "
        f"{int(mask.sum())} of {mask.size} pixels ({mask_text}). Runs logged in "
        f"{args.out / 'runs.jsonl'}" + (" (reused where already there)." if args.resume else "."),
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "reconstruct_bench.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    if rows:
        _plot(rows, args.out / "reconstruct_bench.png", where)


def _first_picture(runs: list[dict]) -> str:
    """Median seconds to the first snapshot scoring >= FIRST_PICTURE_CORRELATION, with how
    many clips never got there; "-" for runs logged before this was measured."""
    if not all("first_picture_s" in r for r in runs):
        return "-"
    reached = [r["first_picture_s"] for r in runs if r["first_picture_s"] is not None]
    text = f"{statistics.median(reached):.2f} s" if reached else "never"
    missed = len(runs) - len(reached)
    return text + (f" ({missed} clip(s) never)" if reached and missed else "")


def _mean_trajectory(runs: list[dict]) -> tuple[np.ndarray, np.ndarray] | None:
    """(fraction of the run done, mean correlation over the clips) at each snapshot,
    or None when a run has no trajectory (logged before trajectories were kept)."""
    if not all("trajectory" in r for r in runs):
        return None
    iterations = np.array([i for i, _ in runs[0]["trajectory"]], dtype=float)
    correlation = np.mean([[c for _, c in r["trajectory"]] for r in runs], axis=0)
    return iterations / iterations[-1], correlation


def _plot(rows: list[dict], path: Path, where: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=120)
    for r in rows:
        marker = ax.errorbar(
            r["seconds"],
            r["corr_mean"],
            yerr=r["corr_sd"],
            fmt="o",
            capsize=3,
            label=f"{r['preset']} / {r['encoder']}",
        )
        if r["trajectory"] is not None:
            # the way there, assuming an even pace over the run's iterations
            done, correlation = r["trajectory"]
            ax.plot(done * r["seconds"], correlation, color=marker[0].get_color(), lw=1)
    ax.set_xscale("log")
    # plain seconds; label the minor ticks too when the times span less than a decade
    seconds = [r["seconds"] for r in rows]
    plain = matplotlib.ticker.FormatStrFormatter("%g")
    ax.xaxis.set_major_formatter(plain)
    narrow = max(seconds) < 10 * min(seconds)
    ax.xaxis.set_minor_formatter(plain if narrow else matplotlib.ticker.NullFormatter())
    ax.set_xlabel(f"wall time per clip (s, {where})")
    ax.set_ylabel("masked pixel correlation")
    ax.set_title("final movie (mean +- sd over clips); line: the mean during the run", fontsize=8)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)


if __name__ == "__main__":
    main()
