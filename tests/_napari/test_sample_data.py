"""The npe2 sample data (File > Open Sample > in-silico mouse) and the widgets adopting it."""

from __future__ import annotations

import numpy as np

from napari_movierecon._napari.session import TAG


def test_sample_opens_held_out_movie_and_neuron_map(make_napari_viewer):
    viewer = make_napari_viewer()
    layers = viewer.open_sample("napari-movierecon", "insilico_mouse")
    movie, scale_bar, neurons = layers
    assert scale_bar.metadata[TAG]["role"] == "map_scale" and "µm" in scale_bar.name
    assert movie.data.shape == (300, 36, 64) and movie.data.dtype == np.float32
    assert movie.name.startswith("ground truth")
    assert 0 <= movie.data.min() and movie.data.max() <= 255
    assert len(neurons.data) == 8000
    assert movie.metadata[TAG]["tier"] == "final_test_main"
    # coloured by the sample ensemble's reliability, drawn beside the movie, not on it
    assert np.isfinite(neurons.features["reliability"]).all()
    assert neurons.extent.world[1, -1] < movie.extent.world[0, -1]


def test_widgets_adopt_the_sample_with_the_sample_ensemble(ready):
    session = ready.session
    truth = ready.viewer.layers[0]
    assert session.recording_source == "sample" and session.encoder_source == "sample"
    assert session.trial.index == truth.metadata[TAG]["trial"]
    assert session.encoder.n_neurons == 8000
    assert "300 frames" in ready.recording.info.text()
    assert "cm/s" in ready.recording.info.text()
    # the sample's neuron layer is reused, not duplicated
    assert (
        sum(layer.metadata.get(TAG, {}).get("role") == "neurons" for layer in ready.viewer.layers)
        == 1
    )
