"""The update rules of the reference protocol (Bauer, Margrie & Clopath 2025), as small
pieces that can be checked one by one. Movies are (T, H, W) tensors in 0..255.

- the learning rate ramps linearly from 0 over ``warmup`` steps, so step 0 moves nothing;
- the optimiser is Adam with the first moment only: m <- b1 m + (1 - b1) g, and the step
  is lr(t) * m / (1 - b1^(t+1)) (bias-corrected), with no second-moment scaling; the
  reference code's variant (``reference_schedule``) also discards step 0's gradient and
  multiplies the step by Adam's step-size correction sqrt(1 - 0.999^(t+1)) / (1 - b1^(t+1)),
  kept there although the second moment itself is dropped;
- each window's gradient is divided by its own L2 norm (+1e-6); each frame's gradient is
  the mean over the windows that contain it; multiplied by the update mask and clipped to
  +-clip;
- after every step the movie is clipped to 0..255;
- ensemble members reconstruct separately; the final movie is their mean, filtered
  with a Gaussian of sigma 0.5 frames/pixels over (t, y, x).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.ndimage import gaussian_filter

from napari_movierecon.errors import MovieReconError

NORM_EPS = 1e-6
PIXEL_RANGE = (0.0, 255.0)
# Adam's second-moment decay, which the reference code keeps in its step size only.
REFERENCE_BETA2 = 0.999


def warmup_factor(step: int, warmup: int) -> float:
    """Learning-rate multiplier at ``step`` (0-based): step / warmup up to 1; 0 at step 0."""
    if warmup <= 0:
        return 1.0
    return min(step / warmup, 1.0)


class FirstMomentAdam:
    """Adam without the second moment, updating a movie tensor in place.

    ``reference_schedule``: step exactly as the reference code does (step 0's gradient
    is discarded, the moment starts at step 1, and the step is also scaled by
    sqrt(1 - 0.999^(t+1)) / (1 - b1^(t+1))); otherwise standard bias correction.
    """

    def __init__(
        self,
        learning_rate: float,
        beta1: float = 0.9,
        warmup: int = 10,
        reference_schedule: bool = False,
    ) -> None:
        if learning_rate <= 0 or not 0 <= beta1 < 1:
            raise MovieReconError("need learning_rate > 0 and 0 <= beta1 < 1")
        self.learning_rate = learning_rate
        self.beta1 = beta1
        self.warmup = warmup
        self.reference_schedule = reference_schedule
        self.step_count = 0
        self.moment: torch.Tensor | None = None

    def step(self, movie: torch.Tensor, gradient: torch.Tensor) -> None:
        """Descend along ``gradient`` (same shape as ``movie``), then clip to 0..255."""
        t = self.step_count
        self.step_count += 1
        if self.reference_schedule and t == 0:
            return
        if self.moment is None:
            self.moment = torch.zeros_like(gradient)
        self.moment.mul_(self.beta1).add_(gradient, alpha=1 - self.beta1)
        bias = 1 - self.beta1 ** (t + 1)
        rate = self.learning_rate * warmup_factor(t, self.warmup)
        if self.reference_schedule:
            rate *= (1 - REFERENCE_BETA2 ** (t + 1)) ** 0.5 / bias
        with torch.no_grad():
            movie.sub_(rate * (self.moment / bias)).clamp_(*PIXEL_RANGE)


def combine_window_gradients(
    gradients: torch.Tensor,
    starts: np.ndarray,
    n_frames: int,
    update_mask: torch.Tensor | None = None,
    clip: float | None = 1.0,
    normalize: bool = True,
    block_frames: int | None = None,
) -> torch.Tensor:
    """One movie gradient (T, H, W) from per-window gradients (W, L, H, W) at ``starts``.

    Each window's gradient is divided by its L2 norm (+1e-6) when ``normalize``
    (with ``block_frames``: each block of that many frames, counted from the
    window's end, by its own norm);
    each frame gets the mean over the windows that contain it (as the reference
    code's NaN-mean), multiplied by ``update_mask`` (H, W) and clipped to +-``clip``.
    A window may start before frame 0 (its context frames): the part outside
    the clip is dropped after normalisation and does not count.
    """
    n_windows, length = gradients.shape[:2]
    if len(starts) != n_windows:
        raise MovieReconError(f"{n_windows} window gradients but {len(starts)} window starts")
    if normalize and block_frames is not None and block_frames < length:
        block = torch.as_tensor((length - 1 - np.arange(length)) // block_frames)
        block = block.to(gradients.device)
        frame_squares = gradients.pow(2).flatten(2).sum(2)  # (W, L)
        block_squares = frame_squares.new_zeros((n_windows, int(block.max()) + 1))
        block_squares.index_add_(1, block, frame_squares)
        norms = block_squares.sqrt()[:, block] + NORM_EPS  # (W, L)
        gradients = gradients / norms[:, :, None, None]
    elif normalize:
        norms = gradients.flatten(1).norm(dim=1) + NORM_EPS
        gradients = gradients / norms[:, None, None, None]
    total = gradients.new_zeros((n_frames, *gradients.shape[2:]))
    windows_per_frame = gradients.new_zeros(n_frames)
    for gradient, start in zip(gradients, starts, strict=True):
        low, high = max(int(start), 0), min(int(start) + length, n_frames)
        total[low:high] += gradient[low - int(start) : high - int(start)]
        windows_per_frame[low:high] += 1
    total /= windows_per_frame.clamp(min=1)[:, None, None]
    if update_mask is not None:
        total *= update_mask
    if clip is not None:
        total.clamp_(-clip, clip)
    return total


def ensemble_movie(movies: np.ndarray, sigma: float = 0.5) -> np.ndarray:
    """Final movie (T, H, W) float32 from member movies (K, T, H, W): their mean, then a
    Gaussian filter of ``sigma`` over (t, y, x) (none when sigma is 0)."""
    mean = np.asarray(movies, dtype=np.float64).mean(axis=0)
    if sigma > 0:
        mean = gaussian_filter(mean, sigma=sigma, mode="nearest")
    return mean.astype(np.float32)
