"""DwiseNeuro, the winning dynamic encoder of SENSORIUM 2023, for inference and input gradients.

Written from the published architecture facts (shared/reference/dwiseneuro.md); the
parameter names follow the original ``state_dict`` so its weights load unchanged,
except that only ONE mouse's readout is kept (``readout.*`` instead of
``readouts.{k}.layer.1.*``).

The network sees a window of 16 frames, (B, 5, 16, 64, 64) float32, never
normalised: channel 0 the movie (0..255) with the 36x64 frame in rows 14..49 of a
64x64 plane, channels 1-4 pupil dilation, running speed, pupil x, pupil y, each
filling its frame's plane. The 16 frames are every 2nd frame of a 31-frame span,
ending at frame i. A trial's prediction runs the window ending at i for every
i = 30..T-1 and gives each frame the mean of the windows that contain it, so a
trial needs T >= 31 frames (``DwiseNeuroEncoder``).

Everything is in eval mode: BatchNorm uses its running statistics, dropout and
drop-path are off.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from napari_movierecon.encoders.base import BEHAVIOR_INPUT_CHANNELS, Encoder
from napari_movierecon.errors import MovieReconError

WINDOW_FRAMES = 16  # frames per model pass
FRAME_STEP = 2  # every 2nd frame
WINDOW_SPAN = (WINDOW_FRAMES - 1) * FRAME_STEP + 1  # 31 consecutive frames per pass
PLANE = (64, 64)  # the model's input plane (rows, columns)
FRAME_SHAPE = (36, 64)  # the Sensorium frame placed in it
FRAME_TOP = 14  # first plane row of the frame (rows 14..49)
BN_EPS = 1e-5
SOFTPLUS_THRESHOLD = 20.0


@dataclass(frozen=True)
class DwiseNeuroConfig:
    """The original's model kwargs with one readout kept: ``neurons`` is its neuron
    count and ``mouse`` its index k among the checkpoint's readouts."""

    neurons: int
    mouse: int = 0
    in_channels: int = 5
    core_features: tuple[int, ...] = (64, 64, 64, 64, 128, 128, 128, 256, 256)
    spatial_strides: tuple[int, ...] = (2, 1, 1, 1, 2, 1, 1, 2, 1)
    spatial_kernel: int = 3
    temporal_kernel: int = 5
    expansion_ratio: int = 7
    se_reduce_ratio: int = 32
    cortex_features: tuple[int, ...] = (1024, 2048, 4096)
    groups: int = 2
    softplus_beta: float = 0.07
    pad_fill: float = 0.0

    def __post_init__(self) -> None:
        if self.in_channels != 1 + len(BEHAVIOR_INPUT_CHANNELS):
            raise MovieReconError(
                f"DwiseNeuro in_channels must be {1 + len(BEHAVIOR_INPUT_CHANNELS)} "
                f"(movie + behaviour), got {self.in_channels}"
            )
        if len(self.core_features) != len(self.spatial_strides) or not self.core_features:
            raise MovieReconError("DwiseNeuro core_features and spatial_strides differ in length")
        if any(s not in (1, 2) for s in self.spatial_strides):
            raise MovieReconError("DwiseNeuro spatial_strides must be 1 or 2")
        for name in ("spatial_kernel", "temporal_kernel"):
            if getattr(self, name) < 1 or getattr(self, name) % 2 == 0:
                raise MovieReconError(f"DwiseNeuro {name} must be odd and >= 1")
        if not self.cortex_features or any(c % self.groups for c in self.cortex_features):
            raise MovieReconError("DwiseNeuro cortex_features must be multiples of groups")
        if self.neurons < 1 or self.mouse < 0 or self.softplus_beta <= 0:
            raise MovieReconError("DwiseNeuro needs neurons >= 1, mouse >= 0, softplus_beta > 0")

    @property
    def readout_rows(self) -> int:
        """Rows of the readout convolution: the neuron count rounded up to the groups."""
        return math.ceil(self.neurons / self.groups) * self.groups

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> DwiseNeuroConfig:
        return cls(
            **{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()},
        )


class _Norm(nn.Module):
    """BatchNorm held as ``.bn`` (the original's key layout), 3-D or 1-D."""

    def __init__(self, channels: int, dims: int = 3) -> None:
        super().__init__()
        self.bn = (nn.BatchNorm3d if dims == 3 else nn.BatchNorm1d)(channels, eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(x)


def _repeat_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    """``x`` (B, C, ...) with its channels repeated cyclically and cut to ``channels``."""
    if x.shape[1] == channels:
        return x
    repeats = math.ceil(channels / x.shape[1])
    return x.repeat(1, repeats, *([1] * (x.dim() - 2)))[:, :channels]


class _PositionalEncoding(nn.Module):
    """Fixed sin/cos codes of the (t, row, column) index, added to a block's input.

    For C channels F = 2 ceil(C/6) codes per axis: F/2 sines then F/2 cosines of
    index * 10000^(-2j/F); channels [0,F) code time, [F,2F) rows, [2F,3F) columns,
    the first C kept. Indices are 0-based on the block's input grid."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        codes = 2 * math.ceil(channels / 6)
        self.channels = channels
        self.register_buffer(
            "inv_freq", 10000.0 ** (-torch.arange(0, codes, 2, dtype=torch.float32) / codes)
        )

    def encoding(self, t: int, h: int, w: int, device) -> torch.Tensor:
        """The (C, t, h, w) code."""

        def axis(n: int) -> torch.Tensor:
            phase = torch.arange(n, device=device, dtype=torch.float32)[:, None] * self.inv_freq
            return torch.cat([phase.sin(), phase.cos()], dim=1)  # (n, F)

        codes = self.inv_freq.numel() * 2
        grid = torch.zeros((t, h, w, 3 * codes), device=device)
        grid[..., :codes] = axis(t)[:, None, None]
        grid[..., codes : 2 * codes] = axis(h)[None, :, None]
        grid[..., 2 * codes :] = axis(w)[None, None, :]
        return grid[..., : self.channels].permute(3, 0, 1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.encoding(*x.shape[2:], x.device).to(x.dtype)


class _DepthwiseSpatial(nn.Module):
    """Depthwise (1, k, k) Conv3d, stride (1, s, s), no bias, weight (C, 1, 1, k, k).

    Computed as a 2-D convolution with one group per (channel, frame) on the (B, C*T,
    H, W) view of the input: the same numbers as the 3-D convolution, ~2x faster
    forward+backward on a CPU (no transposes, torch's 2-D depthwise kernels)."""

    def __init__(self, channels: int, kernel: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.weight = nn.Parameter(torch.empty(channels, 1, 1, kernel, kernel))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        weight = self.weight[:, :, 0].repeat_interleave(t, dim=0)  # (C*T, 1, k, k)
        pad = self.weight.shape[-1] // 2
        y = F.conv2d(x.reshape(b, c * t, h, w), weight, None, self.stride, pad, 1, c * t)
        return y.reshape(b, c, t, *y.shape[2:])


class _DepthwiseTemporal(nn.Module):
    """Depthwise (k, 1, 1) Conv3d, padding (k//2, 0, 0), no bias, weight (C, 1, k, 1, 1),
    as a 2-D depthwise convolution over the (B, C, T, H*W) view (~1.4x faster)."""

    def __init__(self, channels: int, kernel: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(channels, 1, kernel, 1, 1))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        pad = (self.weight.shape[2] // 2, 0)
        y = F.conv2d(x.reshape(b, c, t, h * w), self.weight[..., 0], None, 1, pad, 1, c)
        return y.reshape(b, c, t, h, w)


def _conv_norm(convolution: nn.Module, channels: int, act: bool = True) -> nn.Sequential:
    """``convolution``, BatchNorm (``.1.bn``), SiLU if ``act`` (the original's layout)."""
    layers = [convolution, _Norm(channels)]
    if act:
        layers.append(nn.SiLU())
    return nn.Sequential(*layers)


def _pointwise(channels_in: int, channels_out: int) -> nn.Conv3d:
    return nn.Conv3d(channels_in, channels_out, 1, bias=False)


class _SqueezeExcite(nn.Module):
    """Channel gates from the mean over time and space of the whole window."""

    def __init__(self, channels: int, reduced: int) -> None:
        super().__init__()
        self.conv_reduce = nn.Conv3d(channels, reduced, 1)
        self.conv_expand = nn.Conv3d(reduced, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = x.mean(dim=(2, 3, 4), keepdim=True)
        gate = self.conv_expand(F.silu(self.conv_reduce(gate)))
        return x * gate.sigmoid()


class _Block(nn.Module):
    """Inverted residual block: pointwise expand, depthwise spatial then temporal
    convolution, squeeze-excite, pointwise project; plus a BatchNorm'd shortcut."""

    def __init__(self, cfg: DwiseNeuroConfig, channels_in: int, channels_out: int, stride: int):
        super().__init__()
        mid = channels_in * cfg.expansion_ratio
        self.stride = stride
        self.channels_out = channels_out
        self.conv_pw = _conv_norm(_pointwise(channels_in, mid), mid)
        self.spat_covn_dw = _conv_norm(_DepthwiseSpatial(mid, cfg.spatial_kernel, stride), mid)
        self.temp_covn_dw = _conv_norm(_DepthwiseTemporal(mid, cfg.temporal_kernel), mid)
        self.se = _SqueezeExcite(mid, mid // cfg.se_reduce_ratio)
        self.conv_pwl = _conv_norm(_pointwise(mid, channels_out), channels_out, act=False)
        self.bn_sc = _Norm(channels_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv_pwl(self.se(self.temp_covn_dw(self.spat_covn_dw(self.conv_pw(x)))))
        shortcut = x[..., :: self.stride, :: self.stride]
        return y + self.bn_sc(_repeat_channels(shortcut, self.channels_out))


class _Core(nn.Module):
    def __init__(self, cfg: DwiseNeuroConfig) -> None:
        super().__init__()
        feats = cfg.core_features
        self.stem = _conv_norm(_pointwise(cfg.in_channels, feats[0]), feats[0], act=False)
        blocks = []
        for i, stride in enumerate(cfg.spatial_strides):
            out = feats[min(i + 1, len(feats) - 1)]
            blocks += [_PositionalEncoding(feats[i]), _Block(cfg, feats[i], out, stride)]
        self.blocks = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.stem(x))


class _CortexLayer(nn.Module):
    """Grouped pointwise Conv1d, BN, SiLU, channel shuffle; plus a BN'd repeated shortcut."""

    def __init__(self, channels_in: int, channels_out: int, groups: int) -> None:
        super().__init__()
        self.groups = groups
        self.channels_out = channels_out
        self.conv = nn.Conv1d(channels_in, channels_out, 1, groups=groups, bias=False)
        self.bn = _Norm(channels_out, dims=1)
        self.bn_sc = _Norm(channels_out, dims=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.silu(self.bn(self.conv(x)))
        b, c, t = y.shape
        y = y.view(b, self.groups, c // self.groups, t).transpose(1, 2).reshape(b, c, t)
        return y + self.bn_sc(_repeat_channels(x, self.channels_out))


class _Cortex(nn.Module):
    def __init__(self, cfg: DwiseNeuroConfig) -> None:
        super().__init__()
        sizes = (cfg.core_features[-1], *cfg.cortex_features)
        self.layers = nn.Sequential(
            *(_CortexLayer(a, b, cfg.groups) for a, b in itertools.pairwise(sizes))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class DwiseNeuroNet(nn.Module):
    """The network with one readout: window (B, 5, 16, 64, 64) -> rates (B, N, 16)."""

    def __init__(self, config: DwiseNeuroConfig) -> None:
        super().__init__()
        self.config = config
        self.core = _Core(config)
        self.cortex = _Cortex(config)
        self.readout = nn.Conv1d(
            config.cortex_features[-1], config.readout_rows, 1, groups=config.groups
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.core(x).mean(dim=(3, 4))  # (B, C, 16)
        drive = self.readout(self.cortex(features))[:, : self.config.neurons]
        return F.softplus(drive, beta=self.config.softplus_beta, threshold=SOFTPLUS_THRESHOLD)


def window_frame_index(n_frames: int) -> np.ndarray:
    """Frame indices (W, 16) of the windows of a trial: row j ends at frame 30 + j and
    takes every 2nd frame; W = T - 30. MovieReconError if T < 31."""
    if n_frames < WINDOW_SPAN:
        raise MovieReconError(
            f"DwiseNeuro needs at least {WINDOW_SPAN} frames per clip (16 frames, every 2nd), "
            f"got {n_frames}"
        )
    ends = np.arange(WINDOW_SPAN - 1, n_frames)
    return ends[:, None] - FRAME_STEP * np.arange(WINDOW_FRAMES - 1, -1, -1)


class DwiseNeuroEncoder(Encoder):
    """One mouse of DwiseNeuro behind the Encoder contract.

    movie (B, T, 36, 64) 0..255 + behaviour (B, 4, T) -> rates (B, N, T): the frames go
    into rows 14..49 of a 64x64 plane whose other rows hold ``config.pad_fill`` (0, black,
    as in training), then every window ending at i = 30..T-1 runs and each frame gets the
    mean of the windows that contain it. ``context_frames`` is 30: a frame needs that many
    before it for a window ending at it to exist; T < 31 is refused. Windows run in
    batches of ``batch_windows``.
    """

    def __init__(self, config: DwiseNeuroConfig, unit_ids: np.ndarray) -> None:
        super().__init__()
        unit_ids = np.asarray(unit_ids, dtype=np.int64)
        if unit_ids.shape != (config.neurons,):
            raise MovieReconError(
                f"DwiseNeuro readout {config.mouse} predicts {config.neurons} neurons, "
                f"got {unit_ids.shape[0] if unit_ids.ndim == 1 else unit_ids.shape} unit ids"
            )
        self.config = config
        self.net = DwiseNeuroNet(config)
        self.unit_ids = unit_ids
        self.context_frames = WINDOW_SPAN - 1
        self.frame_shape = FRAME_SHAPE
        self.batch_windows = 8

    def model_input(
        self, movie: torch.Tensor, behavior: torch.Tensor, pad_fill: float | None = None
    ) -> torch.Tensor:
        """The model's planes (B, 5, T, 64, 64) for every frame of movie (B, T, 36, 64) and
        behaviour (B, 4, T); pad rows hold ``pad_fill`` (default: the encoder's)."""
        b, t = movie.shape[:2]
        if tuple(movie.shape[2:]) != FRAME_SHAPE or behavior.shape != (b, 4, t):
            raise MovieReconError(
                f"DwiseNeuro needs movie (B, T, {FRAME_SHAPE[0]}, {FRAME_SHAPE[1]}) and "
                f"behaviour (B, 4, T), got {tuple(movie.shape)} and {tuple(behavior.shape)}"
            )
        fill = self.config.pad_fill if pad_fill is None else float(pad_fill)
        top = FRAME_TOP
        bottom = PLANE[0] - FRAME_TOP - FRAME_SHAPE[0]
        video = F.pad(movie, (0, 0, top, bottom), value=fill)[:, None]  # (B, 1, T, 64, 64)
        planes = behavior[:, :, :, None, None].expand(b, 4, t, *PLANE)
        return torch.cat([video, planes.to(movie.dtype)], dim=1)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Trial prediction (B, N, T) from model planes (B, 5, T, 64, 64), T >= 31."""
        b, _, t = x.shape[:3]
        index = torch.from_numpy(window_frame_index(t)).to(x.device)  # (W, 16)
        total = x.new_zeros((b, self.config.neurons, t))
        count = x.new_zeros(t)
        for first in range(0, index.shape[0], self.batch_windows):
            chunk = index[first : first + self.batch_windows]  # (w, 16)
            windows = x[:, :, chunk].permute(0, 2, 1, 3, 4, 5)  # (B, w, 5, 16, 64, 64)
            rates = self.net(windows.reshape(-1, *windows.shape[2:]))  # (B*w, N, 16)
            rates = rates.reshape(b, len(chunk), self.config.neurons, WINDOW_FRAMES)
            flat = chunk.reshape(-1)
            total = total.index_add(2, flat, rates.permute(0, 2, 1, 3).reshape(b, -1, flat.numel()))
            count = count.index_add(0, flat, torch.ones_like(flat, dtype=x.dtype))
        return total / count.clamp(min=1)

    def forward(self, movie: torch.Tensor, behavior: torch.Tensor) -> torch.Tensor:
        return self.predict(self.model_input(movie, behavior))
