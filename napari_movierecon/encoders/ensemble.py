"""Ensembles: K encoders of the same neurons (differing by seed) run together."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from napari_movierecon.encoders.base import Encoder
from napari_movierecon.errors import MovieReconError


class Ensemble(Encoder):
    """Mean rates of its members. ``member_rates`` keeps them apart (K, B, N, T)."""

    def __init__(self, members: list[Encoder]) -> None:
        super().__init__()
        if not members:
            raise MovieReconError("an ensemble needs at least one member")
        first = members[0].unit_ids
        for k, member in enumerate(members[1:], start=1):
            if not np.array_equal(member.unit_ids, first):
                raise MovieReconError(f"member {k} predicts other neurons than member 0")
        self.members = nn.ModuleList(members)
        self.unit_ids = np.asarray(first, dtype=np.int64)
        self.context_frames = max(m.context_frames for m in members)
        self.frame_shape = members[0].frame_shape
        if any(m.frame_shape != self.frame_shape for m in members):
            raise MovieReconError("ensemble members expect different frame shapes")

    def __len__(self) -> int:
        return len(self.members)

    def member_rates(self, movie: torch.Tensor, behavior: torch.Tensor) -> torch.Tensor:
        """Every member's rates stacked, (K, B, N, T)."""
        return torch.stack([member(movie, behavior) for member in self.members])

    def forward(self, movie: torch.Tensor, behavior: torch.Tensor) -> torch.Tensor:
        return self.member_rates(movie, behavior).mean(0)


def members_of(encoder: Encoder | Sequence[Encoder], wanted: int | None = None) -> list[Encoder]:
    """The encoders to use in turn: the first ``wanted`` (None: all) members of an
    Ensemble, the encoder itself, or a list of encoders (checked to predict the same
    neurons)."""
    if isinstance(encoder, Ensemble):
        members = list(encoder.members)
    elif isinstance(encoder, Encoder):
        members = [encoder]
    else:
        members = list(encoder)
        Ensemble(members)  # raises if the members predict different neurons
    if wanted is not None and wanted > len(members):
        raise MovieReconError(
            f"the config asks for {wanted} ensemble members; the encoder has {len(members)}"
        )
    return members[:wanted]
