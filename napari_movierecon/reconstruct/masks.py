"""Where on the screen the neurons look: per-pixel alpha maps and the masks cut from them.

A mask is an "alpha" map (H, W) float32 in [0, 1]; the update mask (pixels the
reconstruction may change) is ``alpha >= update threshold`` (0.5) and the
evaluation mask (pixels scored) is ``alpha >= eval threshold`` (1.0), so the
evaluation mask always lies inside the update mask. Two ways to estimate alpha:

- ``transparency_mask``: the reference's (Bauer et al. 2025). The encoder sees
  ``movie * alpha + other_movie * (1 - alpha)``, where ``movie`` is a training
  trial's own movie and ``other_movie`` another training trial's; alpha starts
  at 1 and descends the Poisson loss of the recorded responses plus
  ``sparsity * mean(alpha)``, so it shrinks wherever swapping the movie does not
  hurt the prediction. Each step's per-frame gradient (T, H, W) is divided by its
  L2 norm, clipped to +-1, averaged over time, blurred with a Gaussian (sigma
  5 px) and applied with step 10; alpha is clipped to [0, 1]. Only
  ``train``-tier trials are ever used (masks are never estimated on the clips
  they are scored on). With a calibrated encoder the Poisson gradient at
  alpha = 1 is ~0 on average, so any sparsity leaves the well-covered plateau a
  little below 1 (~0.97 on the sample); the result is therefore rescaled so that
  ``TRANSPARENCY_LEVEL`` (0.95) x its 99th percentile maps to 1: the evaluation
  mask is the plateau, the update mask where alpha reaches half of it.
- ``coverage_mask``: a fast proxy. The mean over a few random smooth-noise movies
  of |d(sum of the selected neurons' predicted rates) / d(movie)|, averaged over
  frames and smoothed, scaled so that ``COVERAGE_LEVEL`` x its 99th percentile
  maps to 1 and clipped to [0, 1].

``save_mask`` / ``load_mask`` keep one mask per safetensors file: the ``alpha``
array plus a JSON record (metadata key ``movierecon``) of how it was made.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import save
from scipy.ndimage import gaussian_filter

from napari_movierecon.encoders.base import Encoder
from napari_movierecon.encoders.checkpoint import check_neurons, unit_ids_digest
from napari_movierecon.encoders.data import TrialCache
from napari_movierecon.encoders.ensemble import Ensemble
from napari_movierecon.encoders.train import poisson_loss
from napari_movierecon.errors import MovieReconError
from napari_movierecon.io.atomic import check_target
from napari_movierecon.io.tensor_file import read_record_file, write_record_file
from napari_movierecon.reconstruct.config import ReconstructionConfig
from napari_movierecon.recording import Recording

FORMAT = "napari-movierecon-mask"
FORMAT_VERSION = 1
METHODS = ("transparency", "coverage")
TRAIN_TIER = "train"
GRAY_LEVEL = 127.5

UPDATE_THRESHOLD = ReconstructionConfig.update_mask_threshold
EVAL_THRESHOLD = ReconstructionConfig.eval_mask_threshold

# Transparency defaults: the reference's protocol, plus our sparsity weight.
ITERATIONS = 1000
CLIP_FRAMES = 32
LEARNING_RATE = 10.0
BLUR_SIGMA = 5.0
GRADIENT_CLIP = 1.0
# Weight of mean(alpha) next to the Poisson loss (a mean over neurons x frames).
# Chosen on the sample mouse's training tier (see docs/reconstruction.md).
SPARSITY = 0.02
POOL_TRIALS = 16
# The optimised alpha of a calibrated encoder plateaus just below 1 where the
# neurons look (~0.97 on the sample), so it is rescaled: TRANSPARENCY_LEVEL x its
# 99th percentile maps to 1.
TRANSPARENCY_LEVEL = 0.95
SCALE_PERCENTILE = 99.0

# Coverage defaults.
COVERAGE_MOVIES = 4
COVERAGE_FRAMES = 32
COVERAGE_CONTRAST = 40.0
NOISE_SIGMA = (1.0, 2.0, 2.0)
COVERAGE_SMOOTHING = 2.0
COVERAGE_LEVEL = 0.15

Progress = Callable[[int, int], None]


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


# --------------------------------------------------------------------- files


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


# --------------------------------------------------------------- shared parts


def _members(encoder: Encoder | Sequence[Encoder]) -> list[Encoder]:
    """The encoders to use in turn: an Ensemble's members, or the encoder itself."""
    if isinstance(encoder, Ensemble):
        return list(encoder.members)
    if isinstance(encoder, Encoder):
        return [encoder]
    members = list(encoder)
    Ensemble(members)  # raises if the members predict different neurons
    return members


def _neuron_indices(neurons: np.ndarray | Sequence[int] | None, n_neurons: int) -> np.ndarray:
    """Checked, ascending int64 indices into the encoder's neurons (None = all)."""
    if neurons is None:
        return np.arange(n_neurons, dtype=np.int64)
    neurons = np.asarray(neurons)
    if neurons.size == 0:
        raise MovieReconError("the neuron selection is empty")
    if neurons.dtype.kind not in "iu":
        raise MovieReconError(f"neuron indices must be integers, got dtype {neurons.dtype}")
    neurons = neurons.astype(np.int64).ravel()
    if neurons.min() < 0 or neurons.max() >= n_neurons:
        raise MovieReconError(f"neuron indices must lie in 0..{n_neurons - 1}")
    if len(np.unique(neurons)) != neurons.size:
        raise MovieReconError("the neuron selection lists a neuron twice")
    return np.sort(neurons)


def encoder_identity(encoder: Encoder) -> dict:
    """What identifies an encoder in a record: its source (file, folder or class name),
    member count and the SHA-256 of its neuron ids."""
    return {
        "source": str(getattr(encoder, "source", type(encoder).__name__)),
        "members": len(encoder) if isinstance(encoder, Ensemble) else 1,
        "n_neurons": encoder.n_neurons,
        "unit_ids_sha256": unit_ids_digest(encoder.unit_ids),
    }


def _prepare(encoder, device: str) -> list[Encoder]:
    """Members on ``device``, in eval mode with frozen weights."""
    return [m.to(torch.device(device)).eval().requires_grad_(False) for m in _members(encoder)]


def _check_thresholds(update_threshold: float, eval_threshold: float) -> None:
    """Thresholds must lie in (0, 1], as in ReconstructionConfig."""
    for name, value in (("update", update_threshold), ("evaluation", eval_threshold)):
        if not 0 < value <= 1:
            raise MovieReconError(f"the {name} mask threshold must lie in (0, 1], got {value}")


def _report(progress: Progress | None, done: int, total: int) -> None:
    if progress is not None:
        progress(done, total)


# -------------------------------------------------------------- transparency


@dataclass(frozen=True)
class _Clip:
    """One training trial kept for the whole estimation: movie (T, H, W) 0..255,
    behaviour (4, T) and the selected neurons' responses (n, T) >= 0, float32 tensors."""

    index: int
    movie: torch.Tensor
    behavior: torch.Tensor
    responses: torch.Tensor


def _training_trials(recording: Recording, trials: Sequence[int] | None) -> np.ndarray:
    """Candidate trial indices (ascending): every ``train``-tier trial, or the given ones
    once each is checked to be a training trial."""
    train = recording.trials_in(TRAIN_TIER)
    if trials is None:
        chosen = train
    else:
        chosen = np.asarray([recording.check_index(i) for i in trials], dtype=np.int64)
        other = np.setdiff1d(chosen, train)
        if other.size:
            raise MovieReconError(
                f"{recording.name}: trials {other[:5].tolist()} are not in the '{TRAIN_TIER}' "
                "tier; masks are estimated on training trials only"
            )
    chosen = np.unique(chosen)
    if chosen.size < 2:
        raise MovieReconError(
            f"{recording.name}: a transparency mask needs at least 2 '{TRAIN_TIER}' trials "
            f"(one shown, another blended in), got {chosen.size}"
        )
    return chosen


class _TrialPool:
    """Up to ``size`` random candidate trials, each loaded on first use (a simulated trial
    costs ~0.4 s) and kept: movie and behaviour whole, responses of the ``neurons``
    only. A trial shorter than ``span`` frames is replaced by the next candidate."""

    def __init__(
        self,
        recording: Recording,
        candidates: np.ndarray,
        size: int,
        span: int,
        neurons: np.ndarray,
        rng: np.random.Generator,
        device: torch.device,
    ) -> None:
        order = [int(i) for i in rng.permutation(candidates)]
        self.slots, self.spare = order[:size], order[size:]
        self.recording = recording
        self.span = span
        self.cache = TrialCache(recording, cache_bytes=0)  # the pool keeps its own copies
        self.neurons = torch.from_numpy(neurons)
        self.device = device
        self.loaded: dict[int, _Clip] = {}

    def _load(self, index: int) -> _Clip | None:
        """Trial ``index`` as a _Clip, or None when it is too short."""
        if index not in self.loaded:
            clip = self.cache.get(index)
            if clip.movie.shape[0] < self.span:
                return None
            responses = clip.responses[self.neurons].clamp_min(0)
            self.loaded[index] = _Clip(
                index,
                clip.movie.to(self.device),
                clip.behavior.to(self.device),
                responses.to(self.device),
            )
        return self.loaded[index]

    def _replace(self, slot: int) -> None:
        """Swap a too-short trial for the next candidate, or drop its slot."""
        if self.spare:
            self.slots[slot] = self.spare.pop(0)
        else:
            del self.slots[slot]

    def draw(self, rng: np.random.Generator) -> tuple[_Clip, _Clip, int, int]:
        """A random shown trial, a different random trial to blend in, and the first frame
        of a random ``span``-frame segment of each."""
        while True:
            if len(self.slots) < 2:
                raise MovieReconError(
                    f"{self.recording.name}: fewer than 2 '{TRAIN_TIER}' trials have the "
                    f"{self.span} frames one clip needs (encoder context + clip frames)"
                )
            chosen = sorted(int(k) for k in rng.choice(len(self.slots), size=2, replace=False))
            clips = [self._load(self.slots[k]) for k in chosen]
            if all(clip is not None for clip in clips):
                break
            for k, clip in reversed(list(zip(chosen, clips, strict=True))):
                if clip is None:
                    self._replace(k)
        if rng.random() < 0.5:
            clips.reverse()
        shown, other = clips
        a = int(rng.integers(0, shown.movie.shape[0] - self.span + 1))
        b = int(rng.integers(0, other.movie.shape[0] - self.span + 1))
        return shown, other, a, b

    @property
    def used(self) -> list[int]:
        """Indices of the trials loaded so far, ascending."""
        return sorted(self.loaded)


def _alpha_gradient(
    member: Encoder,
    alpha: np.ndarray,
    draw: tuple[_Clip, _Clip, int, int],
    neurons: torch.Tensor,
    context: int,
    clip_frames: int,
    sparsity: float,
) -> tuple[np.ndarray, float]:
    """Per-frame gradient (context + clip_frames, H, W) of Poisson loss + ``sparsity`` *
    mean(alpha) on one drawn clip, and the Poisson loss.

    ``alpha`` (H, W) is repeated over the frames the encoder sees (the context and the
    clip, blended) so that each frame gets its own gradient; the loss covers the clip
    frames of ``neurons`` (indices into the encoder's output) against the shown
    trial's responses, with the shown trial's behaviour.
    """
    shown, other, a, b = draw
    span = context + clip_frames
    device = shown.movie.device
    frames = torch.from_numpy(alpha).to(device).expand(span, -1, -1).clone()
    frames.requires_grad_(True)
    blended = shown.movie[a : a + span] * frames + other.movie[b : b + span] * (1 - frames)
    rates = member(blended[None], shown.behavior[None, :, a : a + span])[0]
    rates = rates[neurons, context:]
    loss = poisson_loss(rates, shown.responses[:, a + context : a + span])
    (grad,) = torch.autograd.grad(loss + sparsity * frames.mean(), frames)
    return grad.cpu().numpy(), float(loss.detach())


def _step(alpha: np.ndarray, grad: np.ndarray, learning_rate: float, sigma: float) -> np.ndarray:
    """One update of alpha (H, W) from per-frame gradients (T, H, W): divided by their
    L2 norm, clipped to +-1, averaged over time, blurred with a Gaussian of ``sigma``
    px, times ``learning_rate``; alpha clipped to [0, 1]. A zero gradient changes
    nothing."""
    norm = float(np.sqrt(np.square(grad, dtype=np.float64).sum()))
    if norm == 0 or not np.isfinite(norm):
        return alpha
    step = np.clip(grad / norm, -GRADIENT_CLIP, GRADIENT_CLIP).mean(axis=0)
    if sigma > 0:
        step = gaussian_filter(step, sigma, mode="nearest")
    return np.clip(alpha - learning_rate * step, 0.0, 1.0).astype(np.float32)


def rescale(values: np.ndarray, level: float, percentile: float = SCALE_PERCENTILE) -> np.ndarray:
    """``values`` (H, W) >= 0 divided by ``level`` x their ``percentile``-th percentile and
    clipped to [0, 1] (float32): 1 wherever a value reaches ``level`` of that high
    percentile. All zeros when the percentile is 0."""
    scale = level * float(np.percentile(values, percentile))
    if not scale > 0:
        return np.zeros(values.shape, dtype=np.float32)
    return np.clip(values / scale, 0.0, 1.0).astype(np.float32)


def _check_transparency_args(iterations, clip_frames, learning_rate, blur_sigma, sparsity, pool):
    problems = []
    if iterations < 1:
        problems.append("iterations must be >= 1")
    if clip_frames < 1:
        problems.append("clip_frames must be >= 1")
    if not learning_rate > 0:
        problems.append("learning_rate must be > 0")
    if blur_sigma < 0 or sparsity < 0:
        problems.append("blur_sigma and sparsity must be >= 0")
    if pool < 2:
        problems.append("pool_trials must be >= 2")
    if problems:
        raise MovieReconError("invalid transparency mask settings: " + "; ".join(problems))


def _check_level(level: float) -> None:
    if not 0 < level <= 1:
        raise MovieReconError(f"the mask level must lie in (0, 1], got {level}")


def optimize_alpha(
    members: list[Encoder],
    pool: _TrialPool,
    neurons: torch.Tensor,
    iterations: int,
    rng: np.random.Generator,
    settings: dict,
    progress: Progress | None = None,
) -> tuple[np.ndarray, list[float]]:
    """The transparency loop: alpha (H, W) in [0, 1] from 1, and the Poisson loss of
    every iteration. Iteration k uses member k mod K on a fresh random draw from
    ``pool``. ``settings``: clip_frames, learning_rate, blur_sigma, sparsity."""
    context = max(m.context_frames for m in members)
    clip_frames = settings["clip_frames"]
    alpha = np.ones(tuple(members[0].frame_shape), dtype=np.float32)
    losses = []
    for iteration in range(iterations):
        member = members[iteration % len(members)]
        draw = pool.draw(rng)
        grad, loss = _alpha_gradient(
            member, alpha, draw, neurons, context, clip_frames, settings["sparsity"]
        )
        alpha = _step(alpha, grad, settings["learning_rate"], settings["blur_sigma"])
        losses.append(loss)
        _report(progress, iteration + 1, iterations)
    return alpha, losses


def transparency_mask(
    encoder: Encoder | Sequence[Encoder],
    recording: Recording,
    neurons: np.ndarray | Sequence[int] | None = None,
    *,
    iterations: int = ITERATIONS,
    seed: int = 0,
    clip_frames: int = CLIP_FRAMES,
    learning_rate: float = LEARNING_RATE,
    blur_sigma: float = BLUR_SIGMA,
    sparsity: float = SPARSITY,
    level: float = TRANSPARENCY_LEVEL,
    pool_trials: int = POOL_TRIALS,
    trials: Sequence[int] | None = None,
    device: str = "cpu",
    update_threshold: float = UPDATE_THRESHOLD,
    eval_threshold: float = EVAL_THRESHOLD,
    progress: Progress | None = None,
) -> Mask:
    """The reference's transparency mask (see the module docstring), estimated on
    ``recording``'s training trials.

    neurons: indices into the encoder's neurons used in the loss (default all).
    ``pool_trials`` random training trials (drawn from all of them, or from
    ``trials``, which must all be ``train``-tier) are loaded on first use and
    kept; each iteration draws one of them, a random ``clip_frames``-frame clip
    with the encoder's context frames before it, and a random segment of another
    pool trial to blend in. An ensemble's members are used in turn (iteration k
    uses member k mod K), so an iteration costs one member's forward+backward pass.
    The optimised alpha is finally rescaled (``rescale`` with ``level``) so that its
    plateau maps to 1.
    ``progress(done, total)`` is called after every iteration.
    """
    _check_transparency_args(
        iterations, clip_frames, learning_rate, blur_sigma, sparsity, pool_trials
    )
    _check_level(level)
    _check_thresholds(update_threshold, eval_threshold)
    members = _members(encoder)
    identity = encoder if isinstance(encoder, Encoder) else Ensemble(members)
    check_neurons(identity, recording.neurons.ids, recording.name)
    neurons = _neuron_indices(neurons, identity.n_neurons)
    candidates = _training_trials(recording, trials)
    if tuple(recording.frame_shape) != tuple(identity.frame_shape):
        raise MovieReconError(
            f"{recording.name}: frames are {tuple(recording.frame_shape)} but the encoder "
            f"expects {tuple(identity.frame_shape)}"
        )
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    torch_device = torch.device(device)
    members = _prepare(members, device)
    context = max(m.context_frames for m in members)
    span = context + clip_frames
    pool = _TrialPool(recording, candidates, pool_trials, span, neurons, rng, torch_device)
    settings = {
        "clip_frames": clip_frames,
        "learning_rate": learning_rate,
        "blur_sigma": blur_sigma,
        "sparsity": sparsity,
    }
    selected = torch.from_numpy(neurons).to(torch_device)
    raw, losses = optimize_alpha(members, pool, selected, iterations, rng, settings, progress)
    record = {
        **_identity_record(identity, recording.name, neurons, seed, update_threshold),
        "eval_threshold": eval_threshold,
        "iterations": iterations,
        "parameters": {
            **settings,
            "context_frames": context,
            "gradient_clip": GRADIENT_CLIP,
            "level": level,
            "percentile": SCALE_PERCENTILE,
            "raw_alpha_percentile": float(np.percentile(raw, SCALE_PERCENTILE)),
            "members": "in turn" if len(members) > 1 else "single encoder",
            "tier": TRAIN_TIER,
            "trials": pool.used,
        },
        "loss_first_50": float(np.mean(losses[:50])),
        "loss_last_50": float(np.mean(losses[-50:])),
        "timings": _timings(started, device),
    }
    return Mask(alpha=rescale(raw, level), method="transparency", record=record)


def _identity_record(identity, recording_name, neurons, seed, update_threshold) -> dict:
    """The record entries both methods share."""
    return {
        "encoder": encoder_identity(identity),
        "recording": recording_name,
        "n_neurons": int(neurons.size),
        "neurons_sha256": unit_ids_digest(np.asarray(identity.unit_ids)[neurons]),
        "seed": seed,
        "update_threshold": update_threshold,
    }


def _timings(started: float, device: str) -> dict:
    return {
        "seconds": time.perf_counter() - started,
        "device": device,
        "threads": torch.get_num_threads(),
    }


# ------------------------------------------------------------------ coverage


def _noise_movies(
    n_movies: int, frames: int, shape: tuple[int, int], rng: np.random.Generator
) -> np.ndarray:
    """(n, frames, H, W) float32 0..255: gray plus Gaussian noise smoothed by NOISE_SIGMA
    (t, y, x in frames/px), with sd COVERAGE_CONTRAST gray levels, clipped."""
    noise = rng.standard_normal((n_movies, frames, *shape))
    noise = gaussian_filter(noise, (0, *NOISE_SIGMA), mode="wrap")
    noise /= noise.std() or 1.0
    return np.clip(GRAY_LEVEL + COVERAGE_CONTRAST * noise, 0, 255).astype(np.float32)


def _typical_behavior(members: list[Encoder], behavior: np.ndarray | None) -> np.ndarray:
    """Behaviour input (4,): the given values, else the first member's training-set mean
    (``behavior_mean``, as FastEncoder stores it), else zeros."""
    if behavior is not None:
        behavior = np.asarray(behavior, dtype=np.float32).ravel()
        if behavior.shape != (4,) or not np.isfinite(behavior).all():
            raise MovieReconError(f"behaviour must be 4 finite values, got {behavior}")
        return behavior
    mean = getattr(members[0], "behavior_mean", None)
    if isinstance(mean, torch.Tensor) and mean.numel() == 4:
        return mean.detach().cpu().numpy().astype(np.float32)
    return np.zeros(4, dtype=np.float32)


def input_sensitivity(
    members: list[Encoder],
    neurons: np.ndarray,
    movies: np.ndarray,
    behavior: np.ndarray,
    device: str = "cpu",
) -> np.ndarray:
    """Mean over members, movies and frames of |d(sum of the ``neurons``' rates after
    the context frames) / d(pixel)|: (H, W) float32 >= 0, in rate units per gray
    level. movies (B, T, H, W) 0..255; behavior (4,) held constant."""
    torch_device = torch.device(device)
    x = torch.from_numpy(movies).to(torch_device)
    beh = torch.from_numpy(behavior).to(torch_device)[None, :, None]
    beh = beh.expand(x.shape[0], -1, x.shape[1])
    selected = torch.from_numpy(neurons).to(torch_device)
    total = torch.zeros(x.shape[2:], device=torch_device)
    for member in members:
        inputs = x.clone().requires_grad_(True)
        rates = member(inputs, beh)[:, selected, member.context_frames :]
        (grad,) = torch.autograd.grad(rates.sum(), inputs)
        total += grad.abs().mean(dim=(0, 1))
    return (total / len(members)).cpu().numpy().astype(np.float32)


def coverage_to_alpha(
    sensitivity: np.ndarray,
    smoothing: float = COVERAGE_SMOOTHING,
    level: float = COVERAGE_LEVEL,
) -> np.ndarray:
    """Alpha-like (H, W) float32 in [0, 1] from an input-sensitivity map: normalised to
    max 1, smoothed with a Gaussian of ``smoothing`` px, then ``rescale``d: alpha >= 1
    (evaluation mask) where the smoothed sensitivity reaches ``level`` x its 99th
    percentile, alpha >= 0.5 (update mask) where it reaches half that. A map of
    zeros gives zeros."""
    peak = float(sensitivity.max())
    if not peak > 0:
        return np.zeros(sensitivity.shape, dtype=np.float32)
    smooth = sensitivity / peak
    if smoothing > 0:
        smooth = gaussian_filter(smooth, smoothing, mode="nearest")
    return rescale(smooth, level)


def coverage_mask(
    encoder: Encoder | Sequence[Encoder],
    neurons: np.ndarray | Sequence[int] | None = None,
    *,
    recording: Recording | None = None,
    movies: int = COVERAGE_MOVIES,
    frames: int = COVERAGE_FRAMES,
    seed: int = 0,
    behavior: np.ndarray | None = None,
    smoothing: float = COVERAGE_SMOOTHING,
    level: float = COVERAGE_LEVEL,
    device: str = "cpu",
    update_threshold: float = UPDATE_THRESHOLD,
    eval_threshold: float = EVAL_THRESHOLD,
    progress: Progress | None = None,
) -> Mask:
    """The encoder's input-gradient coverage as an alpha map (see ``coverage_to_alpha``),
    from ``movies`` random smooth-noise movies of ``frames`` frames after the encoder's
    context. Needs no recorded data: ``recording`` (optional) is only checked against
    the encoder's neurons and named in the record. Every ensemble member contributes.
    ``behavior`` (4,) defaults to the encoder's training mean."""
    if movies < 1 or frames < 1 or smoothing < 0:
        raise MovieReconError(
            "invalid coverage mask settings: movies and frames must be >= 1, smoothing >= 0"
        )
    _check_level(level)
    _check_thresholds(update_threshold, eval_threshold)
    members = _members(encoder)
    identity = encoder if isinstance(encoder, Encoder) else Ensemble(members)
    if recording is not None:
        check_neurons(identity, recording.neurons.ids, recording.name)
    neurons = _neuron_indices(neurons, identity.n_neurons)
    started = time.perf_counter()
    members = _prepare(members, device)
    context = max(m.context_frames for m in members)
    rng = np.random.default_rng(seed)
    clips = _noise_movies(movies, context + frames, tuple(identity.frame_shape), rng)
    typical = _typical_behavior(members, behavior)
    sensitivity = input_sensitivity(members, neurons, clips, typical, device)
    _report(progress, 1, 1)
    name = recording.name if recording is not None else None
    record = {
        **_identity_record(identity, name, neurons, seed, update_threshold),
        "eval_threshold": eval_threshold,
        "iterations": 1,
        "parameters": {
            "movies": movies,
            "frames": frames,
            "context_frames": context,
            "noise_sigma_t_y_x": list(NOISE_SIGMA),
            "contrast": COVERAGE_CONTRAST,
            "behavior": typical.tolist(),
            "smoothing": smoothing,
            "level": level,
            "percentile": SCALE_PERCENTILE,
            "members": "all, averaged",
        },
        "timings": _timings(started, device),
    }
    alpha = coverage_to_alpha(sensitivity, smoothing, level)
    return Mask(alpha=alpha, method="coverage", record=record)
