"""A record that names an encoder by its weights, for the records of encoders made from it."""

from __future__ import annotations

import hashlib

from napari_movierecon.encoders.base import Encoder
from napari_movierecon.encoders.ensemble import members_of


def encoder_identity(encoder: Encoder) -> dict:
    """What names an encoder (a distillation's teacher, the weights a training started
    from): its source, class, members, neuron count and a SHA-256 over its weights
    (parameter and buffer names and bytes, in state-dict order)."""
    digest = hashlib.sha256()
    for name, tensor in encoder.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return {
        "source": str(getattr(encoder, "source", type(encoder).__name__)),
        "class": type(encoder).__name__,
        "members": len(members_of(encoder)),
        "n_neurons": encoder.n_neurons,
        "weights_sha256": digest.hexdigest(),
    }
