"""Each point of the reference (bauer2025) update rule, checked in isolation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from napari_movierecon.errors import MovieReconError
from napari_movierecon.reconstruct.protocol import (
    FirstMomentAdam,
    combine_window_gradients,
    ensemble_movie,
    warmup_factor,
)
from napari_movierecon.reconstruct.windows import window_starts


def test_warmup_is_linear_over_ten_steps_and_step_zero_is_still():
    factors = [warmup_factor(t, 10) for t in range(13)]
    assert factors[0] == 0.0
    np.testing.assert_allclose(factors[:11], np.arange(11) / 10)
    assert factors[11:] == [1.0, 1.0]


def test_first_moment_step_is_bias_corrected_without_second_moment():
    movie = torch.full((2, 3, 3), 127.5)
    opt = FirstMomentAdam(learning_rate=1000.0, beta1=0.9, warmup=10)
    g = torch.full((2, 3, 3), 0.01)
    opt.step(movie, g)  # step 0: no update
    assert torch.equal(movie, torch.full((2, 3, 3), 127.5))
    opt.step(movie, g)  # step 1: m = 0.01 (constant g, bias-corrected), lr = 1000 * 1/10
    torch.testing.assert_close(movie, torch.full((2, 3, 3), 127.5 - 100 * 0.01))
    # The step does not depend on the gradient's scale the way Adam would (no 2nd moment):
    other = torch.full((1,), 100.0)
    opt2 = FirstMomentAdam(1.0, 0.9, 0)
    opt2.step(other, torch.full((1,), 2.0))
    torch.testing.assert_close(other, torch.tensor([98.0]))


def test_reference_schedule_discards_step_zero_and_scales_the_step_like_the_reference_code():
    movie = torch.full((4,), 127.5)
    opt = FirstMomentAdam(1000.0, 0.9, 10, reference_schedule=True)
    opt.step(movie, torch.full((4,), 5.0))  # step 0: gradient discarded, moment untouched
    assert torch.equal(movie, torch.full((4,), 127.5)) and opt.moment is None
    g = 0.01
    expected, moment = 127.5, 0.0
    for t in range(1, 15):
        opt.step(movie, torch.full((4,), g))
        moment = 0.9 * moment + 0.1 * g
        bias = 1 - 0.9 ** (t + 1)
        rate = 1000.0 * min(t / 10, 1) * np.sqrt(1 - 0.999 ** (t + 1)) / bias
        expected -= rate * moment / bias
        np.testing.assert_allclose(movie.numpy(), expected, rtol=1e-5)
    # Late in the run the step-size factor approaches sqrt(1 - 0.999^1000) ~ 0.80.
    late = FirstMomentAdam(1.0, 0.9, 0, reference_schedule=True)
    late.step_count = 999
    late.moment = torch.zeros(1)
    value = torch.full((1,), 100.0)
    late.step(value, torch.full((1,), 10.0))
    np.testing.assert_allclose(value.item(), 100.0 - np.sqrt(1 - 0.999**1000) * 1.0, rtol=1e-4)


def test_movie_is_clipped_to_pixel_range_after_each_step():
    movie = torch.tensor([1.0, 254.0])
    FirstMomentAdam(10.0, 0.9, 0).step(movie, torch.tensor([1.0, -1.0]))
    assert movie.tolist() == [0.0, 255.0]


def test_window_gradients_are_normalized_averaged_masked_and_clipped():
    starts = window_starts(12, 8, 4)  # [0, 4]
    grads = torch.zeros(2, 8, 2, 2)
    grads[0] = 3.0  # norm sqrt(32) * 3
    grads[1] = -1.0
    mask = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    total = combine_window_gradients(grads, starts, 12, mask, clip=None)
    unit = 1 / (np.sqrt(32) + 1e-6)
    # frames 0-3: window 0 only; 4-7 the mean of both (cancel); 8-11 window 1 only
    expected = np.zeros((12, 2, 2))
    expected[0:4] = unit
    expected[4:8] = (unit - unit) / 2
    expected[8:12] = -unit
    expected *= mask.numpy()
    np.testing.assert_allclose(total.numpy(), expected, atol=1e-7)
    clipped = combine_window_gradients(grads * 1e6, starts, 12, None, clip=1.0, normalize=False)
    assert clipped.abs().max() == 1.0
    with pytest.raises(MovieReconError, match="window starts"):
        combine_window_gradients(grads, starts[:1], 12)


def test_ensemble_movie_averages_then_smooths():
    rng = np.random.default_rng(0)
    members = rng.uniform(0, 255, (3, 10, 6, 8))
    expected = gaussian_filter(members.mean(0), 0.5, mode="nearest")
    np.testing.assert_allclose(ensemble_movie(members, 0.5), expected, rtol=1e-5)
    np.testing.assert_allclose(ensemble_movie(members, 0.0), members.mean(0), rtol=1e-6)


def test_window_parts_before_the_clip_are_dropped_after_normalization():
    grads = torch.ones(1, 6, 1, 1)
    total = combine_window_gradients(grads, np.array([-2]), 5, clip=None)
    np.testing.assert_allclose(total.numpy().ravel(), [1 / (np.sqrt(6) + 1e-6)] * 4 + [0])


def test_block_normalisation_divides_each_block_from_the_window_end_by_its_norm():
    gradients = torch.randn(2, 10, 3, 4)
    combined = combine_window_gradients(gradients, np.array([0, 0]), 10, clip=None, block_frames=4)
    for low, high in ((6, 10), (2, 6), (0, 2)):  # blocks counted from the end
        block = gradients[:, low:high]
        unit = block / (block.flatten(1).norm(dim=1)[:, None, None, None] + 1e-6)
        torch.testing.assert_close(combined[low:high], unit.sum(0) / 2)
