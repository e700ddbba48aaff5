"""Natural grayscale images for the in-silico stimuli, read from the installed scikit-image wheel.

The photos and textures live in the ``skimage/data`` folder of the wheel, so
nothing is ever downloaded: the files are read directly (``skimage.data``
functions are avoided because some of them fetch files through pooch).

Two disjoint pools keep training and test stimuli apart: movies for test trials
are cut only from ``TEST_IMAGES``, everything else only from ``TRAIN_IMAGES``.
Synthetic charts (chessboard, colour wheel, logo, phantom), the binary horse
silhouette and the 102-pixel ``microaneurysms`` thumbnail are left out.
"""

from __future__ import annotations

import hashlib
import importlib.util
from functools import cache
from pathlib import Path
from typing import Literal

import imageio.v3 as iio
import numpy as np

from napari_movierecon.errors import SimulationError

TEST_IMAGES = ("chelsea", "coffee", "rocket", "gravel")
TRAIN_IMAGES = (
    "astronaut",
    "brick",
    "camera",
    "cell",
    "clock_motion",
    "coins",
    "grass",
    "hubble_deep_field",
    "ihc",
    "moon",
    "motorcycle_left",
    "motorcycle_right",
    "page",
    "retina",
    "text",
)
_JPEG_IMAGES = frozenset({"hubble_deep_field", "retina", "rocket"})
# ITU-R BT.709 luma weights (the ones skimage.color.rgb2gray uses).
LUMA_WEIGHTS = np.array([0.2125, 0.7154, 0.0721])


def image_pool(split: Literal["train", "test"]) -> tuple[str, ...]:
    """Names of the images reserved for ``split`` ("train" or "test")."""
    if split == "train":
        return TRAIN_IMAGES
    if split == "test":
        return TEST_IMAGES
    raise SimulationError(f"unknown image pool {split!r} (expected 'train' or 'test')")


def _data_dir() -> Path:
    """The ``data`` folder inside the installed scikit-image package (not imported)."""
    spec = importlib.util.find_spec("skimage")
    if spec is None or spec.origin is None:
        raise SimulationError("scikit-image is not installed: its data folder holds the images")
    return Path(spec.origin).parent / "data"


def image_path(name: str) -> Path:
    """Path of the file behind image ``name``; SimulationError if unknown or missing."""
    if name not in TRAIN_IMAGES and name not in TEST_IMAGES:
        known = ", ".join(TRAIN_IMAGES + TEST_IMAGES)
        raise SimulationError(f"unknown image {name!r} (known: {known})")
    path = _data_dir() / (name + (".jpg" if name in _JPEG_IMAGES else ".png"))
    if not path.is_file():
        raise SimulationError(f"image {name!r}: file {path} is missing")
    return path


def load_image(name: str) -> np.ndarray:
    """Luminance of image ``name``: (h, w) float64 gray levels in 0..255, read-only, cached."""
    return _read_luminance(image_path(name))


@cache
def _read_luminance(path: Path) -> np.ndarray:
    """(h, w) float64 0..255 luminance of a gray, RGB or RGBA 8-bit image file (alpha ignored)."""
    try:
        pixels = iio.imread(path)
    except Exception as err:  # imageio raises many types for unreadable files
        raise SimulationError(f"cannot read image file {path}: {err}") from err
    if pixels.ndim == 3:  # the weights sum to 1 up to rounding: clip the last-bit overshoot
        luminance = np.clip(pixels[..., :3].astype(np.float64) @ LUMA_WEIGHTS, 0.0, 255.0)
    elif pixels.ndim == 2:
        luminance = pixels.astype(np.float64)
    else:
        raise SimulationError(f"image file {path} has unexpected shape {pixels.shape}")
    luminance.flags.writeable = False
    return luminance


def image_checksums(names: tuple[str, ...] | list[str]) -> dict[str, str]:
    """SHA-256 hex digest of the file behind every image in ``names``, keyed by name."""
    return {name: _sha256(image_path(name)) for name in names}


@cache
def _sha256(path: Path) -> str:
    """SHA-256 hex digest of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()
