"""Populations: CLI text specs, every typed kind, their selections, errors and JSON."""

from __future__ import annotations

import numpy as np
import pytest

from napari_movierecon.errors import MovieReconError
from napari_movierecon.reconstruct.neurons import (
    AllNeurons,
    DepthRange,
    IdList,
    Population,
    RandomFraction,
    Region,
    Selection,
    TopK,
    parse_population,
)
from napari_movierecon.recording import Neurons

IDS = np.arange(100, 120)
RELIABILITY = np.linspace(0, 1, 20)[::-1]  # neuron 0 most reliable
# neuron i sits at x = i * 10 µm, y = 0 (i even) or 50 (i odd), depth 100 + 10 i µm
XYZ = np.stack([np.arange(20) * 10.0, (np.arange(20) % 2) * 50.0, 100 + np.arange(20) * 10.0], 1)
NEURONS = Neurons(IDS, XYZ)


def select(spec, reliability=None):
    return parse_population(spec).select(NEURONS, reliability)


def test_all_random_and_top():
    np.testing.assert_array_equal(select("all"), np.arange(20))
    quarter = select("random:0.25:3")
    assert len(quarter) == 5 and np.array_equal(quarter, select("random:0.25:3"))
    assert not np.array_equal(quarter, select("random:0.25:4"))
    assert np.array_equal(select("random:0.25"), select("random:0.25:0"))
    np.testing.assert_array_equal(select("top:3", RELIABILITY), [0, 1, 2])


def test_id_files(tmp_path):
    text = tmp_path / "ids.txt"
    text.write_text("# chosen\n105\n101\n")
    np.testing.assert_array_equal(select(f"ids:{text}"), [1, 5])
    npy = tmp_path / "ids.npy"
    np.save(npy, np.array([119]))
    np.testing.assert_array_equal(select(f"ids:{npy}"), [19])
    text.write_text("105\n999\n")
    with pytest.raises(MovieReconError, match="1 unit ids are not in the recording"):
        select(f"ids:{text}")
    with pytest.raises(MovieReconError, match="no such neuron id file"):
        select(f"ids:{tmp_path / 'nope.txt'}")


def test_an_id_list_keeps_its_ids_when_the_file_changes(tmp_path):
    text = tmp_path / "ids.txt"
    text.write_text("105\n101\n")
    population = parse_population(f"ids:{text}")
    text.write_text("110\n")
    np.testing.assert_array_equal(population.select(NEURONS), [1, 5])
    assert population.name == f"ids:{text}"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("some", "unknown neuron spec"),
        ("random:0", r"fraction must lie in \(0, 1\]"),
        ("random:abc", "could not convert"),
        ("top:0", "k must be >= 1"),
        ("top:21", r"k must lie in 1\.\.20"),
        ("top:3", "no per-neuron reliability"),
    ],
)
def test_bad_specs(spec, message):
    with pytest.raises(MovieReconError, match=message):
        select(spec)


SQUARE = ((-5.0, -5.0), (35.0, -5.0), (35.0, 55.0), (-5.0, 55.0))  # neurons 0..3
TRIANGLE = ((155.0, -10.0), (250.0, -10.0), (155.0, 30.0))  # neurons 16, 18 (y = 0)

EVERY_KIND = [
    (AllNeurons(), list(range(20))),
    (RandomFraction(fraction=0.1, seed=7, name="tenth"), None),
    (TopK(k=4), [0, 1, 2, 3]),
    (IdList(ids=[119, 100, 103]), [0, 3, 19]),
    (DepthRange(low_um=150, high_um=185), [5, 6, 7, 8]),
    (Region(polygons=[SQUARE]), [0, 1, 2, 3]),
    (Region(polygons=[SQUARE, TRIANGLE], name="V1 patches"), [0, 1, 2, 3, 16, 18]),
]


@pytest.mark.parametrize(("population", "expected"), EVERY_KIND)
def test_every_kind_selects_and_round_trips_through_json(population, expected):
    chosen = population.select(NEURONS, RELIABILITY)
    if expected is not None:
        np.testing.assert_array_equal(chosen, expected)
    again = Population.from_json(population.to_json())
    assert again == population and type(again) is type(population)
    assert again.name == population.name
    np.testing.assert_array_equal(again.select(NEURONS, RELIABILITY), chosen)


def test_names_default_to_the_spec():
    assert Region(polygons=[SQUARE, TRIANGLE]).name == "region:2 polygons"
    assert RandomFraction(fraction=0.25, seed=3).name == "random:0.25:3"
    assert DepthRange(low_um=200, high_um=300).name == "depth:200-300um"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Region(polygons=[]), "at least one polygon"),
        (lambda: Region(polygons=[((0, 0), (1, 1))]), ">= 3"),
        (lambda: Region(polygons=[((0, 0), (1, np.nan), (2, 0))]), "non-finite"),
        (lambda: DepthRange(low_um=300, high_um=200), "empty"),
        (lambda: IdList(ids=[]), "no unit id"),
    ],
)
def test_bad_populations(make, message):
    with pytest.raises(MovieReconError, match=message):
        make()


def test_an_empty_selection_is_refused():
    with pytest.raises(MovieReconError, match="selects no neuron"):
        DepthRange(low_um=0, high_um=50).select(NEURONS)


@pytest.mark.parametrize(
    "text",
    ['{"kind": "circle"}', '{"kind": "top", "k": 3, "colour": 1}', "[1, 2]", "not json"],
)
def test_bad_population_records(text):
    with pytest.raises(MovieReconError, match="population"):
        Population.from_json(text)


def test_a_selection_names_its_population():
    selection = Selection.of(Region(polygons=[SQUARE, TRIANGLE]), NEURONS)
    assert len(selection) == 6 and selection.name == selection.spec == "region:2 polygons"
