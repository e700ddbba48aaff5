"""Save and reload an in-silico mouse's ground truth inside a Sensorium-layout folder.

Layout under ``<mouse>/meta/insilico/``:
- ``population.safetensors``: every per-neuron parameter plus the drive
  standardisation (``drive_mean``, ``drive_std``), (N,) or (N, 3) arrays;
- ``mouse.json``: the MouseSpec, the calibrated noise level, checksums of the
  image files the stimuli were cut from, and one record per written trial
  (original trial index, tier, clip, stimulus description);
- ``rates/<trial>.npy``: noise-free rates (N, T) float32, NaN-padded like responses.

Everything loads without unpickling (safetensors and JSON only), so the oracle
encoder can be rebuilt from the folder alone.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from napari_movierecon.errors import SimulationError
from napari_movierecon.insilico.mouse import InSilicoMouse, MouseSpec
from napari_movierecon.insilico.population import check_population

GROUND_TRUTH_DIR = Path("meta") / "insilico"
FORMAT_VERSION = 1


def save_ground_truth(mouse: InSilicoMouse, folder: Path, trial_records: list[dict]) -> None:
    """Write the mouse's parameters and ``trial_records`` under ``folder``/meta/insilico."""
    target = Path(folder) / GROUND_TRUTH_DIR
    target.mkdir(parents=True, exist_ok=True)
    tensors = {k: np.ascontiguousarray(v) for k, v in mouse.params.items()}
    tensors["drive_mean"] = mouse.drive_mean
    tensors["drive_std"] = mouse.drive_std
    save_file(tensors, str(target / "population.safetensors"))
    record = {"format_version": FORMAT_VERSION, **mouse.describe(), "trials": trial_records}
    (target / "mouse.json").write_text(json.dumps(record, indent=1))


def load_ground_truth(folder: str | Path) -> tuple[InSilicoMouse, dict]:
    """Rebuild the InSilicoMouse stored in a simulated folder; also return mouse.json's record."""
    target = Path(folder) / GROUND_TRUTH_DIR
    json_path, weights_path = target / "mouse.json", target / "population.safetensors"
    for path in (json_path, weights_path):
        if not path.is_file():
            raise SimulationError(
                f"{path}: missing; is this a folder written by movierecon simulate?"
            )
    try:
        record = json.loads(json_path.read_text())
        spec = MouseSpec.from_json(record["spec"])
        level = float(record["noise_level"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise SimulationError(f"{json_path}: unreadable ground-truth record ({exc})") from exc
    try:
        tensors = load_file(str(weights_path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise SimulationError(f"{weights_path}: corrupt safetensors file ({exc})") from exc
    try:
        drive_mean, drive_std = tensors.pop("drive_mean"), tensors.pop("drive_std")
        n = check_population(tensors)
    except (KeyError, SimulationError) as exc:
        raise SimulationError(f"{weights_path}: incomplete population ({exc})") from exc
    if n != spec.population.n_neurons or drive_mean.shape != (n,) or drive_std.shape != (n,):
        raise SimulationError(
            f"{weights_path}: holds {n} neurons but {json_path} describes "
            f"{spec.population.n_neurons}"
        )
    return InSilicoMouse(spec, tensors, drive_mean, drive_std, level), record


def stored_rates(folder: str | Path, trial: int, length: int) -> np.ndarray | None:
    """Noise-free rates (N, length) of written trial ``trial``, or None if the folder has none."""
    path = Path(folder) / GROUND_TRUTH_DIR / "rates" / f"{trial}.npy"
    if not path.is_file():
        return None
    try:
        rates = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise SimulationError(f"{path}: unreadable noise-free rates ({exc})") from exc
    if rates.ndim != 2 or rates.shape[1] < length:
        raise SimulationError(f"{path}: expected (N, >= {length}) rates, got {rates.shape}")
    return np.asarray(rates[:, :length], dtype=np.float32)
