"""Which Dask cluster a batch runs on: a LocalCluster sized to the machine (default), an
existing scheduler (``--scheduler ADDRESS``) or batch-system jobs through dask-jobqueue
(``--cluster slurm|pbs|sge|lsf``).

Clusters this module starts give every worker one resource named RESOURCE, and every
run needs it: a worker runs one run at a time, and torch uses the worker's threads
(``torch_threads``) inside that run, so processes x threads never exceed the cores.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace

import dask

from napari_movierecon.batch.plan import ClusterOptions, WorkerOptions
from napari_movierecon.errors import MovieReconError

RESOURCE = "run"

# Environment of worker processes, set before they start (glibc reads it once):
# - MALLOC_ARENA_MAX=1: runs execute in the worker's task threads, and glibc gives each
#   new thread its own arena unless limited at start-up, which the reconstruction's
#   allocator settings (napari_movierecon/allocator.py: mallopt once a run starts) can no
#   longer change; in such an arena large blocks are mapped and unmapped again on every
#   pass. With one arena the runs reuse one kept heap, as in a single-threaded process.
# - no MALLOC_TRIM_THRESHOLD_ (distributed sets 65536): setting it turns off glibc's
#   adaptive mmap threshold, and a plain encoder pass ran 1.5-2x slower with it.
WORKER_ENV = {"MALLOC_ARENA_MAX": 1, "MALLOC_TRIM_THRESHOLD_": None}
WORKER_ENVIRON = {f"distributed.nanny.pre-spawn-environ.{k}": v for k, v in WORKER_ENV.items()}
# The same for workers that batch-system jobs start: they read their config from the
# environment (a dict value is merged into distributed's defaults, keeping the others).
JOB_ENVIRON = f'export DASK_DISTRIBUTED__NANNY__PRE_SPAWN_ENVIRON="{WORKER_ENV!r}"'

# The line each batch system needs to give a job N GPUs (dask-jobqueue has no option
# for it; it goes into the job script's header as an extra directive).
GPU_DIRECTIVES = {
    "slurm": "--gres=gpu:{n}",
    "pbs": "-l ngpus={n}",
    "sge": "-l gpu={n}",
    "lsf": '-gpu "num={n}"',
}


@dataclass
class Connection:
    """A connected client and how to submit to it. ``torch_threads`` None: leave torch's
    default; ``exclusive``: workers carry RESOURCE (one run each at a time)."""

    client: object
    description: str
    dashboard: str
    torch_threads: int | None
    exclusive: bool
    parallel_runs: int


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def local_size(options: WorkerOptions, device: str) -> tuple[int, int]:
    """(worker processes, torch threads each) for a LocalCluster: the plan's or flags'
    values, else one single-threaded worker per core on CPU (parallel runs scale better
    than threads inside one run) and one worker with every core on a GPU."""
    cores = available_cores()
    if options.n is not None and options.threads is not None:
        return options.n, options.threads
    if options.n is not None:
        return options.n, max(1, cores // options.n)
    if options.threads is not None:
        return max(1, cores // options.threads), options.threads
    return (cores, 1) if device == "cpu" else (1, cores)


def dashboard_available() -> bool:
    """distributed serves its dashboard only when bokeh is installed."""
    return importlib.util.find_spec("bokeh") is not None


def _dashboard(client) -> str:
    if not dashboard_available():
        return "dashboard unavailable (install bokeh>=3.1 to get Dask's dashboard)"
    link = getattr(client, "dashboard_link", None)
    return f"dashboard {link}" if link else "dashboard unavailable on this scheduler"


def jobqueue_cluster(options: ClusterOptions, kind: str | None = None, **kwargs):
    """A dask-jobqueue cluster for ``kind`` (default ``options.kind``) from the plan's
    [cluster] options; no job is submitted until it is scaled. ``kwargs`` go to the
    cluster class (tests pass ``scheduler_options``)."""
    import dask_jobqueue

    kind = kind or options.kind
    classes = {
        "slurm": dask_jobqueue.SLURMCluster,
        "pbs": dask_jobqueue.PBSCluster,
        "sge": dask_jobqueue.SGECluster,
        "lsf": dask_jobqueue.LSFCluster,
    }
    if kind not in classes:
        raise MovieReconError(f"--cluster must be one of {', '.join(classes)}, got {kind!r}")
    extra = list(options.job_extra)
    if options.gpus:
        extra.append(GPU_DIRECTIVES[kind].format(n=options.gpus))
    settings = {
        "queue": options.queue,
        "cores": options.cores,
        "processes": options.processes,
        "memory": options.memory,
        "walltime": options.walltime,
        "job_extra_directives": extra,
        "worker_extra_args": ["--resources", f"{RESOURCE}=1"],
        "job_script_prologue": [JOB_ENVIRON],
    }
    if options.account:  # SGE and LSF call it a project
        settings["account" if kind in ("slurm", "pbs") else "project"] = options.account
    if kind == "lsf":  # LSF takes minutes, HH:MM
        hours, minutes, _ = options.walltime.split(":")
        settings["walltime"] = f"{int(hours):02d}:{minutes}"
    return classes[kind](**settings, **kwargs)


@contextmanager
def connect(
    device: str,
    workers: WorkerOptions,
    cluster: ClusterOptions,
    scheduler: str | None = None,
    kind: str | None = None,
) -> Iterator[Connection]:
    """A client on the chosen cluster, closed (with the cluster) when the block ends.
    ``workers.allowed_failures``: how often a run may lose its worker before it fails."""
    from distributed import Client, LocalCluster

    with ExitStack() as stack:
        stack.enter_context(
            dask.config.set(
                {
                    "distributed.scheduler.allowed-failures": workers.allowed_failures,
                    **WORKER_ENVIRON,
                }
            )
        )
        if scheduler is not None:
            client = stack.enter_context(Client(scheduler))
            threads = workers.threads
            parallel = sum(client.nthreads().values()) or 1
            description = f"scheduler {scheduler} ({len(client.nthreads())} workers)"
            yield Connection(client, description, _dashboard(client), threads, False, parallel)
            return
        kind = kind or cluster.kind
        if kind is not None:
            options = replace(cluster, kind=kind)
            jobs = stack.enter_context(jobqueue_cluster(options))
            jobs.scale(jobs=options.jobs)
            client = stack.enter_context(Client(jobs))
            threads = max(1, options.cores // options.processes)
            parallel = options.jobs * options.processes
            description = (
                f"{kind} jobs: {options.jobs} x {options.processes} worker(s) x {threads} "
                f"thread(s), queue {options.queue or 'default'}, {options.walltime}"
            )
            yield Connection(client, description, _dashboard(client), threads, True, parallel)
            return
        n, threads = local_size(workers, device)
        local = stack.enter_context(
            LocalCluster(
                n_workers=n,
                threads_per_worker=threads,
                processes=True,
                resources={RESOURCE: 1},
                dashboard_address=":0" if dashboard_available() else None,
                silence_logs=logging.ERROR,
            )
        )
        client = stack.enter_context(Client(local))
        description = f"local cluster: {n} worker process(es) x {threads} thread(s)"
        yield Connection(client, description, _dashboard(client), threads, True, n)
