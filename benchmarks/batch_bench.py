"""Batch benchmark: the same `fast` runs through `movierecon batch` (Dask) and one after
another in this process, with the same total threads.

Runs: the first ``--runs`` test clips (``final_test_main``) of the sample mouse, sample
ensemble, all neurons, preset ``fast``. The sequential baseline calls the batch's own
task code (``execute_run``) in a loop with every thread, after loading the recording
and encoder once (a stricter baseline than separate CLI calls, which reload both).
Dask layouts: ``1x2`` (one worker, 2 threads: isolates Dask's overhead) and ``2x1``
(the default on 2 cores: two runs at a time, one thread each). Every worker loads the
recording and encoder before the clock starts (building the sample mouse takes ~30-60 s
per process), as the baseline does; the start-up column includes that. Reports, per layout,
throughput relative to the baseline (target >= 0.95), with and without the cluster's
start-up, and the scheduler overhead per run: worker time not spent inside a run,
(wall x workers - sum of run times) / runs.

    python -m benchmarks.batch_bench --runs 8 --layouts 1x2,2x1
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from napari_movierecon.batch.cluster import RESOURCE, available_cores, connect
from napari_movierecon.batch.plan import ClusterOptions, WorkerOptions, parse_plan
from napari_movierecon.batch.runner import run_batch
from napari_movierecon.batch.runs import expand
from napari_movierecon.batch.task import execute_run, preload

PLAN = """\
[[recording]]
source = "sample"
tier = "final_test_main"
first = {runs}

[[encoder]]
source = "sample"
name = "sample ensemble"

[[preset]]
name = "fast"
"""


def sequential(runs, out: Path, threads: int) -> tuple[float, list[float]]:
    """Wall seconds of the runs one after another, and each run's own seconds."""
    execute_run(runs[0], str(out / "warm-up"), threads)  # loads recording + encoder once
    started = time.perf_counter()
    rows = [execute_run(run, str(out / "sequential"), threads) for run in runs]
    assert all(row["status"] == "done" for row in rows), rows
    return time.perf_counter() - started, [float(row["seconds_total"]) for row in rows]


def batch(runs, out: Path, workers: int, threads: int) -> dict:
    started = time.perf_counter()
    with connect("cpu", WorkerOptions(n=workers, threads=threads), ClusterOptions()) as conn:
        # Like the baseline, every worker loads the recording and encoder before timing.
        warm = [
            conn.client.submit(
                preload,
                runs[0].recording,
                runs[0].encoder,
                workers=[address],
                pure=False,
                resources={RESOURCE: 1},
            )
            for address in conn.client.scheduler_info()["workers"]
        ]
        assert len(set(conn.client.gather(warm))) == workers
        ready = time.perf_counter()
        outcome = run_batch(
            runs,
            out,
            conn.client,
            conn.torch_threads,
            conn.exclusive,
            progress=False,
            figures=False,
        )
        finished = time.perf_counter()
    assert outcome.failed == 0 and outcome.submitted == len(runs)
    seconds = [float(row["seconds_total"]) for row in outcome.rows]
    return {
        "wall": finished - ready,
        "wall_with_startup": finished - started,
        "overhead_per_run": ((finished - ready) * workers - sum(seconds)) / len(runs),
        "run_seconds": statistics.median(seconds),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--layouts", default="1x2,2x1", help="WORKERSxTHREADS, comma-separated")
    args = parser.parse_args()
    layouts = [tuple(int(v) for v in item.split("x")) for item in args.layouts.split(",")]
    threads = max(w * t for w, t in layouts)
    runs = expand(parse_plan(PLAN.format(runs=args.runs), Path("bench.toml")))
    print(
        f"{len(runs)} fast runs on the sample mouse; {available_cores()} cores; "
        f"torch {torch.__version__}"
    )
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        base_wall, base_runs = sequential(runs, folder, threads)
        print(
            f"sequential, {threads} threads: {base_wall:.1f} s "
            f"({statistics.median(base_runs):.1f} s per run, median)"
        )
        print(
            "| layout | wall s | throughput / sequential | incl. start-up | "
            "overhead per run s | median run s |"
        )
        print("|---|---|---|---|---|---|")
        for workers, each in layouts:
            result = batch(runs, folder / f"batch-{workers}x{each}", workers, each)
            print(
                f"| {workers}x{each} | {result['wall']:.1f} | {base_wall / result['wall']:.3f} | "
                f"{base_wall / result['wall_with_startup']:.3f} | "
                f"{result['overhead_per_run']:.2f} | {result['run_seconds']:.1f} |"
            )


if __name__ == "__main__":
    main()
