"""FastEncoder contract, training on a tiny in-silico mouse, the oracle, evaluation, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from test_frozen_encoder import relative_error

from napari_movierecon.cli import main
from napari_movierecon.encoders.base import behavior_input
from napari_movierecon.encoders.checkpoint import load_encoder
from napari_movierecon.encoders.data import TrialCache
from napari_movierecon.encoders.evaluate import evaluate_encoders
from napari_movierecon.encoders.fast import (
    CONTRAST_SCALE,
    FastEncoder,
    FastEncoderConfig,
    _entry_rows,
    _ReadoutProduct,
)
from napari_movierecon.encoders.oracle import OracleEncoder
from napari_movierecon.encoders.train import (
    TrainConfig,
    build_encoder,
    poisson_loss,
    predict_trials,
    train_encoder,
)
from napari_movierecon.errors import MovieReconError
from napari_movierecon.insilico.mouse import InSilicoMouse, MouseSpec, TierLayout
from napari_movierecon.insilico.population import PopulationSpec
from napari_movierecon.insilico.simulate import SimulatedRecording, write_simulated
from napari_movierecon.reconstruct.results import load_reconstruction
from napari_movierecon.recording import GRAY_LEVEL

TINY = MouseSpec(
    seed=5,
    population=PopulationSpec(n_neurons=200),
    tiers=TierLayout(
        train=12, oracle_clips=1, oracle_repeats=3, final_test_main=2, final_test_bonus=0
    ),
    n_frames=90,
    calibration_clips=2,
)
SMALL_MODEL = FastEncoderConfig(channels=8, readout_channels=8)
QUICK = TrainConfig(
    epochs=6, batch_clips=2, crop_frames=60, learning_rate=0.03, warmup_steps=4, position_trials=12
)


@pytest.fixture(scope="module")
def recording() -> SimulatedRecording:
    return SimulatedRecording(InSilicoMouse.build(TINY))


@pytest.fixture(scope="module")
def cache(recording) -> TrialCache:
    return TrialCache(recording)


@pytest.fixture(scope="module")
def trained(recording, cache):
    events = []
    encoder, record = train_encoder(recording, SMALL_MODEL, QUICK, events.append, cache)
    return encoder, record, events


def validation_loss(encoder, cache, recording) -> float:
    predicted, observed = predict_trials(encoder, cache, recording.trials_in("oracle"))
    return float(poisson_loss(torch.from_numpy(predicted), torch.from_numpy(observed)))


def test_encoder_is_causal_and_non_negative():
    torch.manual_seed(0)
    encoder = FastEncoder(SMALL_MODEL, np.arange(30), positions=np.zeros((30, 2)))
    movie = torch.rand(1, 40, 36, 64) * 255
    behavior = torch.randn(1, 4, 40)
    rates = encoder(movie, behavior)
    assert rates.shape == (1, 30, 40) and (rates >= 0).all()
    changed = movie.clone()
    changed[:, 25:] = 0  # the future must not change the past
    torch.testing.assert_close(encoder(changed, behavior)[..., :25], rates[..., :25])
    assert encoder.context_frames == SMALL_MODEL.kernel_frames - 1


def test_training_lowers_validation_loss(recording, cache, trained):
    encoder, record, events = trained
    torch.manual_seed(QUICK.seed)
    train = recording.trials_in("train")
    start = build_encoder(recording, cache, train, SMALL_MODEL, QUICK).eval()
    assert validation_loss(encoder, cache, recording) < validation_loss(start, cache, recording)
    history = record["validation_history"]
    assert record["validation_correlation_mean"] == max(history) > history[0] + 0.01
    assert record["train_trials"] == train.tolist()
    assert not set(record["validation_trials"]) & set(record["train_trials"])
    assert len(record["validation_correlation"]) == 200
    steps = [e for e in events if e.loss is not None]
    assert steps[-1].step == record["steps"] and np.isfinite([e.loss for e in steps]).all()


def test_training_is_deterministic_given_a_seed(recording, cache, trained):
    one_epoch = TrainConfig(**{**QUICK.__dict__, "epochs": 1})
    a, _ = train_encoder(recording, SMALL_MODEL, one_epoch, cache=cache)
    b, _ = train_encoder(recording, SMALL_MODEL, one_epoch, cache=cache)
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(pa, pb), name


def test_callback_can_cancel(recording, cache):
    _encoder, record = train_encoder(recording, SMALL_MODEL, QUICK, lambda e: e.step >= 2, cache)
    assert record["cancelled"] and record["steps"] == 2


def test_training_needs_both_tiers(recording):
    with pytest.raises(MovieReconError, match="need trials in both"):
        train_encoder(recording, SMALL_MODEL, TrainConfig(validation_tier="final_test_bonus"))
    with pytest.raises(MovieReconError, match="unknown tier 'nonexistent'"):
        train_encoder(recording, SMALL_MODEL, TrainConfig(validation_tier="nonexistent"))


def test_oracle_matches_the_mouse_and_bounds_the_evaluation(recording, trained):
    oracle = OracleEncoder(recording.mouse.model)
    trial = recording.trial(int(recording.trials_in("final_test_main")[0]))
    with torch.no_grad():
        rates = oracle(
            torch.from_numpy(trial.movie)[None], torch.from_numpy(behavior_input(trial))[None]
        )[0].numpy()
    np.testing.assert_allclose(rates, trial.extras["rates"], atol=2e-4)
    results = evaluate_encoders(
        {"learned": trained[0], "oracle": oracle}, recording, "final_test_main"
    )
    learned, truth = results["learned"].summary(), results["oracle"].summary()
    # Independently: each neuron's Pearson correlation over the tier's trials
    # concatenated, every clip's first context_frames skipped (a constant row scores 0).
    skip = max(trained[0].context_frames, oracle.context_frames)
    predicted, observed = [], []
    for index in recording.trials_in("final_test_main"):
        clip = recording.trial(int(index))
        movie, behavior = torch.from_numpy(clip.movie)[None], behavior_input(clip)[None]
        with torch.no_grad():
            predicted.append(trained[0](movie.float(), torch.from_numpy(behavior))[0, :, skip:])
        observed.append(clip.responses[:, skip:])
    pairs = zip(np.concatenate(predicted, 1), np.concatenate(observed, 1), strict=True)
    expected = np.nan_to_num([np.corrcoef(p, o)[0, 1] for p, o in pairs], nan=0.0)
    np.testing.assert_allclose(results["learned"].single_trial, expected, atol=1e-4)
    # The oracle predicts the noise-free rates exactly, and its single-trial
    # correlation is the ceiling reported for every encoder.
    assert truth["to_noise_free"] > 0.999
    assert truth["single_trial"] == pytest.approx(truth["oracle_single_trial"], abs=1e-3)
    assert 0 < learned["single_trial"] < truth["single_trial"]
    assert learned["ratio_to_oracle"] == pytest.approx(
        learned["single_trial"] / truth["single_trial"], rel=1e-3
    )


def test_cli_train_evaluate_round_trip(tmp_path, recording, capsys):
    folder = tmp_path / "mouse"
    write_simulated(recording, folder)
    out = tmp_path / "ensemble"
    assert (
        main(
            [
                "train",
                "--recording",
                str(folder),
                "--out",
                str(out),
                "--members",
                "2",
                "--epochs",
                "1",
                "--patience",
                "5",
                "--readout-block",
                "2",
                "--temporal-channels",
                "3",
                "--channels",
                "6",
                "--readout-channels",
                "5",
                "--threads",
                "2",
            ]
        )
        == 0
    )
    ensemble = load_encoder(out)
    assert len(ensemble) == 2
    seeds = [m.record["train_config"]["seed"] for m in ensemble.members]
    assert seeds == [0, 1]
    assert all(m.record["train_config"]["patience"] == 5 for m in ensemble.members)
    assert all(m.config.readout_block == 2 for m in ensemble.members)
    assert all(m.temporal.weight.shape[0] == 3 for m in ensemble.members)
    assert all((m.config.channels, m.config.readout_channels) == (6, 5) for m in ensemble.members)
    assert any(m.block_weights.abs().max() > 0 for m in ensemble.members)  # trained
    report = tmp_path / "scores.json"
    assert (
        main(["evaluate", "--recording", str(folder), "--encoder", str(out), "--json", str(report)])
        == 0
    )
    printed = capsys.readouterr().out
    assert "ensemble" in printed and "oracle" in printed
    results = json.loads(report.read_text())["results"]
    assert set(results) == {"member 0", "member 1", "ensemble"}
    assert results["ensemble"]["trials"] == 2
    assert 0 < results["ensemble"]["oracle_single_trial"] <= 1
    # Reconstruct a held-out trial with that ensemble, from the 25 % most reliable neurons.
    test_trial = int(recording.trials_in("final_test_main")[0])
    result_path = tmp_path / "run.safetensors"
    common = [
        "reconstruct",
        "--recording",
        str(folder),
        "--trial",
        str(test_trial),
        "--encoder",
        str(out),
        "--iterations",
        "3",
        "--out",
        str(result_path),
    ]
    assert main([*common, "--neurons", "top:50"]) == 0
    assert "pixel correlation" in capsys.readouterr().out
    result = load_reconstruction(result_path)
    assert result.movie.shape == (90, 36, 64) and len(result.neuron_ids) == 50
    assert result.record["trial"] == test_trial and result.record["config"]["iterations"] == 3
    np.testing.assert_array_equal(result.truth, recording.trial(test_trial).movie)
    # Existing output, a bad population spec: refused with one line, file untouched.
    assert main([*common, "--neurons", "top:50"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main([*common, "--neurons", "top:500", "--overwrite"]) == 2
    assert "k must lie in 1..200" in capsys.readouterr().err
    assert load_reconstruction(result_path).record["n_neurons"] == 50
    # A second train to the same folder is refused; the ensemble is untouched.
    assert main(["train", "--recording", str(folder), "--out", str(out), "--epochs", "1"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert len(load_encoder(out)) == 2
    # A readout block that cannot be built is refused before any training; nothing written.
    other = tmp_path / "other"
    assert (
        main(["train", "--recording", str(folder), "--out", str(other), "--readout-block", "1"])
        == 2
    )
    assert "readout_block must be 0 or >= 2" in capsys.readouterr().err
    assert not other.exists()


def test_cli_evaluate_refuses_other_neurons(tmp_path, trained, capsys):
    from napari_movierecon.encoders.checkpoint import save_encoder

    other = MouseSpec(
        seed=6,
        population=PopulationSpec(n_neurons=150),
        tiers=TINY.tiers,
        n_frames=90,
        calibration_clips=2,
    )
    folder = write_simulated(
        SimulatedRecording(InSilicoMouse.build(other)), tmp_path / "m", trials=[0, 13]
    )
    path = save_encoder(trained[0], tmp_path / "enc.safetensors", trained[1])
    assert main(["evaluate", "--recording", str(folder), "--encoder", str(path)]) == 2
    assert "predicts 200 neurons but m has 150" in capsys.readouterr().err


def block_encoder(block: int, frame_shape=(20, 28), n: int = 60) -> FastEncoder:
    config = FastEncoderConfig(frame_shape=frame_shape, readout_block=block)
    positions = np.random.default_rng(3).uniform(-1.1, 1.1, (n, 2))
    torch.manual_seed(3)
    encoder = FastEncoder(config, np.arange(n), positions=positions)
    with torch.no_grad():
        encoder.feature_weights.normal_()
    return encoder


@pytest.mark.parametrize("block", [2, 3, 4])
def test_block_readout_reads_a_block_around_each_position(block):
    """Each neuron reads exactly a block x block square of feature-map pixels (every
    channel), inside the map and containing the 4 pixels its position interpolates."""
    encoder = block_encoder(block)
    with torch.no_grad():
        encoder.block_weights.normal_()
    h, w = encoder.feature_shape
    point = block_encoder(0).readout_matrix().to_dense().reshape(-1, h, w, 16)
    dense = encoder.readout_matrix().to_dense().reshape(-1, h, w, 16).permute(0, 3, 1, 2)
    point = point.permute(0, 3, 1, 2)  # (N, channels, h, w)
    for neuron in range(encoder.n_neurons):
        read = dense[neuron].ne(0).all(dim=0)  # (h, w): the pixels read, in every channel
        rows, cols = read.any(1).nonzero()[:, 0], read.any(0).nonzero()[:, 0]
        assert read.sum() == block * block
        assert rows.max() - rows.min() == block - 1 and cols.max() - cols.min() == block - 1
        interpolated = point[neuron].ne(0).any(dim=0)
        assert read[interpolated].all()


def test_block_readout_without_block_weights_is_the_point_readout():
    """A block readout starts (block weights 0) as the point readout: training begins
    from the same model and only adds what the data ask for."""
    point, blocked = block_encoder(0), block_encoder(3)
    movie = torch.rand(1, 30, 20, 28, generator=torch.Generator().manual_seed(0)) * 255
    behavior = torch.zeros(1, 4, 30)
    with torch.no_grad():
        torch.testing.assert_close(blocked(movie, behavior), point(movie, behavior))
        blocked.block_weights.normal_()
        assert not torch.allclose(blocked(movie, behavior), point(movie, behavior))


@pytest.mark.parametrize("block", [0, 3])
def test_readout_is_bilinear_sampling_of_the_core_features(block):
    """The sparse readout against an independent reference: torch's grid_sample
    (bilinear, align_corners=False, border) of the core's features at each neuron's
    position times its feature weights (block weights 0: where block readouts start).
    Rates, and the gradients to the movie, the positions and the feature weights."""
    encoder = block_encoder(block)  # positions include some beyond the map's edges
    with torch.no_grad():
        encoder.bias.normal_()
        encoder.behavior_weights.normal_(0, 0.3)
    rng = torch.Generator().manual_seed(4)
    movie = (torch.rand(2, 25, 20, 28, generator=rng) * 255).requires_grad_(True)
    behavior = torch.randn(2, 4, 25, generator=rng)
    target = torch.rand(2, encoder.n_neurons, 25, generator=rng) * 2
    rates = encoder(movie, behavior)

    features = encoder.features(movie)  # (B, T, h, w, R)
    b, t, h, w, r = features.shape
    maps = features.reshape(b * t, h, w, r).permute(0, 3, 1, 2)
    grid = encoder.positions.clamp(-1, 1).expand(b * t, -1, -1)[:, :, None, :]
    sampled = torch.nn.functional.grid_sample(
        maps, grid, mode="bilinear", padding_mode="border", align_corners=False
    )[..., 0]  # (B*T, R, N)
    drive = torch.einsum("frn,nr->fn", sampled, encoder.feature_weights)
    drive = drive.reshape(b, t, -1).transpose(1, 2) + encoder.bias[:, None]
    z = (behavior - encoder.behavior_mean[:, None]) / encoder.behavior_std[:, None]
    gain = torch.exp(torch.einsum("nk,bkt->bnt", encoder.behavior_weights, z))
    expected = torch.nn.functional.softplus(drive) * gain
    assert relative_error(rates, expected) < 1e-5

    inputs = [movie, encoder.positions, encoder.feature_weights]
    grads = torch.autograd.grad(poisson_loss(rates, target), inputs)
    expected_grads = torch.autograd.grad(poisson_loss(expected, target), inputs)
    for name, grad, reference in zip(
        ("movie", "positions", "weights"), grads, expected_grads, strict=True
    ):
        assert relative_error(grad, reference) < 1e-4, name


def test_sparse_readout_product_and_its_gradients_match_a_dense_product():
    """The hand-written sparse product (forward a few frames at a time, backward through
    a transposed CSR matrix and a sampled product) against the dense matrix made from
    the same entries, over more frames than one sparse product takes."""
    encoder = block_encoder(3)
    with torch.no_grad():
        encoder.block_weights.normal_()
    rows, columns, values = (part.detach() for part in encoder.readout_parts())
    values.requires_grad_(True)
    n, k = encoder.n_neurons, encoder.feature_weights.shape[1] * int(np.prod(encoder.feature_shape))
    rng = torch.Generator().manual_seed(5)
    features = torch.randn(70, k, generator=rng, requires_grad=True)
    weights = torch.randn(n, 70, generator=rng)
    drive = _ReadoutProduct.apply(features, rows, columns, values)
    dense = torch.zeros(n, k).index_put((_entry_rows(rows), columns), values)
    expected = dense @ features.T
    assert relative_error(drive, expected) < 1e-5
    grads = torch.autograd.grad((drive * weights).sum(), [features, values])
    expected_grads = torch.autograd.grad((expected * weights).sum(), [features, values])
    for grad, reference in zip(grads, expected_grads, strict=True):
        assert relative_error(grad, reference) < 1e-5


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"readout_block": 1}, "readout_block must be 0 or >= 2"),
        ({"readout_block": -2}, "readout_block must be 0 or >= 2"),
        ({"readout_block": 9, "frame_shape": (12, 40)}, "larger than the feature map"),
    ],
)
def test_bad_readout_blocks_are_refused(kwargs, message):
    with pytest.raises(MovieReconError, match=message):
        FastEncoder(FastEncoderConfig(**kwargs), np.arange(3))


def core_as_written(encoder: FastEncoder, movie: torch.Tensor) -> torch.Tensor:
    """The core (B, T, h, w, R) through its torch modules as declared: the temporal
    Conv1d per pixel, the strided spatial Conv2d, the 1x1 mix of [ELU(y), ELU(-y)], ELU."""
    b, t, height, width = movie.shape
    x = torch.nn.functional.pad(
        (movie - GRAY_LEVEL) / CONTRAST_SCALE, (0, 0, 0, 0, encoder.context_frames, 0)
    )
    pixels = x.permute(0, 2, 3, 1).reshape(b * height * width, 1, -1)
    h = encoder.temporal(pixels).reshape(b, height, width, -1, t).permute(0, 4, 3, 1, 2)
    y = encoder.spatial(h.reshape(b * t, -1, height, width))
    elu = torch.nn.functional.elu
    mixed = elu(encoder.mix(torch.cat([elu(y), elu(-y)], 1)))
    return mixed.permute(0, 2, 3, 1).reshape(b, t, *mixed.shape[2:], -1)


@pytest.mark.parametrize(
    "config",
    [
        FastEncoderConfig(),  # the sample ensemble's architecture
        FastEncoderConfig(frame_shape=(36, 63), spatial_kernel=7, stride=3, readout_block=3),
        FastEncoderConfig(frame_shape=(20, 28), spatial_kernel=5, temporal_channels=8),
    ],
)
def test_training_core_computes_its_modules_as_written(config):
    """Training's module runs the temporal filter as products on strided windows and the
    strided spatial convolution as a stride-1 one on space-to-depth frames where it can
    (``strided=False``), or strided: either way the same features and the same gradient
    for every core parameter and the movie as the modules as declared."""
    torch.manual_seed(0)
    encoder = FastEncoder(config, np.arange(5))
    rng = torch.Generator().manual_seed(1)
    movie = torch.rand(2, 40, *config.frame_shape, generator=rng) * 255
    weights = None
    results = []
    for run in (core_as_written, False, True):
        encoder.zero_grad(set_to_none=True)
        movie.requires_grad_(True).grad = None
        features = run(encoder, movie) if callable(run) else encoder.features(movie, run)
        if weights is None:
            weights = torch.randn(features.shape, generator=rng)
        (features * weights).sum().backward()
        grads = {k: p.grad for k, p in encoder.named_parameters() if p.grad is not None}
        results.append((features.detach(), {**grads, "movie": movie.grad}))
    (expected, expected_grads), *paths = results

    assert set(expected_grads) == {"movie"} | {
        f"{m}.{p}" for m in ("temporal", "spatial", "mix") for p in ("weight", "bias")
    }
    for features, grads in paths:
        assert relative_error(features, expected) < 1e-5
        for name, grad in expected_grads.items():
            assert relative_error(grads[name], grad) < 1e-4, name
