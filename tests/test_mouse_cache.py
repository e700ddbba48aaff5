"""The built in-silico mouse kept on disk: same mouse, keyed by what determines it,
never trusting a damaged entry."""

from __future__ import annotations

import numpy as np
import pytest

from napari_movierecon.insilico.mouse import InSilicoMouse, MouseSpec, TierLayout
from napari_movierecon.insilico.mouse_cache import CACHE_ENV, cache_key, cache_path, cached_mouse
from napari_movierecon.insilico.population import PopulationSpec

SMALL = MouseSpec(
    seed=11,
    population=PopulationSpec(n_neurons=200),
    tiers=TierLayout(
        train=2, oracle_clips=1, oracle_repeats=2, final_test_main=1, final_test_bonus=1
    ),
    n_frames=40,
    calibration_clips=2,
)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


def _same_trials(a: InSilicoMouse, b: InSilicoMouse) -> None:
    first, second = a.trial(2), b.trial(2)
    np.testing.assert_array_equal(first.movie, second.movie)
    np.testing.assert_array_equal(first.responses, second.responses)


def test_the_cached_mouse_is_the_built_mouse(cache):
    built = cached_mouse(SMALL)
    path = cache_path(SMALL)
    assert path.is_file() and path.parent == cache
    assert not [p for p in cache.iterdir() if p != path]  # no temporary file left behind
    loaded = cached_mouse(SMALL)
    assert loaded is not built
    _same_trials(built, loaded)
    _same_trials(InSilicoMouse.build(SMALL), loaded)


def test_the_key_covers_the_spec_and_the_code(cache, monkeypatch):
    from napari_movierecon.insilico import mouse_cache

    other_seed = MouseSpec(**{**SMALL.__dict__, "seed": 12})
    assert cache_key(other_seed) != cache_key(SMALL)
    before = cache_key(SMALL)
    monkeypatch.setattr(mouse_cache, "__version__", "99.0")
    assert cache_key(SMALL) != before
    monkeypatch.undo()
    mouse_cache._code_digest.cache_clear()
    monkeypatch.setattr(mouse_cache, "_code_digest", lambda: "edited source")
    assert cache_key(SMALL) != before


@pytest.mark.parametrize("damage", ["truncate", "other key"])
def test_a_damaged_entry_is_rebuilt_not_trusted(cache, damage):
    built = cached_mouse(SMALL)
    path = cache_path(SMALL)
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    else:  # a complete entry written for another mouse, under this name
        other = MouseSpec(**{**SMALL.__dict__, "seed": 12})
        cached_mouse(other)
        cache_path(other).replace(path)
    rebuilt = cached_mouse(SMALL)
    _same_trials(built, rebuilt)
    _same_trials(rebuilt, cached_mouse(SMALL))  # and the entry was rewritten whole


def test_an_unwritable_cache_only_costs_the_rebuild(tmp_path, monkeypatch):
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(CACHE_ENV, str(blocker / "cache"))
    with pytest.warns(UserWarning, match="not cached"):
        mouse = cached_mouse(SMALL)
    assert mouse.neurons.ids.size == 200
