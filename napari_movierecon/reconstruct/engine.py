"""The reconstruction engine: a generator that optimises a movie until the frozen
encoder's predicted activity matches the recorded activity.

``reconstruct(...)`` checks every input before any work, then yields a
``Snapshot`` every ``config.snapshot_every`` iterations (and after the last).
Closing the generator (``.close()``, or dropping it) stops the work at once;
pausing is the caller's business (just stop iterating for a while).

Windows: each window of ``window_frames`` frames is fed to the encoder
together with the ``context_frames`` frames before it (gray before the clip),
so every frame in the loss has full temporal context, and the loss covers the
window's own frames only. ``window_frames=None`` is one window spanning the
clip. The windows go through the encoder in batches of about
``BATCH_FRAMES`` frames (their gradients do not depend on each other, so the
batching changes nothing but memory and how often the generator can pause).

DwiseNeuro members (``DwiseNeuroEncoder``) are run as the reference code runs them
(``_PlaneWindowObjective``): a window of L >= 31 frames goes through the encoder's own
trial prediction (L - 30 passes of 16 frames; two for L = 32, the even and the odd
frames), with no context before it, the loss over all L frames, and the gradient taken
with respect to the encoder's whole input (5 channels, 64x64 plane) and divided by its
L2 norm before the movie rows are kept. The plane's pad rows hold ``config.pad_fill``.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from napari_movierecon.allocator import retain_freed_memory
from napari_movierecon.encoders.base import Encoder
from napari_movierecon.encoders.dwiseneuro import (
    FRAME_SHAPE,
    FRAME_TOP,
    WINDOW_SPAN,
    DwiseNeuroEncoder,
)
from napari_movierecon.encoders.ensemble import members_of
from napari_movierecon.encoders.fast import FastEncoder, frozen_fast_encoder
from napari_movierecon.encoders.train import poisson_loss, poisson_terms
from napari_movierecon.errors import MovieReconError
from napari_movierecon.reconstruct import metrics
from napari_movierecon.reconstruct.config import ReconstructionConfig
from napari_movierecon.reconstruct.holdout import StoppingRule, split_holdout
from napari_movierecon.reconstruct.neurons import check_neuron_indices
from napari_movierecon.reconstruct.protocol import (
    NORM_EPS,
    FirstMomentAdam,
    combine_window_gradients,
    ensemble_movie,
    warmup_factor,
)
from napari_movierecon.reconstruct.windows import window_starts
from napari_movierecon.recording import GRAY_LEVEL

# Encoder frames per batch: ~0.2-0.3 s of work for our encoders on 2 CPU cores, so a
# heartbeat consumer can stop within a second even under the bauer2025 protocol.
BATCH_FRAMES = 512
# DwiseNeuro passes (16 frames each) per batch: two reference windows, ~10-20 s of
# forward+backward at full size on 2 CPU cores (a single pass is the least a consumer
# can wait for), a fraction of a second on a GPU.
BATCH_PASSES = 4


@dataclass
class Snapshot:
    """State after ``iteration`` iterations. ``movie`` (T, H, W) float32 is a copy: the
    members' current movies combined as the final result would be. Metrics are None
    without ground truth; ``pixel_correlation`` uses the evaluation mask and skips the
    first ``skip_frames`` frames."""

    iteration: int
    iterations: int
    movie: np.ndarray
    loss: float
    elapsed_s: float
    encoder_frames: int
    skip_frames: int
    pixel_correlation: float | None = None
    correlation_map: np.ndarray | None = None
    frame_correlation: np.ndarray | None = None
    # the stopping rule (config.holdout_fraction): the held-out neurons' loss for the movie
    # this iteration started from, and on the last snapshot the iteration whose movie it is
    holdout_loss: float | None = None
    chosen_iteration: int | None = None


def _check_inputs(
    members: list[Encoder],
    responses: np.ndarray,
    neurons: np.ndarray,
    behavior: np.ndarray,
    truth: np.ndarray | None,
    masks: dict[str, np.ndarray | None],
    frame_shape: tuple[int, int],
) -> np.ndarray:
    """MovieReconError for the first input that does not fit the members; else the
    neuron indices, checked (``check_neuron_indices``)."""
    n_neurons = members[0].n_neurons
    if responses.ndim != 2 or responses.shape[0] != n_neurons:
        raise MovieReconError(
            f"responses must be (N, T) with N = {n_neurons} (the encoder's neurons), "
            f"got {responses.shape}"
        )
    if not np.isfinite(responses).all():
        raise MovieReconError("responses contain NaN or infinite values (cut the padding first)")
    n_frames = responses.shape[1]
    if n_frames <= members[0].context_frames:
        raise MovieReconError(
            f"the clip has {n_frames} frames; the encoder needs more than "
            f"{members[0].context_frames} for any frame to have full context"
        )
    if behavior.shape != (4, n_frames):
        raise MovieReconError(f"behaviour must be (4, {n_frames}), got {behavior.shape}")
    neurons = check_neuron_indices(neurons, n_neurons)
    if truth is not None and truth.shape != (n_frames, *frame_shape):
        raise MovieReconError(
            f"ground truth must be ({n_frames}, {frame_shape[0]}, {frame_shape[1]}), "
            f"got {truth.shape}"
        )
    for name, mask in masks.items():
        if mask is not None and mask.shape != frame_shape:
            raise MovieReconError(f"{name} mask must be {frame_shape}, got {mask.shape}")
        if mask is not None and not np.asarray(mask).any():
            raise MovieReconError(f"{name} mask is empty (all False): no pixel to use")
    return neurons


class _HeldOut:
    """The held-out neurons' targets, and their losses for the rates the objective computed
    anyway (every neuron's rates come out of the same forward pass), collected per window
    until ``take``n."""

    def __init__(self, responses, holdout, frames, device) -> None:
        self.neurons = torch.from_numpy(holdout).to(device)
        self.clip_target = torch.from_numpy(np.clip(responses[holdout], 0, None)).to(device)
        self.target = self.clip_target[:, frames].permute(1, 0, 2)  # (W, held, L)
        self.collected: list[float] = []

    def collect(self, all_rates: torch.Tensor, batch: slice) -> None:
        """Note the loss of each window of ``batch``; all_rates (B, N, L) of its frames."""
        if self.neurons.numel():
            rates = all_rates.detach()[:, self.neurons]
            pairs = zip(rates, self.target[batch], strict=True)
            self.collected += [float(poisson_loss(r, t)) for r, t in pairs]

    def collect_frames(self, clip_rates: torch.Tensor, frames: torch.Tensor) -> None:
        """Note the loss of each window whose frames (B, L) index clip_rates (N, T), the
        rates of the whole clip (the same numbers as ``collect`` on per-window rates)."""
        if self.neurons.numel():
            rates = clip_rates.detach()[self.neurons]
            per_frame = poisson_terms(rates, self.clip_target).mean(0)  # (T,)
            self.collected += per_frame[frames].mean(1).tolist()

    def take(self) -> list[float]:
        """The losses collected since the last call."""
        collected, self.collected = self.collected, []
        return collected


class _WindowObjective:
    """Per-window gradients of one member's Poisson loss, windows in batches."""

    def __init__(self, member, responses, neurons, holdout, behavior, config, device) -> None:
        n_frames = responses.shape[1]
        length = config.window_frames or n_frames
        length = min(length, n_frames)
        self.member = member
        self.context = member.context_frames
        self.skip = self.context
        self.normalize_in_combine = config.normalize_window_gradients
        self.starts = window_starts(n_frames, length, config.window_stride)
        span = self.context + length
        per_batch = max(1, BATCH_FRAMES // span)
        self.batches = [
            slice(first, first + per_batch) for first in range(0, len(self.starts), per_batch)
        ]
        index = self.starts[:, None] - self.context + np.arange(span)  # (W, span)
        self.valid = torch.from_numpy(index >= 0).to(device)
        self.index = torch.from_numpy(np.clip(index, 0, None)).to(device)
        beh = torch.from_numpy(behavior).to(device)
        # Behaviour before the clip: its first value (the encoder sees gray there).
        self.behavior = beh[:, self.index].permute(1, 0, 2).contiguous()  # (W, 4, span)
        self.neurons = torch.from_numpy(neurons).to(device)
        target = torch.from_numpy(np.clip(responses[neurons], 0, None)).to(device)
        frames = self.index[:, self.context :]  # (W, L)
        self.target = target[:, frames].permute(1, 0, 2)  # (W, n, L)
        self.held_out = _HeldOut(responses, holdout, frames, device)

    def gradients(self, movie: torch.Tensor, batch: slice) -> tuple[torch.Tensor, list[float]]:
        """Gradients (B, span, H, W) of the loss of each window in ``batch`` (a slice
        of ``self.batches``), and those windows' losses (held-out losses: ``held_out``)."""
        valid = self.valid[batch, :, None, None]
        windows = torch.where(valid, movie[self.index[batch]], GRAY_LEVEL).requires_grad_(True)
        all_rates = self.member(windows, self.behavior[batch])[:, :, self.context :]
        rates = all_rates.index_select(1, self.neurons)
        target = self.target[batch]
        losses = torch.stack([poisson_loss(r, t) for r, t in zip(rates, target, strict=True)])
        (grad,) = torch.autograd.grad(losses.sum(), windows)
        self.held_out.collect(all_rates, batch)
        return grad * valid, losses.detach().tolist()

    def encoder_frames(self, batch: slice) -> int:
        """Frames the encoder runs for ``batch``: its windows with their context."""
        return int(self.valid[batch].shape[0] * self.valid.shape[1])


class _PlaneWindowObjective:
    """Per-window gradients of one DwiseNeuro member's Poisson loss, as the reference
    code computes them (see the module docstring); same interface as _WindowObjective."""

    def __init__(self, member, responses, neurons, holdout, behavior, config, device) -> None:
        n_frames = responses.shape[1]
        length = min(config.window_frames or n_frames, n_frames)
        if length < WINDOW_SPAN:
            raise MovieReconError(
                f"DwiseNeuro needs windows of at least {WINDOW_SPAN} frames, the config asks "
                f"for {length} (window_frames)"
            )
        if config.normalize_window_gradients and config.normalize_block_frames is not None:
            raise MovieReconError(
                "normalize_block_frames does not apply to DwiseNeuro, whose window gradient "
                "is normalised over its whole input"
            )
        self.member = member
        self.context = 0
        self.skip = member.context_frames
        self.normalize = config.normalize_window_gradients
        self.normalize_in_combine = False
        self.pad_fill = config.pad_fill
        self.starts = window_starts(n_frames, length, config.window_stride)
        per_batch = max(1, BATCH_PASSES // (length - WINDOW_SPAN + 1))
        self.batches = [
            slice(first, first + per_batch) for first in range(0, len(self.starts), per_batch)
        ]
        self.index = torch.from_numpy(self.starts[:, None] + np.arange(length)).to(device)
        beh = torch.from_numpy(behavior).to(device)
        self.behavior = beh[:, self.index].permute(1, 0, 2).contiguous()  # (W, 4, L)
        self.neurons = torch.from_numpy(neurons).to(device)
        target = torch.from_numpy(np.clip(responses[neurons], 0, None)).to(device)
        self.target = target[:, self.index].permute(1, 0, 2)  # (W, n, L)
        self.held_out = _HeldOut(responses, holdout, self.index, device)

    def gradients(self, movie: torch.Tensor, batch: slice) -> tuple[torch.Tensor, list[float]]:
        """Movie gradients (B, L, 36, 64) of the windows in ``batch`` and their losses
        (held-out losses: ``held_out``)."""
        planes = self.member.model_input(
            movie[self.index[batch]], self.behavior[batch], self.pad_fill
        )
        planes.requires_grad_(True)
        all_rates = self.member.predict(planes)
        rates = all_rates.index_select(1, self.neurons)
        target = self.target[batch]
        losses = torch.stack([poisson_loss(r, t) for r, t in zip(rates, target, strict=True)])
        (grad,) = torch.autograd.grad(losses.sum(), planes)
        if self.normalize:
            grad = grad / (grad.flatten(1).norm(dim=1) + NORM_EPS)[:, None, None, None, None]
        rows = slice(FRAME_TOP, FRAME_TOP + FRAME_SHAPE[0])
        self.held_out.collect(all_rates, batch)
        return grad[:, 0, :, rows], losses.detach().tolist()

    def encoder_frames(self, batch: slice) -> int:
        """Frames the encoder runs for ``batch``: its windows' frames."""
        return int(self.index[batch].numel())


class _SharedFramesObjective:
    """Per-window gradients of one FastEncoder member's loss, every window from one
    pass over the clip; same interface and numbers (up to float rounding) as
    _WindowObjective.

    After its causal temporal filter the encoder works frame by frame, and a frame's
    input to that point (its own and the ``context`` frames before it, gray before the
    clip) is the same in every window that contains it. So the rates and the loss's
    gradient at the filter's output are computed once per frame, and only the
    temporal filter's adjoint is applied per window (a window's loss is the mean over
    its own frames and the selected neurons, so each frame's share is the same in
    every window). Under bauer2025 (32-frame windows every 8 frames, 17 frames of
    context) this runs ~300 frames through the encoder per iteration instead of ~1700.
    """

    def __init__(self, member, responses, neurons, holdout, behavior, config, device) -> None:
        n_frames = responses.shape[1]
        length = min(config.window_frames or n_frames, n_frames)
        self.member = member
        self.context = member.context_frames
        self.skip = self.context
        self.normalize_in_combine = config.normalize_window_gradients
        self.starts = window_starts(n_frames, length, config.window_stride)
        self.batches = [slice(0, len(self.starts))]
        span = self.context + length
        inputs = self.starts[:, None] - self.context + np.arange(span)  # (W, span)
        self.valid = torch.from_numpy(inputs >= 0).to(device)[:, :, None, None]
        self.frames = torch.from_numpy(self.starts[:, None] + np.arange(length)).to(device)
        self.behavior = torch.from_numpy(behavior).to(device)[None]  # (1, 4, T)
        self.neurons = torch.from_numpy(neurons).to(device)
        self.target = torch.from_numpy(np.clip(responses[neurons], 0, None)).to(device)
        self.scale = 1.0 / (len(neurons) * length)  # a window's loss is a mean
        self.held_out = _HeldOut(responses, holdout, self.frames, device)

    def gradients(self, movie: torch.Tensor, batch: slice) -> tuple[torch.Tensor, list[float]]:
        """Gradients (B, span, H, W) of the loss of each window in ``batch`` and their
        losses."""
        with torch.no_grad():
            filtered = self.member.temporal_stage(movie[None])
        filtered.requires_grad_(True)
        clip_rates = self.member.from_temporal(filtered, self.behavior)[0]  # (N, T)
        # index_select, not [self.neurons]: its backward adds rows (index_add_); the
        # indexing's accumulating index_put_ took ~10x longer (9 ms an iteration for 8,000)
        rates = clip_rates.index_select(0, self.neurons)
        frame_losses = poisson_terms(rates, self.target).sum(0) * self.scale  # (T,)
        (grad,) = torch.autograd.grad(frame_losses.sum(), filtered)
        frames = self.frames[batch]
        window_grads = self.member.window_adjoints(
            grad[0], self.starts[batch], self.frames.shape[1]
        )
        losses = frame_losses.detach()[frames].sum(1)
        self.held_out.collect_frames(clip_rates, frames)
        return window_grads * self.valid[batch], losses.tolist()

    def encoder_frames(self, batch: slice) -> int:
        """Frames the encoder runs for a batch: the clip's, once."""
        return int(self.target.shape[1])


def prepare_encoder(encoder: Encoder) -> None:
    """Build now what a reconstruction with ``encoder`` would build at its start (the frozen
    form of its FastEncoder members, kept while they live), so its first run starts at once."""
    for member in members_of(encoder):
        if isinstance(member, FastEncoder):
            frozen_fast_encoder(member)


def build_objectives(
    members, responses, neurons, behavior, config, device, holdout=None, share_frames=True
) -> list:
    """One window objective per member (moved to ``device``), the kind its encoder needs;
    ``holdout``: neurons outside the loss whose losses are reported (none by default).
    FastEncoder members run frozen (``FrozenFastEncoder``, kept between runs) with their
    windows sharing frames; with ``share_frames`` False they run as plain modules, every
    window through the encoder on its own (the path of encoders that cannot share frames,
    e.g. the oracle, and of FastEncoders before frame sharing; kept to check it against)."""
    holdout = neurons[:0] if holdout is None else holdout
    objectives = []
    for member in members:
        member = member.to(device)
        if isinstance(member, DwiseNeuroEncoder):
            kind = _PlaneWindowObjective
        elif isinstance(member, FastEncoder) and share_frames:
            member, kind = frozen_fast_encoder(member), _SharedFramesObjective
        else:
            kind = _WindowObjective
        objectives.append(kind(member, responses, neurons, holdout, behavior, config, device))
    return objectives


def reconstruct(
    encoder: Encoder | Sequence[Encoder],
    responses: np.ndarray,
    neurons: np.ndarray,
    behavior: np.ndarray,
    config: ReconstructionConfig,
    truth: np.ndarray | None = None,
    update_mask: np.ndarray | None = None,
    eval_mask: np.ndarray | None = None,
    heartbeat: bool = False,
    share_frames: bool = True,
) -> Generator[Snapshot | None, None, None]:
    """Check the inputs (raising MovieReconError before any work) and return the
    generator of snapshots; see the module docstring.

    Freed memory is kept for reuse from here on (see ``allocator``).
    ``heartbeat=True`` also yields None after every batch of windows through a
    member (``BATCH_FRAMES``), so an interactive consumer can pause or stop
    within a fraction of an iteration. ``share_frames=False`` runs FastEncoder members as
    plain modules, every window through the encoder on its own (the path before
    frame sharing: slower, same numbers up to float rounding; for checking).

    responses (N, T) of all the encoder's neurons (NaN padding removed);
    neurons: indices into them used in the loss; behavior (4, T) fixed;
    truth (T, H, W) 0..255 for metrics only; masks (H, W) bool.
    """
    members = members_of(encoder, config.members)
    retain_freed_memory()
    frame_shape = tuple(members[0].frame_shape)
    responses = np.asarray(responses, dtype=np.float32)
    behavior = np.asarray(behavior, dtype=np.float32)
    masks = {"update": update_mask, "evaluation": eval_mask}
    neurons = _check_inputs(members, responses, neurons, behavior, truth, masks, frame_shape)
    device = torch.device(config.device)
    torch.manual_seed(config.seed)
    n_frames = responses.shape[1]
    gradient_mask = None
    if config.use_update_mask and update_mask is not None:
        gradient_mask = torch.from_numpy(np.asarray(update_mask, np.float32)).to(device)
    fit, held = split_holdout(neurons, config.holdout_fraction, config.seed)
    objectives = build_objectives(
        members, responses, fit, behavior, config, device, held, share_frames
    )
    n_movies = len(members) if config.ensemble == "separate" else 1
    movies = [
        torch.full((n_frames, *frame_shape), GRAY_LEVEL, device=device) for _ in range(n_movies)
    ]
    optimizers = [_optimizer(config, movie) for movie in movies]
    return _iterate(
        config, objectives, movies, optimizers, gradient_mask, truth, eval_mask, heartbeat
    )


def _iterate(config, objectives, movies, optimizers, gradient_mask, truth, eval_mask, heartbeat):
    """The optimisation loop (a generator); inputs already checked and on the device.

    With the stopping rule on, the held-out loss of the movies before step ``iteration``
    (i.e. after ``iteration - 1`` steps) is known once that step's gradients are; the
    last snapshot holds the best of those movies (``chosen_iteration``)."""
    n_frames = movies[0].shape[0]
    skip = max(objective.skip for objective in objectives)
    rule = StoppingRule(config.holdout_patience) if config.holdout_fraction else None
    started, frames_seen = time.perf_counter(), 0

    def snapshot(iteration: int, state: list, loss: float, held: float | None) -> Snapshot:
        current = ensemble_movie(
            np.stack([m.detach().cpu().numpy() for m in state]), config.smoothing_sigma
        )
        result = Snapshot(
            iteration,
            config.iterations,
            current,
            loss,
            time.perf_counter() - started,
            frames_seen,
            skip,
            holdout_loss=held,
        )
        if truth is not None:
            result.pixel_correlation = metrics.pixel_correlation(current, truth, eval_mask, skip)
            result.correlation_map = metrics.correlation_map(current, truth, skip)
            result.frame_correlation = metrics.frame_correlation(current, truth, eval_mask)
        return result

    before = [None] * len(movies)  # the movies before this iteration's step (rule only)
    for iteration in range(1, config.iterations + 1):
        losses = []
        for k, movie in enumerate(movies):
            if config.ensemble == "gradient":
                chosen = objectives
            elif config.ensemble == "cycle":
                chosen = [objectives[(iteration - 1) % len(objectives)]]
            else:
                chosen = [objectives[k]]
            grads, starts = [], []
            for objective in chosen:
                window_losses = []
                for batch in objective.batches:
                    grad, batch_losses = objective.gradients(movie, batch)
                    grads.append(grad)
                    starts.append(objective.starts[batch] - objective.context)
                    window_losses += batch_losses
                    frames_seen += objective.encoder_frames(batch)
                    if heartbeat:
                        yield None
                losses.append(float(np.mean(window_losses)))
            step = combine_window_gradients(
                torch.cat(grads),
                np.concatenate(starts),
                n_frames,
                gradient_mask,
                config.gradient_clip,
                chosen[0].normalize_in_combine,
                config.normalize_block_frames,
            )
            if rule is not None:
                before[k] = movie.detach().clone()
            optimizers[k].step(movie, step)
        loss = float(np.mean(losses))
        if rule is not None:
            held_losses = [h for objective in objectives for h in objective.held_out.take()]
            rule.offer(iteration - 1, float(np.mean(held_losses)), before)
        held = None if rule is None else rule.last_loss
        if rule is not None and (rule.should_stop(iteration - 1) or iteration == config.iterations):
            final = snapshot(iteration, rule.best_movies, loss, held)
            final.chosen_iteration = rule.best_iteration
            yield final
            return
        if iteration % config.snapshot_every == 0 or iteration == config.iterations:
            yield snapshot(iteration, movies, loss, held)


class _TorchAdam:
    """torch's Adam (with the same warm-up) behind FirstMomentAdam's ``step`` interface."""

    def __init__(self, movie: torch.Tensor, config: ReconstructionConfig) -> None:
        self.config = config
        self.step_count = 0
        self.optimizer = torch.optim.Adam(
            [movie], lr=config.learning_rate, betas=(config.beta1, 0.999)
        )

    def step(self, movie: torch.Tensor, gradient: torch.Tensor) -> None:
        factor = warmup_factor(self.step_count, self.config.warmup_steps)
        self.optimizer.param_groups[0]["lr"] = self.config.learning_rate * factor
        self.step_count += 1
        movie.grad = gradient
        self.optimizer.step()
        with torch.no_grad():
            movie.clamp_(0, 255)
        movie.grad = None


def _optimizer(config: ReconstructionConfig, movie: torch.Tensor):
    if config.optimizer == "adam":
        return _TorchAdam(movie, config)
    return FirstMomentAdam(
        config.learning_rate,
        config.beta1,
        config.warmup_steps,
        reference_schedule=config.optimizer == "first_moment_reference",
    )
