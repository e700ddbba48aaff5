"""What the transparency and coverage estimators share: their input checks, the members
on the device, rescaling a map to alpha, and the record entries of every estimate."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
import torch

from napari_movierecon.encoders.base import Encoder
from napari_movierecon.encoders.checkpoint import check_neurons, unit_ids_digest
from napari_movierecon.encoders.ensemble import Ensemble, members_of
from napari_movierecon.errors import MovieReconError
from napari_movierecon.reconstruct.masks.file import check_thresholds
from napari_movierecon.reconstruct.neurons import check_neuron_indices
from napari_movierecon.recording import Recording

SCALE_PERCENTILE = 99.0

Progress = Callable[[int, int], None]


def checked_inputs(
    encoder: Encoder | Sequence[Encoder],
    recording: Recording | None,
    neurons: np.ndarray | Sequence[int] | None,
    level: float,
    update_threshold: float,
    eval_threshold: float,
) -> tuple[list[Encoder], Encoder, np.ndarray]:
    """The encoder's members, the encoder that identifies them (the encoder, or an
    Ensemble of the list) and the selected neurons as ascending int64 indices (None =
    all), once the level, the thresholds and the neurons are checked (against
    ``recording``'s too, when given)."""
    if not 0 < level <= 1:
        raise MovieReconError(f"the mask level must lie in (0, 1], got {level}")
    check_thresholds(update_threshold, eval_threshold)
    members = members_of(encoder)
    identity = encoder if isinstance(encoder, Encoder) else Ensemble(members)
    if recording is not None:
        check_neurons(identity, recording.neurons.ids, recording.name)
    if neurons is None:
        indices = np.arange(identity.n_neurons, dtype=np.int64)
    else:
        indices = np.sort(check_neuron_indices(neurons, identity.n_neurons))
    return members, identity, indices


def prepare(members: list[Encoder], device: str) -> list[Encoder]:
    """Members on ``device``, in eval mode with frozen weights."""
    return [m.to(torch.device(device)).eval().requires_grad_(False) for m in members]


def report(progress: Progress | None, done: int, total: int) -> None:
    if progress is not None:
        progress(done, total)


def rescale(values: np.ndarray, level: float, percentile: float = SCALE_PERCENTILE) -> np.ndarray:
    """``values`` (H, W) >= 0 divided by ``level`` x their ``percentile``-th percentile and
    clipped to [0, 1] (float32): 1 wherever a value reaches ``level`` of that high
    percentile. All zeros when the percentile is 0."""
    scale = level * float(np.percentile(values, percentile))
    if not scale > 0:
        return np.zeros(values.shape, dtype=np.float32)
    return np.clip(values / scale, 0.0, 1.0).astype(np.float32)


def encoder_identity(encoder: Encoder) -> dict:
    """What identifies an encoder in a record: its source (file, folder or class name),
    member count and the SHA-256 of its neuron ids."""
    return {
        "source": str(getattr(encoder, "source", type(encoder).__name__)),
        "members": len(members_of(encoder)),
        "n_neurons": encoder.n_neurons,
        "unit_ids_sha256": unit_ids_digest(encoder.unit_ids),
    }


def estimate_record(
    identity: Encoder,
    recording_name: str | None,
    neurons: np.ndarray,
    seed: int,
    update_threshold: float,
    eval_threshold: float,
) -> dict:
    """The record entries both methods share: the encoder, the recording, the neurons
    (count and SHA-256 of their ids), the seed and the thresholds."""
    return {
        "encoder": encoder_identity(identity),
        "recording": recording_name,
        "n_neurons": int(neurons.size),
        "neurons_sha256": unit_ids_digest(np.asarray(identity.unit_ids)[neurons]),
        "seed": seed,
        "update_threshold": update_threshold,
        "eval_threshold": eval_threshold,
    }


def timings(started: float, device: str) -> dict:
    """Seconds since ``started`` (``time.perf_counter``), the device and torch's threads."""
    return {
        "seconds": time.perf_counter() - started,
        "device": device,
        "threads": torch.get_num_threads(),
    }
