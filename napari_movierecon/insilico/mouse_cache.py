"""The built in-silico mouse, cached on disk so that a second start is fast.

Building the sample mouse (drawing the population and calibrating it) takes ~12 s on
2 cores; its result is a few arrays and a noise level. They are stored in the user's
cache directory (platformdirs; ``MOVIERECON_CACHE_DIR`` overrides it) as one
safetensors file named by a key over everything that determines the mouse: the spec
(seed included), the package version, the source code of ``insilico/`` and the stimulus
images. A missing, corrupt, partial or foreign entry is rebuilt and rewritten
(atomically), never trusted; a cache that cannot be written only costs the rebuild.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
from safetensors.numpy import save

from napari_movierecon import __version__
from napari_movierecon.errors import MovieReconError
from napari_movierecon.insilico.images import image_checksums, image_pool
from napari_movierecon.insilico.mouse import InSilicoMouse, MouseSpec
from napari_movierecon.insilico.population import check_population
from napari_movierecon.io.tensor_file import read_record_file, write_record_file

FORMAT = "napari-movierecon-mouse-cache"
FORMAT_VERSION = 1
CACHE_ENV = "MOVIERECON_CACHE_DIR"


def cache_dir() -> Path:
    """Where built mice are kept: $MOVIERECON_CACHE_DIR, else the user cache directory."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("napari-movierecon"))


@lru_cache(maxsize=1)
def _code_digest() -> str:
    """SHA-256 over the source files of the simulation (any change gives a new key)."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def cache_key(spec: MouseSpec) -> str:
    """Hex key of everything that determines the mouse built from ``spec``."""
    identity = {
        "spec": spec.to_json(),
        "version": __version__,
        "code": _code_digest(),
        "images": image_checksums(image_pool("train") + image_pool("test")),
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def cache_path(spec: MouseSpec) -> Path:
    return cache_dir() / f"insilico-mouse-{cache_key(spec)[:32]}.safetensors"


def _load(path: Path, spec: MouseSpec, key: str) -> InSilicoMouse:
    """The mouse stored at ``path``; MovieReconError if it is not a complete entry for
    ``key``."""
    tensors, record = read_record_file(path, "numpy", FORMAT, FORMAT_VERSION, "mouse cache")
    if record.get("key") != key:
        raise MovieReconError(f"{path}: cached for another mouse or code version")
    try:
        drive_mean, drive_std = tensors.pop("drive_mean"), tensors.pop("drive_std")
        n = check_population(tensors)
        level = float(record["noise_level"])
    except (KeyError, TypeError, ValueError, MovieReconError) as err:
        raise MovieReconError(f"{path}: incomplete cache entry ({err})") from err
    if n != spec.population.n_neurons or drive_mean.shape != (n,) or drive_std.shape != (n,):
        raise MovieReconError(f"{path}: holds {n} neurons, the spec asks for another number")
    return InSilicoMouse(spec, tensors, drive_mean, drive_std, level)


def _store(mouse: InSilicoMouse, path: Path, key: str) -> None:
    tensors = {k: np.ascontiguousarray(v) for k, v in mouse.params.items()}
    tensors["drive_mean"] = mouse.drive_mean
    tensors["drive_std"] = mouse.drive_std
    record = {"key": key, "noise_level": mouse.noise_level, "spec": mouse.spec.to_json()}
    path.parent.mkdir(parents=True, exist_ok=True)
    write_record_file(path, save, tensors, record, FORMAT, FORMAT_VERSION, overwrite=True)


def cached_mouse(spec: MouseSpec | None = None) -> InSilicoMouse:
    """The mouse for ``spec`` (default: the sample mouse) from the disk cache, or built
    and then cached. The result equals ``InSilicoMouse.build(spec)``."""
    spec = spec or MouseSpec()
    key = cache_key(spec)
    path = cache_path(spec)
    if path.is_file():
        try:
            return _load(path, spec, key)
        except MovieReconError:
            pass  # corrupt, partial or stale: rebuilt and replaced below
    mouse = InSilicoMouse.build(spec)
    try:
        _store(mouse, path, key)
    except (OSError, MovieReconError) as err:
        warnings.warn(f"the in-silico mouse is not cached ({err})", stacklevel=2)
    return mouse
