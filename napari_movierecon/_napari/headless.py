"""A virtual X server for scripts that drive napari without a display (benchmarks,
documentation screenshots). Needs Xvfb and pyvirtualdisplay (the test tools)."""

from __future__ import annotations

import os
from contextlib import contextmanager


@contextmanager
def virtual_display(size: tuple[int, int] = (1600, 1000)):
    """Run the body under Xvfb unless a display is already there."""
    if os.environ.get("DISPLAY"):
        yield
        return
    from pyvirtualdisplay import Display

    display = Display(size=size).start()
    try:
        yield
    finally:
        display.stop()
