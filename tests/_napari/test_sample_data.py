"""The npe2 sample data: File > Open Sample > in-silico mouse."""

from __future__ import annotations

import numpy as np


def test_sample_opens_held_out_movie_and_neuron_map(make_napari_viewer):
    viewer = make_napari_viewer()
    layers = viewer.open_sample("napari-movierecon", "insilico_mouse")
    movie, neurons = layers
    assert movie.data.shape == (300, 36, 64) and movie.data.dtype == np.float32
    assert movie.name.startswith("ground truth")
    assert 0 <= movie.data.min() and movie.data.max() <= 255
    assert len(neurons.data) == 8000
    assert movie.metadata["tier"] == "final_test_main"
    # the map sits beside the movie, not on top of it
    assert neurons.extent.world[0, -1] > movie.extent.world[1, -1]
