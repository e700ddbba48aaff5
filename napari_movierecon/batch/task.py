"""What a worker does with one run: load (or reuse) the recording and encoder, run the
shared ``ReconstructionJob`` to the end and write its result file atomically.

Recordings and encoders are cached per worker process, so a worker that runs many
runs of one encoder loads it once. A run's own failure (bad population, mask of the
wrong shape, NaN, ...) is returned as a failed row, never raised: the batch goes on.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from pathlib import Path

import torch

from napari_movierecon.batch.plan import NO_MASK
from napari_movierecon.batch.runs import Run
from napari_movierecon.batch.table import (
    DONE,
    FAILED,
    done_row,
    read_record,
    result_path,
    run_fields,
)
from napari_movierecon.encoders.checkpoint import check_neurons
from napari_movierecon.errors import MovieReconError
from napari_movierecon.io.atomic import TargetExists
from napari_movierecon.reconstruct.job import ReconstructionJob
from napari_movierecon.reconstruct.masks.file import cut_masks
from napari_movierecon.reconstruct.neurons import (
    Selection,
    encoder_reliability,
    parse_population,
)
from napari_movierecon.reconstruct.results import save_reconstruction
from napari_movierecon.sources import open_encoder, open_recording

CACHE_SIZE = 4  # recordings + encoders a worker keeps loaded
_cache: OrderedDict[tuple[str, str], object] = OrderedDict()
_cache_lock = threading.Lock()


def cached(kind: str, source: str, load: Callable[[str], object]):
    """``load(source)`` once per worker process; the least recently used entry goes
    when more than CACHE_SIZE are held."""
    with _cache_lock:
        key = (kind, source)
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
        value = load(source)
        _cache[key] = value
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
        return value


def worker_name() -> str:
    """The Dask worker's address, or "local" outside a worker."""
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return "local"


def build_job(run: Run) -> ReconstructionJob:
    recording = cached("recording", run.recording, open_recording)
    encoder = cached("encoder", run.encoder, open_encoder)
    check_neurons(encoder, recording.neurons.ids, recording.name)
    neurons = Selection.of(
        parse_population(run.population), recording.neurons, encoder_reliability(encoder)
    )
    update_mask = eval_mask = mask_record = None
    if run.mask != NO_MASK:
        update_mask, eval_mask, mask_record = cut_masks(run.mask, run.config, encoder.frame_shape)
    return ReconstructionJob(
        recording=recording,
        trial=recording.trial(run.trial),
        encoder=encoder,
        encoder_source=run.encoder,
        population=neurons,
        config=run.config,
        update_mask=update_mask,
        eval_mask=eval_mask,
        mask_record=mask_record,
    )


def execute_run(run: Run, out_dir: str, torch_threads: int | None = None) -> dict:
    """Run ``run`` and write ``out_dir/runs/<key>.safetensors``; returns its table row.

    A file already there (a retry after its worker died past the write) is reported as
    done without work. ``torch_threads`` sets torch's intra-op threads first.
    """
    path = result_path(out_dir, run.key)
    record = read_record(path) if path.is_file() else None
    if record is not None:
        return {**run_fields(run), **done_row(record, path)}
    if torch_threads:
        torch.set_num_threads(torch_threads)
    started = time.perf_counter()
    worker = worker_name()
    try:
        job = build_job(run)
        last = deque(job.start(), maxlen=1)[0]  # keep only the final snapshot
        result = job.result(last)
        result.record["batch"] = {
            "run": run_fields(run),
            "worker": worker,
            "seconds_total": time.perf_counter() - started,
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        save_reconstruction(result, path)
    except TargetExists:  # a duplicate of this run (a retry) saved it first: keep that one
        record = read_record(path)
        if record is not None:
            return {**run_fields(run), **done_row(record, path)}
        message = f"{path}: exists but is not a readable result file"
        seconds = time.perf_counter() - started
        return {
            **run_fields(run),
            **{"status": FAILED, "error": message, "worker": worker, "seconds_total": seconds},
        }
    except Exception as err:  # any run's failure is recorded and the batch goes on
        message = str(err) if isinstance(err, MovieReconError) else f"{type(err).__name__}: {err}"
        return {
            **run_fields(run),
            "status": FAILED,
            "error": message,
            "worker": worker,
            "seconds_total": time.perf_counter() - started,
        }
    return {**run_fields(run), **done_row(result.record, Path(path)), "status": DONE}


def preload(recording: str, encoder: str) -> str:
    """Load ``recording`` and ``encoder`` into this worker's cache ahead of its runs (a
    warm-up task, e.g. before timing); returns the worker's name."""
    cached("recording", recording, open_recording)
    cached("encoder", encoder, open_encoder)
    return worker_name()
