"""npe2 writer: one image layer to .mp4/.gif (as displayed) or .tif/.tiff/.npy (raw
values), with a JSON sidecar of the layer's run record.

As napari's own writers do, problems raise (napari reports them to the user) and an
existing file is replaced: napari's save dialog has already asked before replacing.
Writes stay all-or-nothing (see ``io/export.py``).
"""

from __future__ import annotations

import numpy as np

from napari_movierecon._napari.export_widget import layer_panel, layer_trial
from napari_movierecon._napari.session import TAG
from napari_movierecon.io.export import export_frames


def write_image(path: str, data, attributes: dict) -> list[str]:
    """Every frame of an image layer; returns the written paths (file, sidecar)."""
    data = np.asarray(data)
    frames = range(data.shape[0] if data.ndim == 3 else 1)
    metadata = attributes.get("metadata") or {}
    panel = layer_panel(
        data,
        attributes.get("contrast_limits") or (float(data.min()), float(data.max()) + 1e-6),
        attributes.get("colormap", "gray"),
        attributes.get("name", "layer"),
        frames,
        layer_trial(metadata),
    )
    record = {"layers": {panel.name: metadata.get(TAG)}}
    written = export_frames([panel], path, record=record, overwrite=True)
    return [str(p) for p in written]
