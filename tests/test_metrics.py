"""Reconstruction metrics: pixel correlation, correlation map, per-frame correlation."""

from __future__ import annotations

import numpy as np
import pytest

from napari_movierecon.errors import MovieReconError
from napari_movierecon.reconstruct.metrics import (
    correlation_map,
    frame_correlation,
    match_luminance,
    pixel_correlation,
)

RNG = np.random.default_rng(0)
TRUTH = RNG.uniform(0, 255, (40, 6, 8)).astype(np.float32)


def test_pixel_correlation_is_pearson_over_masked_pixels_after_skip():
    noisy = TRUTH + RNG.normal(0, 60, TRUTH.shape)
    mask = np.zeros((6, 8), bool)
    mask[1:5, 2:7] = True
    expected = np.corrcoef(noisy[10:, mask].ravel(), TRUTH[10:, mask].ravel())[0, 1]
    assert pixel_correlation(noisy, TRUTH, mask, skip=10) == pytest.approx(expected)
    # Garbage outside the mask or in skipped frames does not count.
    spoiled = noisy.copy()
    spoiled[:, ~mask] = 0
    spoiled[:10] = 255
    assert pixel_correlation(spoiled, TRUTH, mask, skip=10) == pytest.approx(expected)
    assert pixel_correlation(TRUTH * 0.5 + 3, TRUTH) == pytest.approx(1.0)


def test_correlation_map_and_frame_correlation():
    recon = TRUTH.copy()
    recon[:, 0, 0] = 255 - TRUTH[:, 0, 0]  # one anti-correlated pixel
    recon[:, 1, 1] = 7.0  # one flat pixel
    cmap = correlation_map(recon, TRUTH)
    assert cmap.shape == (6, 8) and cmap.dtype == np.float32
    assert cmap[0, 0] == pytest.approx(-1, abs=1e-5) and np.isnan(cmap[1, 1])
    assert np.allclose(np.delete(cmap.ravel(), [0, 9]), 1, atol=1e-5)
    per_frame = frame_correlation(recon, TRUTH)
    assert per_frame.shape == (40,)
    assert (per_frame > 0.8).all() and (per_frame < 1).all()


def test_luminance_matching_keeps_correlation_and_matches_statistics():
    recon = TRUTH * 0.2 + 100
    matched = match_luminance(recon, TRUTH)
    assert matched.mean() == pytest.approx(TRUTH.mean(), rel=1e-4)
    assert matched.std() == pytest.approx(TRUTH.std(), rel=1e-4)
    assert pixel_correlation(matched, TRUTH) == pytest.approx(pixel_correlation(recon, TRUTH))


def test_bad_shapes_and_masks_are_refused():
    with pytest.raises(MovieReconError, match="must be"):
        pixel_correlation(TRUTH[:5], TRUTH)
    with pytest.raises(MovieReconError, match="does not match frames"):
        pixel_correlation(TRUTH, TRUTH, np.ones((3, 3), bool))
    with pytest.raises(MovieReconError, match="selects no pixel"):
        frame_correlation(TRUTH, TRUTH, np.zeros((6, 8), bool))
