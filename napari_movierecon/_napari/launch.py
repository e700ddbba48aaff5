"""Open napari with the plugin and the in-silico sample ready (``movierecon view``)."""

from __future__ import annotations


def launch_viewer() -> None:
    """Start napari, open the in-silico mouse sample, and run the Qt event loop."""
    import napari

    viewer = napari.Viewer(title="napari-movierecon")
    viewer.open_sample("napari-movierecon", "insilico_mouse")
    viewer.dims.set_point(0, 0)
    napari.run()
