"""The encoder contract shared by learned encoders, ensembles and the oracle.

An encoder maps a movie batch (B, T, H, W) in 0..255 and behaviour (B, C, T)
to non-negative rates (B, N, T), one per frame, for the neurons listed in
``unit_ids``. Behaviour channels, in order: pupil dilation, running speed,
pupil centre x, pupil centre y (``behavior_input`` builds them from a Trial).
The first ``context_frames`` frames of a clip lack a full temporal history;
scoring skips them.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from napari_movierecon.recording import Trial
from napari_movierecon.vml_dispatch import resolve_vml_dispatch

resolve_vml_dispatch()  # before any multi-threaded torch op (see vml_dispatch)

BEHAVIOR_INPUT_CHANNELS = ("pupil_dilation", "running_speed", "pupil_x", "pupil_y")


def behavior_input(trial: Trial) -> np.ndarray:
    """Encoder behaviour input (4, T) float32: behaviour rows then pupil-centre rows."""
    return np.concatenate([trial.behavior, trial.pupil_center], axis=0).astype(np.float32)


class Encoder(nn.Module):
    """Base class: subclasses set ``unit_ids``, ``context_frames`` and ``frame_shape`` (H, W)
    and implement forward."""

    unit_ids: np.ndarray
    context_frames: int
    frame_shape: tuple[int, int]

    @property
    def n_neurons(self) -> int:
        return len(self.unit_ids)

    def forward(self, movie: torch.Tensor, behavior: torch.Tensor) -> torch.Tensor:
        """Rates (B, N, T) >= 0 from movie (B, T, H, W) 0..255 and behaviour (B, 4, T)."""
        raise NotImplementedError
