"""Layer data tuples this plugin shows: a trial's ground truth and the neuron map.

Shared by the sample data, the reader and the widgets, so a layer looks the same
whichever way it was opened. Layers carry ``metadata[TAG]`` with their role and
origin, which the widgets use to adopt them.
"""

from __future__ import annotations

import numpy as np

from napari_movierecon._napari.session import GAP_PX, TAG
from napari_movierecon.recording import Neurons, Trial

# The cortical map (µm) is drawn left of the 36 x 64 px movie at 1 px per 14.3 µm:
# an 800 µm tall patch is 56 px tall, large enough to see the chosen neurons.
MAP_SCALE_PX_PER_UM = 0.07


def truth_layer(trial: Trial, recording_name: str, source: str, frame_rate: float) -> tuple:
    """Image layer tuple of ``trial.movie`` (T, H, W) 0..255, time on the slider."""
    info = {
        "role": "truth",
        "source": source,
        "recording": recording_name,
        "trial": trial.index,
        "tier": trial.tier,
        "frames": trial.length,
        "frame_rate_hz": frame_rate,
        "mean_running_cm_s": float(np.mean(trial.behavior[1])),
    }
    kwargs = {
        "name": f"ground truth (trial {trial.index})",
        "colormap": "gray",
        "contrast_limits": (0.0, 255.0),
        "axis_labels": ("frame", "y", "x"),
        "metadata": {TAG: info},
    }
    return trial.movie, kwargs, "image"


def neuron_map_layer(neurons: Neurons, reliability: np.ndarray | None, source: str) -> tuple:
    """Points layer tuple: neurons at their cortical (y, x) in µm, drawn left of the movie,
    coloured by reliability (or depth when no reliability is known)."""
    xy = neurons.xyz[:, :2]
    width_px = float(xy[:, 0].max()) * MAP_SCALE_PX_PER_UM
    features = {"unit_id": neurons.ids, "depth_um": neurons.xyz[:, 2]}
    if reliability is not None:
        features["reliability"] = np.asarray(reliability, dtype=np.float32)
    colour_by = "reliability" if reliability is not None else "depth_um"
    kwargs = {
        "name": f"neurons ({len(neurons)}, cortical µm)",
        "features": features,
        "face_color": colour_by,
        "face_colormap": "viridis",
        "border_width": 0,
        "size": 16.0,
        "axis_labels": ("y", "x"),
        "scale": (MAP_SCALE_PX_PER_UM, MAP_SCALE_PX_PER_UM),
        "translate": (0.0, -width_px - 2 * GAP_PX),
        "metadata": {TAG: {"role": "neurons", "source": source, "units": "µm"}},
    }
    return np.stack([xy[:, 1], xy[:, 0]], axis=1), kwargs, "points"
