"""FrozenFastEncoder: the reconstruction's faster path gives the plain module's numbers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_movierecon.encoders.fast import (
    CONTRAST_SCALE,
    FastEncoder,
    FastEncoderConfig,
    FrozenFastEncoder,
    frozen_fast_encoder,
)
from napari_movierecon.encoders.train import poisson_loss
from napari_movierecon.recording import GRAY_LEVEL


def random_encoder(config: FastEncoderConfig, n: int = 40, seed: int = 0) -> FastEncoder:
    """An encoder with every weight random (biases, behaviour weights included)."""
    torch.manual_seed(seed)
    positions = np.random.default_rng(seed).uniform(-1, 1, (n, 2))
    encoder = FastEncoder(
        config,
        np.arange(n),
        behavior_mean=np.array([1.0, 2.0, 0.0, -1.0]),
        behavior_std=np.array([0.5, 2.0, 1.0, 3.0]),
        positions=positions,
    )
    with torch.no_grad():
        for parameter in encoder.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.3)
    return encoder.eval().requires_grad_(False)


def rates_and_movie_gradient(encoder, movie, behavior, target):
    movie = movie.clone().requires_grad_(True)
    rates = encoder(movie, behavior)
    (grad,) = torch.autograd.grad(poisson_loss(rates, target), movie)
    return rates, grad


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest difference relative to the largest entry (gradients sum many products)."""
    return float(((a - b).abs().max() / b.abs().max()).detach())


@pytest.mark.parametrize(
    "config",
    [
        FastEncoderConfig(),  # the sample ensemble's architecture (space-to-depth path)
        FastEncoderConfig(frame_shape=(35, 63), kernel_frames=7, channels=6),  # odd frame
        FastEncoderConfig(spatial_kernel=3, stride=3, temporal_channels=2),  # uneven pad
        FastEncoderConfig(spatial_kernel=5, stride=1, readout_channels=5),
        FastEncoderConfig(readout_block=3),  # free weights on a block around each position
        FastEncoderConfig(frame_shape=(12, 20), readout_block=4),  # blocks at the map's edges
    ],
)
def test_frozen_path_matches_the_plain_module(config):
    encoder = random_encoder(config)
    rng = torch.Generator().manual_seed(1)
    movie = torch.rand(2, 45, *config.frame_shape, generator=rng) * 255
    behavior = torch.randn(2, 4, 45, generator=rng)
    target = torch.rand(2, encoder.n_neurons, 45, generator=rng) * 2
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    frozen = FrozenFastEncoder(encoder)
    rates, grad = rates_and_movie_gradient(encoder, movie, behavior, target)
    fast_rates, fast_grad = rates_and_movie_gradient(frozen, movie, behavior, target)
    assert relative_error(fast_rates, rates) < 1e-4
    assert relative_error(fast_grad, grad) < 1e-4
    for name, value in encoder.state_dict().items():  # the encoder itself is untouched
        torch.testing.assert_close(value, before[name], rtol=0, atol=0)


@pytest.mark.parametrize("frames", [70, 63, 5])  # k = 9: a rest of 7 frames, none, fewer than k
def test_temporal_stage_and_adjoint_match_the_plain_temporal_filter(frames):
    """The strided-window temporal filter and its hand-written adjoint against the plain
    module's per-pixel Conv1d (forward values, and the movie gradient by autograd through
    the Conv1d), in the frozen path's space-to-depth layout (pixel_unshuffle's with the
    channels in (phase, temporal channel) order); the adjoint from a channels-last
    gradient (as the spatial convolution's backward gives it) and from a contiguous one."""
    config = FastEncoderConfig(kernel_frames=9)
    encoder = random_encoder(config)
    frozen = FrozenFastEncoder(encoder)
    rng = torch.Generator().manual_seed(3)
    movie = (torch.rand(2, 8 + frames, 36, 64, generator=rng) * 255).requires_grad_(True)
    pixels = ((movie - GRAY_LEVEL) / CONTRAST_SCALE).permute(0, 2, 3, 1).reshape(2 * 36 * 64, 1, -1)
    plain = encoder.temporal(pixels).reshape(2, 36, 64, -1, frames).permute(0, 4, 3, 1, 2)
    plain = torch.nn.functional.pixel_unshuffle(plain.reshape(2 * frames, -1, 36, 64), 2)
    plain = plain.reshape(2, frames, config.temporal_channels, 2 * 2, 18, 32).transpose(2, 3)
    plain = plain.reshape(2, frames, config.temporal_channels * 2 * 2, 18, 32)
    filtered = frozen.temporal_stage(movie.detach(), with_context=True)
    assert filtered.shape == plain.shape
    assert relative_error(filtered, plain) < 1e-5
    grad = torch.randn(plain.shape, generator=rng)
    (expected,) = torch.autograd.grad((plain * grad).sum(), movie)
    channels_last = grad.permute(0, 1, 3, 4, 2).contiguous().permute(0, 1, 4, 2, 3)
    for layout in (grad, channels_last):
        assert relative_error(frozen.temporal_adjoint(layout), expected) < 1e-5
    # windows of one clip's gradient, read in place, as bauer2025's windows are
    starts, length = [0, 1, frames - 4], 4
    windows = torch.stack([channels_last[1, s : s + length] for s in starts])
    torch.testing.assert_close(
        frozen.window_adjoints(channels_last[1], starts, length),
        frozen.temporal_adjoint(windows),
        rtol=0,
        atol=0,
    )


def test_frozen_form_is_kept_between_runs_and_follows_changed_weights():
    """Runs of one encoder share its frozen form (no set-up again), but a run after the
    weights changed (in place or replaced) uses the new weights, never the kept ones."""
    encoder = random_encoder(FastEncoderConfig(), n=12)
    rng = torch.Generator().manual_seed(2)
    movie = torch.rand(1, 30, 36, 64, generator=rng) * 255
    behavior = torch.randn(1, 4, 30, generator=rng)
    first = frozen_fast_encoder(encoder)
    assert frozen_fast_encoder(encoder) is first
    with torch.no_grad():
        encoder.bias.add_(1.0)  # in place
    changed = frozen_fast_encoder(encoder)
    assert changed is not first
    assert relative_error(changed(movie, behavior), encoder(movie, behavior)) < 1e-4
    encoder.feature_weights = torch.nn.Parameter(encoder.feature_weights * 0.5)  # replaced
    replaced = frozen_fast_encoder(encoder)
    assert replaced is not changed
    assert relative_error(replaced(movie, behavior), encoder(movie, behavior)) < 1e-4
