"""The benchmark's run log: slow runs are kept and, when resuming, not repeated."""

from __future__ import annotations

import pytest

from benchmarks.run_log import RunLog


def test_runs_are_appended_and_reused_only_when_resuming(tmp_path):
    path = tmp_path / "out" / "runs.jsonl"
    calls = []

    def compute():
        calls.append(1)
        return {"correlation": 0.5 + len(calls) / 10}

    key = {"preset": "bauer2025", "trial": 10, "config": {"lr": 1000.0}}
    first, reused = RunLog(path, resume=False).run(key, compute)
    assert (first, reused) == ({"correlation": 0.6}, False)

    # a later session, resuming: the same key (in any order) is read back, not rerun
    same_key = {"config": {"lr": 1000.0}, "trial": 10, "preset": "bauer2025"}
    again, reused = RunLog(path, resume=True).run(same_key, compute)
    assert (again, reused) == (first, True) and len(calls) == 1

    # other settings are a different run; without resume every run is repeated
    RunLog(path, resume=True).run({**key, "config": {"lr": 100.0}}, compute)
    RunLog(path, resume=False).run(key, compute)
    assert len(calls) == 3
    assert len(path.read_text().splitlines()) == 3


def test_a_damaged_log_is_named(tmp_path):
    path = tmp_path / "runs.jsonl"
    path.write_text('{"key": {}, "result": {}}\nnot json\n')
    with pytest.raises(SystemExit, match=r"runs.jsonl, line 2: not a run record"):
        RunLog(path, resume=True)
