"""One reconstruction job: a recorded trial, an encoder, a population, a config and
masks, checked together, run, and turned into a ``Reconstruction`` with the record
needed to reproduce it. The command line and the napari widgets both use it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from napari_movierecon.encoders.base import Encoder, behavior_input
from napari_movierecon.encoders.checkpoint import check_neurons
from napari_movierecon.errors import MovieReconError
from napari_movierecon.reconstruct.config import ReconstructionConfig
from napari_movierecon.reconstruct.engine import Snapshot, reconstruct
from napari_movierecon.reconstruct.holdout import split_holdout
from napari_movierecon.reconstruct.neurons import Selection
from napari_movierecon.reconstruct.results import Reconstruction
from napari_movierecon.recording import Recording, Trial


@dataclass(frozen=True)
class ReconstructionJob:
    """Everything one run needs. Masks are (H, W) bool or None; ``encoder_source`` says
    where the encoder came from (a path or "sample"), ``mask_record`` how the masks were
    given (see ``masks.cut_masks``). ``population`` is the chosen neurons with the
    population that chose them (recorded as its ``to_dict``, so the record reproduces it)."""

    recording: Recording
    trial: Trial
    encoder: Encoder
    encoder_source: str
    population: Selection
    config: ReconstructionConfig
    update_mask: np.ndarray | None = None
    eval_mask: np.ndarray | None = None
    mask_record: dict | None = None

    def __post_init__(self) -> None:
        if self.trial.responses is None:
            raise MovieReconError(
                f"{self.recording.name}: trial {self.trial.index} ({self.trial.tier}) "
                "has no responses to reconstruct from"
            )
        check_neurons(self.encoder, self.recording.neurons.ids, self.recording.name)
        if self.population.indices.max() >= self.encoder.n_neurons:
            raise MovieReconError(
                f"population {self.population.name!r} names neuron "
                f"{int(self.population.indices.max())}; the encoder has {self.encoder.n_neurons}"
            )

    def start(self, heartbeat: bool = False):
        """The engine's generator of snapshots (inputs checked before it returns)."""
        return reconstruct(
            self.encoder,
            self.trial.responses,
            self.population.indices,
            behavior_input(self.trial),
            self.config,
            truth=self.trial.movie,
            update_mask=self.update_mask,
            eval_mask=self.eval_mask,
            heartbeat=heartbeat,
        )

    def _stopping_record(self, snapshot: Snapshot) -> dict | None:
        """What the stopping rule did (None when it is off): the held-out neurons (indices
        into the encoder's neurons), the iteration whose movie was kept and the held-out
        loss at the last iteration."""
        if self.config.holdout_fraction is None:
            return None
        _, held = split_holdout(
            self.population.indices, self.config.holdout_fraction, self.config.seed
        )
        return {
            "held_out_neurons": held.tolist(),
            "chosen_iteration": snapshot.chosen_iteration,
            "stopped_early": snapshot.chosen_iteration is not None
            and snapshot.iteration < self.config.iterations,
            "last_holdout_loss": snapshot.holdout_loss,
        }

    def result(self, snapshot: Snapshot, completed: bool = True) -> Reconstruction:
        """The reconstruction at ``snapshot``, with its full record."""
        metrics = {
            "pixel_correlation": snapshot.pixel_correlation,
            "loss": snapshot.loss,
            "mask": "evaluation mask" if self.eval_mask is not None else "full frame",
            "skipped_frames": snapshot.skip_frames,
        }
        record = {
            "config": self.config.to_json(),
            "recording": self.recording.name,
            "trial": self.trial.index,
            "tier": self.trial.tier,
            "encoder": self.encoder_source,
            "population": self.population.population.to_dict(),
            "n_neurons": len(self.population),
            "masks": self.mask_record,
            "iterations_done": snapshot.iteration,
            "completed": completed,
            "stopping": self._stopping_record(snapshot),
            "metrics": metrics,
            "timings": {
                "seconds": snapshot.elapsed_s,
                "encoder_frames": snapshot.encoder_frames,
                "device": self.config.device,
                "threads": torch.get_num_threads(),
            },
            "torch_version": torch.__version__,
        }
        return Reconstruction(
            movie=snapshot.movie,
            neuron_ids=np.asarray(self.encoder.unit_ids)[self.population.indices],
            record=record,
            mask=self.eval_mask,
            truth=self.trial.movie,
            correlation_map=snapshot.correlation_map,
            frame_correlation=snapshot.frame_correlation,
        )
