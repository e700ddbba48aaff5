"""Submit a batch's unfinished runs to a Dask client, collect their rows as they finish,
and leave the folder describing every run: ``runs/`` (result files), ``failed/``
(notes of failed runs), ``summary.csv``, ``report.md`` and ``figures/``.

Resuming is the default: a run whose result file exists is not submitted. A run
that raises is a failed row; one whose worker dies is retried by the scheduler on
another worker (``allowed_failures`` times) and then failed. Ctrl-C cancels what is
left; the finished files stay, so running the plan again resumes.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from napari_movierecon.batch.report import write_report
from napari_movierecon.batch.runs import Run
from napari_movierecon.batch.table import (
    FAILED,
    FAILED_DIR,
    RUNS_DIR,
    clear_failure,
    collect_rows,
    result_path,
    run_fields,
    write_failure,
)
from napari_movierecon.batch.task import execute_run
from napari_movierecon.errors import MovieReconError
from napari_movierecon.io.atomic import recover


@dataclass
class BatchOutcome:
    """``rows``: the whole table (every run of the plan); counts refer to this session."""

    rows: list[dict]
    submitted: int
    skipped: int
    failed: int
    interrupted: bool
    files: list[Path]


def prepare_folder(out_dir: Path) -> None:
    """Create DIR/runs and DIR/failed; clean what killed workers left (``recover``)."""
    try:
        for name in (RUNS_DIR, FAILED_DIR):
            (out_dir / name).mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise MovieReconError(f"{out_dir}: cannot write here ({err.strerror or err})") from err
    recover(out_dir / RUNS_DIR)


def unfinished(runs: list[Run], out_dir: str | Path) -> list[Run]:
    return [run for run in runs if not result_path(out_dir, run.key).is_file()]


def _lost_row(run: Run, error: BaseException) -> dict:
    """The row of a run the scheduler gave up on (its workers kept dying, ...)."""
    return {**run_fields(run), "status": FAILED, "error": f"{type(error).__name__}: {error}"}


def run_batch(
    runs: list[Run],
    out_dir: str | Path,
    client,
    torch_threads: int | None = None,
    exclusive: bool = False,
    progress: bool = True,
    figures: bool = True,
) -> BatchOutcome:
    """Run every unfinished run of ``runs`` on ``client`` and write the folder's table,
    report and figures. ``exclusive``: the workers carry the cluster module's RESOURCE."""
    from distributed import as_completed
    from tqdm import tqdm

    from napari_movierecon.batch.cluster import RESOURCE

    out_dir = Path(out_dir)
    prepare_folder(out_dir)
    todo = unfinished(runs, out_dir)
    resources = {RESOURCE: 1} if exclusive else None
    futures = {
        client.submit(
            execute_run,
            run,
            str(out_dir),
            torch_threads,
            key=f"movierecon-run-{run.key}",
            pure=False,
            resources=resources,
        ): run
        for run in todo
    }
    failed = 0
    interrupted = False
    bar = tqdm(total=len(todo), unit="run", file=sys.stderr, disable=not progress or not todo)
    try:
        for future in as_completed(futures):
            run = futures[future]
            if future.status == "error":
                row = _lost_row(run, future.exception())
            else:
                row = future.result()
            if row["status"] == FAILED:
                failed += 1
                write_failure(out_dir, row)
                bar.set_postfix(failed=failed)
            else:
                clear_failure(out_dir, run.key)
            bar.update(1)
    except KeyboardInterrupt:
        interrupted = True
        client.cancel(list(futures), force=True)
    finally:
        bar.close()
    rows, files = write_table(runs, out_dir, figures)
    return BatchOutcome(rows, len(todo), len(runs) - len(todo), failed, interrupted, files)


def write_table(runs: list[Run], out_dir: str | Path, figures: bool = True):
    """The folder's rows (every run of ``runs``) and the files written from them:
    summary.csv, report.md, figures. Called again after an interrupted batch's cluster
    has closed, so runs that finished while being cancelled are counted."""
    out_dir = Path(out_dir)
    prepare_folder(out_dir)
    rows = collect_rows(runs, out_dir)
    return rows, write_report(out_dir, rows, figures=figures)
