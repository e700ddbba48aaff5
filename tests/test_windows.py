"""The reference protocol's window layout."""

from __future__ import annotations

import numpy as np
import pytest

from napari_movierecon.errors import MovieReconError
from napari_movierecon.reconstruct.windows import window_coverage, window_starts


def test_300_frames_give_35_windows_aligned_to_the_end():
    starts = window_starts(300, 32, 8)
    assert len(starts) == 35
    assert starts[-1] + 32 == 300  # the last window ends with the clip
    assert starts[0] == 0
    assert np.all(np.diff(starts[:-1]) == 8)  # 0, 8, ..., 264 as in the reference code
    assert starts[-2] == 264  # the extra window (268) covers the last frames
    assert window_coverage(300, 32, 8).min() >= 1


def test_even_layouts_and_short_clips():
    np.testing.assert_array_equal(window_starts(64, 32, 8), [0, 8, 16, 24, 32])
    np.testing.assert_array_equal(window_starts(20, 32, 8), [0])
    np.testing.assert_array_equal(window_coverage(40, 32, 8), [1] * 8 + [2] * 24 + [1] * 8)


def test_bad_layouts_are_refused():
    with pytest.raises(MovieReconError, match="must be >= 1"):
        window_starts(300, 0, 8)
    with pytest.raises(MovieReconError, match="at least one frame"):
        window_starts(0, 32, 8)
