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

import dataclasses
import hashlib
import math
import os
import re
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
MEMBER_NAME = re.compile(r"member_(\d{1,6})" + re.escape(SUFFIX))
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


# Upper limits on what a checkpoint may declare, generous against real encoders:
# Sensorium frames are 36x64 and DwiseNeuro's 64x64; hyperparameters are tens to
# hundreds. A record beyond them is refused before any tensor is built.
MAX_FRAME_SIDE = 512
MAX_HYPERPARAMETER = 16384
MAX_NEURONS = 200_000


def _checked_config(path: Path, data: object, config_cls: type):
    """The architecture config of a checkpoint record, its values typed and bounded.

    Integers must be integers in 0..MAX_HYPERPARAMETER (frame sides in
    1..MAX_FRAME_SIDE, ``neurons`` up to MAX_NEURONS), floats finite, lists of
    integers where the config holds tuples; unknown fields are refused.
    """
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: the record's 'config' is not a JSON object")
    fields = {field.name: field for field in dataclasses.fields(config_cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise CheckpointError(f"{path}: the record's config has unknown fields {unknown}")
    for name, value in data.items():
        kind = str(fields[name].type)
        limit = MAX_NEURONS if name == "neurons" else MAX_HYPERPARAMETER
        if name == "frame_shape":
            limit = MAX_FRAME_SIDE
        if kind.startswith("tuple"):
            if not isinstance(value, list) or len(value) > 64:
                raise CheckpointError(f"{path}: config {name} must be a short list, got {value!r}")
            items, kind = value, kind[len("tuple[") :].split(",")[0].strip(" ]")
        else:
            items = [value]
        for item in items:
            _check_number(path, name, item, kind, limit)
        if name == "frame_shape" and (len(value) != 2 or min(value) < 1):
            raise CheckpointError(f"{path}: config frame_shape must be [H, W] >= 1, got {value}")
    try:
        return config_cls.from_json(data)
    except (KeyError, TypeError, ValueError, MovieReconError) as err:
        raise CheckpointError(f"{path}: the record's config is not valid ({err})") from err


def _check_number(path: Path, name: str, value: object, kind: str, limit: int) -> None:
    """One config value of type ``kind`` ("int", "float", ...): ints in 0..limit, floats
    finite and moderate."""
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit:
            raise CheckpointError(
                f"{path}: config {name} must be an integer in 0..{limit}, got {value!r}"
            )
    elif kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise CheckpointError(f"{path}: config {name} must be a number, got {value!r}")
        if not math.isfinite(value) or abs(value) > 1e6:
            raise CheckpointError(f"{path}: config {name} must be finite, got {value!r}")
    elif type(value).__name__ != kind:
        raise CheckpointError(f"{path}: config {name} must be a {kind}, got {value!r}")


def _checked_tensors(path: Path, cls: type, config, unit_ids: np.ndarray, tensors: dict) -> None:
    """Compare the file's tensors with the model the config describes, built on torch's
    "meta" device (shapes only, no memory), before the real model is built."""
    try:
        with torch.device("meta"):
            model = cls(config, unit_ids).state_dict()
    except (KeyError, TypeError, ValueError, RuntimeError, MovieReconError) as err:
        raise CheckpointError(f"{path}: the record's architecture cannot be built ({err})") from err
    expected = {k: v.shape for k, v in model.items()}
    got = {k: v.shape for k, v in tensors.items()}
    if got != expected:
        missing = sorted(set(expected) - set(got))[:3]
        extra = sorted(set(got) - set(expected))[:3]
        wrong = [k for k in set(got) & set(expected) if got[k] != expected[k]][:3]
        raise CheckpointError(
            f"{path}: weights do not match the JSON record's architecture (missing {missing}, "
            f"unexpected {extra}, other shapes {wrong})"
        )
    for key, tensor in tensors.items():
        if tensor.is_floating_point() != model[key].is_floating_point():
            raise CheckpointError(f"{path}: tensor {key!r} has the wrong kind of dtype")


def load_encoder(path: str | os.PathLike) -> Encoder:
    """A checkpoint file (-> its encoder) or an ensemble folder (-> Ensemble), in eval mode.

    The training record of a file is on ``encoder.record``. Raises CheckpointError
    naming the path for anything that is not a consistent checkpoint.
    """
    path = Path(path)
    if path.is_dir():
        return load_ensemble(path)
    tensors, record = _read(path)
    architecture = record.get("architecture")
    if not isinstance(architecture, str) or architecture not in ARCHITECTURES:
        raise CheckpointError(f"{path}: unknown architecture {architecture!r}")
    if not isinstance(record.get("training"), dict):
        raise CheckpointError(f"{path}: the record's 'training' is missing or not an object")
    cls, config_cls = ARCHITECTURES[architecture]
    unit_ids = tensors.pop("unit_ids", None)
    if unit_ids is None or unit_ids.ndim != 1 or unit_ids.dtype not in (torch.int64, torch.int32):
        raise CheckpointError(f"{path}: missing or malformed 'unit_ids' tensor (int64 (N,))")
    if not 1 <= len(unit_ids) <= MAX_NEURONS:
        raise CheckpointError(f"{path}: {len(unit_ids)} neurons (1..{MAX_NEURONS} allowed)")
    unit_ids = unit_ids.numpy().astype(np.int64)
    if record.get("n_neurons") != len(unit_ids) or record.get("unit_ids_sha256") != unit_ids_digest(
        unit_ids
    ):
        raise CheckpointError(f"{path}: the JSON record does not match the stored neuron ids")
    config = _checked_config(path, record.get("config"), config_cls)
    _checked_tensors(path, cls, config, unit_ids, tensors)
    if not all(torch.isfinite(t).all() for t in tensors.values()):
        raise CheckpointError(f"{path}: holds NaN or infinite weights")
    std = tensors.get("behavior_std")
    if std is not None and not bool((std > 0).all()):
        raise CheckpointError(f"{path}: behaviour standard deviations must be > 0")
    try:
        encoder = cls(config, unit_ids)
        encoder.load_state_dict(tensors, strict=True)
    except (KeyError, TypeError, ValueError, RuntimeError, MovieReconError) as err:
        raise CheckpointError(
            f"{path}: weights do not match the JSON record's architecture ({err})"
        ) from err
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
    files = sorted(folder.glob(MEMBER_PATTERN))
    odd = [f.name for f in files if not MEMBER_NAME.fullmatch(f.name)]
    if odd:
        raise CheckpointError(
            f"{folder}: {odd[0]} is not a member file name (member_<k>{SUFFIX}, k = 0, 1, ...)"
        )
    files.sort(key=lambda f: int(MEMBER_NAME.fullmatch(f.name)[1]))
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
