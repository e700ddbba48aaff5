"""Encoder checkpoints: one safetensors file per encoder, one folder per ensemble.

A checkpoint file holds every tensor of the encoder's ``state_dict`` plus
``unit_ids`` (N,) int64, and one metadata entry, ``movierecon``: a JSON record

    {"format": "napari-movierecon-encoder", "format_version": 1,
     "architecture": "FastEncoder", "config": {...}, "n_neurons": N,
     "unit_ids_sha256": "...", "training": {...}}

where ``training`` is the record ``train_encoder`` returns (data identity,
hyperparameters, per-neuron validation correlation, time). An ensemble is a
folder of ``member_<k>.safetensors`` files.

Loading parses only the safetensors header and raw tensor bytes; nothing is
ever unpickled, so a checkpoint from an untrusted source cannot run code.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save as serialize_tensors

from napari_movierecon.encoders.base import Encoder
from napari_movierecon.encoders.dwiseneuro import DwiseNeuroConfig, DwiseNeuroEncoder
from napari_movierecon.encoders.ensemble import Ensemble
from napari_movierecon.encoders.fast import FastEncoder, FastEncoderConfig
from napari_movierecon.errors import CheckpointError, MovieReconError
from napari_movierecon.io.atomic import staged_directory
from napari_movierecon.io.tensor_file import read_record_file, write_record_file

FORMAT = "napari-movierecon-encoder"
FORMAT_VERSION = 1
SUFFIX = ".safetensors"
MEMBER_PATTERN = "member_*" + SUFFIX
ARCHITECTURES = {
    "FastEncoder": (FastEncoder, FastEncoderConfig),
    "DwiseNeuroEncoder": (DwiseNeuroEncoder, DwiseNeuroConfig),
}


def unit_ids_digest(unit_ids: np.ndarray) -> str:
    """SHA-256 of the neuron ids as little-endian int64: identifies a population."""
    return hashlib.sha256(np.asarray(unit_ids, dtype="<i8").tobytes()).hexdigest()


def save_encoder(
    encoder: FastEncoder | DwiseNeuroEncoder,
    path: str | os.PathLike,
    training: dict,
    overwrite: bool = False,
) -> Path:
    """Write ``encoder`` and its ``training`` record to ``path`` (.safetensors), atomically."""
    path = Path(path)
    if path.suffix != SUFFIX:
        raise CheckpointError(f"{path}: an encoder checkpoint must end in {SUFFIX}")
    record = {
        "architecture": type(encoder).__name__,
        "config": encoder.config.to_json(),
        "n_neurons": encoder.n_neurons,
        "unit_ids_sha256": unit_ids_digest(encoder.unit_ids),
        "training": training,
    }
    tensors = {k: v.detach().cpu().contiguous() for k, v in encoder.state_dict().items()}
    tensors["unit_ids"] = torch.from_numpy(np.asarray(encoder.unit_ids, dtype=np.int64))
    return write_record_file(
        path,
        serialize_tensors,
        tensors,
        record,
        FORMAT,
        FORMAT_VERSION,
        overwrite=overwrite,
        error=CheckpointError,
    )


def _read(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """Tensors and JSON record of a checkpoint file, or CheckpointError."""
    return read_record_file(
        path, "pt", FORMAT, FORMAT_VERSION, "checkpoint file", error=CheckpointError
    )


def load_encoder(path: str | os.PathLike) -> Encoder:
    """A checkpoint file (-> its encoder) or an ensemble folder (-> Ensemble), in eval mode.

    The training record of a file is on ``encoder.record``. Raises CheckpointError
    naming the path for anything that is not a consistent checkpoint.
    """
    path = Path(path)
    if path.is_dir():
        return load_ensemble(path)
    tensors, record = _read(path)
    if record.get("architecture") not in ARCHITECTURES:
        raise CheckpointError(f"{path}: unknown architecture {record.get('architecture')!r}")
    cls, config_cls = ARCHITECTURES[record["architecture"]]
    unit_ids = tensors.pop("unit_ids", None)
    if unit_ids is None or unit_ids.ndim != 1:
        raise CheckpointError(f"{path}: missing or malformed 'unit_ids' tensor")
    unit_ids = unit_ids.numpy().astype(np.int64)
    if record.get("n_neurons") != len(unit_ids) or record.get("unit_ids_sha256") != unit_ids_digest(
        unit_ids
    ):
        raise CheckpointError(f"{path}: the JSON record does not match the stored neuron ids")
    try:
        encoder = cls(config_cls.from_json(record["config"]), unit_ids)
        encoder.load_state_dict(tensors, strict=True)
    except (KeyError, TypeError, ValueError, RuntimeError, MovieReconError) as err:
        raise CheckpointError(
            f"{path}: weights do not match the JSON record's architecture ({err})"
        ) from err
    if not all(torch.isfinite(t).all() for t in tensors.values() if t.is_floating_point()):
        raise CheckpointError(f"{path}: holds NaN or infinite weights")
    encoder.record = record["training"]
    encoder.source = str(path)
    return encoder.eval().requires_grad_(False)


def save_ensemble(
    members: list[FastEncoder | DwiseNeuroEncoder],
    records: list[dict],
    folder: str | os.PathLike,
    overwrite: bool = False,
) -> Path:
    """Write members as ``folder``/member_<k>.safetensors, all or nothing."""
    if not members or len(members) != len(records):
        raise CheckpointError(f"{folder}: need one training record per member (>= 1 member)")
    with staged_directory(folder, overwrite=overwrite, error=CheckpointError) as staging:
        for k, (member, record) in enumerate(zip(members, records, strict=True)):
            save_encoder(member, staging / f"member_{k}{SUFFIX}", record)
    return Path(folder)


def load_ensemble(folder: str | os.PathLike) -> Ensemble:
    """All ``member_<k>.safetensors`` of ``folder`` as one Ensemble."""
    folder = Path(folder)
    files = sorted(folder.glob(MEMBER_PATTERN), key=lambda p: int(p.stem.split("_")[-1]))
    if not files:
        raise CheckpointError(f"{folder}: no {MEMBER_PATTERN} files: not an encoder ensemble")
    members = [load_encoder(f) for f in files]
    try:
        ensemble = Ensemble(members)
    except MovieReconError as err:
        raise CheckpointError(f"{folder}: {err}") from err
    ensemble.source = str(folder)
    return ensemble


def check_neurons(encoder: Encoder, unit_ids: np.ndarray, recording_name: str) -> None:
    """Refuse an encoder whose neurons are not exactly ``unit_ids`` in that order."""
    unit_ids = np.asarray(unit_ids, dtype=np.int64)
    if len(unit_ids) == encoder.n_neurons and np.array_equal(unit_ids, encoder.unit_ids):
        return
    shared = len(np.intersect1d(unit_ids, encoder.unit_ids))
    source = getattr(encoder, "source", type(encoder).__name__)
    raise CheckpointError(
        f"{source}: encoder predicts {encoder.n_neurons} neurons but {recording_name} has "
        f"{len(unit_ids)} ({shared} ids in common, order must match too); it was trained "
        f"on another recording"
    )
