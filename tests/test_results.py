"""Reconstruction files: exact round trip, no silent overwrite, clean refusal of junk."""

from __future__ import annotations

import numpy as np
import pytest

from napari_movierecon.errors import MovieReconError
from napari_movierecon.reconstruct.results import (
    Reconstruction,
    load_reconstruction,
    save_reconstruction,
)


def make_result() -> Reconstruction:
    rng = np.random.default_rng(0)
    return Reconstruction(
        movie=rng.uniform(0, 255, (30, 36, 64)).astype(np.float32),
        neuron_ids=np.arange(5, 15),
        record={"config": {"preset": "bauer2025"}, "metrics": {"pixel_correlation": 0.5}},
        mask=rng.random((36, 64)) > 0.5,
        correlation_map=rng.uniform(-1, 1, (36, 64)).astype(np.float32),
    )


def test_round_trip(tmp_path):
    result = make_result()
    path = save_reconstruction(result, tmp_path / "run.safetensors")
    loaded = load_reconstruction(path)
    np.testing.assert_array_equal(loaded.movie, result.movie)
    np.testing.assert_array_equal(loaded.mask, result.mask)
    np.testing.assert_array_equal(loaded.neuron_ids, result.neuron_ids)
    np.testing.assert_array_equal(loaded.correlation_map, result.correlation_map)
    assert loaded.truth is None and loaded.frame_correlation is None
    assert loaded.record["metrics"] == {"pixel_correlation": 0.5}


def test_no_silent_overwrite_and_junk_is_refused(tmp_path):
    path = save_reconstruction(make_result(), tmp_path / "run.safetensors")
    with pytest.raises(MovieReconError, match="already exists"):
        save_reconstruction(make_result(), path)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(MovieReconError, match="not a readable reconstruction file"):
        load_reconstruction(path)
    with pytest.raises(MovieReconError, match="no such reconstruction file"):
        load_reconstruction(tmp_path / "missing.safetensors")
