"""A plan expanded into runs, each named by a content key.

The key is a hash of everything that decides a run's result: the config (JSON, seed
and device included), the encoder's files, the recording and trial, the population
spec (and its id file's bytes), the mask file's bytes and the code version. Two runs
with the same key would write the same file, so a finished key is never run again,
and a changed plan runs only the runs whose key is new.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from napari_movierecon import __version__
from napari_movierecon.batch.plan import NO_MASK, Plan, PlanError, RecordingEntry
from napari_movierecon.errors import MovieReconError
from napari_movierecon.reconstruct.config import ReconstructionConfig
from napari_movierecon.sources import SAMPLE, SAMPLE_ENCODER, open_recording

KEY_CHARS = 20


@dataclass(frozen=True)
class Run:
    """One reconstruction of a batch. Sources are what ``open_recording`` /
    ``open_encoder`` take; ``mask`` a mask file or "none"; ``config`` has the run's
    seed and device."""

    key: str
    recording: str
    recording_name: str
    trial: int
    tier: str
    encoder: str
    encoder_name: str
    preset: str
    config: ReconstructionConfig
    population: str
    mask: str

    def describe(self) -> str:
        return (
            f"{self.key}  {self.recording_name} trial {self.trial} ({self.tier})  "
            f"{self.encoder_name}  {self.preset} seed {self.config.seed}  {self.population}  "
            f"mask {Path(self.mask).name if self.mask != NO_MASK else NO_MASK}"
        )


def _files(path: str) -> tuple[Path, list[Path]]:
    root = Path(SAMPLE_ENCODER if path == SAMPLE else path)
    return root, sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]


def file_digest(path: str) -> str:
    """SHA-256 of a file's bytes, or of a folder's files (names and bytes, sorted by name).
    Each file is read once per process while its size and modification time stay."""
    root, files = _files(path)
    try:
        stamps = tuple((str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files)
    except OSError as err:
        raise MovieReconError(f"{path}: cannot read ({err.strerror or err})") from err
    return _digest(str(root), stamps)


@cache
def _digest(root: str, stamps: tuple[tuple[str, int, int], ...]) -> str:
    digest = hashlib.sha256()
    for name, _, _ in stamps:
        file = Path(name)
        if file != Path(root):  # a folder's file names matter (ensemble members' order)
            digest.update(str(file.relative_to(root)).encode())
        try:
            with open(file, "rb") as handle:
                for block in iter(lambda handle=handle: handle.read(1 << 20), b""):
                    digest.update(block)
        except OSError as err:
            raise MovieReconError(f"{file}: cannot read ({err.strerror or err})") from err
    return digest.hexdigest()


def content_key(
    config: ReconstructionConfig,
    encoder: str,
    recording_name: str,
    trial: int,
    population: str,
    mask: str,
) -> str:
    """The run's key: the first KEY_CHARS hex digits of a SHA-256 over its inputs."""
    kind, _, rest = population.partition(":")
    content = {
        "config": config.to_json(),
        "encoder": file_digest(encoder),
        "recording": recording_name,
        "trial": trial,
        "population": population if kind != "ids" else f"ids:{file_digest(rest)}",
        "mask": None if mask == NO_MASK else file_digest(mask),
        "code": __version__,
    }
    text = json.dumps(content, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:KEY_CHARS]


def _trials(entry: RecordingEntry, recording, problems: list[str]) -> list[tuple[int, str]]:
    """(trial index, tier) pairs the entry selects."""
    tiers = recording.tiers
    if entry.ids is not None:
        bad = [i for i in entry.ids if i >= len(recording)]
        if bad:
            problems.append(
                f"line {entry.line}: {recording.name} has {len(recording)} trials; "
                f"ids {bad} do not exist"
            )
        return [(i, str(tiers[i])) for i in dict.fromkeys(entry.ids) if i < len(recording)]
    indices = recording.trials_in(entry.tier)
    if len(indices) == 0:
        known = ", ".join(sorted(set(tiers.tolist())))
        problems.append(
            f"line {entry.line}: {recording.name} has no trial of tier {entry.tier!r} "
            f"(tiers: {known})"
        )
    chosen = indices[: entry.first] if entry.first else indices
    return [(int(i), entry.tier) for i in chosen]


def expand(plan: Plan) -> list[Run]:
    """Every run of ``plan`` in a stable order (recording, trial, encoder, preset,
    population, mask, seed); runs with equal keys appear once. Opens each recording
    to list its trials; PlanError naming the lines of selections that do not exist."""
    problems: list[str] = []
    runs: dict[str, Run] = {}
    for entry in plan.recordings:
        try:
            recording = open_recording(entry.source)
        except MovieReconError as err:
            problems.append(f"line {entry.line}: {err}")
            continue
        combinations = itertools.product(
            _trials(entry, recording, problems),
            plan.encoders,
            plan.presets,
            plan.populations,
            plan.masks,
            plan.seeds,
        )
        for (trial, tier), encoder, preset, population, mask, seed in combinations:
            config = preset.config.replace(seed=seed)
            key = content_key(config, encoder.source, recording.name, trial, population, mask)
            runs.setdefault(
                key,
                Run(
                    key=key,
                    recording=entry.source,
                    recording_name=recording.name,
                    trial=trial,
                    tier=tier,
                    encoder=encoder.source,
                    encoder_name=encoder.name,
                    preset=preset.label,
                    config=config,
                    population=population,
                    mask=mask,
                ),
            )
    if problems:
        raise PlanError(plan.path, problems)
    return list(runs.values())
