"""The in-silico mouse's ground truth behind the Encoder interface.

For upper bounds and scoring only: it is the simulator itself, so no learned
encoder and no tuning step may ever see its output as training data.
"""

from __future__ import annotations

import torch

from napari_movierecon.encoders.base import Encoder
from napari_movierecon.insilico.model import InSilicoV1


class OracleEncoder(Encoder):
    """Noise-free rates of an InSilicoV1 from movie (B, T, H, W) and behaviour (B, 4, T)."""

    def __init__(self, model: InSilicoV1) -> None:
        super().__init__()
        self.model = model.eval().requires_grad_(False)
        self.unit_ids = model.unit_ids
        self.context_frames = model.context_frames
        self.frame_shape = tuple(model.screen.shape)
        self.source = "oracle (in-silico ground truth)"

    def forward(self, movie: torch.Tensor, behavior: torch.Tensor) -> torch.Tensor:
        # The simulator reads pupil dilation and running speed; pupil centre is unused.
        return self.model(movie, behavior[:, :2])
