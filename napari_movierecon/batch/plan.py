"""A batch plan: a TOML file, validated with every problem reported at once and its line.

    device = "cpu"                        # default "cpu"
    populations = ["all", "random:0.5"]   # neuron specs, as the CLI's --neurons
    masks = ["none", "mask.safetensors"]  # mask files from `movierecon mask`, or "none"
    seeds = [0]                           # config seeds; or repeats = 3 (seeds 0, 1, 2)

    [[recording]]                         # one table per recording
    source = "sample"                     # Sensorium folder or "sample"
    tier = "final_test_main"              # trials of a tier ...
    first = 5                             # ... the first k of them (default all)
    # ids = [10, 40]                      # or explicit trial indices

    [[encoder]]
    source = "sample"                     # checkpoint, ensemble folder or "sample"
    name = "ensemble"                     # label in tables (default: the source)

    [[preset]]
    name = "fast"                         # a named preset ...
    label = "fast-20"                     # (label in tables, default the name)
    iterations = 20                       # ... and any config field it overrides

    [workers]                             # LocalCluster sizing and fault tolerance
    n = 2                                 # worker processes
    threads = 1                           # torch threads per worker (one run at a time)
    allowed_failures = 3                  # a run whose worker dies is retried this often

    [cluster]                             # dask-jobqueue (--cluster KIND)
    kind = "slurm"                        # slurm | pbs | sge | lsf
    queue = "gpu"
    account = "lab"
    cores = 8
    memory = "32GB"
    walltime = "04:00:00"
    gpus = 1
    jobs = 4
    processes = 1
    job_extra = ["--constraint=a100"]

tomllib gives no line numbers, so ``line_of`` finds a key's line in the text.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from napari_movierecon.errors import MovieReconError
from napari_movierecon.reconstruct.config import PRESETS, ReconstructionConfig
from napari_movierecon.reconstruct.neurons import parse_population

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

CLUSTER_KINDS = ("slurm", "pbs", "sge", "lsf")
TOP_LEVEL = {
    "device",
    "populations",
    "masks",
    "seeds",
    "repeats",
    "recording",
    "encoder",
    "preset",
    "workers",
    "cluster",
}
NO_MASK = "none"


class PlanError(MovieReconError):
    """A plan that cannot run; ``problems`` lists every one as ``"line N: ..."``."""

    def __init__(self, path: Path | str, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"{path}: {len(problems)} problem(s):\n  " + "\n  ".join(problems))


@dataclass(frozen=True)
class RecordingEntry:
    """Trials of one recording: ``ids`` explicit, or those of ``tier`` (the first ``first``)."""

    source: str
    tier: str | None
    ids: tuple[int, ...] | None
    first: int | None
    line: int


@dataclass(frozen=True)
class EncoderEntry:
    source: str
    name: str
    line: int


@dataclass(frozen=True)
class PresetEntry:
    """A named preset plus the config fields it overrides; ``config`` is validated."""

    label: str
    config: ReconstructionConfig
    line: int


@dataclass(frozen=True)
class ClusterOptions:
    """dask-jobqueue settings: ``cores``/``memory`` per job, ``walltime`` HH:MM:SS,
    ``gpus`` per job, ``jobs`` to start, ``processes`` (workers) per job."""

    kind: str | None = None
    queue: str | None = None
    account: str | None = None
    cores: int = 1
    memory: str = "4GB"
    walltime: str = "01:00:00"
    gpus: int = 0
    jobs: int = 1
    processes: int = 1
    job_extra: tuple[str, ...] = ()


@dataclass(frozen=True)
class WorkerOptions:
    """LocalCluster sizing (None: sized to the machine) and worker-death retries."""

    n: int | None = None
    threads: int | None = None
    allowed_failures: int = 3


@dataclass(frozen=True)
class Plan:
    path: Path
    recordings: tuple[RecordingEntry, ...]
    encoders: tuple[EncoderEntry, ...]
    presets: tuple[PresetEntry, ...]
    populations: tuple[str, ...] = ("all",)
    masks: tuple[str, ...] = (NO_MASK,)
    seeds: tuple[int, ...] = (0,)
    device: str = "cpu"
    workers: WorkerOptions = field(default_factory=WorkerOptions)
    cluster: ClusterOptions = field(default_factory=ClusterOptions)


def line_of(text: str, table: str | None, index: int = 0, key: str | None = None) -> int:
    """1-based line of ``key`` inside the ``index``-th ``[table]``/``[[table]]`` (or at the
    top level when ``table`` is None); the table's header line when the key is not found
    there (a value given inline), 1 when nothing matches."""
    lines = text.splitlines()
    start, end = 0, len(lines)
    if table is not None:
        header = re.compile(rf"^\s*\[\[?\s*{re.escape(table)}\s*\]\]?\s*(#.*)?$")
        found = [i for i, line in enumerate(lines) if header.match(line)]
        if index >= len(found):
            return 1
        start = found[index]
        end = next(
            (i for i in range(start + 1, len(lines)) if lines[i].lstrip().startswith("[")),
            len(lines),
        )
    elif key is not None:
        end = next((i for i, line in enumerate(lines) if line.lstrip().startswith("[")), end)
    if key is not None:
        pattern = re.compile(rf"^\s*\"?{re.escape(key)}\"?\s*=")
        for i in range(start, end):
            if pattern.match(lines[i]):
                return i + 1
    return start + 1


class _Checker:
    """Collects problems with their lines while a plan is read."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.problems: list[tuple[int, str]] = []

    def add(self, message: str, table: str | None, index: int = 0, key: str | None = None):
        self.problems.append((line_of(self.text, table, index, key), message))

    def typed(self, data: dict, key: str, kind, where: tuple, default=None, name: str = ""):
        """``data[key]`` if it is of ``kind`` (else a problem and ``default``)."""
        if key not in data:
            return default
        value = data[key]
        ok = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
        if not ok:
            label = name or getattr(kind, "__name__", "the right type")
            self.add(f"{key} must be {label}, got {value!r}", *where, key)
            return default
        return value


def load_plan(path: str | Path) -> Plan:
    """Read and validate the plan at ``path``; PlanError listing every problem otherwise."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise MovieReconError(f"{path}: cannot read the plan ({err.strerror or err})") from err
    return parse_plan(text, path)


def parse_plan(text: str, path: Path | str = "<plan>") -> Plan:
    """Validate the TOML ``text`` (named ``path`` in messages; relative file names in it
    are taken from the plan's folder)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise PlanError(path, [f"not valid TOML: {err}"]) from err
    base = Path(path).parent
    check = _Checker(text)
    for key in sorted(set(data) - TOP_LEVEL):
        message = f"unknown key {key!r} (known: {', '.join(sorted(TOP_LEVEL))})"
        if isinstance(data[key], dict):
            check.add(message, key)
        else:
            check.add(message, None, 0, key)
    top = (None, 0)
    device = check.typed(data, "device", str, top, "cpu", "a string such as 'cpu' or 'cuda'")
    populations = _populations(check, data, base)
    masks = _masks(check, data, base)
    seeds = _seeds(check, data)
    recordings = _tables(check, data, "recording", _recording, base)
    encoders = _tables(check, data, "encoder", _encoder, base)
    presets = _tables(check, data, "preset", _preset, device)
    workers = _workers(check, data.get("workers", {}))
    cluster = _cluster(check, data.get("cluster", {}))
    if check.problems:
        problems = [f"line {line}: {message}" for line, message in sorted(check.problems)]
        raise PlanError(path, problems)
    return Plan(
        path=Path(path),
        recordings=tuple(recordings),
        encoders=tuple(encoders),
        presets=tuple(presets),
        populations=tuple(populations),
        masks=tuple(masks),
        seeds=tuple(seeds),
        device=device,
        workers=workers,
        cluster=cluster,
    )


def _resolve(source: str, base: Path) -> str:
    """``"sample"`` as is; a relative path from the plan's folder."""
    if source == "sample" or Path(source).is_absolute():
        return source
    return str((base / source).resolve())


def _string_list(check: _Checker, data: dict, key: str, default: list[str]) -> list[str]:
    value = data.get(key, default)
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        check.add(f"{key} must be a non-empty list of strings, got {value!r}", None, 0, key)
        return []
    return value


def _populations(check: _Checker, data: dict, base: Path) -> list[str]:
    specs = []
    for spec in _string_list(check, data, "populations", ["all"]):
        kind, _, rest = spec.partition(":")
        if kind == "ids" and rest:
            resolved = _resolve(rest, base)
            if not Path(resolved).is_file():
                check.add(
                    f"population {spec!r}: no such neuron id file {resolved}",
                    None,
                    0,
                    "populations",
                )
            specs.append(f"ids:{resolved}")
            continue
        try:
            parse_population(spec)
        except MovieReconError as err:
            check.add(f"population {spec!r}: {err}", None, 0, "populations")
        specs.append(spec)
    return specs


def _masks(check: _Checker, data: dict, base: Path) -> list[str]:
    from napari_movierecon.reconstruct.masks.file import load_mask

    masks = []
    for entry in _string_list(check, data, "masks", [NO_MASK]):
        if entry == NO_MASK:
            masks.append(entry)
            continue
        resolved = _resolve(entry, base)
        try:
            load_mask(resolved)
        except MovieReconError as err:
            check.add(f"mask {entry!r}: {err}", None, 0, "masks")
        masks.append(resolved)
    return masks


def _seeds(check: _Checker, data: dict) -> list[int]:
    if "seeds" in data and "repeats" in data:
        check.add("give seeds or repeats, not both", None, 0, "repeats")
    if "repeats" in data:
        repeats = check.typed(data, "repeats", int, (None, 0), 1, "an integer")
        if repeats < 1:
            check.add(f"repeats must be >= 1, got {repeats}", None, 0, "repeats")
        return list(range(max(repeats, 1)))
    seeds = data.get("seeds", [0])
    if (
        not isinstance(seeds, list)
        or not seeds
        or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)
    ):
        check.add(f"seeds must be a non-empty list of integers, got {seeds!r}", None, 0, "seeds")
        return [0]
    if len(set(seeds)) != len(seeds):
        check.add("seeds lists a seed twice", None, 0, "seeds")
    return seeds


def _tables(check: _Checker, data: dict, name: str, read, context) -> list:
    """Each ``[[name]]`` table read by ``read(check, table, index, context)``."""
    tables = data.get(name)
    if tables is None:
        check.add(f"the plan needs at least one [[{name}]] table", None)
        return []
    if isinstance(tables, dict):
        tables = [tables]
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        check.add(f"{name} must be [[{name}]] tables", None, 0, name)
        return []
    entries = [read(check, table, k, context) for k, table in enumerate(tables)]
    return [entry for entry in entries if entry is not None]


def _unknown(check: _Checker, table: dict, known: set, name: str, index: int) -> None:
    for key in sorted(set(table) - known):
        check.add(
            f"[[{name}]] has an unknown key {key!r} (known: {', '.join(sorted(known))})",
            name,
            index,
            key,
        )


def _source(check: _Checker, table: dict, name: str, index: int, base: Path) -> str | None:
    source = check.typed(table, "source", str, (name, index), None, "a string")
    if source is None:
        if "source" not in table:
            check.add(f"[[{name}]] needs a source", name, index)
        return None
    resolved = _resolve(source, base)
    if resolved != "sample" and not Path(resolved).exists():
        check.add(f"[[{name}]] source {source!r}: no such file or folder", name, index, "source")
        return None
    return resolved


def _recording(check: _Checker, table: dict, index: int, base: Path) -> RecordingEntry | None:
    _unknown(check, table, {"source", "tier", "ids", "first"}, "recording", index)
    where = ("recording", index)
    source = _source(check, table, "recording", index, base)
    tier = check.typed(table, "tier", str, where, None, "a string")
    first = check.typed(table, "first", int, where, None, "an integer")
    ids = table.get("ids")
    if ids is not None and (
        not isinstance(ids, list)
        or not ids
        or not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in ids)
    ):
        check.add(f"ids must be a non-empty list of trial indices >= 0, got {ids!r}", *where, "ids")
        ids = None
    if first is not None and first < 1:
        check.add(f"first must be >= 1, got {first}", *where, "first")
    if "ids" in table and "tier" in table:
        check.add("give a tier (and first) or ids, not both", *where, "ids")
    if "ids" not in table and "tier" not in table:
        check.add("[[recording]] needs a tier or ids", *where)
    if source is None:
        return None
    line = line_of(check.text, "recording", index)
    return RecordingEntry(source, tier, None if ids is None else tuple(ids), first, line)


def _encoder(check: _Checker, table: dict, index: int, base: Path) -> EncoderEntry | None:
    _unknown(check, table, {"source", "name"}, "encoder", index)
    source = _source(check, table, "encoder", index, base)
    name = check.typed(table, "name", str, ("encoder", index), None, "a string")
    if source is None:
        return None
    label = name or (source if source == "sample" else Path(source).name)
    return EncoderEntry(source, label, line_of(check.text, "encoder", index))


def _preset(check: _Checker, table: dict, index: int, device: str) -> PresetEntry | None:
    where = ("preset", index)
    name = check.typed(table, "name", str, where, None, "a string")
    label = check.typed(table, "label", str, where, None, "a string")
    if name is None:
        if "name" not in table:
            check.add("[[preset]] needs a name", *where)
        return None
    if name not in PRESETS:
        check.add(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}", *where, "name")
        return None
    overrides = {k: v for k, v in table.items() if k not in ("name", "label")}
    config = None
    # The plan sets device and seeds for every run; "preset" is the name itself.
    known = set(PRESETS[name].to_json()) - {"preset", "device", "seed"}
    _unknown(check, overrides, known, "preset", index)
    try:
        config = PRESETS[name].replace(
            **{k: v for k, v in overrides.items() if k in known}, device=device
        )
    except (MovieReconError, TypeError) as err:
        check.add(f"preset {name!r}: {err}", *where, next(iter(overrides), None))
    if config is None:
        return None
    return PresetEntry(label or name, config, line_of(check.text, "preset", index))


def _workers(check: _Checker, table) -> WorkerOptions:
    if not isinstance(table, dict):
        check.add("workers must be a [workers] table", None, 0, "workers")
        return WorkerOptions()
    _unknown(check, table, {"n", "threads", "allowed_failures"}, "workers", 0)
    where = ("workers", 0)
    values = {}
    for key, low in (("n", 1), ("threads", 1), ("allowed_failures", 0)):
        value = check.typed(table, key, int, where, None, "an integer")
        if value is not None and value < low:
            check.add(f"{key} must be >= {low}, got {value}", *where, key)
        elif value is not None:
            values[key] = value
    return WorkerOptions(**values)


_WALLTIME = re.compile(r"^\d+:[0-5]\d:[0-5]\d$")
_MEMORY = re.compile(r"^\d+(\.\d+)?\s*(B|kB|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$")


def _cluster(check: _Checker, table) -> ClusterOptions:
    if not isinstance(table, dict):
        check.add("cluster must be a [cluster] table", None, 0, "cluster")
        return ClusterOptions()
    known = {f for f in ClusterOptions.__dataclass_fields__}
    _unknown(check, table, known, "cluster", 0)
    where = ("cluster", 0)
    values: dict = {}
    kind = check.typed(table, "kind", str, where, None, "a string")
    if kind is not None and kind not in CLUSTER_KINDS:
        check.add(f"kind must be one of {', '.join(CLUSTER_KINDS)}, got {kind!r}", *where, "kind")
    elif kind is not None:
        values["kind"] = kind
    for key in ("queue", "account"):
        value = check.typed(table, key, str, where, None, "a string")
        if value is not None:
            values[key] = value
    for key, low in (("cores", 1), ("gpus", 0), ("jobs", 1), ("processes", 1)):
        value = check.typed(table, key, int, where, None, "an integer")
        if value is not None and value < low:
            check.add(f"{key} must be >= {low}, got {value}", *where, key)
        elif value is not None:
            values[key] = value
    for key, pattern, example in (
        ("memory", _MEMORY, "'32GB'"),
        ("walltime", _WALLTIME, "'04:00:00'"),
    ):
        value = check.typed(table, key, str, where, None, "a string")
        if value is not None and not pattern.match(value):
            check.add(f"{key} must look like {example}, got {value!r}", *where, key)
        elif value is not None:
            values[key] = value
    extra = table.get("job_extra", [])
    if not isinstance(extra, list) or not all(isinstance(v, str) for v in extra):
        check.add(f"job_extra must be a list of strings, got {extra!r}", *where, "job_extra")
    else:
        values["job_extra"] = tuple(extra)
    if values.get("processes", 1) > values.get("cores", 1):
        check.add("processes must not exceed cores", *where, "processes")
    return ClusterOptions(**values)


def cluster_options(values: dict, where: str) -> ClusterOptions:
    """ClusterOptions from ``values`` (the [cluster] table's keys; None values ignored),
    checked as a plan's [cluster] table is; PlanError naming ``where`` otherwise."""
    check = _Checker("")
    options = _cluster(check, {k: v for k, v in values.items() if v is not None})
    if check.problems:
        raise PlanError(where, [message for _, message in check.problems])
    return options
