"""Sample data: the in-silico mouse's first held-out trial and its neuron map."""

from __future__ import annotations

import numpy as np

from napari_movierecon.insilico.simulate import SimulatedRecording, sample_mouse

SAMPLE_TIER = "final_test_main"
# The cortical map (µm) is drawn beside the 36 x 64 px movie: 1 px per 22.2 µm,
# so the 800 µm patch height matches the movie height.
MAP_SCALE_PX_PER_UM = 36 / 800
MAP_OFFSET_PX = 72.0


def insilico_mouse() -> list[tuple]:
    """Layer data: ground-truth movie (T, 36, 64) of a held-out trial and the neurons' map."""
    recording = SimulatedRecording(sample_mouse())
    index = int(recording.trials_in(SAMPLE_TIER)[0])
    trial = recording.trial(index)
    neurons = recording.neurons
    info = {
        "recording": recording.name,
        "trial": index,
        "tier": trial.tier,
        "frames": trial.length,
        "frame_rate_hz": recording.frame_rate,
        "mean_running_cm_s": float(np.mean(trial.behavior[1])),
    }
    movie_layer = (
        trial.movie,
        {
            "name": f"ground truth (test trial {index})",
            "colormap": "gray",
            "contrast_limits": (0.0, 255.0),
            "axis_labels": ("frame", "y", "x"),
            "metadata": info,
        },
        "image",
    )
    depth = neurons.xyz[:, 2]
    points_layer = (
        np.stack([neurons.xyz[:, 1], neurons.xyz[:, 0]], axis=1),
        {
            "name": f"neurons ({len(neurons)}, cortical µm)",
            "features": {"unit_id": neurons.ids, "depth_um": depth},
            "face_color": "depth_um",
            "face_colormap": "viridis",
            "border_width": 0,
            "size": 10.0,
            "axis_labels": ("y", "x"),
            "scale": (MAP_SCALE_PX_PER_UM, MAP_SCALE_PX_PER_UM),
            "translate": (0.0, MAP_OFFSET_PX),
            "metadata": {"recording": recording.name, "units": "µm"},
        },
        "points",
    )
    return [movie_layer, points_layer]
