"""Distillation: a FastEncoder student trained to reproduce a teacher encoder's predicted
rates, so a slow encoder's knowledge can be used at FastEncoder speed.

The teacher labels movies instead of the mouse: ``TeacherLabelledRecording`` is a
Recording whose responses are the teacher's rates for the base recording's training and
validation movies (shown with their recorded behaviour) plus extra movies from the
in-silico stimulus generators (natural movies from the *training* image pool, gratings,
pink noise, dots), shown with behaviour borrowed from training trials. No recorded
response is needed for them, and the base's test tiers are never read. Training is then
``train.train_encoder`` as for a recording (Poisson loss against the teacher's rates:
minimal where the student's rates equal the teacher's; the validation tier's
student-teacher correlation picks the epoch).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import torch

from napari_movierecon.encoders.base import Encoder, behavior_input
from napari_movierecon.encoders.checkpoint import check_neurons
from napari_movierecon.encoders.fast import FastEncoder, FastEncoderConfig
from napari_movierecon.encoders.identity import encoder_identity
from napari_movierecon.encoders.train import TrainConfig, TrainingEvent, train_encoder
from napari_movierecon.errors import MovieReconError
from napari_movierecon.insilico.stimuli import make_stimulus, sample_stimulus_kind
from napari_movierecon.recording import Neurons, Recording, Trial


class TeacherLabelledRecording(Recording):
    """``base``'s training (``train_tier``) and validation (``validation_tier``) trials and
    ``extra_movies`` generated movies (tier ``train_tier``; the first ``max_train_trials``
    training trials only, None: all), with the teacher's predicted
    rates (N, T) as responses. Trials are computed on demand; extra movie k is the same for
    the same ``seed``. Statistics are the base's (behaviour standardisation; response
    means only initialise the student's biases)."""

    def __init__(
        self,
        base: Recording,
        teacher: Encoder,
        extra_movies: int = 0,
        seed: int = 0,
        train_tier: str = "train",
        validation_tier: str = "oracle",
        device: str = "cpu",
        max_train_trials: int | None = None,
    ) -> None:
        check_neurons(teacher, base.neurons.ids, base.name)
        if extra_movies < 0:
            raise MovieReconError("the number of extra movies must be >= 0")
        self.base, self.teacher, self.seed, self.device = base, teacher.to(device), seed, device
        self.train_trials = base.trials_in(train_tier)[:max_train_trials]
        if len(self.train_trials) == 0:
            raise MovieReconError(f"{base.name}: no trials in '{train_tier}' to distil on")
        validation = base.trials_in(validation_tier)
        self.sources = [("base", int(i)) for i in self.train_trials]
        self.sources += [("extra", k) for k in range(extra_movies)]
        self.sources += [("base", int(i)) for i in validation]
        n_train = len(self.train_trials) + extra_movies
        self._tiers = np.array([train_tier] * n_train + [validation_tier] * len(validation))
        self.identity = encoder_identity(teacher)

    @property
    def name(self) -> str:
        return f"{self.base.name} labelled by {self.identity['weights_sha256'][:12]}"

    @property
    def neurons(self) -> Neurons:
        return self.base.neurons

    @property
    def tiers(self) -> np.ndarray:
        return self._tiers

    def statistics(self) -> dict[str, dict[str, np.ndarray]]:
        return self.base.statistics()

    def trial(self, index: int) -> Trial:
        index = self.check_index(index)
        source, key = self.sources[index]
        shown = self.base.trial(key) if source == "base" else self._extra_trial(key)
        with torch.no_grad():
            rates = self.teacher(
                torch.from_numpy(shown.movie)[None].to(self.device),
                torch.from_numpy(behavior_input(shown))[None].to(self.device),
            )[0]
        return Trial(
            index,
            str(self._tiers[index]),
            shown.movie,
            rates.cpu().numpy().astype(np.float32),
            shown.behavior,
            shown.pupil_center,
            {"recording_trial": key} if source == "base" else shown.extras,
        )

    def _extra_trial(self, k: int) -> Trial:
        """Extra movie ``k``: a generated stimulus with a training trial's behaviour."""
        rng = np.random.default_rng(np.random.SeedSequence((self.seed, k)))
        donor = self.base.trial(int(rng.choice(self.train_trials)))
        movie, description = make_stimulus(rng, sample_stimulus_kind(rng), donor.length, "train")
        return Trial(
            -1,
            "train",
            movie,
            None,
            donor.behavior,
            donor.pupil_center,
            {"stimulus": description, "behaviour_of": donor.index},
        )


def distill_encoder(
    teacher: Encoder,
    recording: Recording,
    extra_movies: int = 0,
    model_config: FastEncoderConfig | None = None,
    config: TrainConfig | None = None,
    callback: Callable[[TrainingEvent], bool | None] | None = None,
    init: FastEncoder | None = None,
) -> tuple[FastEncoder, dict]:
    """Train one FastEncoder student on ``teacher``'s rates (see the module docstring);
    return it and its record (``train_encoder``'s, with ``distilled_from``: the teacher's
    identity, and the number of extra movies). ``callback`` as in ``train_encoder``.
    ``init``: start the student from this FastEncoder's weights (e.g. one of the teacher's
    members), recorded as ``initialised_from``; None: from the data, as ``train`` does."""
    config = config or TrainConfig()
    labelled = TeacherLabelledRecording(
        recording,
        teacher,
        extra_movies,
        seed=config.seed,
        train_tier=config.train_tier,
        validation_tier=config.validation_tier,
        device=config.device,
        max_train_trials=config.max_train_trials,
    )
    # the limit applies to the recording's trials, not to the extra movies after them
    limit = config.max_train_trials
    student, record = train_encoder(
        labelled,
        model_config,
        dataclasses.replace(config, max_train_trials=None),
        callback,
        init=init,
    )
    record["train_config"]["max_train_trials"] = limit
    record["recording"] = recording.name
    record["distilled_from"] = labelled.identity
    record["extra_movies"] = extra_movies
    record["validation_measures"] = "correlation of the student's rates with the teacher's"
    return student, record
