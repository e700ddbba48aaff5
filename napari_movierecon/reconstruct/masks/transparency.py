"""The reference's transparency mask (Bauer et al. 2025), estimated on training trials.

The encoder sees ``movie * alpha + other_movie * (1 - alpha)``, where ``movie`` is a
training trial's own movie and ``other_movie`` another training trial's; alpha starts
at 1 and descends the Poisson loss of the recorded responses plus
``sparsity * mean(alpha)``, so it shrinks wherever swapping the movie does not hurt
the prediction. Each step's per-frame gradient (T, H, W) is divided by its L2 norm,
clipped to +-1, averaged over time, blurred with a Gaussian (sigma 5 px) and applied
with step 10; alpha is clipped to [0, 1]. Only ``train``-tier trials are ever used
(masks are never estimated on the clips they are scored on). With a calibrated
encoder the Poisson gradient at alpha = 1 is ~0 on average, so any sparsity leaves the
well-covered plateau a little below 1 (~0.97 on the sample); the result is therefore
rescaled so that ``TRANSPARENCY_LEVEL`` (0.95) x its 99th percentile maps to 1: the
evaluation mask is the plateau, the update mask where alpha reaches half of it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy.ndimage import gaussian_filter

from napari_movierecon.encoders.base import Encoder
from napari_movierecon.encoders.data import TrialCache
from napari_movierecon.encoders.train import poisson_loss
from napari_movierecon.errors import MovieReconError
from napari_movierecon.reconstruct.masks import estimation
from napari_movierecon.reconstruct.masks.file import EVAL_THRESHOLD, UPDATE_THRESHOLD, Mask
from napari_movierecon.recording import Recording

TRAIN_TIER = "train"
# The reference's protocol, plus our sparsity weight.
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


def optimize_alpha(
    members: list[Encoder],
    pool: _TrialPool,
    neurons: torch.Tensor,
    iterations: int,
    rng: np.random.Generator,
    settings: dict,
    progress: estimation.Progress | None = None,
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
        estimation.report(progress, iteration + 1, iterations)
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
    progress: estimation.Progress | None = None,
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
    The optimised alpha is finally rescaled (``estimation.rescale`` with ``level``) so
    that its plateau maps to 1.
    ``progress(done, total)`` is called after every iteration.
    """
    _check_transparency_args(
        iterations, clip_frames, learning_rate, blur_sigma, sparsity, pool_trials
    )
    members, identity, neurons = estimation.checked_inputs(
        encoder, recording, neurons, level, update_threshold, eval_threshold
    )
    candidates = _training_trials(recording, trials)
    if tuple(recording.frame_shape) != tuple(identity.frame_shape):
        raise MovieReconError(
            f"{recording.name}: frames are {tuple(recording.frame_shape)} but the encoder "
            f"expects {tuple(identity.frame_shape)}"
        )
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    torch_device = torch.device(device)
    members = estimation.prepare(members, device)
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
        **estimation.estimate_record(
            identity, recording.name, neurons, seed, update_threshold, eval_threshold
        ),
        "iterations": iterations,
        "parameters": {
            **settings,
            "context_frames": context,
            "gradient_clip": GRADIENT_CLIP,
            "level": level,
            "percentile": estimation.SCALE_PERCENTILE,
            "raw_alpha_percentile": float(np.percentile(raw, estimation.SCALE_PERCENTILE)),
            "members": "in turn" if len(members) > 1 else "single encoder",
            "tier": TRAIN_TIER,
            "trials": pool.used,
        },
        "loss_first_50": float(np.mean(losses[:50])),
        "loss_last_50": float(np.mean(losses[-50:])),
        "timings": estimation.timings(started, device),
    }
    return Mask(alpha=estimation.rescale(raw, level), method="transparency", record=record)
