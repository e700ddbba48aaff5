"""Responsiveness of the napari window, start-up time and memory over many runs.

Opens napari with the plugin and the in-silico sample (under a virtual X server when
there is no display) and measures, repeated ``--repeats`` times (medians reported):

- event-loop latency while a ``fast`` run streams: a 10 ms Qt timer probes the
  event loop, latency = how late each tick fires (target: p95 <= 20 ms); and the
  throughput next to the same job run headless (no Qt, no heartbeat);
- Run click-to-return: how long ``start_run`` (the Run button's slot) keeps the
  event loop (target <= 100 ms; the job and the engine are built in the worker);
- Stop latency: from pressing Stop until the worker has ended, pressed in the first
  iteration (as soon as set-up is done) and a few seconds into ``fast`` and
  ``bauer2025`` runs (target <= 0.5 s);
- first picture: from pressing Run (``fast`` with the ``--mask`` file's masks, the sample
  trial: test clip 10) until the shown reconstruction first scores masked pixel
  correlation >= 0.5 (target <= 2 s);
- memory: process RSS after the 1st and the 20th Run / Remove cycle of a short run
  (target: within 50 MB);
- start-up (``movierecon view``'s path, fresh processes): wall time from process
  start to the window shown and to the sample ready, first start (empty cache) and
  second start (the built mouse read from the cache).

    python -m benchmarks.napari_bench --repeats 3
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

STARTED = time.perf_counter()

import numpy as np  # noqa: E402
import torch  # noqa: E402

from benchmarks.reconstruct_bench import FIRST_PICTURE_CORRELATION  # noqa: E402
from napari_movierecon._napari.headless import virtual_display  # noqa: E402
from napari_movierecon.reconstruct.config import preset  # noqa: E402

PROBE_MS = 10
CYCLES = 20


def _wait(run) -> None:
    from qtpy.QtCore import QEventLoop

    if run.worker.is_running or run.active:
        loop = QEventLoop()
        run.worker.finished.connect(loop.quit)
        loop.exec()


def _gui_run(widgets, iterations: int) -> dict:
    from qtpy.QtCore import QElapsedTimer, QTimer

    run_widget = widgets["Reconstruction"]
    run_widget.editor.load_preset("fast")
    run_widget.editor.editors["iterations"].setValue(iterations)
    lateness, clock = [], QElapsedTimer()
    timer = QTimer()
    timer.setInterval(PROBE_MS)

    def tick():
        lateness.append(clock.restart() - PROBE_MS)

    timer.timeout.connect(tick)
    clock.start()
    timer.start()
    pressed = time.perf_counter()
    run = run_widget.start_run()
    returned = time.perf_counter() - pressed
    _wait(run)  # the Qt event loop runs as in napari, idle between events
    timer.stop()
    return {
        "p95_ms": float(np.percentile(lateness, 95)),
        "max_ms": float(np.max(lateness)),
        "run_returns_ms": 1000 * returned,
        "its_per_s": run.last.iteration / run.last.elapsed_s,
        "correlation": run.last.pixel_correlation,
        "job": run.job,
    }


def _stop_latency(widgets, preset: str, wait_s: float | None) -> float:
    """Seconds from Stop until the worker has ended; Stop pressed ``wait_s`` after Run,
    or (None) as soon as the engine is set up, i.e. in the first iteration."""
    from qtpy.QtCore import QEventLoop, QTimer

    run_widget = widgets["Reconstruction"]
    run_widget.editor.load_preset(preset)
    run = run_widget.start_run()
    pressed = {}

    def stop(*_):
        if "at" not in pressed:
            pressed["at"] = time.perf_counter()
            run_widget.stop_run()

    loop = QEventLoop()
    run.worker.finished.connect(loop.quit)
    if wait_s is None:
        run.status.events.state.connect(stop)  # starting -> running: set-up done
    else:
        QTimer.singleShot(int(wait_s * 1000), stop)
    loop.exec()
    ended = time.perf_counter() - pressed["at"]
    assert run.last is None or wait_s is not None or run.last.iteration <= 1
    return ended


def _first_picture(widgets, mask: Path) -> float | None:
    """Seconds from pressing Run (preset ``fast``, ``mask``'s update and evaluation masks)
    until the shown reconstruction first scores masked pixel correlation >=
    FIRST_PICTURE_CORRELATION; None if it never does."""
    run_widget = widgets["Reconstruction"]
    run_widget.editor.load_preset("fast")
    run_widget.mask_edit.setText(str(mask))
    reached = {}
    pressed = time.perf_counter()
    run = run_widget.start_run()

    def shown(correlation):  # set in the GUI thread with the snapshot's layer update
        if correlation is not None and correlation >= FIRST_PICTURE_CORRELATION:
            reached.setdefault("at", time.perf_counter() - pressed)

    run.status.events.correlation.connect(shown)
    _wait(run)
    run_widget.mask_edit.setText("")
    return reached.get("at")


def _rss_mb() -> float:
    import psutil

    gc.collect()
    return psutil.Process().memory_info().rss / 2**20


def _memory_cycles(widgets, cycles: int) -> tuple[float, float]:
    """RSS (MB) after the first and after the last of ``cycles`` Run / Remove cycles."""
    run_widget = widgets["Reconstruction"]
    run_widget.editor.load_preset("fast")
    run_widget.editor.editors["iterations"].setValue(2)
    for run in list(run_widget.runs):
        run_widget.remove_run(run)
    sizes = []
    for _ in range(cycles):
        run = run_widget.start_run()
        _wait(run)
        run_widget.remove_run(run)
        sizes.append(_rss_mb())
    return sizes[0], sizes[-1]


def _headless_run(job) -> float:
    last = deque(job.start(), maxlen=1)[0]
    return last.iteration / last.elapsed_s


def _startup_probe() -> None:
    """Child process: ``movierecon view``'s start-up; prints the seconds from process
    start to the window shown and to the sample ready as JSON."""
    with virtual_display():
        import napari
        from qtpy.QtWidgets import QApplication

        from napari_movierecon._napari.launch import open_in_background, wait_ready

        viewer = napari.Viewer(title="napari-movierecon")
        widgets, _ = open_in_background(viewer)
        QApplication.instance().processEvents()
        shown = time.perf_counter() - STARTED
        wait_ready(widgets, timeout_s=300)
        ready = time.perf_counter() - STARTED
        viewer.close()
    print(json.dumps({"shown_s": shown, "ready_s": ready}))


def _startup(repeats: int, threads: int) -> dict:
    """Medians over ``repeats`` of first starts (each with an empty cache) and second
    starts (a cache filled by the first)."""
    times = {"first": [], "second": []}
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as cache:
            env = {**os.environ, "MOVIERECON_CACHE_DIR": cache}
            for which in ("first", "second"):
                out = subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "benchmarks.napari_bench",
                        "--startup-probe",
                        "--threads",
                        str(threads),
                    ],
                    env=env,
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
                times[which].append(json.loads(out.strip().splitlines()[-1]))
    return {
        which: {key: statistics.median(t[key] for t in rows) for key in ("shown_s", "ready_s")}
        for which, rows in times.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=None, help="default: the fast preset's")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cycles", type=int, default=CYCLES, help="Run / Remove cycles")
    parser.add_argument("--no-startup", action="store_true", help="skip the start-up timing")
    parser.add_argument(
        "--mask",
        type=Path,
        default=Path("bench_out/mask.safetensors"),
        help="mask file for the first-picture timing (skipped when missing)",
    )
    parser.add_argument("--startup-probe", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=Path("bench_out"))
    args = parser.parse_args()
    if args.iterations is None:
        args.iterations = preset("fast").iterations
    torch.set_num_threads(args.threads)
    if args.startup_probe:
        _startup_probe()
        return
    startup = None if args.no_startup else _startup(args.repeats, args.threads)
    for which, t in (startup or {}).items():
        print(
            f"{which} start: window shown {t['shown_s']:.1f} s, sample ready "
            f"{t['ready_s']:.1f} s (medians)",
            flush=True,
        )
    with virtual_display():
        import napari

        from napari_movierecon._napari.launch import open_ready, wait_ready

        viewer = napari.Viewer(title="napari-movierecon benchmark")
        widgets = open_ready(viewer)
        wait_ready(widgets)
        rows = []
        for repeat in range(args.repeats):
            gui = _gui_run(widgets, args.iterations)
            headless = _headless_run(gui.pop("job"))
            rows.append({**gui, "headless_its_per_s": headless})
            print(
                f"repeat {repeat + 1}: event-loop latency p95 {gui['p95_ms']:.1f} ms "
                f"(max {gui['max_ms']:.0f}); Run returned in {gui['run_returns_ms']:.0f} ms; "
                f"{gui['its_per_s']:.3f} it/s in napari vs {headless:.3f} headless; "
                f"correlation {gui['correlation']:.3f}",
                flush=True,
            )
        stops = {
            "fast, first iteration": [None] * args.repeats,
            "fast, after ~3 s": [3.0 + 0.7 * k for k in range(args.repeats)],
            "bauer2025, after ~3 s": [3.0 + 0.7 * k for k in range(args.repeats)],
        }
        stops = {
            case: [_stop_latency(widgets, case.split(",")[0], wait) for wait in waits]
            for case, waits in stops.items()
        }
        for case, seconds in stops.items():
            print(f"Stop during {case}: " + ", ".join(f"{s:.2f} s" for s in seconds), flush=True)
        firsts = []
        if args.mask.is_file():
            firsts = [_first_picture(widgets, args.mask) for _ in range(args.repeats)]
            print("first picture: " + ", ".join(f"{t} s" for t in firsts), flush=True)
        first_mb, last_mb = _memory_cycles(widgets, args.cycles)
        print(f"RSS after Run/Remove cycle 1: {first_mb:.0f} MB, {args.cycles}: {last_mb:.0f} MB")
        viewer.close()

    def median(key):
        return statistics.median(row[key] for row in rows)

    ratio = median("its_per_s") / median("headless_its_per_s")
    lines = [
        f"# napari responsiveness ({args.repeats} runs of `fast`, {args.iterations} "
        f"iterations, sample trial, {args.threads} threads; medians)",
        "",
        "| event-loop latency p95 | worst tick | Run returns in | napari it/s | headless it/s "
        "| ratio |",
        "|---|---|---|---|---|---|",
        f"| {median('p95_ms'):.1f} ms | {median('max_ms'):.0f} ms | "
        f"{median('run_returns_ms'):.0f} ms | {median('its_per_s'):.3f} | "
        f"{median('headless_its_per_s'):.3f} | {ratio:.3f} |",
        "",
        "| Stop pressed during | until the worker ended (median) | worst |",
        "|---|---|---|",
        *(
            f"| {case} | {statistics.median(seconds):.2f} s | {max(seconds):.2f} s |"
            for case, seconds in stops.items()
        ),
        "",
        f"Memory (RSS) after Run/Remove cycle 1: {first_mb:.0f} MB; after cycle "
        f"{args.cycles}: {last_mb:.0f} MB (+{last_mb - first_mb:.0f} MB).",
        "",
    ]
    if firsts:
        reached = [t for t in firsts if t is not None]
        lines += [
            f"First picture (masked pixel correlation >= {FIRST_PICTURE_CORRELATION}, `fast`, "
            f"masks of {args.mask}): "
            + (f"{statistics.median(reached):.2f} s after Run (median)" if reached else "never")
            + f", reached in {len(reached)} of {len(firsts)} runs.",
            "",
        ]
    if startup is not None:
        lines += [
            "| start | window shown | sample ready |",
            "|---|---|---|",
            *(
                f"| {which} | {t['shown_s']:.1f} s | {t['ready_s']:.1f} s |"
                for which, t in startup.items()
            ),
            "",
        ]
    table = "\n".join(lines)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "napari_bench.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
