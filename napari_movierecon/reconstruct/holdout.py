"""The stopping rule's held-out neurons: a seeded random part of the chosen population
left out of the loss, whose prediction error (Poisson loss of the encoder's rates for
the current movie against their recorded responses) says when the movie stops getting
better. It needs nothing but the recording, so it works where no ground truth exists.
"""

from __future__ import annotations

import numpy as np

from napari_movierecon.errors import MovieReconError


def split_holdout(
    neurons: np.ndarray, fraction: float | None, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(neurons in the loss, held-out neurons), both in ``neurons``' order. ``fraction``
    None holds out nothing; otherwise round(fraction x n) neurons (at least 1), drawn with
    ``seed``, and at least one neuron stays in the loss."""
    neurons = np.asarray(neurons, dtype=np.int64).ravel()
    if fraction is None:
        return neurons, neurons[:0]
    count = max(1, round(fraction * neurons.size))
    if count >= neurons.size:
        raise MovieReconError(
            f"holding out {count} of {neurons.size} neurons (holdout_fraction {fraction}) "
            "leaves none for the loss"
        )
    held = np.zeros(neurons.size, dtype=bool)
    held[np.random.default_rng(seed).choice(neurons.size, count, replace=False)] = True
    return neurons[~held], neurons[held]


class StoppingRule:
    """Keeps the best movie by held-out loss and says when to stop.

    ``offer(iteration, loss, movies)``: the held-out loss of the movies as they were after
    ``iteration`` steps (copies the rule may keep). ``should_stop(iteration)``: True once
    ``patience`` iterations have passed without a better held-out loss.
    """

    def __init__(self, patience: int) -> None:
        self.patience = patience
        self.best_loss = np.inf
        self.best_iteration: int | None = None
        self.best_movies: list | None = None
        self.last_loss: float | None = None

    def offer(self, iteration: int, loss: float, movies: list) -> None:
        self.last_loss = loss
        if loss < self.best_loss:
            self.best_loss, self.best_iteration = loss, iteration
            self.best_movies = list(movies)

    def should_stop(self, iteration: int) -> bool:
        return self.best_iteration is not None and iteration - self.best_iteration >= self.patience
