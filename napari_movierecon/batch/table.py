"""The batch's table: one row per run, built from result files' records and failure notes.

A finished run's row comes from the ``batch`` section of its result file's record, so
the table of a folder can always be rebuilt from the folder alone (after a crash, a
Ctrl-C, or on another machine). A failed run leaves ``failed/<key>.json`` instead.
"""

from __future__ import annotations

import json
from pathlib import Path

from safetensors import safe_open

from napari_movierecon.batch.runs import Run
from napari_movierecon.errors import MovieReconError
from napari_movierecon.io.atomic import atomic_write
from napari_movierecon.io.tensor_file import METADATA_KEY, READ_ERRORS, parse_record

RUNS_DIR = "runs"
FAILED_DIR = "failed"
SUFFIX = ".safetensors"
COLUMNS = (
    "key",
    "status",
    "recording",
    "trial",
    "tier",
    "encoder",
    "preset",
    "population",
    "n_neurons",
    "mask",
    "seed",
    "pixel_correlation",
    "loss",
    "iterations",
    "seconds",
    "seconds_total",
    "encoder_frames",
    "worker",
    "error",
    "file",
)
DONE, FAILED, PENDING = "done", "failed", "pending"


def result_path(out_dir: str | Path, key: str) -> Path:
    return Path(out_dir) / RUNS_DIR / f"{key}{SUFFIX}"


def failure_path(out_dir: str | Path, key: str) -> Path:
    return Path(out_dir) / FAILED_DIR / f"{key}.json"


def run_fields(run: Run) -> dict:
    """The columns a run has before it runs."""
    return {
        "key": run.key,
        "recording": run.recording_name,
        "trial": run.trial,
        "tier": run.tier,
        "encoder": run.encoder_name,
        "preset": run.preset,
        "population": run.population,
        "mask": run.mask if run.mask == "none" else Path(run.mask).name,
        "seed": run.config.seed,
    }


def done_row(record: dict, path: Path) -> dict:
    """A finished run's row from its result file's record."""
    batch = record.get("batch", {})
    metrics = record.get("metrics", {})
    timings = record.get("timings", {})
    return {
        **batch.get("run", {}),
        "status": DONE,
        "n_neurons": record.get("n_neurons"),
        "pixel_correlation": metrics.get("pixel_correlation"),
        "loss": metrics.get("loss"),
        "iterations": record.get("iterations_done"),
        "seconds": timings.get("seconds"),
        "seconds_total": batch.get("seconds_total"),
        "encoder_frames": timings.get("encoder_frames"),
        "worker": batch.get("worker"),
        "error": "",
        "file": str(Path(RUNS_DIR) / path.name),
    }


def read_record(path: Path) -> dict | None:
    """The JSON record of a result file without loading its arrays; None if unreadable."""
    try:
        with safe_open(str(path), framework="numpy") as handle:
            metadata = handle.metadata() or {}
        record = parse_record(metadata[METADATA_KEY], str(path))
    except (*READ_ERRORS, KeyError, MovieReconError):
        return None
    return record if isinstance(record, dict) else None


def write_failure(out_dir: str | Path, row: dict) -> None:
    text = json.dumps(row, indent=1).encode()
    atomic_write(
        failure_path(out_dir, row["key"]), lambda handle: handle.write(text), overwrite=True
    )


def clear_failure(out_dir: str | Path, key: str) -> None:
    failure_path(out_dir, key).unlink(missing_ok=True)


def collect_rows(runs: list[Run], out_dir: str | Path) -> list[dict]:
    """One row per run, in plan order: done (from its file), failed (from its note) or
    pending (neither: not run yet, interrupted or cancelled)."""
    rows = []
    for run in runs:
        path = result_path(out_dir, run.key)
        record = read_record(path) if path.is_file() else None
        if record is not None:
            rows.append({**run_fields(run), **done_row(record, path)})
            continue
        failed = failure_path(out_dir, run.key)
        try:
            note = json.loads(failed.read_text()) if failed.is_file() else None
        except (OSError, json.JSONDecodeError):
            note = None
        if note is not None:
            rows.append({**run_fields(run), **note, "status": FAILED})
        else:
            rows.append({**run_fields(run), "status": PENDING})
    return [{column: row.get(column, "") for column in COLUMNS} for row in rows]
