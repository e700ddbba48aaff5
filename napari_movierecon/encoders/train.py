"""Training a FastEncoder on any Recording: Poisson loss, AdamW, warm-up + cosine schedule,
early stopping on validation correlation; deterministic given a seed (on one machine).

Only the training tier's responses drive the weights; the validation tier
(Sensorium's ``oracle``) picks the stopping epoch. Test tiers are never read.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from napari_movierecon.allocator import retain_freed_memory
from napari_movierecon.correlation import row_correlation
from napari_movierecon.encoders.checkpoint import check_neurons
from napari_movierecon.encoders.data import TrialCache, stack_crops
from napari_movierecon.encoders.fast import FastEncoder, FastEncoderConfig
from napari_movierecon.encoders.identity import encoder_identity
from napari_movierecon.encoders.positions import estimate_positions
from napari_movierecon.errors import MovieReconError
from napari_movierecon.recording import Recording

POISSON_EPS = 1e-8


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation hyperparameters (stored in every checkpoint's record)."""

    seed: int = 0
    epochs: int = 20
    batch_clips: int = 4
    crop_frames: int = 150
    learning_rate: float = 0.01
    weight_decay: float = 1e-4
    warmup_steps: int = 20
    patience: int = 3
    train_tier: str = "train"
    validation_tier: str = "oracle"
    max_train_trials: int | None = None
    max_validation_trials: int | None = 30
    position_trials: int = 40
    device: str = "cpu"

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_clips", "crop_frames", "patience", "position_trials"):
            if getattr(self, name) < 1:
                raise MovieReconError(f"TrainConfig.{name} must be >= 1")
        if self.learning_rate <= 0:
            raise MovieReconError("TrainConfig.learning_rate must be > 0")


@dataclass
class TrainingEvent:
    """Progress report passed to the callback after every step and every validation."""

    epoch: int
    step: int
    total_steps: int
    loss: float | None = None
    validation_correlation: float | None = None
    extra: dict = field(default_factory=dict)


def poisson_terms(rates: torch.Tensor, responses: torch.Tensor) -> torch.Tensor:
    """Poisson negative log-likelihood (up to a constant) of each response given its rate."""
    return rates - responses * torch.log(rates + POISSON_EPS)


def poisson_loss(rates: torch.Tensor, responses: torch.Tensor) -> torch.Tensor:
    """Mean Poisson negative log-likelihood (up to a constant) of responses given rates."""
    return poisson_terms(rates, responses).mean()


def per_neuron_correlation(predicted: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Pearson correlation over time per neuron for (N, T) arrays; 0 where a trace is constant."""
    return row_correlation(predicted, observed, constant=0.0)


def predict_trials(
    encoder: torch.nn.Module, cache: TrialCache, indices: np.ndarray, device: str = "cpu"
) -> tuple[np.ndarray, np.ndarray]:
    """Predicted and recorded responses (N, sum of T - context) over ``indices``, concatenated."""
    skip = encoder.context_frames
    predicted, observed = [], []
    with torch.no_grad():
        for index in indices:
            clip = cache.get(int(index))
            rates = encoder(clip.movie[None].to(device), clip.behavior[None].to(device))[0]
            predicted.append(rates[:, skip:].cpu().numpy())
            observed.append(clip.responses[:, skip:].numpy())
    return np.concatenate(predicted, axis=1), np.concatenate(observed, axis=1)


def _behavior_statistics(recording: Recording) -> tuple[np.ndarray, np.ndarray]:
    stats = recording.statistics()
    mean = np.concatenate([stats["behavior"]["mean"], stats["pupil_center"]["mean"]])
    std = np.concatenate([stats["behavior"]["std"], stats["pupil_center"]["std"]])
    return mean.astype(np.float32), np.maximum(std, 1e-3).astype(np.float32)


def _learning_rate_factor(step: int, warmup: int, total: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(total - warmup, 1)
    return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def build_encoder(
    recording: Recording,
    cache: TrialCache,
    train_indices: np.ndarray,
    model_config: FastEncoderConfig,
    config: TrainConfig,
) -> FastEncoder:
    """A FastEncoder initialised from the training data (positions, biases, behaviour stats)."""
    neurons = recording.neurons
    probe = FastEncoder(model_config, neurons.ids)
    positions = estimate_positions(
        cache, train_indices[: config.position_trials], probe.feature_shape, neurons.xyz[:, :2]
    )
    mean, std = _behavior_statistics(recording)
    encoder = FastEncoder(model_config, neurons.ids, mean, std, positions)
    mean_response = np.maximum(recording.statistics()["responses"]["mean"], 1e-3)
    with torch.no_grad():  # softplus(bias) = mean response at gray
        encoder.bias.copy_(torch.from_numpy(np.log(np.expm1(mean_response)).astype(np.float32)))
    return encoder


def _initial_config(
    model_config: FastEncoderConfig | None, init: FastEncoder | None, recording: Recording
) -> FastEncoderConfig:
    """The architecture to train: ``init``'s when starting from it (``model_config``, if
    given, must be the same), else ``model_config`` or the default."""
    if init is None:
        return model_config or FastEncoderConfig()
    if not isinstance(init, FastEncoder):
        kind = type(init).__name__
        raise MovieReconError(f"can only start training from a FastEncoder, not {kind}")
    check_neurons(init, recording.neurons.ids, recording.name)
    if model_config is not None and model_config != init.config:
        raise MovieReconError(
            f"the architecture asked for ({model_config}) is not the one of the encoder to "
            f"start from ({init.config})"
        )
    return init.config


def train_encoder(
    recording: Recording,
    model_config: FastEncoderConfig | None = None,
    config: TrainConfig | None = None,
    callback: Callable[[TrainingEvent], None] | None = None,
    cache: TrialCache | None = None,
    init: FastEncoder | None = None,
) -> tuple[FastEncoder, dict]:
    """Train one encoder; return it (eval mode, best validation epoch) and its training record.

    ``callback`` receives a TrainingEvent after each step and each validation;
    if it returns True, training stops after the current step (cancel). ``init``: start
    from a copy of this encoder's weights (same architecture and neurons) instead of the
    data-derived initialisation; it is left unchanged.
    """
    model_config = _initial_config(model_config, init, recording)
    config = config or TrainConfig()
    started = time.perf_counter()
    train = recording.trials_in(config.train_tier)[: config.max_train_trials]
    validation = recording.trials_in(config.validation_tier)[: config.max_validation_trials]
    if len(train) == 0 or len(validation) == 0:
        raise MovieReconError(
            f"{recording.name}: need trials in both '{config.train_tier}' ({len(train)}) and "
            f"'{config.validation_tier}' ({len(validation)})"
        )
    retain_freed_memory()  # every step frees and reallocates the same buffers
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    cache = cache or TrialCache(recording)
    if init is None:
        encoder = build_encoder(recording, cache, train, model_config, config)
    else:
        encoder = copy.deepcopy(init).requires_grad_(True)
    encoder = encoder.to(config.device)
    decay = [
        encoder.temporal.weight,
        encoder.spatial.weight,
        encoder.mix.weight,
        encoder.feature_weights,
    ] + ([encoder.block_weights] if model_config.readout_block else [])
    others = [p for p in encoder.parameters() if all(p is not d for d in decay)]
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": config.weight_decay},
            {"params": others, "weight_decay": 0.0},
        ],
        lr=config.learning_rate,
    )
    steps_per_epoch = math.ceil(len(train) / config.batch_clips)
    total_steps = steps_per_epoch * config.epochs
    skip = encoder.context_frames
    best_corr, best_state, best_epoch, step = -np.inf, None, 0, 0
    history = []
    cancelled = False
    for epoch in range(config.epochs):
        encoder.train()
        order = rng.permutation(train)
        for first in range(0, len(order), config.batch_clips):
            clips = [cache.get(int(i)) for i in order[first : first + config.batch_clips]]
            length = min(config.crop_frames, min(c.movie.shape[0] for c in clips))
            starts = rng.integers(0, [c.movie.shape[0] - length + 1 for c in clips])
            movie, behavior, responses = (
                t.to(config.device) for t in stack_crops(clips, starts, length)
            )
            for group in optimizer.param_groups:
                group["lr"] = config.learning_rate * _learning_rate_factor(
                    step, config.warmup_steps, total_steps
                )
            loss = poisson_loss(encoder(movie, behavior)[..., skip:], responses[..., skip:])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            if callback is not None and callback(
                TrainingEvent(epoch, step, total_steps, loss=float(loss.detach()))
            ):
                cancelled = True
                break
        encoder.eval()
        predicted, observed = predict_trials(encoder, cache, validation, config.device)
        correlation = per_neuron_correlation(predicted, observed)
        mean_corr = float(correlation.mean())
        history.append(mean_corr)
        if mean_corr > best_corr:
            best_corr, best_epoch = mean_corr, epoch
            best_state = copy.deepcopy(encoder.state_dict())
            best_per_neuron = correlation
        if callback is not None:
            callback(TrainingEvent(epoch, step, total_steps, validation_correlation=mean_corr))
        if cancelled or epoch - best_epoch >= config.patience:
            break
    encoder.load_state_dict(best_state)
    encoder.eval().requires_grad_(False)
    record = {
        "recording": recording.name,
        "train_tier": config.train_tier,
        "train_trials": [int(i) for i in train],
        "validation_tier": config.validation_tier,
        "validation_trials": [int(i) for i in validation],
        "train_config": asdict(config),
        "validation_correlation_mean": best_corr,
        "validation_correlation": np.round(best_per_neuron, 4).tolist(),
        "validation_history": history,
        "best_epoch": best_epoch,
        "initialised_from": None if init is None else encoder_identity(init),
        "steps": step,
        "cancelled": cancelled,
        "seconds": time.perf_counter() - started,
        "torch_version": torch.__version__,
    }
    return encoder, record
