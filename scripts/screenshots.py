"""The README's screenshots of the real napari window (``make screenshots``).

Opens napari with the plugin and the in-silico sample in a window of ``--size``
(1600x900 for the docs), runs the ``fast`` preset from all neurons, then from a
region drawn on the cortical map (with ``--mask``: that mask file's update and
evaluation masks), and saves the full window at each step to ``--out``/napari_*.png,
last the neural activity view of the region's 3 most reliable neurons; with
``--tabs`` also every dock tab of the plugin shown in turn (napari_tab_*.png), to
look at each widget; with ``--probe DIR`` last that probe result (``movierecon
probe --out``) opened (napari_probe.png).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from napari_movierecon._napari.headless import virtual_display


def _finish(run) -> None:
    from qtpy.QtCore import QEventLoop

    loop = QEventLoop()
    run.worker.finished.connect(loop.quit)
    loop.exec()


def _settle(milliseconds: int = 500) -> None:
    from qtpy.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    QTimer.singleShot(milliseconds, loop.quit)
    loop.exec()


def _show_tab(widget) -> None:
    """Bring the dock holding ``widget`` to the front of its tab group."""
    from qtpy.QtWidgets import QDockWidget

    while not isinstance(widget, QDockWidget):
        widget = widget.parentWidget()
    widget.raise_()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("docs/figures"))
    parser.add_argument("--size", default="1600x900", help="window size WxH")
    parser.add_argument("--iterations", type=int, default=None, help="the fast preset's")
    parser.add_argument("--mask", type=Path, default=None, help="mask file (movierecon mask)")
    parser.add_argument("--tabs", action="store_true", help="also each dock tab in front")
    parser.add_argument("--probe", type=Path, default=None, help="a probe result folder")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    args.out.mkdir(parents=True, exist_ok=True)
    with virtual_display(size=(max(width, 1600), max(height, 1000))):
        import napari

        from napari_movierecon._napari.launch import open_ready, wait_ready

        viewer = napari.Viewer(title="napari-movierecon")
        viewer.window._qt_window.resize(width, height)
        widgets = open_ready(viewer)
        wait_ready(widgets)
        _settle()
        viewer.screenshot(args.out / "napari_ready.png", canvas_only=False, flash=False)

        run_widget, picker = widgets["Reconstruction"], widgets["Neuron population"]
        if args.iterations is not None:
            run_widget.editor.editors["iterations"].setValue(args.iterations)
        if args.mask is not None:
            run_widget.mask_edit.setText(str(args.mask))
        _finish(run_widget.start_run())
        picker.name.setText("lateral third")
        picker.mode.setCurrentText("region on map")
        picker._region().add_polygons([np.array([[0, 0], [0, 330], [800, 330], [800, 0]], float)])
        _finish(run_widget.start_run())
        viewer.dims.set_current_step(0, 150)
        viewer.layers.selection.active = run_widget.runs[-1].movie_layer
        _settle()
        viewer.screenshot(args.out / "napari_two_runs.png", canvas_only=False, flash=False)
        activity = widgets["Neural activity"]
        _show_tab(activity)
        activity.show_top_k()  # the population's 3 most reliable neurons, last run
        deadline = time.monotonic() + 120
        while activity.activity is None and time.monotonic() < deadline:
            _settle(200)
        _settle()
        viewer.screenshot(args.out / "napari_activity.png", canvas_only=False, flash=False)
        tabs = ("Recording and trial", "Masks", "Export", "Neuron population", "Plots")
        for name in tabs if args.tabs else ():
            _show_tab(widgets[name])
            _settle(300)
            slug = name.split()[0].lower()
            viewer.screenshot(args.out / f"napari_tab_{slug}.png", canvas_only=False, flash=False)
        if args.probe is not None:  # last: its dock takes height from the others
            _show_tab(widgets["Plots"])
            viewer.open(str(args.probe), plugin="napari-movierecon")
            _settle()
            viewer.screenshot(args.out / "napari_probe.png", canvas_only=False, flash=False)
        viewer.close()


if __name__ == "__main__":
    main()
