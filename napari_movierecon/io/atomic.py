"""The one write path: every file and folder this program writes goes through here.

Guarantees (each function says which it gives):

* **All or nothing.** Content is written to a temporary sibling (same folder, so
  the same file system), flushed and fsynced, and only then moved into place by
  one ``link``/``rename``. A reader never sees a half-written file or folder.
* **Create-if-absent cannot race.** Without ``overwrite`` a file is published
  with ``os.link(temp, target)``, which fails if ``target`` exists (the kernel
  decides, not an earlier ``exists()`` check), and a folder with one
  ``rename`` that fails onto a non-empty folder. Of two processes saving the
  same new path exactly one succeeds; the other gets ``TargetExists``.
* **Only our kind of thing is replaced.** ``overwrite`` replaces regular files,
  and folders this program wrote (they hold a ``MARKER`` file). Device nodes,
  FIFOs, sockets, symbolic links (their targets are never followed) and
  foreign folders are refused.
* **Multi-file commits leave the old set or the new set.** A set of files (an
  export and its sidecar) or a folder replacing an old one is committed with a
  *redo journal*: once every new file is complete, a journal
  ``<target>.commit-<owner>-<hex>`` listing the moves is written (itself
  atomically), then the renames run, then the journal is deleted. A crash
  before the journal exists leaves the old set (plus temporary leftovers); a
  crash after it is finished forward by ``recover`` on the next write into that
  folder, which replays the journal's remaining moves (they are idempotent).
* **Leftovers are recognised.** Temporary names are
  ``<name>.<tag>-<pid>@<host>-<8 hex>`` with tag ``tmp`` (a file being
  written), ``partial`` (a folder being written), ``old`` (a folder being
  replaced) or ``commit`` (a journal). ``recover(folder)`` replays journals and
  deletes leftovers whose process (``pid`` on this host) is gone; leftovers it
  cannot attribute (another host, older names) are reported, never deleted.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import json
import os
import re
import secrets
import shutil
import socket
import stat
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO

import numpy as np

from napari_movierecon.errors import MovieReconError, RecordingError

# Present in every folder ``staged_directory`` writes: such a folder may be replaced.
MARKER = ".movierecon-folder"
TAGS = ("tmp", "partial", "old", "commit")
_HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]
_LEFTOVER = re.compile(
    r"^(?P<target>.+)\.(?P<tag>tmp|partial|old|commit)-"
    r"(?:(?P<pid>\d+)@(?P<host>[0-9a-f]{8})-)?[0-9a-f]{8}$"
)


class TargetExists(MovieReconError):
    """A target exists and replacing it was not asked for (``path``: the target)."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"{path}: already exists; pass overwrite=True / --overwrite")
        self.path = path


@functools.cache
def _exists_type(error: type[MovieReconError]) -> type[TargetExists]:
    """TargetExists that is also an ``error`` (a CheckpointError for checkpoints, ...)."""
    if issubclass(TargetExists, error):
        return TargetExists
    return type(f"{error.__name__}TargetExists", (TargetExists, error), {})


def exists_error(path: Path, error: type[MovieReconError] = MovieReconError) -> TargetExists:
    """The error for an existing target: a TargetExists and an ``error``."""
    return _exists_type(error)(path)


def sibling(path: Path, tag: str) -> Path:
    """A fresh temporary name next to ``path``: ``<name>.<tag>-<pid>@<host>-<8 hex>``."""
    return path.with_name(f"{path.name}.{tag}-{os.getpid()}@{_HOST}-{secrets.token_hex(4)}")


def _reason(err: BaseException) -> str:
    return err.strerror if isinstance(err, OSError) and err.strerror else str(err)


# ---------------------------------------------------------------- targets


def check_target(
    path: str | os.PathLike,
    overwrite: bool,
    error: type[MovieReconError] = MovieReconError,
    folder: bool = False,
) -> Path:
    """Refuse ``path`` early when writing there must fail: the one "may I write here" check.

    A file target (``folder=False``) must be absent or, with ``overwrite``, a regular
    file, in an existing folder. A folder target must be absent, empty, or with
    ``overwrite`` a folder this program wrote. Symbolic links, device nodes, FIFOs
    and sockets are always refused. Raises ``TargetExists`` or ``error`` naming
    ``path``; returns it as a Path.
    """
    path = Path(path)
    if not str(path) or path.name in ("", ".", ".."):
        raise error(f"{str(path)!r}: not a usable output path")
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        info = None
    except OSError as err:
        verb = "cannot write here" if folder else "cannot save"
        raise error(f"{path}: {verb} ({_reason(err)})") from err
    if info is None:
        parent = path.parent
        if not folder and not parent.is_dir():
            what = "is not a folder" if parent.exists() else "does not exist"
            raise error(f"{path}: cannot save, the folder {parent} {what}")
        return path
    if stat.S_ISLNK(info.st_mode):
        raise error(f"{path}: is a symbolic link; name the file it points to instead")
    if folder:
        if not stat.S_ISDIR(info.st_mode):
            raise error(f"{path}: exists and is not a folder")
        if _empty(path):
            return path
        if not overwrite:
            raise exists_error(path, error)
        if not _ours(path):
            raise error(
                f"{path}: is not a folder this program wrote (no {MARKER}); "
                "it is not replaced, remove it yourself or choose another path"
            )
        return path
    if stat.S_ISDIR(info.st_mode):
        raise error(f"{path}: is a folder")
    if not stat.S_ISREG(info.st_mode):
        raise error(f"{path}: is not a regular file (a device, FIFO or socket); not replaced")
    if not overwrite:
        raise exists_error(path, error)
    return path


# What folders written before the marker existed hold: a Sensorium layout, an ensemble.
_LEGACY_LAYOUTS = (re.compile(r"data|meta"), re.compile(r"member_\d+\.safetensors"))


def _ours(folder: Path) -> bool:
    """Whether ``folder`` was written by this program (its marker, or a layout it writes)."""
    if (folder / MARKER).is_file():
        return True
    try:
        names = os.listdir(folder)
    except OSError:
        return False
    return any(all(layout.fullmatch(name) for name in names) for layout in _LEGACY_LAYOUTS)


def _empty(folder: Path) -> bool:
    try:
        with os.scandir(folder) as entries:
            return next(entries, None) is None
    except OSError:
        return False


def _fsync_folder(folder: Path) -> None:
    """Make renames in ``folder`` durable (not possible on every platform)."""
    with suppress(OSError, AttributeError):
        handle = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)


def _discard(path: Path) -> None:
    """Remove a temporary file or folder if it is there."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with suppress(OSError):
            path.unlink(missing_ok=True)


# ---------------------------------------------------------------- files


def fill(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Create the new file ``path``, fill it with ``write(handle)``, flush and fsync."""
    with open(path, "xb") as handle:
        write(handle)
        handle.flush()
        os.fsync(handle.fileno())


def _sync_file(path: Path) -> None:
    """fsync a file another program (ffmpeg) wrote."""
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _publish(tmp: Path, final: Path, overwrite: bool, error: type[MovieReconError]) -> None:
    """Move the complete file ``tmp`` to ``final``: replace, or create-if-absent."""
    if overwrite:
        check_target(final, overwrite=True)
        os.replace(tmp, final)
        return
    try:
        os.link(tmp, final)
    except FileExistsError as err:
        raise exists_error(final, error) from err
    except OSError as err:
        if err.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
            raise
        # No hard links on this file system: reserve the name exclusively, then replace.
        os.close(os.open(final, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        os.replace(tmp, final)
        return
    os.unlink(tmp)


@contextmanager
def staged_files(
    targets: Sequence[str | os.PathLike],
    overwrite: bool = False,
    error: type[MovieReconError] = MovieReconError,
) -> Iterator[list[Path]]:
    """Yield one temporary path per target, all in the targets' folder; when the block
    succeeds they are committed together (old set or new set, see the module docstring).

    The block creates each temporary file (``fill`` or an external writer). Existing
    targets are replaced only with ``overwrite`` and only when they are regular files.
    On failure every temporary file is removed and the targets are untouched. OSErrors
    and ValueErrors become ``error`` naming the first target.
    """
    finals = [Path(target) for target in targets]
    if not finals or len({final.parent for final in finals}) != 1:
        raise ValueError("staged_files needs targets in one folder")
    for final in finals:
        check_target(final, overwrite, error)
    recover(finals[0].parent)
    temps = [sibling(final, "tmp") for final in finals]
    try:
        yield temps
        for tmp in temps:
            _sync_file(tmp)
        if len(finals) == 1:
            _publish(temps[0], finals[0], overwrite, error)
        else:
            _commit_set(list(zip(temps, finals, strict=True)), overwrite, error)
        _fsync_folder(finals[0].parent)
    except (OSError, ValueError) as err:
        raise error(f"{finals[0]}: cannot save ({_reason(err)})") from err
    finally:
        for tmp in temps:
            _discard(tmp)


def atomic_write(
    path: str | os.PathLike,
    write: Callable[[BinaryIO], None],
    *,
    overwrite: bool,
    error: type[MovieReconError] = RecordingError,
) -> Path:
    """Write the file ``path`` all-or-nothing with ``write(handle)``.

    ``overwrite=False``: create-if-absent (``TargetExists`` if it exists, also when
    another process created it meanwhile). ``overwrite=True``: replace a regular file.
    Unwritable locations (and ValueErrors raised by ``write``) become ``error``
    naming ``path``.
    """
    with staged_files([path], overwrite, error) as (tmp,):
        fill(tmp, write)
    return Path(path)


def atomic_save_npy(path: str | os.PathLike, array: np.ndarray, overwrite: bool = True) -> None:
    """Save ``array`` as a .npy file at ``path`` atomically (never pickled); object
    arrays and unwritable locations raise a RecordingError naming ``path``."""
    atomic_write(
        path,
        lambda handle: np.save(handle, np.asarray(array), allow_pickle=False),
        overwrite=overwrite,
    )


# ---------------------------------------------------------------- journals


def _write_journal(target: Path, entry: dict) -> Path:
    journal = sibling(target, "commit")
    data = json.dumps(entry).encode()
    fill(journal, lambda handle: handle.write(data))
    _fsync_folder(target.parent)
    return journal


def _commit_set(
    moves: list[tuple[Path, Path]], overwrite: bool, error: type[MovieReconError]
) -> None:
    """Move complete temporaries to their targets (one folder) under a redo journal.

    A crash after the journal is written is finished forward by ``recover``; an
    exception (full disk, a target created meanwhile) puts the old files back from
    hard-linked ``old`` copies before it propagates.
    """
    mode = "replace" if overwrite else "create"
    names = [[tmp.name, final.name] for tmp, final in moves]
    journal = _write_journal(moves[0][1], {"mode": mode, "moves": names})
    placed: list[tuple[Path, Path | None]] = []  # targets in place, with their old copy
    backups: list[Path] = []
    try:
        for tmp, final in moves:
            backup = None
            if overwrite:
                check_target(final, True, error)
                if os.path.lexists(final):
                    backup = sibling(final, "old")
                    os.link(final, backup)
                    backups.append(backup)
                os.replace(tmp, final)
            else:
                try:
                    os.link(tmp, final)
                except FileExistsError as err:
                    raise exists_error(final, error) from err
            placed.append((final, backup))
    except BaseException:
        for final, backup in reversed(placed):
            with suppress(OSError):
                if backup is not None:
                    os.replace(backup, final)
                else:
                    final.unlink()
        for path in [*backups, journal]:
            _discard(path)
        raise
    journal.unlink()
    _fsync_folder(moves[0][1].parent)
    for path in backups:
        _discard(path)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _replay(journal: Path) -> None:
    """Finish the moves of a stale journal (each step checks what is already done)."""
    entry = json.loads(journal.read_text())
    folder = journal.parent
    if entry["mode"] == "folder":
        staging, final, old = (folder / entry[key] for key in ("staging", "final", "old"))
        if staging.is_dir():
            if final.exists() and not old.exists():
                os.rename(final, old)
            os.rename(staging, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        for tmp_name, final_name in entry["moves"]:
            tmp, final = folder / tmp_name, folder / final_name
            if not tmp.exists():
                continue
            if entry["mode"] == "replace":
                os.replace(tmp, final)
            else:
                if not final.exists():
                    os.link(tmp, final)
                tmp.unlink()
    journal.unlink()
    _fsync_folder(folder)


# ---------------------------------------------------------------- leftovers


def _owner_gone(pid: str | None, host: str | None) -> bool:
    """Whether the process that made a leftover has certainly ended (same host only)."""
    if pid is None or host != _HOST or os.name == "nt":
        return False
    if int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


def leftovers(folder: str | os.PathLike) -> list[Path]:
    """Temporary names of this module (see the module docstring) in ``folder``."""
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    return sorted(Path(folder) / name for name in names if _LEFTOVER.match(name))


def recover(folder: str | os.PathLike) -> list[str]:
    """Finish or clean what crashed writers left in ``folder``; returns what was done.

    Journals of ended processes are replayed first (their commits complete), then
    their ``tmp``/``partial``/``old`` leftovers are deleted. Leftovers of running
    processes are left alone; those that cannot be attributed are reported with a
    warning naming them. Never raises for a folder it cannot read or clean.
    """
    found = leftovers(folder)
    done: list[str] = []
    unknown: list[Path] = []
    journals = [p for p in found if _LEFTOVER.match(p.name)["tag"] == "commit"]
    for path in journals + [p for p in found if p not in journals]:
        match = _LEFTOVER.match(path.name)
        if not _owner_gone(match["pid"], match["host"]):
            if match["pid"] is None or match["host"] != _HOST:
                unknown.append(path)
            continue
        try:
            if match["tag"] == "commit":
                _replay(path)
                done.append(f"finished the interrupted commit {path.name}")
            elif os.path.lexists(path):
                _discard(path)
                done.append(f"removed the leftover {path.name}")
        except (OSError, ValueError, KeyError, TypeError) as err:
            unknown.append(path)
            done.append(f"could not clean {path.name} ({_reason(err)})")
    if unknown:
        warnings.warn(
            f"{folder}: leftovers of interrupted writes that this run cannot attribute "
            f"(remove them once no other program writes there): "
            f"{', '.join(p.name for p in unknown)}",
            stacklevel=2,
        )
    return done


# ---------------------------------------------------------------- folders


def _make_staging(out_dir: Path, error: type[MovieReconError]) -> Path:
    """Create the parent folders and an empty ``<out_dir>.partial-...`` sibling."""
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = sibling(out_dir, "partial")
        staging.mkdir()
        (staging / MARKER).touch()
        return staging
    except OSError as err:
        raise error(f"{out_dir}: cannot write here ({_reason(err)})") from err


def _commit_folder(
    staging: Path, out_dir: Path, overwrite: bool, error: type[MovieReconError]
) -> None:
    """Move the complete folder ``staging`` to ``out_dir`` (see the module docstring)."""
    if not os.path.lexists(out_dir) or _empty(out_dir):
        try:
            os.rename(staging, out_dir)  # fails onto a non-empty folder: no race
        except OSError as err:
            if err.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
            raise exists_error(out_dir, error) from err
        return
    check_target(out_dir, overwrite, error, folder=True)
    old = sibling(out_dir, "old")
    journal = _write_journal(
        out_dir, {"mode": "folder", "staging": staging.name, "final": out_dir.name, "old": old.name}
    )
    os.rename(out_dir, old)
    os.rename(staging, out_dir)
    journal.unlink()
    _fsync_folder(out_dir.parent)
    shutil.rmtree(old, ignore_errors=True)


@contextmanager
def staged_directory(
    out_dir: str | os.PathLike,
    overwrite: bool = False,
    error: type[MovieReconError] = RecordingError,
) -> Iterator[Path]:
    """Yield an empty temporary folder that becomes ``out_dir`` when the block succeeds.

    The temporary folder is ``<out_dir>.partial-...``. If the block raises, it is
    deleted and ``out_dir`` is untouched. An existing non-empty ``out_dir`` needs
    ``overwrite=True``, must be a folder this program wrote (``MARKER``) and is
    replaced only once the new folder is complete, under a journal (old or new
    folder after a crash, see the module docstring). Missing parent folders are
    created. Raises ``TargetExists`` or ``error`` naming ``out_dir``.
    """
    out_dir = Path(out_dir)
    check_target(out_dir, overwrite, error, folder=True)
    if out_dir.parent.is_dir():
        recover(out_dir.parent)
    staging = _make_staging(out_dir, error)
    try:
        yield staging
        try:
            _commit_folder(staging, out_dir, overwrite, error)
        except TargetExists:
            raise
        except OSError as err:
            raise error(f"{out_dir}: cannot write here ({_reason(err)})") from err
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
