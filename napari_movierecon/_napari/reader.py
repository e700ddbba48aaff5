"""npe2 reader: Sensorium mouse folders, saved reconstruction files, batch folders and
probe results.

A folder opens as its first held-out trial's ground truth and the neuron map (the
recording widget adopts them); a reconstruction file (``movierecon reconstruct
--out``, or Save run in the Reconstruction dock) opens as its movie, ground truth,
correlation map and mask, which the run widget lays out as one row beside the
others (opening the same file again adds nothing); a batch folder
(``movierecon batch --out``) docks its table (``batch_table``); a probe folder
(``movierecon probe --out``) or its probe.json docks its table and curves
(``probe_widget``).
"""

from __future__ import annotations

from pathlib import Path

from napari_movierecon._napari.batch_table import read_batch
from napari_movierecon._napari.layers import map_scale_layer, neuron_map_layer, truth_layer
from napari_movierecon._napari.probe_widget import read_probe
from napari_movierecon._napari.session import TAG
from napari_movierecon.batch.report import is_batch_folder
from napari_movierecon.errors import MovieReconError
from napari_movierecon.io.sensorium import SensoriumRecording
from napari_movierecon.reconstruct.probe_result import is_probe_location
from napari_movierecon.reconstruct.results import load_reconstruction

TIER_PREFERENCE = ("final_test_main", "live_test_main", "oracle", "train")


def get_reader(path):
    """A reader for ``path`` if it is a Sensorium folder, a batch folder, a probe folder
    or probe.json, or a .safetensors file."""
    if isinstance(path, list):
        return None
    path = Path(path)
    if path.is_dir() and (path / "meta").is_dir() and (path / "data").is_dir():
        return read_recording
    if path.is_dir() and is_batch_folder(path):
        return read_batch
    if is_probe_location(path):
        return read_probe
    if path.suffix == ".safetensors" and path.is_file():
        return read_reconstruction
    return None


def read_recording(path) -> list[tuple]:
    """Ground truth of the first trial (in the preferred tier that exists) and the map."""
    recording = SensoriumRecording(path)
    tiers = set(recording.tiers.tolist())
    tier = next((t for t in TIER_PREFERENCE if t in tiers), recording.tiers[0])
    trial = recording.trial(int(recording.trials_in(tier)[0]))
    return [
        truth_layer(trial, recording.name, str(path), recording.frame_rate),
        map_scale_layer(recording.neurons, str(path)),
        neuron_map_layer(recording.neurons, None, str(path)),
    ]


def read_reconstruction(path) -> list[tuple]:
    """The saved movie, its ground truth, correlation map and mask as layers."""
    try:
        result = load_reconstruction(path)
    except MovieReconError as err:
        raise MovieReconError(f"napari-movierecon cannot open {path}: {err}") from err
    stem = Path(path).stem
    # the run widget lays these out as one row, like a live run (see RunView.saved)
    info = {"role": "reconstruction", "file": str(Path(path).resolve()), "record": result.record}
    layers = [
        (
            result.movie,
            {
                "name": f"{stem} reconstruction",
                "colormap": "gray",
                "contrast_limits": (0.0, 255.0),
                "metadata": {TAG: info},
            },
            "image",
        )
    ]
    if result.truth is not None:
        layers.append(
            (
                result.truth,
                {
                    "name": f"{stem} ground truth",
                    "colormap": "gray",
                    "contrast_limits": (0, 255),
                    "metadata": {TAG: {**info, "role": "run_truth"}},
                },
                "image",
            )
        )
    if result.correlation_map is not None:
        layers.append(
            (
                result.correlation_map,
                {
                    "name": f"{stem} correlation map",
                    "colormap": "PiYG",
                    "contrast_limits": (-1.0, 1.0),
                    "metadata": {TAG: {**info, "role": "correlation_map"}},
                },
                "image",
            )
        )
    if result.mask is not None:
        layers.append(
            (
                result.mask.astype("float32"),
                {
                    "name": f"{stem} evaluation mask",
                    "colormap": "cyan",
                    "opacity": 0.25,
                    "blending": "additive",
                    "contrast_limits": (0.0, 1.0),
                    "metadata": {TAG: {**info, "role": "mask"}},
                },
                "image",
            )
        )
    return layers
