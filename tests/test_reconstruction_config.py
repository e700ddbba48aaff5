"""The reconstruction config: the bauer2025 preset's values, validation, JSON round trip."""

from __future__ import annotations

import json

import pytest

from napari_movierecon.errors import MovieReconError
from napari_movierecon.reconstruct.config import ReconstructionConfig, preset


def test_bauer2025_preset_holds_the_published_protocol():
    config = preset("bauer2025")
    assert (config.iterations, config.learning_rate, config.optimizer) == (
        1000,
        1000.0,
        "first_moment_reference",
    )
    assert (config.beta1, config.warmup_steps) == (0.9, 10)
    assert (config.window_frames, config.window_stride) == (32, 8)
    assert config.normalize_window_gradients and config.gradient_clip == 1.0
    assert (config.update_mask_threshold, config.eval_mask_threshold) == (0.5, 1.0)
    assert (config.ensemble, config.smoothing_sigma, config.init) == ("separate", 0.5, "gray")


def test_fast_preset_uses_whole_clip_members_in_turn():
    config = preset("fast")
    assert config.window_frames is None and config.ensemble == "cycle"
    assert config.iterations < preset("bauer2025").iterations


def test_json_round_trip_and_replace():
    config = preset("bauer2025", iterations=50, window_frames=None)
    text = json.dumps(config.to_json())
    assert ReconstructionConfig.from_json(json.loads(text)) == config
    assert config.replace(seed=3).seed == 3 and config.seed == 0


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"iterations": 0}, "iterations must be >= 1"),
        ({"learning_rate": -1}, "learning_rate must be > 0"),
        ({"optimizer": "sgd"}, "optimizer must be one of"),
        ({"window_frames": 0}, "window_frames must be >= 1"),
        ({"update_mask_threshold": 1.5}, r"update_mask_threshold must lie in \(0, 1\]"),
        ({"iterations": "many"}, "iterations must be an integer"),
        ({"learning_rate": float("inf")}, "learning_rate must be a finite number"),
        ({"warmup_steps": float("nan")}, "warmup_steps must be an integer"),
        ({"iterations": 2.5}, "iterations must be an integer"),
        ({"iterations": True}, "iterations must be an integer"),
        ({"device": "bogus"}, "device must be cpu, cuda or cuda:N"),
        ({"ensemble": "vote"}, "ensemble must be one of"),
    ],
)
def test_invalid_knobs_are_refused_with_their_names(changes, message):
    with pytest.raises(MovieReconError, match=message):
        preset("bauer2025", **changes)


def test_unknown_keys_and_presets_are_refused():
    with pytest.raises(MovieReconError, match="unknown reconstruction config keys: lr"):
        ReconstructionConfig.from_json({"lr": 1})
    with pytest.raises(MovieReconError, match="unknown preset 'turbo'"):
        preset("turbo")
