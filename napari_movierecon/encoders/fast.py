"""FastEncoder: a compact causal spatio-temporal core with a per-neuron point readout.

Built for the reconstruction loop, where the encoder's forward+backward pass
over a whole 300-frame clip is repeated hundreds of times:

- core: a causal temporal filter bank (``temporal_channels`` kernels of
  ``kernel_frames`` frames) followed by a spatial filter bank (``channels``
  kernels of ``spatial_kernel`` px) at full resolution, then a rectifying
  split into ON/OFF halves (so the readout can form both linear and
  energy-like responses). One pass covers the whole clip; no frame is
  computed twice.
- readout: every neuron samples the feature map at its own learned position
  (bilinear) and weights the features; thousands of neurons cost
  O(N x channels) per frame.
- behaviour: a per-neuron multiplicative gain exp(w . behaviour), behaviour
  standardised with the training set's statistics.
- output: softplus, so rates are non-negative.

Shapes: movie (B, T, H, W) 0..255; behaviour (B, 4, T); rates (B, N, T).
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from napari_movierecon.encoders.base import BEHAVIOR_INPUT_CHANNELS, Encoder
from napari_movierecon.errors import MovieReconError

GRAY_LEVEL = 127.5
CONTRAST_SCALE = 64.0


@dataclass(frozen=True)
class FastEncoderConfig:
    """Architecture hyperparameters (stored in every checkpoint)."""

    frame_shape: tuple[int, int] = (36, 64)
    kernel_frames: int = 18
    temporal_channels: int = 4
    channels: int = 16
    spatial_kernel: int = 9
    stride: int = 2
    readout_channels: int = 16

    def __post_init__(self) -> None:
        for name in (
            "kernel_frames",
            "temporal_channels",
            "channels",
            "stride",
            "readout_channels",
        ):
            if getattr(self, name) < 1:
                raise MovieReconError(f"FastEncoderConfig.{name} must be >= 1")
        if self.spatial_kernel < 1 or self.spatial_kernel % 2 == 0:
            raise MovieReconError("FastEncoderConfig.spatial_kernel must be odd and >= 1")

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> FastEncoderConfig:
        return cls(**{**data, "frame_shape": tuple(data["frame_shape"])})


class FastEncoder(Encoder):
    """See the module docstring. ``positions`` (N, 2) in [-1, 1] (x, y) initialise the readout."""

    def __init__(
        self,
        config: FastEncoderConfig,
        unit_ids: np.ndarray,
        behavior_mean: np.ndarray | None = None,
        behavior_std: np.ndarray | None = None,
        positions: np.ndarray | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.unit_ids = np.asarray(unit_ids, dtype=np.int64)
        self.context_frames = config.kernel_frames - 1
        self.frame_shape = tuple(config.frame_shape)
        n = len(self.unit_ids)
        n_behavior = len(BEHAVIOR_INPUT_CHANNELS)
        self.temporal = nn.Conv1d(1, config.temporal_channels, config.kernel_frames)
        self.spatial = nn.Conv2d(
            config.temporal_channels,
            config.channels,
            config.spatial_kernel,
            padding=config.spatial_kernel // 2,
            stride=config.stride,
        )
        height, width = config.frame_shape
        self.feature_shape = (
            (height - 1) // config.stride + 1,
            (width - 1) // config.stride + 1,
        )
        self.mix = nn.Conv2d(2 * config.channels, config.readout_channels, 1)
        features = config.readout_channels
        init = np.zeros((n, 2)) if positions is None else np.asarray(positions)
        self.positions = nn.Parameter(torch.as_tensor(init, dtype=torch.float32).clone())
        self.feature_weights = nn.Parameter(torch.randn(n, features) * (1.0 / features) ** 0.5)
        self.bias = nn.Parameter(torch.zeros(n))
        self.behavior_weights = nn.Parameter(torch.zeros(n, n_behavior))
        mean = np.zeros(n_behavior) if behavior_mean is None else behavior_mean
        std = np.ones(n_behavior) if behavior_std is None else behavior_std
        self.register_buffer("behavior_mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("behavior_std", torch.as_tensor(std, dtype=torch.float32))

    def features(self, movie: torch.Tensor) -> torch.Tensor:
        """Core output (B, T, R, h, w) for a movie (B, T, H, W) in 0..255."""
        b, t, height, width = movie.shape
        x = (movie - GRAY_LEVEL) / CONTRAST_SCALE
        x = F.pad(x, (0, 0, 0, 0, self.context_frames, 0))  # causal: gray before the clip
        # Temporal filtering as a 1-D convolution per pixel (much faster on CPU
        # than a (k, 1, 1) 3-D convolution), then spatial filtering per frame.
        pixels = x.permute(0, 2, 3, 1).reshape(b * height * width, 1, -1)
        h = self.temporal(pixels).reshape(b, height, width, -1, t).permute(0, 4, 3, 1, 2)
        h = self.spatial(h.reshape(b * t, -1, height, width))  # (B*T, C, h, w)
        h = F.elu(self.mix(torch.cat([F.elu(h), F.elu(-h)], dim=1)))
        return h.reshape(b, t, *h.shape[1:])

    def readout_parts(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The (N, R*P) readout matrix in CSR parts: (row pointers, columns, values).

        Row n holds neuron n's bilinear sampling weights at its position (4
        feature-map pixels) times its feature weights, for each of the R
        channels; P = h*w feature-map pixels. ``values`` is differentiable with
        respect to positions and feature weights. Positions use grid_sample's
        convention (align_corners=False): -1 and 1 are the outer edges of the map.
        """
        h, w = self.feature_shape
        pos = self.positions.clamp(-1, 1)
        fx = ((pos[:, 0] + 1) * w - 1) / 2
        fy = ((pos[:, 1] + 1) * h - 1) / 2
        x0 = fx.detach().floor().clamp(0, max(w - 2, 0))
        y0 = fy.detach().floor().clamp(0, max(h - 2, 0))
        ax = (fx - x0).clamp(0, 1)
        ay = (fy - y0).clamp(0, 1)
        device = pos.device
        dx = torch.tensor([0, 1, 0, 1], device=device) * (w > 1)
        dy = torch.tensor([0, 0, 1, 1], device=device) * (h > 1)
        pixel = (y0.long()[:, None] + dy) * w + x0.long()[:, None] + dx  # (N, 4)
        corner = torch.stack([(1 - ax) * (1 - ay), ax * (1 - ay), (1 - ax) * ay, ax * ay], 1)
        n, r = self.feature_weights.shape
        values = (self.feature_weights[:, :, None] * corner[:, None, :]).reshape(-1)  # (N*R*4,)
        # Row-major order with ascending columns, as CSR needs.
        columns = torch.arange(r, device=device)[None, :, None] * (h * w) + pixel[:, None, :]
        rows = torch.arange(0, n * r * 4 + 1, r * 4, device=device)
        return rows, columns.reshape(-1), values

    def readout_matrix(self) -> torch.Tensor:
        """The readout as a sparse CSR tensor (N, R*P) (see ``readout_parts``)."""
        rows, columns, values = self.readout_parts()
        h, w = self.feature_shape
        return _csr(rows, columns, values, (self.n_neurons, self.feature_weights.shape[1] * h * w))

    def forward(self, movie: torch.Tensor, behavior: torch.Tensor) -> torch.Tensor:
        b, t = movie.shape[:2]
        feats = self.features(movie)  # (B, T, R, h, w)
        columns = feats.permute(2, 3, 4, 0, 1).reshape(-1, b * t)  # (R*P, B*T)
        drive = _ReadoutProduct.apply(columns, *self.readout_parts())  # (N, B*T)
        drive = drive.reshape(-1, b, t).transpose(0, 1) + self.bias[:, None]
        z = (behavior - self.behavior_mean[:, None]) / self.behavior_std[:, None]
        gain = torch.einsum("nk,bkt->bnt", self.behavior_weights, z)
        return F.softplus(drive) * torch.exp(gain)


class _ReadoutProduct(torch.autograd.Function):
    """``matrix @ columns`` for a CSR matrix given by parts; both the values and the
    columns can receive gradients. torch's generic sparse autograd is ~20x slower
    here (it coalesces and densifies); this uses a sampled product (SDDMM) for
    the values and the transposed product for the columns."""

    @staticmethod
    def forward(ctx, columns, rows, indices, values):
        matrix = _csr(rows, indices, values, (len(rows) - 1, columns.shape[0]))
        ctx.save_for_backward(columns, rows, indices, values)
        return matrix @ columns.contiguous()

    @staticmethod
    def backward(ctx, grad):
        columns, rows, indices, values = ctx.saved_tensors
        matrix = _csr(rows, indices, values, (len(rows) - 1, columns.shape[0]))
        grad = grad.contiguous()
        grad_columns = grad_values = None
        if ctx.needs_input_grad[0]:
            grad_columns = matrix.t() @ grad
        if ctx.needs_input_grad[3]:
            sampled = torch.sparse.sampled_addmm(matrix, grad, columns.t(), beta=0.0)
            grad_values = sampled.values()
        return grad_columns, None, None, grad_values


def _csr(rows, indices, values, shape) -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(rows, indices, values, shape, check_invariants=False)
