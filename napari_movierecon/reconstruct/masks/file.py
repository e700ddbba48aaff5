"""The mask and its file: an alpha map (H, W) float32 in [0, 1], the thresholds that cut
the update and evaluation masks from it, and one safetensors file per mask.

``save_mask`` / ``load_mask`` keep the ``alpha`` array plus a JSON record (metadata key
``movierecon``) of how it was made; ``cut_masks`` cuts a saved mask at a config's
thresholds for a run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from safetensors.numpy import save

from napari_movierecon.errors import MovieReconError
from napari_movierecon.io.atomic import check_target
from napari_movierecon.io.tensor_file import read_record_file, write_record_file
from napari_movierecon.reconstruct.config import ReconstructionConfig

FORMAT = "napari-movierecon-mask"
FORMAT_VERSION = 1
METHODS = ("transparency", "coverage")

UPDATE_THRESHOLD = ReconstructionConfig.update_mask_threshold
EVAL_THRESHOLD = ReconstructionConfig.eval_mask_threshold


@dataclass
class Mask:
    """An alpha map (H, W) float32 in [0, 1], how it was made (``method``) and the rest
    of its JSON ``record`` (encoder, recording, parameters, thresholds, timing)."""

    alpha: np.ndarray
    method: str
    record: dict = field(default_factory=dict)

    def update_mask(self, threshold: float | None = None) -> np.ndarray:
        """Pixels the reconstruction may change, (H, W) bool: alpha >= threshold
        (default: the record's ``update_threshold``, else 0.5)."""
        if threshold is None:
            threshold = self.record.get("update_threshold", UPDATE_THRESHOLD)
        return self.alpha >= threshold

    def eval_mask(self, threshold: float | None = None) -> np.ndarray:
        """Pixels scored, (H, W) bool: alpha >= threshold (default: the record's
        ``eval_threshold``, else 1.0)."""
        if threshold is None:
            threshold = self.record.get("eval_threshold", EVAL_THRESHOLD)
        return self.alpha >= threshold


def check_thresholds(update_threshold: float, eval_threshold: float) -> None:
    """Thresholds must lie in (0, 1], as in ReconstructionConfig."""
    for name, value in (("update", update_threshold), ("evaluation", eval_threshold)):
        if not 0 < value <= 1:
            raise MovieReconError(f"the {name} mask threshold must lie in (0, 1], got {value}")


def save_mask(mask: Mask, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write ``mask`` to ``path`` (one safetensors file) atomically; refuses to replace
    an existing file unless ``overwrite``."""
    path = check_target(path, overwrite)  # before checking alpha: say the first problem
    alpha = _checked_alpha(np.asarray(mask.alpha), path)
    record = {**mask.record, "method": mask.method}
    return write_record_file(
        path, save, {"alpha": alpha}, record, FORMAT, FORMAT_VERSION, overwrite=overwrite
    )


def load_mask(path: str | os.PathLike) -> Mask:
    """Read a file written by ``save_mask``; MovieReconError naming it otherwise."""
    arrays, record = read_record_file(path, "numpy", FORMAT, FORMAT_VERSION, "mask file")
    if "alpha" not in arrays:
        raise MovieReconError(f"{path}: not a mask file (no 'alpha' array)")
    alpha = _checked_alpha(arrays["alpha"], Path(path))
    return Mask(alpha=alpha, method=str(record.get("method")), record=record)


def cut_masks(
    path: str | os.PathLike, config: ReconstructionConfig, frame_shape: tuple[int, int]
) -> tuple[np.ndarray | None, np.ndarray, dict]:
    """The update mask (None when ``config.use_update_mask`` is off) and the evaluation
    mask, (H, W) bool, cut from the mask file ``path`` at the config's thresholds, and a
    record of them (file, method, pixels, the recording it was estimated on). Refuses a
    mask of another frame shape or one whose cut is empty."""
    mask = load_mask(path)
    if mask.alpha.shape != tuple(frame_shape):
        raise MovieReconError(
            f"{path}: the mask is {mask.alpha.shape} but the encoder's frames are "
            f"{tuple(frame_shape)}"
        )
    update = mask.update_mask(config.update_mask_threshold)
    evaluation = mask.eval_mask(config.eval_mask_threshold)
    for name, chosen, threshold in (
        ("update", update, config.update_mask_threshold),
        ("evaluation", evaluation, config.eval_mask_threshold),
    ):
        if not chosen.any():
            raise MovieReconError(f"{path}: its {name} mask (alpha >= {threshold}) is empty")
    record = {
        "mask_file": str(path),
        "mask_method": mask.method,
        "estimated_on": mask.record.get("recording"),
        "update_pixels": int(update.sum()) if config.use_update_mask else None,
        "eval_pixels": int(evaluation.sum()),
    }
    return (update if config.use_update_mask else None), evaluation, record


def _checked_alpha(alpha: np.ndarray, where: Path) -> np.ndarray:
    """``alpha`` as a C-contiguous float32 (H, W) array in [0, 1], or MovieReconError."""
    if alpha.ndim != 2 or 0 in alpha.shape:
        raise MovieReconError(f"{where}: alpha must be a 2-D (H, W) map, got shape {alpha.shape}")
    if alpha.dtype.kind not in "fiu":
        raise MovieReconError(f"{where}: alpha has non-numeric dtype {alpha.dtype}")
    alpha = np.ascontiguousarray(alpha, dtype=np.float32)
    if not np.isfinite(alpha).all():
        raise MovieReconError(f"{where}: alpha contains NaN or infinite values")
    if alpha.min() < 0 or alpha.max() > 1:
        raise MovieReconError(
            f"{where}: alpha must lie in [0, 1], got {alpha.min():g}..{alpha.max():g}"
        )
    return alpha
