"""Batch reconstruction on Dask: plans, content keys, resuming, faults, dry runs, job scripts.

A tiny in-silico mouse (120 neurons, 40-frame trials) and a small untrained encoder keep
each run well under a second; one LocalCluster of 2 worker processes serves every test.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from napari_movierecon.batch import task
from napari_movierecon.batch.cluster import connect, jobqueue_cluster
from napari_movierecon.batch.compose import compose_plan
from napari_movierecon.batch.plan import ClusterOptions, PlanError, WorkerOptions, parse_plan
from napari_movierecon.batch.report import read_summary
from napari_movierecon.batch.runner import run_batch
from napari_movierecon.batch.runs import expand
from napari_movierecon.batch.table import FAILED, RUNS_DIR, result_path
from napari_movierecon.cli import main
from napari_movierecon.encoders.checkpoint import save_encoder
from napari_movierecon.encoders.fast import FastEncoder, FastEncoderConfig
from napari_movierecon.errors import MovieReconError
from napari_movierecon.insilico.mouse import InSilicoMouse, MouseSpec, TierLayout
from napari_movierecon.insilico.population import PopulationSpec
from napari_movierecon.insilico.simulate import SimulatedRecording, write_simulated
from napari_movierecon.reconstruct.config import preset
from napari_movierecon.reconstruct.results import load_reconstruction
from napari_movierecon.sources import open_encoder

SPEC = MouseSpec(
    seed=5,
    population=PopulationSpec(n_neurons=120),
    tiers=TierLayout(
        train=1, oracle_clips=1, oracle_repeats=1, final_test_main=4, final_test_bonus=0
    ),
    n_frames=40,
    calibration_clips=1,
)

PLAN = """\
populations = ["all", "random:0.5:1"]
seeds = [0, 1]

[[recording]]
source = "mouse"
tier = "final_test_main"
first = 2

[[encoder]]
source = "encoder.safetensors"
name = "tiny"

[[preset]]
name = "fast"
iterations = {iterations}
"""


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """A folder with a tiny Sensorium mouse ``mouse/`` and ``encoder.safetensors``."""
    folder = tmp_path_factory.mktemp("batch_inputs")
    recording = SimulatedRecording(InSilicoMouse.build(SPEC))
    write_simulated(recording, folder / "mouse")
    config = FastEncoderConfig(kernel_frames=5, channels=4, readout_channels=4)
    save_encoder(FastEncoder(config, recording.neurons.ids), folder / "encoder.safetensors", {})
    return folder


@pytest.fixture(scope="module")
def connection():
    with connect("cpu", WorkerOptions(n=2, threads=1), ClusterOptions()) as connected:
        yield connected


def write_plan(folder: Path, name: str = "plan.toml", iterations: int = 5, extra: str = ""):
    path = folder / name
    path.write_text(PLAN.format(iterations=iterations) + extra)
    return path


def run(plan_path: Path, out: Path, connection):
    runs = expand(parse_plan(plan_path.read_text(), plan_path))
    outcome = run_batch(
        runs,
        out,
        connection.client,
        connection.torch_threads,
        connection.exclusive,
        progress=False,
        figures=False,
    )
    return runs, outcome


def test_plan_completes_and_a_rerun_does_no_work(inputs, connection, tmp_path):
    out = tmp_path / "batch"
    runs, outcome = run(write_plan(inputs), out, connection)
    assert len(runs) == 8 and len({r.key for r in runs}) == 8
    assert outcome.submitted == 8 and outcome.failed == 0
    rows = read_summary(out / "summary.csv")
    assert [row["key"] for row in rows] == [r.key for r in runs]
    assert {row["status"] for row in rows} == {"done"}
    assert len({row["worker"] for row in rows}) == 2  # both workers took runs
    assert {row["n_neurons"] for row in rows} == {"120", "60"}
    result = load_reconstruction(result_path(out, runs[0].key))
    assert result.record["recording"] == "mouse" and result.record["trial"] == runs[0].trial
    assert result.record["batch"]["run"]["key"] == runs[0].key
    assert result.truth is not None and result.correlation_map is not None
    # each worker process loaded the recording and the encoder once and kept them
    held = connection.client.run(lambda: sorted(kind for kind, _ in task._cache))
    assert list(held.values()) == [["encoder", "recording"]] * 2
    stamps = {p: p.stat().st_mtime_ns for p in (out / RUNS_DIR).iterdir()}

    _, again = run(write_plan(inputs), out, connection)
    assert again.submitted == 0 and again.skipped == 8
    assert {p: p.stat().st_mtime_ns for p in (out / RUNS_DIR).iterdir()} == stamps

    # A changed plan runs only what is new: a third population adds 4 runs.
    bigger = write_plan(inputs, "bigger.toml")
    bigger.write_text(
        bigger.read_text().replace('"random:0.5:1"]', '"random:0.5:1", "random:0.25"]')
    )
    _, grown = run(bigger, out, connection)
    assert grown.submitted == 4 and grown.skipped == 8


def test_workers_start_with_one_malloc_arena_and_glibcs_adaptive_allocator(connection):
    # distributed's default MALLOC_TRIM_THRESHOLD_ made every torch pass 1.5-2x slower, and
    # runs in a task thread's own arena ~20 % slower than in the process's main one.
    def environ():
        return os.environ.get("MALLOC_TRIM_THRESHOLD_"), os.environ.get("MALLOC_ARENA_MAX")

    seen = connection.client.run(environ)
    assert list(seen.values()) == [(None, "1"), (None, "1")]


def test_a_failing_run_does_not_stop_the_others(inputs, connection, tmp_path):
    # top:K needs per-neuron reliability, which this untrained encoder's record lacks.
    plan = write_plan(inputs, "failing.toml")
    plan.write_text(plan.read_text().replace('"random:0.5:1"', '"top:10"'))
    out = tmp_path / "batch"
    _, outcome = run(plan, out, connection)
    assert outcome.failed == 4
    rows = read_summary(out / "summary.csv")
    failed = [row for row in rows if row["status"] == FAILED]
    assert len(failed) == 4 and all(row["population"] == "top:10" for row in failed)
    assert all("reliability" in row["error"] for row in failed)
    assert sum(row["status"] == "done" for row in rows) == 4
    assert len(list((out / RUNS_DIR).iterdir())) == 4
    assert (out / "failed").is_dir() and len(list((out / "failed").iterdir())) == 4


def test_killed_worker_runs_are_retried_once_each(inputs, connection, tmp_path):
    """SIGKILL the process of a worker in the middle of a run: its run is retried on
    another worker; in the end every run is done exactly once, with no partial file."""
    plan = write_plan(inputs, "long.toml", iterations=60)
    plan.write_text(plan.read_text().replace("seeds = [0, 1]", "seeds = [0]"))
    out = tmp_path / "batch"
    client = connection.client
    outcome = {}
    thread = threading.Thread(
        target=lambda: outcome.setdefault("value", run(plan, out, connection))
    )
    thread.start()
    deadline = time.monotonic() + 60
    busy = []
    while not busy and time.monotonic() < deadline:
        busy = [worker for worker, keys in client.processing().items() if keys]
        time.sleep(0.05)
    assert busy, "no run started"
    time.sleep(0.3)  # well inside a run (each takes seconds at 60 iterations)
    pid = client.run(os.getpid, workers=[busy[0]])[busy[0]]
    lost = {key.removeprefix("movierecon-run-") for key in client.processing()[busy[0]]}
    os.kill(pid, signal.SIGKILL)
    thread.join(timeout=180)
    assert not thread.is_alive()
    runs, result = outcome["value"]
    assert result.failed == 0
    rows = read_summary(out / "summary.csv")
    assert sorted(row["key"] for row in rows) == sorted(r.key for r in runs)
    assert {row["status"] for row in rows} == {"done"}
    assert lost and all(row["worker"] != busy[0] for row in rows if row["key"] in lost)
    files = sorted(p.name for p in (out / RUNS_DIR).iterdir())
    assert files == sorted(f"{r.key}.safetensors" for r in runs)
    for run_ in runs:
        load_reconstruction(result_path(out, run_.key))  # complete and readable


MALFORMED = """\
populations = ["all", "random:2"]
sedes = [0]

[[recording]]
source = "mouse"
first = 0

[[encoder]]
source = "missing.safetensors"

[[preset]]
name = "fast"
iterations = 0
learning_rat = 5.0

[cluster]
walltime = "4 hours"
"""


def test_malformed_plan_lists_every_problem_with_its_line(inputs, tmp_path, capsys):
    plan = inputs / "malformed.toml"
    plan.write_text(MALFORMED)
    with pytest.raises(PlanError) as caught:
        parse_plan(MALFORMED, plan)
    problems = caught.value.problems
    expected = {
        1: "random:2",
        2: "sedes",
        4: "needs a tier or ids",
        6: "first must be >= 1",
        9: "missing.safetensors",
        14: "learning_rat",
        17: "walltime",
    }
    for line, text in expected.items():
        assert any(p.startswith(f"line {line}:") and text in p for p in problems), (line, problems)
    out = tmp_path / "never"
    assert main(["batch", str(plan), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and all(f"line {line}:" in err for line in expected)
    assert "Traceback" not in err and not out.exists()
    with pytest.raises(PlanError, match="not valid TOML"):
        parse_plan("populations = [", plan)


def test_dry_run_lists_runs_and_cost_and_writes_nothing(inputs, tmp_path, capsys):
    plan = write_plan(inputs, "dry.toml")
    before = sorted(str(p) for p in inputs.rglob("*"))
    out = tmp_path / "dry"
    assert main(["batch", str(plan), "--out", str(out), "--dry-run", "--workers", "2"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("to do") == 8
    assert "s per step" in printed and "on 2 parallel worker(s)" in printed
    assert not out.exists() and sorted(str(p) for p in inputs.rglob("*")) == before


CLUSTER = """
[cluster]
queue = "gpu"
account = "lab"
cores = 8
memory = "32GB"
walltime = "04:00:00"
gpus = 2
jobs = 3
processes = 2
"""


@pytest.mark.parametrize(
    ("kind", "lines"),
    [
        (
            "slurm",
            [
                "#SBATCH -p gpu",
                "#SBATCH --cpus-per-task=8",
                "#SBATCH --mem=30G",
                "#SBATCH -t 04:00:00",
                "#SBATCH --gres=gpu:2",
            ],
        ),
        (
            "pbs",
            [
                "#PBS -q gpu",
                "#PBS -l select=1:ncpus=8:mem=30GB",
                "#PBS -l walltime=04:00:00",
                "#PBS -l ngpus=2",
            ],
        ),
    ],
)
def test_job_script_from_plan(inputs, kind, lines):
    plan = parse_plan(PLAN.format(iterations=5) + CLUSTER, inputs / "plan.toml")
    with jobqueue_cluster(
        plan.cluster, kind, scheduler_options={"dashboard_address": ":0"}
    ) as cluster:
        script = cluster.job_script()
    for line in lines:
        assert line in script.splitlines(), (line, script)
    # 2 workers per job, each with 4 threads and the one-run-at-a-time resource
    assert "--nworkers 2" in script and "--nthreads 4" in script and "--resources run=1" in script
    # the job's workers start with one malloc arena, without distributed's
    # MALLOC_TRIM_THRESHOLD_ (see cluster.py)
    export = next(line for line in script.splitlines() if "PRE_SPAWN_ENVIRON" in line)
    name, value = export.removeprefix("export ").split("=", 1)
    probe = "from distributed.nanny import _get_env_variables as g; "
    probe += "print(g('distributed.nanny.pre-spawn-environ'))"
    environ = {**os.environ, name: value.strip('"')}
    printed = subprocess.run(
        [sys.executable, "-c", probe], env=environ, capture_output=True, text=True, check=True
    ).stdout
    assert "MALLOC_TRIM_THRESHOLD_" not in printed and "OMP_NUM_THREADS" in printed
    assert "'MALLOC_ARENA_MAX': '1'" in printed


def test_composed_plan_round_trips_a_setup(inputs):
    config = preset("fast", iterations=7, learning_rate=500.0, seed=3)
    text = compose_plan(
        str(inputs / "mouse"),
        str(inputs / "encoder.safetensors"),
        config,
        [0, 2],
        ["all", "random:0.25"],
    )
    runs = expand(parse_plan(text, inputs / "gui.toml"))
    assert len(runs) == 4 and {r.config for r in runs} == {config}
    assert sorted({(r.trial, r.population) for r in runs}) == [
        (0, "all"),
        (0, "random:0.25"),
        (2, "all"),
        (2, "random:0.25"),
    ]
    with pytest.raises(MovieReconError, match="window_frames"):
        compose_plan("sample", "sample", preset("bauer2025", window_frames=None), [0], ["all"])


def test_content_keys_follow_content_not_paths(inputs, tmp_path):
    plan = write_plan(inputs, "keys.toml")
    keys = [r.key for r in expand(parse_plan(plan.read_text(), plan))]
    assert keys == [r.key for r in expand(parse_plan(plan.read_text(), plan))]
    # the same encoder bytes under another name: the same runs
    copy = tmp_path / "copy.safetensors"
    copy.write_bytes((inputs / "encoder.safetensors").read_bytes())
    moved = plan.read_text().replace('"encoder.safetensors"', f'"{copy}"')
    assert [r.key for r in expand(parse_plan(moved, plan))] == keys
    # other weights under the same name: every run is new
    retrained = open_encoder(inputs / "encoder.safetensors")
    with torch.no_grad():
        next(retrained.parameters()).add_(0.01)
    save_encoder(retrained, copy, {}, overwrite=True)
    assert not set(r.key for r in expand(parse_plan(moved, plan))) & set(keys)
    # another config: every run is new
    other = plan.read_text().replace("iterations = 5", "iterations = 6")
    assert not set(r.key for r in expand(parse_plan(other, plan))) & set(keys)
