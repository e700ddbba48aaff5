"""What the neurons said: recorded activity of chosen neurons next to the encoder's
prediction from the true movie and from a reconstruction, with per-neuron correlations.

Where the two predictions disagree is what the reconstruction got wrong, seen by
the neurons themselves. Correlations skip the encoder's first ``context_frames``
frames (no full history there), as every encoder score in this project does.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from napari_movierecon.correlation import row_correlation
from napari_movierecon.encoders.base import Encoder
from napari_movierecon.errors import MovieReconError
from napari_movierecon.io.atomic import atomic_write
from napari_movierecon.reconstruct.neurons import check_neuron_indices

CSV_COLUMNS = (
    "frame",
    "unit_id",
    "recorded",
    "predicted_from_truth",
    "predicted_from_reconstruction",
)


def predict_rates(
    encoder: Encoder,
    movie: np.ndarray,
    behavior: np.ndarray,
    neurons: np.ndarray,
) -> np.ndarray:
    """Predicted rates (n, T) float32 of ``neurons`` (n,) indices for ``movie`` (T, H, W)
    0..255 with ``behavior`` (4, T) (see ``encoders.base.behavior_input``), computed on
    the device the encoder is on."""
    movie = np.asarray(movie, dtype=np.float32)
    if movie.ndim != 3 or tuple(movie.shape[1:]) != tuple(encoder.frame_shape):
        raise MovieReconError(
            f"movie of shape {movie.shape} does not fit the encoder's (T, "
            f"{encoder.frame_shape[0]}, {encoder.frame_shape[1]}) frames"
        )
    if behavior.shape[-1] != movie.shape[0]:
        raise MovieReconError(
            f"behaviour has {behavior.shape[-1]} frames, the movie {movie.shape[0]}"
        )
    neurons = np.asarray(neurons, dtype=np.int64)
    device = next((p.device for p in encoder.parameters()), torch.device("cpu"))
    with torch.no_grad():
        rates = encoder(
            torch.from_numpy(np.array(movie, dtype=np.float32))[None].to(device),
            torch.from_numpy(np.ascontiguousarray(behavior, dtype=np.float32))[None].to(device),
        )[0]
        return rates[torch.from_numpy(neurons).to(device)].cpu().numpy().astype(np.float32)


@dataclass(frozen=True)
class NeuronActivity:
    """Traces of ``unit_ids`` (n,) over one trial of T frames.

    recorded, from_truth: (n, T) float32; from_reconstruction: (n, T) or None when
    there is no reconstruction yet; skip_frames: frames left out of correlations;
    iteration: the reconstruction's iteration the prediction belongs to (or None).
    """

    unit_ids: np.ndarray
    recorded: np.ndarray
    from_truth: np.ndarray
    from_reconstruction: np.ndarray | None
    skip_frames: int
    iteration: int | None = None

    def correlations(self) -> dict[str, np.ndarray]:
        """Per neuron (n,) Pearson correlations over frames ``skip_frames``..T-1:
        recorded vs each prediction, and between the two predictions."""
        s = self.skip_frames
        out = {"recorded_vs_truth": row_correlation(self.recorded[:, s:], self.from_truth[:, s:])}
        if self.from_reconstruction is not None:
            recon = self.from_reconstruction[:, s:]
            out["recorded_vs_reconstruction"] = row_correlation(self.recorded[:, s:], recon)
            out["truth_vs_reconstruction"] = row_correlation(self.from_truth[:, s:], recon)
        return out

    def csv_text(self) -> str:
        """One row per (frame, neuron) with the ``CSV_COLUMNS``; an empty field where
        there is no reconstruction."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        n, frames = self.recorded.shape
        for t in range(frames):
            for i in range(n):
                recon = "" if self.from_reconstruction is None else self.from_reconstruction[i, t]
                writer.writerow(
                    [t, int(self.unit_ids[i]), self.recorded[i, t], self.from_truth[i, t], recon]
                )
        return buffer.getvalue()


def neuron_activity(
    encoder: Encoder,
    movie: np.ndarray,
    responses: np.ndarray,
    behavior: np.ndarray,
    neurons: np.ndarray,
    reconstruction: np.ndarray | None = None,
    from_truth: np.ndarray | None = None,
    iteration: int | None = None,
) -> NeuronActivity:
    """Activity of ``neurons`` (n,) indices in one trial: ``responses`` (N, T) recorded,
    predictions for the true ``movie`` (T, H, W) (or the given ``from_truth`` (n, T),
    computed once per trial) and for ``reconstruction`` (T, H, W) if given."""
    neurons = check_neuron_indices(neurons, encoder.n_neurons)
    if from_truth is None:
        from_truth = predict_rates(encoder, movie, behavior, neurons)
    recon = None
    if reconstruction is not None:
        recon = predict_rates(encoder, reconstruction, behavior, neurons)
    return NeuronActivity(
        unit_ids=np.asarray(encoder.unit_ids)[neurons],
        recorded=np.asarray(responses, dtype=np.float32)[neurons],
        from_truth=from_truth,
        from_reconstruction=recon,
        skip_frames=int(encoder.context_frames),
        iteration=iteration,
    )


def write_activity_csv(activity: NeuronActivity, path: str | os.PathLike) -> Path:
    """Write ``activity.csv_text()`` to ``path`` atomically (replacing it)."""
    path = Path(path)
    text = activity.csv_text().encode("utf-8")
    atomic_write(path, lambda handle: handle.write(text), overwrite=True, error=MovieReconError)
    return path
