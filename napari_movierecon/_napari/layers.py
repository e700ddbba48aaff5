"""Layer data tuples this plugin shows: a trial's ground truth, the neuron map and the
map's scale bar.

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
# Length of the map's scale bar (µm) and its distance from the neurons (µm).
SCALE_BAR_UM = 200.0
SCALE_BAR_GAP_UM = 60.0


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


def _map_translate(neurons: Neurons) -> tuple[float, float]:
    """(y, x) offset of the cortical map: left of the movie, in screen pixels."""
    width_px = float(neurons.xyz[:, 0].max()) * MAP_SCALE_PX_PER_UM
    return 0.0, -width_px - 2 * GAP_PX


def map_scale_layer(neurons: Neurons, source: str) -> tuple:
    """Shapes layer tuple: the cortical map's scale bar and orientation, SCALE_BAR_UM
    lines along +x above the map's top right corner ("x → 200 µm") and along +y left
    of its top left corner ("y ↓"), in the map's µm coordinates."""
    y0 = x0 = -SCALE_BAR_GAP_UM
    right = float(neurons.xyz[:, 0].max())
    lines = [
        np.array([[y0, right - SCALE_BAR_UM], [y0, right]]),
        np.array([[0.0, x0], [SCALE_BAR_UM, x0]]),
    ]
    kwargs = {
        "name": "map scale (µm)",
        "shape_type": "line",
        "edge_color": "white",
        "edge_width": 8.0,
        "features": {"label": [f"x → {SCALE_BAR_UM:.0f} µm", "y ↓"]},
        "text": {"string": "{label}", "color": "white", "size": 8, "anchor": "upper_left"},
        "scale": (MAP_SCALE_PX_PER_UM, MAP_SCALE_PX_PER_UM),
        "translate": _map_translate(neurons),
        "metadata": {TAG: {"role": "map_scale", "source": source, "units": "µm"}},
    }
    return lines, kwargs, "shapes"


def neuron_map_layer(neurons: Neurons, reliability: np.ndarray | None, source: str) -> tuple:
    """Points layer tuple: neurons at their cortical (y, x) in µm, drawn left of the movie,
    coloured by reliability (or depth when no reliability is known)."""
    xy = neurons.xyz[:, :2]
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
        "translate": _map_translate(neurons),
        "metadata": {TAG: {"role": "neurons", "source": source, "units": "µm"}},
    }
    return np.stack([xy[:, 1], xy[:, 0]], axis=1), kwargs, "points"
