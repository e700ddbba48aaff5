"""Responsiveness of the napari window while a reconstruction streams.

Opens napari with the plugin and the in-silico sample (under a virtual X server when
there is no display), runs the ``fast`` preset on the sample trial from the widgets,
and meanwhile probes the Qt event loop with a 10 ms timer: latency = how late each
tick fires. Then runs the same job headless (no Qt, no heartbeat) and compares
throughput (iterations per second). Repeats and reports medians. Finally, for
``fast`` and ``bauer2025``, starts runs, presses Stop after a few seconds and
measures how long the worker takes to end.

    python -m benchmarks.napari_bench --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
from collections import deque
from pathlib import Path

import numpy as np
import torch

from napari_movierecon._napari.headless import virtual_display

PROBE_MS = 10


def _gui_run(widgets, iterations: int) -> dict:
    from qtpy.QtCore import QElapsedTimer, QEventLoop, QTimer

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
    run = run_widget.start_run()
    loop = QEventLoop()
    run.worker.finished.connect(loop.quit)
    loop.exec()  # the Qt event loop runs as in napari, idle between events
    timer.stop()
    return {
        "p95_ms": float(np.percentile(lateness, 95)),
        "max_ms": float(np.max(lateness)),
        "its_per_s": run.last.iteration / run.last.elapsed_s,
        "correlation": run.last.pixel_correlation,
        "job": run.job,
    }


def _stop_latency(widgets, preset: str, wait_s: float) -> float:
    """Seconds from Stop (pressed ``wait_s`` after Run) until the worker has ended."""
    import time

    from qtpy.QtCore import QEventLoop, QTimer

    run_widget = widgets["Reconstruction"]
    run_widget.editor.load_preset(preset)
    run = run_widget.start_run()
    pressed = {}

    def stop():
        pressed["at"] = time.perf_counter()
        run_widget.stop_run()

    loop = QEventLoop()
    run.worker.finished.connect(loop.quit)
    QTimer.singleShot(int(wait_s * 1000), stop)
    loop.exec()
    return time.perf_counter() - pressed["at"]


def _headless_run(job) -> float:
    last = deque(job.start(), maxlen=1)[0]
    return last.iteration / last.elapsed_s


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=40, help="the fast preset's 40")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("bench_out"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
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
                f"(max {gui['max_ms']:.0f}); {gui['its_per_s']:.3f} it/s in napari vs "
                f"{headless:.3f} headless; correlation {gui['correlation']:.3f}",
                flush=True,
            )
        stops = {
            preset: [_stop_latency(widgets, preset, 3.0 + 0.7 * k) for k in range(args.repeats)]
            for preset in ("fast", "bauer2025")
        }
        for preset, seconds in stops.items():
            print(f"Stop during {preset}: " + ", ".join(f"{s:.2f} s" for s in seconds), flush=True)
        viewer.close()

    def median(key):
        return statistics.median(row[key] for row in rows)

    ratio = median("its_per_s") / median("headless_its_per_s")
    table = "\n".join(
        [
            f"# napari responsiveness ({args.repeats} runs of `fast`, {args.iterations} "
            f"iterations, sample trial, {args.threads} threads; medians)",
            "",
            "| event-loop latency p95 | worst tick | napari it/s | headless it/s | ratio |",
            "|---|---|---|---|---|",
            f"| {median('p95_ms'):.1f} ms | {median('max_ms'):.0f} ms | "
            f"{median('its_per_s'):.3f} | {median('headless_its_per_s'):.3f} | {ratio:.3f} |",
            "",
            "| Stop pressed during | until the worker ended (median) | worst |",
            "|---|---|---|",
            *(
                f"| {preset} | {statistics.median(seconds):.2f} s | {max(seconds):.2f} s |"
                for preset, seconds in stops.items()
            ),
            "",
        ]
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "napari_bench.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
