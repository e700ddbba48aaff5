"""Finished benchmark runs, one JSON line each, so slow runs can be spread over sessions.

A run is identified by a key (preset settings, encoder identity, clip, neurons, mask,
threads); with ``resume`` a run whose key is already in the file is read back instead
of being repeated. Every new run is appended as soon as it ends.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from collections.abc import Callable
from pathlib import Path


def files_digest(paths) -> str:
    """SHA-256 over the bytes of ``paths`` (sorted), first 16 hex digits."""
    digest = hashlib.sha256()
    for path in sorted(Path(p) for p in paths):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


class RunLog:
    """Runs in ``path`` (JSON lines: ``{"key": {...}, "result": {...}, "finished": ...}``)."""

    def __init__(self, path: Path, resume: bool) -> None:
        self.path = Path(path)
        self.done: dict[str, dict] = {}
        if resume and self.path.exists():
            for number, line in enumerate(self.path.read_text().splitlines(), 1):
                try:
                    entry = json.loads(line)
                    self.done[self._canonical(entry["key"])] = entry["result"]
                except (json.JSONDecodeError, KeyError, TypeError) as err:
                    message = f"{self.path}, line {number}: not a run record ({err})"
                    raise SystemExit(message) from None

    @staticmethod
    def _canonical(key: dict) -> str:
        return json.dumps(key, sort_keys=True)

    def run(self, key: dict, compute: Callable[[], dict]) -> tuple[dict, bool]:
        """(result, reused): the logged result of ``key`` when resuming, else ``compute()``
        appended to the log."""
        canonical = self._canonical(key)
        if canonical in self.done:
            return self.done[canonical], True
        result = compute()
        entry = {
            "key": json.loads(canonical),
            "result": result,
            "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as log:
            log.write(json.dumps(entry) + "\n")
        self.done[canonical] = result
        return result, False
