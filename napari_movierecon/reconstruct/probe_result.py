"""A saved resolution-probe result (``movierecon probe --out DIR``): read and check
``DIR/probe.json`` and give what a viewer shows, its table columns, curves and summary.

The reader is tolerant of what it does not know: extra fields in the record or its rows
(from newer versions) are kept, and extra scalar row fields become table columns and
extra ``*correlation`` row fields become curves. What it needs is checked; a file that is
missing, unreadable, not JSON or not a probe record raises MovieReconError naming it.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_movierecon.errors import MovieReconError
from napari_movierecon.io.npy import regular_file
from napari_movierecon.io.tensor_file import MAX_RECORD_BYTES, parse_record
from napari_movierecon.reconstruct.probes import KINDS

RECORD_NAME = "probe.json"
AXES = ("spatial", "temporal")
# row fields shown first, in this order; other scalar row fields follow in file order
FIRST_COLUMNS = (
    "axis",
    "spatial",
    "temporal",
    "correlation",
    "full_frame_correlation",
    "iterations",
    "seconds",
)
NEEDED = ("spec", "units", "config", "n_neurons", "rows", "half_fall_scale")


def is_probe_location(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a probe folder (holds probe.json) or a file named probe.json;
    says nothing about whether the record is valid."""
    path = record_path(path)
    return path.name == RECORD_NAME and path.is_file()


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _scalar(value) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _row_problem(index: int, row) -> str | None:
    if not isinstance(row, dict):
        return f"row {index} is not an object"
    if row.get("axis") not in AXES:
        return f"row {index}: axis must be 'spatial' or 'temporal', got {row.get('axis')!r}"
    for scale in AXES:
        value = row.get(scale)
        if not (_number(value) and math.isfinite(value) and value > 0):
            return f"row {index}: {scale} scale must be a positive number, got {value!r}"
    for key in ("correlation", "full_frame_correlation"):
        value = row.get(key)
        if key == "full_frame_correlation" and value is None:
            continue
        if not (_number(value) and (math.isnan(value) or -1 <= value <= 1)):
            return f"row {index}: {key} must be a number in -1..1, got {value!r}"
    return None


def _problem(record) -> str | None:
    """What makes ``record`` not a probe record, or None."""
    if not isinstance(record, dict):
        return f"a JSON object expected, got {type(record).__name__}"
    missing = [key for key in NEEDED if key not in record]
    if missing:
        return "no " + ", ".join(repr(key) for key in missing)
    spec, units, half = record["spec"], record["units"], record["half_fall_scale"]
    if not isinstance(spec, dict) or spec.get("kind") not in KINDS:
        return f"spec.kind must be one of {KINDS}"
    if not isinstance(record["config"], dict):
        return "config is not an object"
    if not isinstance(units, dict) or not all(isinstance(units.get(a), str) for a in AXES):
        return "units must name the spatial and temporal scales"
    n = record["n_neurons"]
    if not (isinstance(n, int) and not isinstance(n, bool) and n >= 0):
        return f"n_neurons must be a count, got {n!r}"
    rows = record["rows"]
    if not isinstance(rows, list):
        return "rows is not a list"
    for index, row in enumerate(rows):
        problem = _row_problem(index, row)
        if problem:
            return problem
    for axis in AXES:
        if not any(row["axis"] == axis for row in rows):
            return f"no row of the {axis} sweep"
    if not isinstance(half, dict):
        return "half_fall_scale is not an object"
    for axis in AXES:
        value = half.get(axis)
        if value is not None and not (_number(value) and math.isfinite(value) and value > 0):
            return f"half_fall_scale.{axis} must be null or a positive number, got {value!r}"
    return None


@dataclass(frozen=True)
class ProbeResult:
    """A checked probe record (``record``, as in probe.json) and the file it came from."""

    path: Path
    record: dict

    @property
    def kind(self) -> str:
        return self.record["spec"]["kind"]

    @property
    def masked(self) -> bool:
        """Whether the correlation was scored in a mask (else over the full frame)."""
        return self.record.get("mask") is not None

    def unit(self, axis: str) -> str:
        """What the ``axis`` scale measures, e.g. "Gaussian sigma (px)"."""
        return self.record["units"][axis]

    def half_fall_scale(self, axis: str) -> float | None:
        return self.record["half_fall_scale"].get(axis)

    def columns(self) -> list[str]:
        """Row fields shown as table columns: FIRST_COLUMNS present, then any other field
        whose values are scalars or lists of scalars (a newer record's extras);
        ``full_frame_correlation`` only when it differs from ``correlation`` (a mask)."""
        rows = self.record["rows"]
        keys = list(dict.fromkeys(k for row in rows for k in row))
        extra = [k for k in keys if k not in FIRST_COLUMNS and self._shown(k)]
        first = [k for k in FIRST_COLUMNS if k in keys]
        if not self.masked:
            first = [k for k in first if k != "full_frame_correlation"]
        return first + extra

    def _shown(self, key: str) -> bool:
        values = [row.get(key) for row in self.record["rows"]]
        return all(
            _scalar(v) or (isinstance(v, list) and all(_scalar(x) for x in v)) for v in values
        )

    def header(self, column: str) -> tuple[str, str]:
        """A column's (title, detail): the scale's unit, what a correlation covers."""
        if column in AXES:
            return column, self.unit(column)
        if column == "correlation":
            return "correlation", "mask" if self.masked else "full frame"
        if column == "full_frame_correlation":
            return "correlation", "full frame"
        if column == "axis":
            return "axis swept", ""
        return column.replace("_", " "), ""

    def curves(self, axis: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """{title: (scales, values)} of the ``axis`` sweep, sorted by scale: the
        correlation and every other numeric row field named ``*correlation`` (the full
        frame one only when a mask was used). Missing values are NaN."""
        rows = sorted((r for r in self.record["rows"] if r["axis"] == axis), key=lambda r: r[axis])
        scales = np.array([r[axis] for r in rows], float)
        names = [c for c in self.columns() if c.endswith("correlation")]
        curves = {}
        for name in names:
            values = [r.get(name) for r in rows]
            if all(v is None or _number(v) for v in values):
                numbers = np.array([np.nan if v is None else v for v in values], float)
                title, detail = self.header(name)
                curves[f"{title} ({detail})" if detail else title] = (scales, numbers)
        return curves

    def summary(self) -> str:
        """One line: kind, encoder, recording, population and size, preset, probe movies."""
        record, spec, config = self.record, self.record["spec"], self.record["config"]
        population = record.get("population")
        name = population.get("name") if isinstance(population, dict) else population
        parts = [f"{self.kind} probes", f"encoder {record.get('encoder', '?')}"]
        if record.get("recording") is not None:
            parts.append(f"recording {record['recording']}")
        parts.append(f"population {name or 'all'} ({record['n_neurons']} neurons)")
        preset = f"preset {config.get('preset', '?')}"
        if config.get("iterations") is not None:
            preset += f" ({config['iterations']} iterations)"
        parts.append(preset)
        if spec.get("n_frames") is not None:
            parts.append(f"{spec['n_frames']}-frame movies")
        parts.append("Poisson-sampled responses" if spec.get("poisson") else "noise-free responses")
        if spec.get("seed") is not None:
            parts.append(f"seed {spec['seed']}")
        parts.append(f"mask {record['mask']}" if self.masked else "no mask")
        return ", ".join(parts)

    def half_fall_text(self) -> str:
        """The half-fall scales of both sweeps (or the swept range when not reached), in
        the sweeps' units."""
        parts = []
        for axis in AXES:
            value = self.half_fall_scale(axis)
            if value is None:
                scales = [r[axis] for r in self.record["rows"] if r["axis"] == axis]
                parts.append(f"{axis} not reached in {min(scales):g}-{max(scales):g}")
            else:
                parts.append(f"{axis} {value:.2f}")
        return "half-fall scale (units as swept): " + "; ".join(parts)


def record_path(path: str | os.PathLike) -> Path:
    """The probe.json of folder ``path``, or ``path`` itself when it is not a folder."""
    path = Path(path)
    return path / RECORD_NAME if path.is_dir() else path


def load_probe_result(path: str | os.PathLike) -> ProbeResult:
    """The probe result in folder ``path`` (``movierecon probe --out``) or in the file
    ``path`` (its probe.json); MovieReconError naming the file and the problem otherwise."""
    if Path(path).is_dir() and not record_path(path).exists():
        raise MovieReconError(
            f"{path}: no {RECORD_NAME} (not a folder written by movierecon probe --out)"
        )
    path = regular_file(record_path(path), "probe record")
    if path.stat().st_size > MAX_RECORD_BYTES:
        megabytes = MAX_RECORD_BYTES // 2**20
        raise MovieReconError(f"{path}: larger than {megabytes} MB, not a probe record")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise MovieReconError(f"{path}: not a probe record (not UTF-8 text)") from err
    except OSError as err:
        raise MovieReconError(f"{path}: cannot read ({err.strerror or err})") from err
    record = parse_record(text, str(path))
    problem = _problem(record)
    if problem:
        raise MovieReconError(f"{path}: not a probe result of movierecon probe ({problem})")
    return ProbeResult(path.resolve(), record)
