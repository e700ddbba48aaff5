"""Sample data: the in-silico mouse's first held-out trial, its neuron map and the map's
scale bar, with the
sample ensemble ready (the widgets adopt both layers and open the shipped encoder)."""

from __future__ import annotations

from napari_movierecon._napari.layers import map_scale_layer, neuron_map_layer, truth_layer
from napari_movierecon.reconstruct.neurons import encoder_reliability
from napari_movierecon.sources import SAMPLE, open_encoder, open_recording

SAMPLE_TIER = "final_test_main"


def insilico_mouse() -> list[tuple]:
    """Ground-truth movie (T, 36, 64) of a held-out trial and the neurons' cortical map
    coloured by the sample ensemble's reliability."""
    recording = open_recording(SAMPLE)
    trial = recording.trial(int(recording.trials_in(SAMPLE_TIER)[0]))
    reliability = encoder_reliability(open_encoder(SAMPLE))
    return [  # the neuron map last: it is the active layer (the population is picked on it)
        truth_layer(trial, recording.name, SAMPLE, recording.frame_rate),
        map_scale_layer(recording.neurons, SAMPLE),
        neuron_map_layer(recording.neurons, reliability, SAMPLE),
    ]
