"""The one write path (io/atomic.py): races, refusals, crash safety of multi-file commits."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from napari_movierecon.cli import main
from napari_movierecon.errors import MovieReconError
from napari_movierecon.io.atomic import (
    MARKER,
    TargetExists,
    atomic_write,
    leftovers,
    recover,
    staged_directory,
)
from napari_movierecon.reconstruct.results import Reconstruction, save_reconstruction

REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- races


def _save_slowly(path: str, payload: bytes, barrier, outcomes) -> None:
    barrier.wait()

    def write(handle) -> None:
        time.sleep(0.3)  # both writers are inside the write at the same time
        handle.write(payload)

    try:
        atomic_write(path, write, overwrite=False)
        outcomes.put(("saved", payload))
    except TargetExists:
        outcomes.put(("refused", payload))


def _save_folder_slowly(path: str, payload: bytes, barrier, outcomes) -> None:
    barrier.wait()
    try:
        with staged_directory(path) as staging:
            (staging / "data.bin").write_bytes(payload)
            time.sleep(0.3)
        outcomes.put(("saved", payload))
    except TargetExists:
        outcomes.put(("refused", payload))


@pytest.mark.parametrize("writer", [_save_slowly, _save_folder_slowly])
def test_two_processes_saving_the_same_new_path_one_wins(tmp_path, writer):
    context = multiprocessing.get_context("fork")
    for attempt in range(3):
        target = tmp_path / f"result_{attempt}"
        barrier, outcomes = context.Barrier(2), context.Queue()
        workers = [
            context.Process(target=writer, args=(str(target), bytes([k]) * 64, barrier, outcomes))
            for k in range(2)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(30)
        results = sorted(outcomes.get(timeout=5) for _ in workers)
        assert [state for state, _ in results] == ["refused", "saved"]
        winner = results[1][1]
        stored = target / "data.bin" if target.is_dir() else target
        assert stored.read_bytes() == winner
        assert leftovers(tmp_path) == []


# ---------------------------------------------------------------- refusals


def _result() -> Reconstruction:
    return Reconstruction(movie=np.zeros((3, 4, 5), np.float32), neuron_ids=np.arange(3))


def test_a_fifo_or_symlink_is_never_replaced(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(MovieReconError, match="not a regular file"):
        save_reconstruction(_result(), fifo, overwrite=True)
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me")
    link = tmp_path / "link.safetensors"
    link.symlink_to(outside)
    with pytest.raises(MovieReconError, match="symbolic link"):
        save_reconstruction(_result(), link, overwrite=True)
    assert outside.read_text() == "keep me" and link.is_symlink()
    assert (tmp_path / "pipe").exists()


def test_a_foreign_folder_is_not_replaced_even_with_overwrite(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "thesis.tex").write_text("years of work")
    with pytest.raises(MovieReconError, match="not a folder this program wrote"):
        with staged_directory(home, overwrite=True) as staging:
            (staging / "x").write_text("new")
    assert (home / "thesis.tex").read_text() == "years of work"
    with staged_directory(tmp_path / "ours") as staging:
        (staging / "x").write_text("old")
    with staged_directory(tmp_path / "ours", overwrite=True) as staging:
        (staging / "x").write_text("new")
    assert (tmp_path / "ours" / "x").read_text() == "new"
    assert (tmp_path / "ours" / MARKER).is_file()
    legacy = tmp_path / "ensemble"  # written before the marker existed
    legacy.mkdir()
    (legacy / "member_0.safetensors").write_bytes(b"old")
    with staged_directory(legacy, overwrite=True) as staging:
        (staging / "member_0.safetensors").write_bytes(b"new")
    assert (legacy / "member_0.safetensors").read_bytes() == b"new"


def test_evaluate_json_refuses_an_existing_file(tmp_path, capsys):
    precious = tmp_path / "reconstruction.safetensors"
    precious.write_bytes(b"precious")
    code = main(
        ["evaluate", "--recording", "sample", "--encoder", "sample", "--json", str(precious)]
    )
    assert code == 2
    assert precious.read_bytes() == b"precious"
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "already exists" in err


def test_empty_output_path_is_refused_before_work(capsys):
    assert main(["simulate", "--out", ""]) == 2
    assert "the path is empty" in capsys.readouterr().err


# ---------------------------------------------------------------- kill at every rename

CHILD = r"""
import os, sys
from pathlib import Path
import numpy as np
sys.path.insert(0, {tests!r})
scenario, where, kill_at = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
from napari_movierecon.io.export import Panel, export_frames
from napari_movierecon.io.sensorium import write_sensorium
from napari_movierecon.batch.report import write_report
from test_sensorium_io import make_recording

calls = [0]
def wrap(function):
    def inner(*args, **kwargs):
        calls[0] += 1
        if calls[0] == kill_at:
            os._exit(9)
        return function(*args, **kwargs)
    return inner

def run(version):
    if scenario == "export":
        frames = np.arange(60, dtype=np.float32).reshape(3, 4, 5) * version
        export_frames([Panel(frames, (0, 200))], where / "movie.npy",
                      record={{"version": version}}, overwrite=version > 1)
    elif scenario == "folder":
        write_sensorium(make_recording(version, ["train"] * 2, [5, 4], 3), where / "mouse",
                        pad_to=6, overwrite=version > 1)
    else:
        from napari_movierecon.batch.table import COLUMNS
        rows = [{{**dict.fromkeys(COLUMNS, ""), "key": str(version), "status": "failed"}}]
        write_report(where, rows, figures=False)

if os.environ.get("OLD") == "1":
    run(1)
else:
    for name in ("replace", "rename", "link"):
        setattr(os, name, wrap(getattr(os, name)))
    run(2)
"""


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def _child(scenario: str, where: Path, kill_at: int, old: bool = False) -> int:
    script = CHILD.format(tests=str(REPO / "tests"))
    env = {**os.environ, "PYTHONPATH": str(REPO), "OLD": "1" if old else "0"}
    done = subprocess.run(
        [sys.executable, "-c", script, scenario, str(where), str(kill_at)],
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert done.returncode in (0, 9), done.stderr.decode()[-2000:]
    return done.returncode


@pytest.mark.parametrize("scenario", ["export", "folder", "report"])
def test_killed_at_every_rename_leaves_old_or_new_set(tmp_path, scenario):
    reference = tmp_path / "reference"
    reference.mkdir()
    _child(scenario, reference, 0, old=True)
    old = _snapshot(reference)
    assert _child(scenario, reference, 0) == 0
    new = _snapshot(reference)
    assert old != new
    for kill_at in range(1, 30):
        where = tmp_path / f"kill_{kill_at}"
        where.mkdir()
        _child(scenario, where, 0, old=True)
        if _child(scenario, where, kill_at) == 0:
            break
        recover(where)
        state = _snapshot(where)
        assert state in (old, new), f"killed at rename {kill_at}: a mix of old and new"
        assert leftovers(where) == [], f"killed at rename {kill_at}: leftovers remain"
    else:
        pytest.fail("the commit never finished")
    assert kill_at > 2  # the commit has several renames and each was interrupted once


def test_the_next_write_cleans_leftovers_of_ended_programs(tmp_path):
    from napari_movierecon.io.atomic import sibling

    ended = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True
    )
    pid = ended.stdout.decode().strip()
    mine = sibling(tmp_path / "a.npy", "tmp").name
    stale = tmp_path / mine.replace(f"-{os.getpid()}@", f"-{pid}@")
    stale.write_bytes(b"half")
    foreign = tmp_path / "b.npy.tmp-0123abcd"  # no owner recorded: only reported
    foreign.write_bytes(b"?")
    with pytest.warns(UserWarning, match="cannot attribute"):
        atomic_write(tmp_path / "c.npy", lambda handle: handle.write(b"new"), overwrite=False)
    assert not stale.exists() and foreign.exists()
    assert (tmp_path / "c.npy").read_bytes() == b"new"
