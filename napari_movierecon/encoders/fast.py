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
  O(N x channels) per frame. Optionally (``readout_block`` k >= 2) each neuron
  also has free weights on a k x k block of feature-map pixels around its
  position (O(N x channels x k^2) per frame), so it can combine the features
  at neighbouring places into finer receptive fields.
- behaviour: a per-neuron multiplicative gain exp(w . behaviour), behaviour
  standardised with the training set's statistics.
- output: softplus, so rates are non-negative.

Shapes: movie (B, T, H, W) 0..255; behaviour (B, 4, T); rates (B, N, T).
"""

from __future__ import annotations

import warnings
import weakref
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from napari_movierecon.encoders.base import BEHAVIOR_INPUT_CHANNELS, Encoder
from napari_movierecon.errors import MovieReconError
from napari_movierecon.recording import GRAY_LEVEL

CONTRAST_SCALE = 64.0
# Frames per sparse readout product on a CPU (see _rows_product). A GPU takes a whole clip
# in one product: on an H200 the frozen pass took 3.0 ms that way, 3.8 ms in 32-frame ones.
READOUT_FRAMES = 32


@dataclass(frozen=True)
class FastEncoderConfig:
    """Architecture hyperparameters (stored in every checkpoint)."""

    frame_shape: tuple[int, int] = (36, 64)
    kernel_frames: int = 18
    temporal_channels: int = 8
    channels: int = 16
    spatial_kernel: int = 9
    stride: int = 2
    readout_channels: int = 16
    # 0: point readout only; k >= 2: plus free per-neuron weights on a k x k block
    readout_block: int = 3

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
        if self.readout_block == 1 or self.readout_block < 0:
            raise MovieReconError("FastEncoderConfig.readout_block must be 0 or >= 2")

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> FastEncoderConfig:
        # records written before the block readout existed have point readouts
        data = {"readout_block": 0, **data, "frame_shape": tuple(data["frame_shape"])}
        return cls(**data)


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
        if config.readout_block:
            if config.readout_block > min(self.feature_shape):
                raise MovieReconError(
                    f"FastEncoderConfig.readout_block {config.readout_block} is larger than "
                    f"the feature map {self.feature_shape}"
                )
            block = (n, features, config.readout_block**2)
            self.block_weights = nn.Parameter(torch.zeros(block))
        self.bias = nn.Parameter(torch.zeros(n))
        self.behavior_weights = nn.Parameter(torch.zeros(n, n_behavior))
        mean = np.zeros(n_behavior) if behavior_mean is None else behavior_mean
        std = np.ones(n_behavior) if behavior_std is None else behavior_std
        self.register_buffer("behavior_mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("behavior_std", torch.as_tensor(std, dtype=torch.float32))

    def features(self, movie: torch.Tensor, strided: bool = False) -> torch.Tensor:
        """Core output (B, T, h, w, R), channels last, for a movie (B, T, H, W) in 0..255.
        ``strided``: the spatial convolution as written, strided (the same numbers up
        to float rounding, slower; the work the benchmarks count).

        Where the frame shape and padding allow, the strided convolution runs as a
        stride-1 one on space-to-depth frames (``pixel_unshuffle``'s blocks): the same
        numbers, and on a CPU its backward is much faster than a strided one's. The
        movie's pixels are put in that order before the per-pixel temporal filter,
        whose output then is the convolution's channels-last input as it is (no copy;
        the kernel's input channels are reordered instead)."""
        b, t, height, width = movie.shape
        s = self.config.stride
        unshuffled = None
        if not strided:
            unshuffled = _space_to_depth_kernel(
                self.spatial.weight, s, self.spatial.padding[0], (height, width)
            )
        order = None
        if unshuffled is not None:
            order = _channels_last_space_to_depth_order(height, width, s, movie.device)
        h = self._temporal(_filter_input(movie, order, self.context_frames))  # (B, T, pixels, C_t)
        if unshuffled is None:
            frames = h.reshape(b * t, height, width, -1).permute(0, 3, 1, 2)
            h = self.spatial(frames)
        else:
            kernel, padding = unshuffled
            frames = h.reshape(b * t, height // s, width // s, -1).permute(0, 3, 1, 2)
            kernel = _phase_major(kernel, self.config.temporal_channels)
            h = F.conv2d(frames, kernel, self.spatial.bias, padding=padding)
        y = h.permute(0, 2, 3, 1).reshape(-1, h.shape[1])  # (B*T*h*w, C), channels last
        # The 1x1 mix of [ON, OFF] as two products: no concatenated copy to slice in
        # the backward.
        on, off = self.mix.weight[:, :, 0, 0].t().chunk(2)  # (C, R) each
        mixed = torch.addmm(self.mix.bias, F.elu(y), on).addmm(F.elu(-y), off)
        return F.elu(mixed).reshape(b, t, *h.shape[2:], -1)

    def _temporal(self, x: torch.Tensor) -> torch.Tensor:
        """The causal temporal filter bank (B, T, pixels, C_t) on pixels (B, T + k - 1,
        pixels) that start with their k - 1 context frames: per clip, one batched matrix
        product on strided windows of ``x`` (every output frame's k input frames per
        pixel; no copy), much faster on a CPU than a 1-channel convolution per pixel."""
        taps = self.temporal.weight[:, 0].t()  # (k, C_t): tap j reads input frame f + j
        size = taps.shape[0]
        t = x.shape[1] - size + 1
        clips = [
            torch.baddbmm(self.temporal.bias, clip.unfold(0, size, 1), taps.expand(t, *taps.shape))
            for clip in x
        ]
        return torch.stack(clips)

    def readout_parts(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The (N, P*R) readout matrix in CSR parts: (row pointers, columns, values);
        column p*R + r reads channel r of feature-map pixel p (channels last, as
        ``features``).

        Row n holds, for each of the R channels, neuron n's weights on a k x k block
        of feature-map pixels (k = ``readout_block``, or 2 without free weights):
        the bilinear sampling weights at its position (non-zero on the 4 pixels
        around it) times its feature weights, plus its free block weights if any.
        P = h*w feature-map pixels. ``values`` is differentiable with respect to
        positions, feature weights and block weights. Positions use grid_sample's
        convention (align_corners=False): -1 and 1 are the outer edges of the map.
        """
        h, w = self.feature_shape
        k = self.config.readout_block or 2
        pos = self.positions.clamp(-1, 1)
        fx = ((pos[:, 0] + 1) * w - 1) / 2
        fy = ((pos[:, 1] + 1) * h - 1) / 2
        x0 = fx.detach().floor().clamp(0, max(w - 2, 0))
        y0 = fy.detach().floor().clamp(0, max(h - 2, 0))
        # The block: the 4 pixels around the position as near its centre as the map allows.
        bx = (x0 - (k // 2 - 1)).clamp(0, max(w - k, 0))
        by = (y0 - (k // 2 - 1)).clamp(0, max(h - k, 0))
        steps = torch.arange(k, device=pos.device)
        wx = _linear_weights(fx - x0, x0 - bx, steps)  # (N, k)
        wy = _linear_weights(fy - y0, y0 - by, steps)
        corner = (wy[:, :, None] * wx[:, None, :]).reshape(-1, k * k)
        px = (bx.long()[:, None] + steps).clamp(max=w - 1)
        py = (by.long()[:, None] + steps).clamp(max=h - 1)
        pixel = (py[:, :, None] * w + px[:, None, :]).reshape(-1, k * k)  # (N, k*k) ascending
        n, r = self.feature_weights.shape
        values = self.feature_weights[:, None, :] * corner[:, :, None]  # (N, k*k, R)
        if self.config.readout_block:
            values = values + self.block_weights.transpose(1, 2)
        # Row-major order with ascending columns, as CSR needs.
        columns = pixel[:, :, None] * r + torch.arange(r, device=pos.device)
        rows = torch.arange(0, n * r * k * k + 1, r * k * k, device=pos.device)
        return rows, columns.reshape(-1), values.reshape(-1)

    def readout_matrix(self) -> torch.Tensor:
        """The readout as a sparse CSR tensor (N, P*R) (see ``readout_parts``)."""
        rows, columns, values = self.readout_parts()
        h, w = self.feature_shape
        return _csr(rows, columns, values, (self.n_neurons, self.feature_weights.shape[1] * h * w))

    def forward(self, movie: torch.Tensor, behavior: torch.Tensor) -> torch.Tensor:
        b, t = movie.shape[:2]
        feats = self.features(movie).reshape(b * t, -1)  # (B*T, P*R)
        drive = _ReadoutProduct.apply(feats, *self.readout_parts())  # (N, B*T)
        drive = drive.reshape(-1, b, t).transpose(0, 1) + self.bias[:, None]
        z = (behavior - self.behavior_mean[:, None]) / self.behavior_std[:, None]
        gain = torch.einsum("nk,bkt->bnt", self.behavior_weights, z)
        return F.softplus(drive) * torch.exp(gain)


class _ReadoutProduct(torch.autograd.Function):
    """``matrix @ features.T`` (N, F) for a CSR matrix (N, P*R) given by parts and
    features (F, P*R), one row per frame; both the values and the features can receive
    gradients. torch's generic sparse autograd is ~20x slower here (it coalesces and
    densifies); this uses a sampled product (SDDMM) for the values and the transposed
    matrix (built per call) for the features."""

    @staticmethod
    def forward(ctx, features, rows, indices, values):
        matrix = _csr(rows, indices, values, (len(rows) - 1, features.shape[1]))
        ctx.save_for_backward(features, rows, indices, values)
        return _rows_product(matrix, features)

    @staticmethod
    def backward(ctx, grad):
        features, rows, indices, values = ctx.saved_tensors
        shape = (len(rows) - 1, features.shape[1])
        grad = grad.contiguous()
        grad_features = grad_values = None
        if ctx.needs_input_grad[0]:
            transposed = _sorted_csr(indices, _entry_rows(rows), values, shape[::-1])
            grad_features = _transposed_product(transposed, grad)
        if ctx.needs_input_grad[3]:
            matrix = _csr(rows, indices, values, shape)
            grad_values = torch.sparse.sampled_addmm(matrix, grad, features, beta=0.0).values()
        return grad_features, None, None, grad_values


def _rows_product(matrix: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """``matrix @ features.T`` (N, F) for a CSR ``matrix`` (N, K) and ``features`` (F, K),
    ``READOUT_FRAMES`` rows at a time on a CPU: the sparse kernel rereads a dense row per
    non-zero, and a few frames' rows stay in cache (2-4x faster than one product over a
    whole clip); one product elsewhere (``_frames_per_product``)."""
    out = features.new_empty(matrix.shape[0], features.shape[0])
    step = _frames_per_product(features, features.shape[0])
    for first in range(0, features.shape[0], step):
        part = features[first : first + step]
        out[:, first : first + step] = matrix @ part.t().contiguous()
    return out


def _transposed_product(transposed: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """``(transposed @ grad).T`` (F, K) for the transposed CSR matrix (K, N) and ``grad``
    (N, F), ``READOUT_FRAMES`` columns at a time on a CPU (see ``_rows_product``)."""
    out = grad.new_empty(grad.shape[1], transposed.shape[0])
    step = _frames_per_product(grad, grad.shape[1])
    for first in range(0, grad.shape[1], step):
        part = grad[:, first : first + step].contiguous()
        out[first : first + step] = (transposed @ part).t()
    return out


def _frames_per_product(tensor: torch.Tensor, frames: int) -> int:
    """Frames per sparse readout product for ``frames`` frames on ``tensor``'s device:
    ``READOUT_FRAMES`` on a CPU, all of them (at least 1) elsewhere."""
    return READOUT_FRAMES if tensor.device.type == "cpu" else max(frames, 1)


def _linear_weights(fraction: torch.Tensor, offset: torch.Tensor, steps: torch.Tensor):
    """Linear-interpolation weights (N, k) on block steps 0..k-1: 1 - fraction at step
    ``offset`` and fraction at ``offset + 1`` (``fraction`` in [0, 1] after clamping)."""
    fraction = fraction.clamp(0, 1)[:, None]
    at = steps[None, :] - offset[:, None]
    return torch.where(at == 0, 1 - fraction, torch.where(at == 1, fraction, 0.0))


def _entry_rows(rows: torch.Tensor) -> torch.Tensor:
    """The row of each stored entry of a CSR matrix, from its row pointers (N + 1,)."""
    return torch.repeat_interleave(torch.arange(len(rows) - 1, device=rows.device), rows.diff())


def _csr(rows, indices, values, shape) -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(rows, indices, values, shape, check_invariants=False)


class FrozenFastEncoder(Encoder):
    """A frozen ``FastEncoder``'s rates, and their gradient with respect to the movie,
    computed faster (same numbers up to float rounding). Built from a snapshot of the
    encoder's weights (once per encoder: ``frozen_fast_encoder``); the encoder itself is
    left unchanged (training never sees this class). Like the plain module it runs the
    temporal filter as products on strided windows of the movie in space-to-depth pixel
    order and the strided spatial convolution as a stride-1 one on those channels-last
    frames. What it saves beyond that, per forward+backward to the movie:

    - the sparse readout matrix and its transpose are built once (CSR), are applied a
      few frames at a time, and no gradient flows to the frozen readout weights;
    - the movie's gradient through the temporal filter is a hand-written adjoint: it
      reads the convolution's channels-last gradient as it is and adds each frame's
      product in place, k frames apart at a time (no copies, no padding, no scatter of
      the strided windows' gradients): this matters most for ``bauer2025``, which
      applies the adjoint to every window's gradient;
    - the mix's second product adds in place, and no gradient flows to any weight.

    ``temporal_stage`` and ``from_temporal`` split the pass after the causal
    temporal filter: everything after it works frame by frame, which the
    reconstruction engine uses to share frames between overlapping windows.
    The filtered frames' layout (``filtered_shape``) is this class's own: (s*s*C_t,
    H/s, W/s) space-to-depth frames for stride s (channel = phase * C_t + temporal
    channel, phase = dy * s + dx), or (C_t, H, W) where the frame shape or the padding
    does not allow that; channels last in memory either way.
    """

    def __init__(self, encoder: FastEncoder) -> None:
        super().__init__()
        self.unit_ids = encoder.unit_ids
        self.context_frames = encoder.context_frames
        self.frame_shape = encoder.frame_shape
        self.feature_shape = encoder.feature_shape
        self.stride = encoder.config.stride
        height, width = self.frame_shape
        with torch.no_grad():
            # (k, C_t): tap j of every temporal kernel, oldest input frame first
            self.temporal_taps = encoder.temporal.weight.detach()[:, 0].t().contiguous()
            self.adjoint_taps = self.temporal_taps / CONTRAST_SCALE
            channels = encoder.config.temporal_channels
            self.temporal_bias = encoder.temporal.bias.detach().clone()
            spatial = encoder.spatial.weight.detach()
            self.spatial_bias = encoder.spatial.bias.detach().clone()
            self.spatial_padding = encoder.config.spatial_kernel // 2
            unshuffled = _space_to_depth_kernel(
                spatial, self.stride, self.spatial_padding, self.frame_shape
            )
            self.unshuffle = unshuffled is not None
            self.pixel_order = self.pixel_position = None
            if self.unshuffle:
                kernel, self.unshuffled_padding = unshuffled
                s = self.stride
                self.spatial_weight = _phase_major(kernel, channels).contiguous()
                self.filtered_shape = (channels * s * s, height // s, width // s)
                self.pixel_order = _channels_last_space_to_depth_order(
                    height, width, s, spatial.device
                )
                self.pixel_position = torch.argsort(self.pixel_order)
            else:
                self.spatial_weight = spatial.clone()
                self.filtered_shape = (channels, height, width)
            mix = encoder.mix.weight.detach()[:, :, 0, 0].t()  # (2C, R): ON rows, then OFF
            self.mix_on, self.mix_off = (half.contiguous() for half in mix.chunk(2))
            self.mix_bias = encoder.mix.bias.detach().clone()
            rows, columns, values = encoder.readout_parts()
            pixels = self.feature_shape[0] * self.feature_shape[1]
            shape = (len(rows) - 1, encoder.feature_weights.shape[1] * pixels)
            neuron = _entry_rows(rows)
            self.readout = _sorted_csr(neuron, columns, values.detach(), shape)
            self.readout_t = _sorted_csr(columns, neuron, values.detach(), shape[::-1])
            self.readout_bias = encoder.bias.detach().clone()
            self.behavior_weights = encoder.behavior_weights.detach().clone()
            self.behavior_mean = encoder.behavior_mean.detach().clone()
            self.behavior_std = encoder.behavior_std.detach().clone()
        self._gain_cache: tuple[torch.Tensor, torch.Tensor] | None = None

    def temporal_stage(self, movie: torch.Tensor, with_context: bool = False) -> torch.Tensor:
        """Causal temporal filter output (B, T, *filtered_shape), channels last in memory,
        for a movie (B, T', H, W) 0..255: T = T' with gray before the clip, or
        T = T' - context_frames when the movie already starts with its context
        (``with_context``). Differentiable."""
        return _TemporalFilter.apply(movie, self, with_context)

    def temporal_adjoint(self, grad: torch.Tensor) -> torch.Tensor:
        """The gradient (B, T + context_frames, H, W) with respect to a movie that starts
        with its context, of sum(grad * temporal_stage(movie, with_context=True)), for
        ``grad`` (B, T, *filtered_shape) in any memory layout (channels last, as the
        spatial convolution's backward makes it, costs no copy). Linear in ``grad``; the
        movie does not matter."""
        return self._adjoints(list(grad), grad.shape[1])

    def window_adjoints(self, grad: torch.Tensor, starts, frames: int) -> torch.Tensor:
        """``temporal_adjoint`` of the windows ``grad[start : start + frames]`` of one clip's
        gradient ``grad`` (T, *filtered_shape), one per start (W,), without copying them
        out: (W, frames + context_frames, H, W)."""
        return self._adjoints([grad[start : start + frames] for start in starts], frames)

    def _adjoints(self, grads: list[torch.Tensor], t: int) -> torch.Tensor:
        """``temporal_adjoint`` of each (T, *filtered_shape) tensor in ``grads``, stacked."""
        height, width = self.frame_shape
        taps = self.adjoint_taps
        size, channels = taps.shape
        total = taps.new_zeros(len(grads), t + size - 1, height * width)
        for out, grad in zip(total, grads, strict=True):
            rows = grad.permute(0, 2, 3, 1).reshape(t, height * width, channels)
            # Output frame f read input frames f .. f + k - 1, so the frames f = r, r + k,
            # r + 2k, ... add into disjoint k-frame spans: one batched product each, in place.
            for first in range(min(size, t)):
                count = (t - 1 - first) // size + 1
                spans = out[first : first + count * size].view(count, size, -1)
                frames = rows[first::size].transpose(1, 2)  # (count, C_t, pixels)
                spans.baddbmm_(taps.expand(count, size, channels), frames)
        if self.pixel_position is not None:  # back from the filter's pixel order
            total = total[:, :, self.pixel_position]
        return total.reshape(len(grads), t + size - 1, height, width)

    def _temporal_forward(self, movie: torch.Tensor, with_context: bool) -> torch.Tensor:
        b, _, height, width = movie.shape
        x = _filter_input(movie, self.pixel_order, 0 if with_context else self.context_frames)
        size, channels = self.temporal_taps.shape
        t = x.shape[1] - self.context_frames
        h = x.new_empty(b, t, height * width, channels)
        if t > 0:
            taps = self.temporal_taps.expand(t, size, channels)
            for clip in range(b):  # (T, pixels, k) windows of x: a strided view, no copy
                torch.bmm(x[clip].unfold(0, size, 1), taps, out=h[clip])
        h += self.temporal_bias
        return h.view(b, t, *self.filtered_shape[1:], -1).permute(0, 1, 4, 2, 3)

    def from_temporal(self, h: torch.Tensor, behavior: torch.Tensor) -> torch.Tensor:
        """Rates (B, N, T) from ``temporal_stage``'s output (B, T, *filtered_shape); frame by
        frame."""
        b, t = h.shape[:2]
        frames = h.reshape(b * t, *h.shape[2:])
        if self.unshuffle:
            y = F.conv2d(
                frames.contiguous(memory_format=torch.channels_last),
                self.spatial_weight,
                self.spatial_bias,
                padding=self.unshuffled_padding,
            )
        else:
            y = F.conv2d(
                frames,
                self.spatial_weight,
                self.spatial_bias,
                stride=self.stride,
                padding=self.spatial_padding,
            )
        y = y.permute(0, 2, 3, 1).reshape(-1, self.mix_on.shape[0])  # (B*T*P, C), channels last
        # The 1x1 mix of [ON, OFF] as two products: no concatenated copy, and autograd's
        # backward never slices one; the second adds in place (no copy of the first).
        mixed = torch.addmm(self.mix_bias, F.elu(y), self.mix_on).addmm_(F.elu(-y), self.mix_off)
        mixed = F.elu(mixed)  # (B*T*P, R)
        drive = _FrozenReadout.apply(mixed.reshape(b * t, -1), self.readout, self.readout_t)
        drive = drive.reshape(-1, b, t).transpose(0, 1) + self.readout_bias[:, None]
        return F.softplus(drive) * self._gain(behavior)

    def _gain(self, behavior: torch.Tensor) -> torch.Tensor:
        """exp(w . standardised behaviour) (B, N, T); the last one is kept, since the
        reconstruction passes the same behaviour tensor every iteration."""
        cache = self._gain_cache  # one read: runs in other threads may share this encoder
        if cache is None or cache[0] is not behavior:
            z = (behavior - self.behavior_mean[:, None]) / self.behavior_std[:, None]
            cache = (behavior, torch.exp(torch.einsum("nk,bkt->bnt", self.behavior_weights, z)))
            self._gain_cache = cache
        return cache[1]

    def forward(self, movie: torch.Tensor, behavior: torch.Tensor) -> torch.Tensor:
        return self.from_temporal(self.temporal_stage(movie), behavior)


_FROZEN: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def frozen_fast_encoder(encoder: FastEncoder) -> FrozenFastEncoder:
    """``FrozenFastEncoder(encoder)``, built once and kept while ``encoder`` lives, so runs
    after the first skip its set-up (the readout's CSR matrices: ~0.1-0.3 s per member on
    2 CPU cores). Rebuilt when any of the encoder's tensors was replaced, moved or changed
    in place since (``Tensor._version`` counts in-place changes)."""
    state = tuple(
        (t.data_ptr(), t._version, str(t.device))
        for t in encoder.state_dict(keep_vars=True).values()
    )
    kept = _FROZEN.get(encoder)
    if kept is None or kept[0] != state:
        kept = (state, FrozenFastEncoder(encoder))
        _FROZEN[encoder] = kept
    return kept[1]


def _sorted_csr(rows, columns, values, shape) -> torch.Tensor:
    """A CSR matrix from (row, column, value) triplets whose columns ascend within each
    row in the order given, as another CSR matrix's entries do, read in order with rows
    and columns swapped or not: a stable sort by row alone puts them in CSR order."""
    small = len(values) < 2**31 and max(shape) < 2**31
    # 32-bit keys sort ~2x faster; 32-bit indices are what the sparse kernels use
    order = torch.argsort(rows.int() if small else rows, stable=True)
    counts = torch.bincount(rows, minlength=shape[0])
    pointers = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
    if small:
        pointers, columns = pointers.int(), columns.int()
    return _csr(pointers, columns[order], values[order], shape)


def _channels_last_space_to_depth_order(
    height: int, width: int, stride: int, device
) -> torch.Tensor:
    """Pixel indices (H*W,) of a frame in channels-last space-to-depth order: the row
    and column of the stride-s grid major, then the phase (dy, dx)."""
    grid = torch.arange(height * width, device=device)
    return (
        grid.reshape(height // stride, stride, width // stride, stride)
        .permute(0, 2, 1, 3)
        .flatten()
    )


class _TemporalFilter(torch.autograd.Function):
    """The temporal filter bank as one matrix product on strided windows (a
    1-input-channel convolution is slow on CPU); backward through ``temporal_adjoint``."""

    @staticmethod
    def forward(ctx, movie, encoder, with_context):
        ctx.encoder, ctx.with_context = encoder, with_context
        return encoder._temporal_forward(movie, with_context)

    @staticmethod
    def backward(ctx, grad):
        movie_grad = ctx.encoder.temporal_adjoint(grad)
        if not ctx.with_context:
            movie_grad = movie_grad[:, ctx.encoder.context_frames :]
        return movie_grad, None, None


def _filter_input(movie: torch.Tensor, pixel_order, context_frames: int) -> torch.Tensor:
    """The temporal filter's input (B, context_frames + T, pixels) for a movie (B, T, H, W)
    in 0..255: contrast-scaled, pixels in ``pixel_order`` (H*W,) when given (else row
    major), with ``context_frames`` gray frames before the clip (causal)."""
    b, _, height, width = movie.shape
    x = ((movie - GRAY_LEVEL) / CONTRAST_SCALE).reshape(b, -1, height * width)
    if pixel_order is not None:
        x = x[:, :, pixel_order]
    return F.pad(x, (0, 0, context_frames, 0)) if context_frames else x


def _phase_major(kernel: torch.Tensor, channels: int) -> torch.Tensor:
    """A space-to-depth kernel (O, C*s*s, k', k') (``_space_to_depth_kernel``: channel
    c*s*s + phase) with its input channels in (phase, channel) order: channel
    phase*C + c, the order the per-pixel temporal filter writes them in."""
    return kernel.unflatten(1, (channels, -1)).transpose(1, 2).flatten(1, 2)


def _space_to_depth_kernel(
    weight: torch.Tensor, stride: int, padding: int, frame_shape: tuple[int, int]
) -> tuple[torch.Tensor, int] | None:
    """The kernel (O, C*s*s, k', k') and padding of the stride-1 convolution on
    ``pixel_unshuffle(x, s)`` equal to ``conv2d(x, weight, stride=s, padding=padding)``
    for frames of ``frame_shape`` (H, W), or None when the frames do not split into
    s x s blocks or that convolution would need uneven padding.

    Tap k of the strided kernel reads input offset k - padding = s*m + p (phase p,
    step m); the new kernel holds, per phase, the taps of steps m_min..m_max."""
    if frame_shape[0] % stride or frame_shape[1] % stride:
        return None
    size = weight.shape[-1]
    m_min = -padding // stride  # floor(-padding / stride)
    m_max = (size - 1 - padding) // stride
    if m_max != -m_min:
        return None
    taps = m_max - m_min + 1
    lead = padding + stride * m_min  # <= 0: zeros before tap 0
    trail = stride * taps - size + lead
    padded = F.pad(weight, (-lead, trail, -lead, trail))  # (O, C, s*taps, s*taps)
    out_channels, in_channels = weight.shape[:2]
    kernel = padded.reshape(out_channels, in_channels, taps, stride, taps, stride)
    kernel = kernel.permute(0, 1, 3, 5, 2, 4).reshape(
        out_channels, in_channels * stride * stride, taps, taps
    )
    return kernel.contiguous(), m_max


class _FrozenReadout(torch.autograd.Function):
    """``readout @ features.T`` (N, F) for features (F, P*R), one row per frame, with the
    frozen CSR matrix; backward to the features only, through the cached transpose."""

    @staticmethod
    def forward(ctx, features, readout, readout_t):
        ctx.readout_t = readout_t
        return _rows_product(readout, features)

    @staticmethod
    def backward(ctx, grad):
        return _transposed_product(ctx.readout_t, grad.contiguous()), None, None
