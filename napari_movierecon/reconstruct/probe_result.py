"""A saved resolution-probe result (``movierecon probe --out DIR``): read and check
``DIR/probe.json`` and give what a viewer shows: its table, curves and summary.

The record's sweeps are the encoder's (``rows``, ``half_fall_scale``) and, when the
probes ran with ``--oracle``, the in-silico oracle's (``oracle``: the same fields).
With several seeds a row holds the mean correlation and its sd over the seeds. Records
written before seeds and the oracle existed read as one seed and no oracle.

The reader is tolerant of what it does not know: fields of newer versions are kept, and
other scalar row fields become extra table columns. What it needs is checked; a file that
is missing, unreadable, not JSON or not a probe record raises MovieReconError naming it.
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
from napari_movierecon.reconstruct.probes import KINDS, half_fall_text, sweep_curve

RECORD_NAME = "probe.json"
AXES = ("spatial", "temporal")
# row fields the table shows in its own columns (or folds into them: sd, per seed)
KNOWN_FIELDS = {
    "axis",
    "spatial",
    "temporal",
    "correlation",
    "full_frame_correlation",
    "iterations",
    "seconds",
    "seeds",
    "correlation_sd",
    "full_frame_correlation_sd",
    "correlations",
    "full_frame_correlations",
}
SWEEPS = {"encoder": "encoder", "oracle": "in-silico oracle"}  # sweep -> who, in titles
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
    for key in ("correlation_sd", "full_frame_correlation_sd"):
        value = row.get(key, 0.0)
        if not (_number(value) and (math.isnan(value) or value >= 0)):
            return f"row {index}: {key} must be a non-negative number, got {value!r}"
    if not isinstance(row.get("seeds", []), list):
        return f"row {index}: seeds must be a list"
    return None


def _sweep_problem(rows, half, where: str = "") -> str | None:
    """What makes ``rows`` and ``half`` (half-fall scales) not a sweep, or None."""
    if not isinstance(rows, list):
        return f"{where}rows is not a list"
    for index, row in enumerate(rows):
        problem = _row_problem(index, row)
        if problem:
            return where + problem
    for axis in AXES:
        if not any(row["axis"] == axis for row in rows):
            return f"{where}no row of the {axis} sweep"
    if not isinstance(half, dict):
        return f"{where}half_fall_scale is not an object"
    for axis in AXES:
        value = half.get(axis)
        if value is not None and not (_number(value) and math.isfinite(value) and value > 0):
            return f"{where}half_fall_scale.{axis} must be null or a positive number, got {value!r}"
    return None


def _problem(record) -> str | None:
    """What makes ``record`` not a probe record, or None."""
    if not isinstance(record, dict):
        return f"a JSON object expected, got {type(record).__name__}"
    missing = [key for key in NEEDED if key not in record]
    if missing:
        return "no " + ", ".join(repr(key) for key in missing)
    spec, units = record["spec"], record["units"]
    if not isinstance(spec, dict) or spec.get("kind") not in KINDS:
        return f"spec.kind must be one of {KINDS}"
    if not isinstance(record["config"], dict):
        return "config is not an object"
    if not isinstance(units, dict) or not all(isinstance(units.get(a), str) for a in AXES):
        return "units must name the spatial and temporal scales"
    n = record["n_neurons"]
    if not (isinstance(n, int) and not isinstance(n, bool) and n >= 0):
        return f"n_neurons must be a count, got {n!r}"
    problem = _sweep_problem(record["rows"], record["half_fall_scale"])
    if problem:
        return problem
    oracle = record.get("oracle")
    if oracle is None:
        return None
    if not isinstance(oracle, dict):
        return "oracle must be null or an object"
    problem = _sweep_problem(oracle.get("rows"), oracle.get("half_fall_scale"), "oracle ")
    if problem:
        return problem
    probes = [[r["axis"], r["spatial"], r["temporal"]] for r in record["rows"]]
    if [[r["axis"], r["spatial"], r["temporal"]] for r in oracle["rows"]] != probes:
        return "the oracle's rows are not the encoder's probes"
    return None


def _number_text(value, sd=None) -> str:
    """A float to 3 decimals, `` ± sd`` when given; other values as they are."""
    if isinstance(value, list):
        return ", ".join(_number_text(v) for v in value)
    if not _number(value) or isinstance(value, int):
        return "" if value is None else str(value)
    text = "nan" if math.isnan(value) else f"{value:.3f}"
    return text if sd is None else f"{text} ± {sd:.3f}"


@dataclass(frozen=True)
class Curve:
    """One curve of a sweep: correlation ``values`` (and their ``sd`` over seeds, zeros
    for one seed) against ``scales``, sorted by scale; ``oracle``: the upper bound's."""

    title: str
    scales: np.ndarray
    values: np.ndarray
    sd: np.ndarray
    oracle: bool


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

    @property
    def sweeps(self) -> dict[str, dict]:
        """{"encoder": the record, "oracle": its oracle entry (when it ran)}: each holds
        ``rows`` and ``half_fall_scale``."""
        oracle = self.record.get("oracle")
        return {"encoder": self.record} | ({} if oracle is None else {"oracle": oracle})

    @property
    def n_seeds(self) -> int:
        """Seeds per probe (1 for records written before seeds were kept)."""
        return max(len(row.get("seeds", [0])) for row in self.record["rows"])

    def half_fall_scale(self, axis: str, sweep: str = "encoder") -> float | None:
        return self.sweeps[sweep]["half_fall_scale"].get(axis)

    def _measures(self) -> list[tuple[str, str]]:
        """(row field, what it covers) of the correlations shown: the evaluation mask's
        (or the full frame's) and, when a mask was used, the full frame's as well."""
        if self.masked:
            return [("correlation", "mask"), ("full_frame_correlation", "full frame")]
        return [("correlation", "full frame")]

    def _extra_columns(self) -> list[str]:
        """Row fields of newer records, not known here, whose values are all scalars."""
        rows = self.record["rows"]
        keys = dict.fromkeys(k for row in rows for k in row if k not in KNOWN_FIELDS)
        return [k for k in keys if all(_scalar(row.get(k)) for row in rows)]

    def table(self) -> tuple[list[tuple[str, str]], list[list[str]]]:
        """(column headers as (title, detail), one row of cell texts per probe): the
        swept axis, both scales, the correlations (mean ± sd over seeds when several
        ran) of the encoder and the oracle, iterations, seconds, then extra fields."""
        sweeps = self.sweeps
        measures = self._measures()
        headers = [("axis swept", ""), ("spatial", self.unit("spatial"))]
        headers.append(("temporal", self.unit("temporal")))
        headers += [(SWEEPS[sweep], what) for sweep in sweeps for _, what in measures]
        headers += [("iterations", ""), ("seconds", "per run")]
        extra = self._extra_columns()
        headers += [(key.replace("_", " "), "") for key in extra]
        several = self.n_seeds > 1
        cells = []
        for index, row in enumerate(self.record["rows"]):
            line = [row["axis"], f"{row['spatial']:g}", f"{row['temporal']:g}"]
            for sweep in sweeps.values():
                r = sweep["rows"][index]
                for field, _ in measures:
                    sd = r.get(f"{field}_sd", 0.0) if several else None
                    line.append(_number_text(r.get(field), sd))
            seconds = row.get("seconds")
            line += [_number_text(row.get("iterations"))]
            line += [f"{seconds:.2f}" if _number(seconds) else _number_text(seconds)]
            line += [_number_text(row.get(key)) for key in extra]
            cells.append(line)
        return headers, cells

    def curves(self, axis: str) -> list[Curve]:
        """The ``axis`` sweep's curves: each shown correlation of the encoder, then of the
        oracle when it ran."""
        curves = []
        for sweep, data in self.sweeps.items():
            for field, what in self._measures():
                scales, values, sd = sweep_curve(data["rows"], axis, field)
                title = f"{SWEEPS[sweep]} ({what})"
                curves.append(Curve(title, scales, values, sd, sweep == "oracle"))
        return curves

    def summary(self) -> str:
        """One line: kind, encoder, recording, population and size, preset, probe movies,
        seeds, mask, oracle."""
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
        if self.n_seeds > 1:
            parts.append(f"mean ± sd over {self.n_seeds} seeds")
        elif spec.get("seed") is not None:
            parts.append(f"seed {spec['seed']}")
        parts.append(f"mask {record['mask']}" if self.masked else "no mask")
        if "oracle" in self.sweeps:
            parts.append("with the in-silico oracle (upper bound)")
        return ", ".join(parts)

    def half_fall_text(self) -> str:
        """The half-fall scales of both sweeps ("not reached" within the swept range),
        the oracle's too when it ran; units as the sweeps'."""
        texts = [
            ("" if sweep == "encoder" else f"{SWEEPS[sweep]}: ")
            + half_fall_text({axis: self.half_fall_scale(axis, sweep) for axis in AXES})
            for sweep in self.sweeps
        ]
        return "half-fall scale: " + " | ".join(texts)


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
