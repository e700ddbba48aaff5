"""A plan written from one set-up (what the napari Run widget holds) and lists of trials
and populations: the GUI's way to hand work to ``movierecon batch``."""

from __future__ import annotations

import json
from collections.abc import Sequence

from napari_movierecon.batch.plan import NO_MASK
from napari_movierecon.errors import MovieReconError
from napari_movierecon.reconstruct.config import PRESETS, ReconstructionConfig


def _toml(value) -> str:
    """A TOML literal for a str, bool, int, float or list of them (JSON spells these
    the same way TOML does)."""
    if value is None:
        raise MovieReconError("a plan cannot hold None")
    return json.dumps(value)


def compose_plan(
    recording: str,
    encoder: str,
    config: ReconstructionConfig,
    trials: Sequence[int],
    populations: Sequence[str],
    mask: str | None = None,
) -> str:
    """Plan text running ``config`` (its preset plus the fields that differ from it) on
    ``trials`` x ``populations`` of ``recording`` with ``encoder``. A field changed to
    None (whole clip, every member) cannot be written: choose a preset that has it."""
    if not trials or not populations:
        raise MovieReconError("a batch needs at least one trial and one population")
    base = PRESETS.get(config.preset)
    if base is None:
        raise MovieReconError(f"config preset {config.preset!r} is not a named preset")
    changed = {
        name: value
        for name, value in config.to_json().items()
        if name not in ("preset", "device", "seed") and value != getattr(base, name)
    }
    nones = sorted(name for name, value in changed.items() if value is None)
    if nones:
        raise MovieReconError(
            f"a plan cannot set {', '.join(nones)} to None; start from a preset that has it"
        )
    lines = [
        f"device = {_toml(config.device)}",
        f"seeds = [{config.seed}]",
        f"populations = {_toml(list(populations))}",
        f"masks = {_toml([mask or NO_MASK])}",
        "",
        "[[recording]]",
        f"source = {_toml(recording)}",
        f"ids = {_toml([int(t) for t in trials])}",
        "",
        "[[encoder]]",
        f"source = {_toml(encoder)}",
        "",
        "[[preset]]",
        f"name = {_toml(config.preset)}",
        *(f"{name} = {_toml(value)}" for name, value in changed.items()),
        "",
    ]
    return "\n".join(lines)
