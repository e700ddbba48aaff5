"""Masks: files round-trip and refuse bad input; transparency and coverage find where a
synthetic encoder's neurons look; the CLI writes a mask that reconstruct accepts."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.numpy import save
from torch.nn import functional as F

from napari_movierecon.cli import main
from napari_movierecon.encoders.base import Encoder
from napari_movierecon.encoders.ensemble import Ensemble
from napari_movierecon.errors import MovieReconError
from napari_movierecon.io.memory import InMemoryRecording
from napari_movierecon.reconstruct.masks.coverage import coverage_mask
from napari_movierecon.reconstruct.masks.file import Mask, load_mask, save_mask
from napari_movierecon.reconstruct.masks.transparency import transparency_mask
from napari_movierecon.reconstruct.results import load_reconstruction
from napari_movierecon.recording import Neurons

SHAPE = (16, 32)  # H, W; the neurons see columns < 16 only
N_NEURONS = 24


class LeftHalfEncoder(Encoder):
    """Linear-nonlinear neurons with random spatial filters on the left half of the screen
    and a two-tap temporal filter (current frame + 0.5 x previous): rates (B, N, T)."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        h, w = SHAPE
        generator = torch.Generator().manual_seed(seed)
        weights = torch.randn(N_NEURONS, h, w, generator=generator)
        weights[:, :, w // 2 :] = 0
        self.register_buffer("weights", weights / (h * w / 2) ** 0.5 * 3)
        self.unit_ids = np.arange(100, 100 + N_NEURONS)
        self.context_frames = 1
        self.frame_shape = SHAPE

    def forward(self, movie: torch.Tensor, behavior: torch.Tensor) -> torch.Tensor:
        drive = torch.einsum("bthw,nhw->bnt", (movie - 127.5) / 64, self.weights)
        drive = drive + 0.5 * F.pad(drive, (1, 0))[..., :-1]
        return F.softplus(drive)


def smooth_movie(rng: np.random.Generator, frames: int) -> np.ndarray:
    """(frames, H, W) 0..255: blocky random patterns that change every 4 frames."""
    coarse = rng.uniform(0, 255, (frames // 4 + 1, SHAPE[0] // 4, SHAPE[1] // 4))
    movie = np.repeat(np.repeat(np.repeat(coarse, 4, 0), 4, 1), 4, 2)
    return movie[:frames].astype(np.float32)


def recording_for(encoder: Encoder, tiers: list[str], frames: int = 60) -> InMemoryRecording:
    """Trials whose responses are the encoder's own rates to random movies."""
    rng = np.random.default_rng(1)
    trials = []
    for _ in tiers:
        movie = smooth_movie(rng, frames)
        with torch.no_grad():
            rates = encoder(torch.from_numpy(movie)[None], torch.zeros(1, 4, frames))[0]
        trials.append(
            {
                "movie": movie,
                "responses": rates.numpy(),
                "behavior": np.zeros((2, frames)),
                "pupil_center": np.zeros((2, frames)),
            }
        )
    neurons = Neurons(encoder.unit_ids, np.zeros((N_NEURONS, 3)))
    return InMemoryRecording(neurons, tiers, trials, name="left-half")


@pytest.fixture(scope="module")
def encoder() -> LeftHalfEncoder:
    return LeftHalfEncoder().eval()


@pytest.fixture(scope="module")
def recording(encoder) -> InMemoryRecording:
    return recording_for(encoder, ["train"] * 5 + ["oracle"])


def halves(alpha: np.ndarray) -> tuple[float, float]:
    """Mean alpha of the leftmost and of the rightmost quarter of the screen."""
    quarter = SHAPE[1] // 4
    return float(alpha[:, :quarter].mean()), float(alpha[:, -quarter:].mean())


# ---------------------------------------------------------------- files


def test_round_trip_and_nested_masks(tmp_path):
    alpha = np.random.default_rng(0).uniform(0, 1, SHAPE).astype(np.float32)
    alpha[4:8, 4:8] = 1.0
    record = {"recording": "r", "iterations": 3, "seed": 7, "update_threshold": 0.5}
    path = save_mask(Mask(alpha, "transparency", record), tmp_path / "m.safetensors")
    loaded = load_mask(path)
    assert np.array_equal(loaded.alpha, alpha) and loaded.alpha.dtype == np.float32
    assert loaded.method == "transparency"
    assert loaded.record["seed"] == 7 and loaded.record["recording"] == "r"
    for update, evaluation in [(None, None), (0.3, 0.9), (0.5, 1.0)]:
        u, e = loaded.update_mask(update), loaded.eval_mask(evaluation)
        assert u.dtype == bool and u.shape == SHAPE
        assert not (e & ~u).any()  # evaluation inside update
    assert loaded.eval_mask().sum() == 16 and loaded.update_mask().sum() > 16


def write_raw(path, arrays: dict, record: dict | None) -> None:
    metadata = None if record is None else {"movierecon": json.dumps(record)}
    path.write_bytes(save(arrays, metadata=metadata))


GOOD = {"format": "napari-movierecon-mask", "format_version": 1, "method": "coverage"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such mask file"),
        (b"not a safetensors file at all", "not a readable mask file"),
        (({"alpha": np.ones(SHAPE, np.float32)}, None), "not a mask file"),
        (({"alpha": np.ones(SHAPE, np.float32)}, {"format": "other"}), "not a mask file"),
        (({"movie": np.ones(SHAPE, np.float32)}, GOOD), "no 'alpha'"),
        (({"alpha": np.ones(5, np.float32)}, GOOD), "2-D"),
        (({"alpha": np.ones((2, *SHAPE), np.float32)}, GOOD), "2-D"),
        (({"alpha": np.full(SHAPE, np.nan, np.float32)}, GOOD), "NaN"),
        (({"alpha": np.full(SHAPE, 2.0, np.float32)}, GOOD), "[0, 1]"),
        (({"alpha": np.ones(SHAPE, np.float32)}, {**GOOD, "format_version": 9}), "version"),
    ],
)
def test_bad_files_are_refused_naming_the_file(tmp_path, content, message):
    path = tmp_path / "bad.safetensors"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        write_raw(path, *content)
    with pytest.raises(MovieReconError, match=r"bad\.safetensors") as caught:
        load_mask(path)
    assert message in str(caught.value)


def test_save_refuses_overwrite_and_bad_alpha(tmp_path):
    path = tmp_path / "m.safetensors"
    mask = Mask(np.ones(SHAPE, np.float32), "coverage", {})
    save_mask(mask, path)
    with pytest.raises(MovieReconError, match="already exists"):
        save_mask(mask, path)
    save_mask(Mask(np.zeros(SHAPE, np.float32), "coverage", {}), path, overwrite=True)
    assert not load_mask(path).alpha.any()
    with pytest.raises(MovieReconError, match="NaN"):
        save_mask(Mask(np.full(SHAPE, np.nan, np.float32), "coverage", {}), path, overwrite=True)
    assert not load_mask(path).alpha.any()  # the old file is untouched


# ------------------------------------------------------------ estimation


def test_transparency_keeps_what_the_neurons_see(encoder, recording):
    steps = []
    mask = transparency_mask(  # the defaults: 1000 iterations (~1 s here)
        encoder, recording, progress=lambda done, total: steps.append(done)
    )
    assert steps == list(range(1, 1001))
    assert mask.alpha.shape == SHAPE and mask.alpha.dtype == np.float32
    left, right = halves(mask.alpha)
    assert left > 0.95 and right < 0.05, (left, right)
    evaluation, update = mask.eval_mask(), mask.update_mask()
    middle = SHAPE[1] // 2
    assert evaluation[:, :middle].mean() > 0.9 and not evaluation[:, middle + 2 :].any()
    assert not update[:, middle + 4 :].any()
    assert not (evaluation & ~update).any()
    # Honesty: only training trials, never the oracle trial (index 5).
    assert set(mask.record["parameters"]["trials"]) <= set(range(5))
    assert mask.record["iterations"] == 1000 and mask.record["recording"] == "left-half"


def test_ensemble_members_in_turn_and_neuron_subset(encoder, recording):
    ensemble = Ensemble([encoder, LeftHalfEncoder(seed=0)])
    mask = transparency_mask(ensemble, recording, np.arange(12), iterations=300, seed=3)
    left, right = halves(mask.alpha)
    assert left > 0.9 and right < 0.1, (left, right)
    assert mask.record["n_neurons"] == 12 and mask.record["encoder"]["members"] == 2
    assert mask.record["parameters"]["members"] == "in turn"


def test_coverage_is_high_where_the_neurons_look(encoder, recording):
    mask = coverage_mask(encoder, recording=recording)
    left, right = halves(mask.alpha)
    assert left > 0.9 and right < 0.05, (left, right)
    middle = SHAPE[1] // 2
    assert mask.eval_mask()[:, :middle].all() and not mask.eval_mask()[:, middle + 3 :].any()
    assert mask.method == "coverage" and mask.record["timings"]["seconds"] < 10


def test_coverage_reports_every_pass_and_stops_when_progress_raises(encoder, recording):
    """A Stop (progress raising) ends the estimate after the current pass, not at its end."""
    ensemble = Ensemble([encoder, LeftHalfEncoder(seed=0)])
    steps = []
    coverage_mask(ensemble, movies=3, progress=lambda done, total: steps.append((done, total)))
    assert steps == [(k, 6) for k in range(1, 7)]  # 2 members x 3 movies

    class Stopped(Exception):
        pass

    def stop_at_second(done, total):
        steps.append(done)
        if done == 2:
            raise Stopped

    steps.clear()
    with pytest.raises(Stopped):
        coverage_mask(ensemble, movies=3, progress=stop_at_second)
    assert steps == [1, 2]


def test_short_trials_are_skipped(encoder):
    rec = recording_for(encoder, ["train"] * 3, frames=30)
    mask = transparency_mask(encoder, rec, iterations=5, clip_frames=20)
    assert mask.alpha.shape == SHAPE
    with pytest.raises(MovieReconError, match="fewer than 2"):
        transparency_mask(encoder, rec, iterations=5, clip_frames=40)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda e, r: transparency_mask(e, r, trials=[]), "at least 2"),
        (lambda e, r: transparency_mask(e, r, trials=[0, 5]), "not in the 'train' tier"),
        (lambda e, r: transparency_mask(e, r, trials=[0, 99]), "does not exist"),
        (lambda e, r: transparency_mask(e, r, neurons=[]), "empty"),
        (lambda e, r: transparency_mask(e, r, neurons=[0, N_NEURONS]), "must lie in"),
        (lambda e, r: transparency_mask(e, r, neurons=[1, 1]), "twice"),
        (lambda e, r: transparency_mask(e, r, iterations=0), "iterations"),
        (lambda e, r: transparency_mask(e, r, update_threshold=0), "threshold"),
        (lambda e, r: coverage_mask(e, neurons=[-1]), "must lie in"),
        (lambda e, r: coverage_mask(e, behavior=np.zeros(3)), "4 finite values"),
    ],
)
def test_bad_input_is_refused_before_any_work(encoder, recording, call, message):
    with pytest.raises(MovieReconError, match=message):
        call(encoder, recording)


def test_encoder_of_other_neurons_or_without_training_trials(encoder):
    other = recording_for(encoder, ["train", "train"])
    shifted = LeftHalfEncoder()
    shifted.unit_ids = shifted.unit_ids + 1
    for call in (
        lambda: transparency_mask(shifted, other, iterations=1),
        lambda: coverage_mask(shifted, recording=other),
    ):
        with pytest.raises(MovieReconError, match="trained on another recording"):
            call()
    tests_only = recording_for(encoder, ["oracle", "oracle", "final_test_main"])
    with pytest.raises(MovieReconError, match="at least 2 'train' trials"):
        transparency_mask(encoder, tests_only, iterations=1)


# ------------------------------------------------------------------- CLI


@pytest.mark.slow
def test_cli_mask_then_reconstruct_with_it(tmp_path, capsys):
    out = tmp_path / "mask.safetensors"
    sample = ["--recording", "sample", "--encoder", "sample", "--threads", "2"]
    assert main(["mask", *sample, "--iterations", "2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "update mask" in printed and "evaluation mask" in printed
    mask = load_mask(out)
    assert mask.alpha.shape == (36, 64) and mask.record["iterations"] == 2
    assert mask.record["recording"] == "insilico-seed2025" and mask.eval_mask().any()
    # The file is not replaced without --overwrite.
    assert main(["mask", *sample, "--method", "coverage", "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err

    result = tmp_path / "run.safetensors"
    trial = ["--trial", "10", "--preset", "fast", "--iterations", "2", "--out", str(result)]
    assert main(["reconstruct", *sample, *trial, "--mask", str(out)]) == 0
    saved = load_reconstruction(result)
    assert saved.record["masks"]["mask_file"] == str(out)
    assert saved.record["metrics"]["mask"] == "evaluation mask"
    assert np.array_equal(saved.mask, mask.eval_mask())

    np.save(tmp_path / "m.npy", np.ones((36, 64), bool))
    both = ["--mask", str(out), "--eval-mask", str(tmp_path / "m.npy"), "--overwrite"]
    assert main(["reconstruct", *sample, *trial, *both]) == 2
    assert "cannot be combined" in capsys.readouterr().err
