"""Encoder checkpoints: exact round trips, and clean refusals of anything else."""

from __future__ import annotations

import dataclasses
import json
import pickle
import struct

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from napari_movierecon.encoders.checkpoint import (
    check_neurons,
    load_encoder,
    load_ensemble,
    save_encoder,
    save_ensemble,
)
from napari_movierecon.encoders.ensemble import Ensemble
from napari_movierecon.encoders.fast import FastEncoder, FastEncoderConfig
from napari_movierecon.errors import CheckpointError

CONFIG = FastEncoderConfig(
    frame_shape=(12, 20),
    kernel_frames=5,
    temporal_channels=4,
    channels=4,
    readout_channels=4,
    readout_block=0,
)
RECORD = {"recording": "test", "seconds": 1.5, "validation_correlation_mean": 0.3}


def make_encoder(seed: int = 0, n: int = 7, config: FastEncoderConfig = CONFIG) -> FastEncoder:
    torch.manual_seed(seed)
    encoder = FastEncoder(config, np.arange(100, 100 + n))
    with torch.no_grad():
        for p in encoder.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    return encoder.eval()


def inputs(seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    movie = torch.rand(2, 15, 12, 20, generator=g) * 255
    return movie, torch.randn(2, 4, 15, generator=g)


def predict(encoder) -> torch.Tensor:
    with torch.no_grad():
        return encoder(*inputs())


@pytest.mark.parametrize("config", [CONFIG, dataclasses.replace(CONFIG, readout_block=3)])
def test_round_trip_gives_identical_predictions(tmp_path, config):
    encoder = make_encoder(config=config)
    path = save_encoder(encoder, tmp_path / "enc.safetensors", RECORD)
    loaded = load_encoder(path)
    assert isinstance(loaded, FastEncoder)
    assert torch.equal(predict(loaded), predict(encoder))
    np.testing.assert_array_equal(loaded.unit_ids, encoder.unit_ids)
    assert loaded.config == config
    assert loaded.record == RECORD
    assert not any(p.requires_grad for p in loaded.parameters())


def test_checkpoints_from_before_the_block_readout_open_as_point_readouts(tmp_path):
    encoder = make_encoder()
    path = save_encoder(encoder, tmp_path / "enc.safetensors", RECORD)
    with safe_open(path, "pt") as f:
        tensors = {name: f.get_tensor(name) for name in f.keys()}
        metadata = f.metadata()
    record = json.loads(metadata["movierecon"])
    del record["config"]["readout_block"]  # as written before the option existed
    old = tmp_path / "old.safetensors"
    save_file(tensors, str(old), metadata={**metadata, "movierecon": json.dumps(record)})
    loaded = load_encoder(old)
    assert loaded.config.readout_block == 0
    assert torch.equal(predict(loaded), predict(encoder))


def test_refuses_to_overwrite_unless_asked(tmp_path):
    path = tmp_path / "enc.safetensors"
    save_encoder(make_encoder(0), path, RECORD)
    with pytest.raises(CheckpointError, match="already exists"):
        save_encoder(make_encoder(1), path, RECORD)
    assert torch.equal(predict(load_encoder(path)), predict(make_encoder(0)))
    save_encoder(make_encoder(1), path, RECORD, overwrite=True)
    assert torch.equal(predict(load_encoder(path)), predict(make_encoder(1)))


def test_unwritable_location_leaves_nothing(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(CheckpointError, match="cannot save"):
        save_encoder(make_encoder(), blocker / "enc.safetensors", RECORD)
    with pytest.raises(CheckpointError, match=r"must end in \.safetensors"):
        save_encoder(make_encoder(), tmp_path / "enc.pt", RECORD)


class _Payload:
    """Unpickling this object would create the marker file."""

    marker = ""

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickle_checkpoint_is_rejected_without_unpickling(tmp_path):
    marker = tmp_path / "unpickled"
    _Payload.marker = str(marker)
    path = tmp_path / "evil.safetensors"
    path.write_bytes(pickle.dumps({"state_dict": _Payload()}))
    with pytest.raises(CheckpointError, match="not a readable checkpoint file"):
        load_encoder(path)
    # A torch.save zip archive carrying the same payload is refused the same way.
    zipped = tmp_path / "evil_zip.safetensors"
    torch.save({"state_dict": _Payload()}, zipped)
    with pytest.raises(CheckpointError, match="not a readable checkpoint file"):
        load_encoder(zipped)
    assert not marker.exists()


@pytest.mark.parametrize("keep", [0, 7, 100, -100, -1])
def test_truncated_checkpoint_is_rejected(tmp_path, keep):
    path = save_encoder(make_encoder(), tmp_path / "enc.safetensors", RECORD)
    data = path.read_bytes()
    path.write_bytes(data[:keep])
    with pytest.raises(CheckpointError, match=path.name):
        load_encoder(path)


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        load_encoder(tmp_path / "nothing.safetensors")


def _rewrite(path, tensors=None, record=None, raw_metadata=None):
    """Re-save a checkpoint with edited tensors and/or JSON record."""
    with open(path, "rb") as handle:
        size = struct.unpack("<Q", handle.read(8))[0]
        header = json.loads(handle.read(size))
    from safetensors.torch import load_file

    current = load_file(path)
    metadata = header["__metadata__"]
    if record is not None:
        metadata = {"movierecon": json.dumps(record)}
    if raw_metadata is not None:
        metadata = raw_metadata
    save_file(tensors if tensors is not None else current, path, metadata=metadata)
    return json.loads(header["__metadata__"]["movierecon"]), current


def test_json_weights_mismatch_is_rejected(tmp_path):
    path = save_encoder(make_encoder(), tmp_path / "enc.safetensors", RECORD)
    record, _ = _rewrite(path)
    _rewrite(path, record={**record, "config": {**record["config"], "channels": 8}})
    with pytest.raises(CheckpointError, match="weights do not match"):
        load_encoder(path)


def _drop_bias(tensors):
    del tensors["bias"]


def _nan_bias(tensors):
    tensors["bias"][0] = float("nan")


def _reverse_ids(tensors):
    tensors["unit_ids"] = tensors["unit_ids"].flip(0).contiguous()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_drop_bias, "weights do not match"),
        (_nan_bias, "NaN"),
        (_reverse_ids, "does not match the stored neuron ids"),
    ],
)
def test_tampered_tensors_are_rejected(tmp_path, edit, message):
    path = save_encoder(make_encoder(), tmp_path / "enc.safetensors", RECORD)
    _, tensors = _rewrite(path)
    edit(tensors)
    _rewrite(path, tensors=tensors)
    with pytest.raises(CheckpointError, match=message):
        load_encoder(path)


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({}, "no 'movierecon' record"),
        ({"movierecon": "{not json"}, "not valid JSON"),
        ({"movierecon": json.dumps({"format": "other"})}, "encoder record expected"),
        (
            {
                "movierecon": json.dumps(
                    {"format": "napari-movierecon-encoder", "format_version": 9}
                )
            },
            "format version 9 is not supported",
        ),
    ],
)
def test_bad_records_are_rejected(tmp_path, metadata, message):
    path = save_encoder(make_encoder(), tmp_path / "enc.safetensors", RECORD)
    _rewrite(path, raw_metadata=metadata)
    with pytest.raises(CheckpointError, match=message):
        load_encoder(path)


def test_check_neurons_refuses_other_recordings():
    encoder = make_encoder(n=7)
    check_neurons(encoder, np.arange(100, 107), "mouse A")
    with pytest.raises(CheckpointError, match="predicts 7 neurons but mouse B has 8"):
        check_neurons(encoder, np.arange(100, 108), "mouse B")
    with pytest.raises(CheckpointError, match="order must match"):
        check_neurons(encoder, np.arange(100, 107)[::-1], "mouse C")


def test_ensemble_round_trip_and_mean(tmp_path):
    members = [make_encoder(seed) for seed in range(3)]
    folder = save_ensemble(members, [RECORD] * 3, tmp_path / "ens")
    assert sorted(folder.glob("member_*")) == [folder / f"member_{k}.safetensors" for k in range(3)]
    ensemble = load_encoder(folder)
    assert isinstance(ensemble, Ensemble) and len(ensemble) == 3
    expected = torch.stack([predict(m) for m in members]).mean(0)
    torch.testing.assert_close(predict(ensemble), expected)
    assert ensemble.member_rates(*inputs()).shape == (3, 2, 7, 15)


def test_ensemble_folder_is_all_or_nothing(tmp_path):
    with pytest.raises(AttributeError):  # fails while writing member 1
        save_ensemble([make_encoder(0), "not an encoder"], [RECORD, RECORD], tmp_path / "ens")
    assert not (tmp_path / "ens").exists()
    assert list(tmp_path.iterdir()) == []
    save_ensemble([make_encoder(0)], [RECORD], tmp_path / "ens")
    with pytest.raises(CheckpointError, match="already exists"):
        save_ensemble([make_encoder(1)], [RECORD], tmp_path / "ens")


def test_ensemble_of_different_populations_is_refused(tmp_path):
    save_ensemble([make_encoder(0, n=7), make_encoder(1, n=6)], [RECORD] * 2, tmp_path / "ens")
    with pytest.raises(CheckpointError, match="member 1 predicts other neurons"):
        load_ensemble(tmp_path / "ens")
    with pytest.raises(CheckpointError, match="not an encoder ensemble"):
        load_ensemble(tmp_path)
