"""Neuron selection specs: all, random fraction, top-k, id files, and their errors."""

from __future__ import annotations

import numpy as np
import pytest

from napari_movierecon.errors import MovieReconError
from napari_movierecon.reconstruct.neurons import select_neurons

IDS = np.arange(100, 120)
RELIABILITY = np.linspace(0, 1, 20)[::-1]  # neuron 0 most reliable


def test_all_random_and_top():
    np.testing.assert_array_equal(select_neurons("all", IDS), np.arange(20))
    quarter = select_neurons("random:0.25:3", IDS)
    assert len(quarter) == 5 and np.array_equal(quarter, select_neurons("random:0.25:3", IDS))
    assert not np.array_equal(quarter, select_neurons("random:0.25:4", IDS))
    np.testing.assert_array_equal(select_neurons("top:3", IDS, RELIABILITY), [0, 1, 2])


def test_id_files(tmp_path):
    text = tmp_path / "ids.txt"
    text.write_text("# chosen\n105\n101\n")
    np.testing.assert_array_equal(select_neurons(f"ids:{text}", IDS), [1, 5])
    npy = tmp_path / "ids.npy"
    np.save(npy, np.array([119]))
    np.testing.assert_array_equal(select_neurons(f"ids:{npy}", IDS), [19])
    text.write_text("105\n999\n")
    with pytest.raises(MovieReconError, match="1 unit ids are not in the recording"):
        select_neurons(f"ids:{text}", IDS)
    with pytest.raises(MovieReconError, match="no such neuron id file"):
        select_neurons(f"ids:{tmp_path / 'nope.txt'}", IDS)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("some", "unknown neuron spec"),
        ("random:0", r"fraction must lie in \(0, 1\]"),
        ("random:abc", "could not convert"),
        ("top:0", r"k must lie in 1\.\.20"),
        ("top:3", "no per-neuron reliability"),
    ],
)
def test_bad_specs(spec, message):
    with pytest.raises(MovieReconError, match=message):
        select_neurons(spec, IDS)
