"""A run's saved record and an export sidecar reproduce the run's population exactly."""

from __future__ import annotations

import json

import numpy as np
import torch

from napari_movierecon.encoders.fast import FastEncoder, FastEncoderConfig
from napari_movierecon.io.export import Panel, export_frames
from napari_movierecon.reconstruct.config import preset
from napari_movierecon.reconstruct.job import ReconstructionJob
from napari_movierecon.reconstruct.neurons import Population, Region, Selection
from napari_movierecon.reconstruct.results import load_reconstruction, save_reconstruction
from tests.test_sensorium_io import make_recording

# two patches of the 0..500 µm square the synthetic neurons are scattered over
TWO_PATCHES = Region(
    polygons=[
        ((0.0, 0.0), (180.0, 0.0), (180.0, 200.0), (0.0, 200.0)),
        ((300.0, 250.0), (480.0, 260.0), (390.0, 480.0)),
    ],
    name="two patches",
)


def _finished_run():
    recording = make_recording(0, ["final_test_main"], [24], 60)
    torch.manual_seed(0)
    positions = np.random.default_rng(0).uniform(-0.5, 0.5, (60, 2))
    encoder = FastEncoder(
        FastEncoderConfig(channels=4, readout_channels=4),
        recording.neurons.ids,
        positions=positions,
    ).eval()
    selection = Selection.of(TWO_PATCHES, recording.neurons)
    job = ReconstructionJob(
        recording=recording,
        trial=recording.trial(0),
        encoder=encoder,
        encoder_source="test",
        population=selection,
        config=preset("fast", iterations=1, snapshot_every=1),
    )
    *_, snapshot = job.start()
    return recording, selection, job.result(snapshot)


def test_result_file_and_sidecar_reproduce_a_two_polygon_region(tmp_path):
    recording, selection, result = _finished_run()
    assert 5 < len(selection) < 55  # a real subset, from both polygons
    saved = load_reconstruction(save_reconstruction(result, tmp_path / "run.safetensors"))
    again = Population.from_dict(saved.record["population"])
    assert again == TWO_PATCHES and again.name == "two patches"
    np.testing.assert_array_equal(again.select(recording.neurons), selection.indices)
    np.testing.assert_array_equal(saved.neuron_ids, recording.neurons.ids[selection.indices])

    panel = Panel(frames=result.movie, limits=(0.0, 255.0), name="run reconstruction")
    _, sidecar = export_frames(
        [panel], tmp_path / "run.npy", record={"layers": {panel.name: {"record": result.record}}}
    )
    record = json.loads(sidecar.read_text())["record"]["layers"][panel.name]["record"]
    from_sidecar = Population.from_dict(record["population"])
    np.testing.assert_array_equal(from_sidecar.select(recording.neurons), selection.indices)
