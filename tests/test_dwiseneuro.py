"""DwiseNeuro against outputs of the original code (shared/fixtures/dwiseneuro_tiny),
loading its argus checkpoints without unpickling code, the command line with it, and
bauer2025 doing with it what the reference code does."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from napari_movierecon.encoders.argus_checkpoint import (
    PUBLISHED_MICE,
    PUBLISHED_READOUTS,
    choose_mouse,
    convert_argus,
    load_argus_encoder,
)
from napari_movierecon.encoders.checkpoint import load_encoder
from napari_movierecon.encoders.dwiseneuro import DwiseNeuroEncoder
from napari_movierecon.encoders.ensemble import Ensemble
from napari_movierecon.encoders.train import poisson_loss
from napari_movierecon.errors import CheckpointError, MovieReconError
from napari_movierecon.reconstruct.config import default_preset, preset
from napari_movierecon.reconstruct.cost import estimate_reconstruction_cost, format_duration
from napari_movierecon.reconstruct.engine import build_objectives, reconstruct
from napari_movierecon.sources import check_device, open_encoder

# shared/ lies beside the repository (worktree, main checkout or CI clone).
FIXTURE = Path(__file__).parents[2] / "shared" / "fixtures" / "dwiseneuro_tiny"
CHECKPOINT = FIXTURE / "model-017-0.290000.pth"
pytestmark = pytest.mark.skipif(
    not FIXTURE.is_dir(), reason=f"DwiseNeuro fixture not found at {FIXTURE}"
)


def _manifest() -> dict:
    return json.loads((FIXTURE / "manifest.json").read_text())


def _rel(ours: np.ndarray, reference: np.ndarray) -> float:
    return float(np.linalg.norm(ours - reference) / np.linalg.norm(reference))


def _clip() -> tuple[torch.Tensor, torch.Tensor]:
    movie = torch.from_numpy(np.load(FIXTURE / "clip40_movie.npy"))[None]
    behavior = torch.from_numpy(np.load(FIXTURE / "clip40_behavior.npy"))[None]
    return movie, behavior


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("mouse", [0, 1, 2])
def test_window_rates_match_the_original_for_every_readout(mouse):
    encoder = load_argus_encoder(CHECKPOINT, mouse=mouse)
    window = torch.from_numpy(np.load(FIXTURE / "window_input.npy").astype(np.float32))
    reference = np.load(FIXTURE / f"window_rates_m{mouse}.npy")
    with torch.no_grad():
        rates = encoder.net(window).numpy()
    assert rates.shape == reference.shape
    assert _rel(rates, reference) < _manifest()["tolerances"]["rates_rel_l2"]


@pytest.mark.parametrize("mouse", [0, 1, 2])
def test_trial_prediction_matches_the_original(mouse):
    encoder = load_argus_encoder(CHECKPOINT, mouse=mouse)
    movie, behavior = _clip()
    reference = np.load(FIXTURE / f"clip40_rates_m{mouse}.npy")
    with torch.no_grad():
        rates = encoder(movie, behavior)[0].numpy()
    assert rates.shape == reference.shape == (encoder.n_neurons, 40)
    assert _rel(rates, reference) < _manifest()["tolerances"]["rates_rel_l2"]
    gray = torch.full_like(movie, 127.5)
    with torch.no_grad():
        assert _rel(encoder(gray, behavior)[0].numpy(), reference) > 0.05  # the movie matters


def test_input_gradient_matches_the_original():
    encoder = load_argus_encoder(CHECKPOINT, mouse=0)
    movie, behavior = _clip()
    movie.requires_grad_(True)
    weights = torch.from_numpy(np.load(FIXTURE / "clip40_loss_weights_m0.npy"))
    (grad,) = torch.autograd.grad((encoder(movie, behavior)[0] * weights).sum(), movie)
    reference = np.load(FIXTURE / "clip40_grad_movie_m0.npy")
    assert _rel(grad[0].numpy(), reference) < _manifest()["tolerances"]["grad_rel_l2"]


def test_model_input_places_the_frame_in_rows_14_to_49():
    encoder = load_argus_encoder(CHECKPOINT, mouse=0)
    movie, behavior = _clip()
    planes = encoder.model_input(movie, behavior)
    assert planes.shape == (1, 5, 40, 64, 64)
    assert torch.equal(planes[0, 0, :, 14:50], movie[0])
    assert (planes[0, 0, :, :14] == 0).all() and (planes[0, 0, :, 50:] == 0).all()
    assert torch.equal(planes[0, 2, 7], torch.full((64, 64), float(behavior[0, 1, 7])))
    assert (encoder.model_input(movie, behavior, pad_fill=127.5)[0, 0, :, :14] == 127.5).all()


def test_too_short_trial_is_a_clear_error():
    encoder = load_argus_encoder(CHECKPOINT, mouse=0)
    movie, behavior = _clip()
    assert encoder.context_frames == 30
    with pytest.raises(MovieReconError, match="at least 31 frames"):
        encoder(movie[:, :30], behavior[:, :, :30])


def test_only_the_chosen_readout_is_kept():
    encoder = load_argus_encoder(CHECKPOINT, mouse=2)
    keys = encoder.state_dict().keys()
    assert not any("readouts" in key for key in keys)
    assert encoder.net.readout.weight.shape[0] == 6 and encoder.n_neurons == 5
    assert not any(p.requires_grad for p in encoder.parameters())
    assert not encoder.training


def test_a_pickle_that_runs_code_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "marker.txt"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    content = torch.load(CHECKPOINT, map_location="cpu", weights_only=True)
    content["params"]["extra"] = Payload()
    evil = tmp_path / "model-001-0.1.pth"
    torch.save(content, evil)
    assert not marker.exists()
    with pytest.raises(CheckpointError, match="refused") as err:
        load_argus_encoder(evil, mouse=0)
    assert str(evil) in str(err.value)
    assert not marker.exists()
    # The payload is real: an unrestricted unpickler would have created the file.
    torch.load(evil, map_location="cpu", weights_only=False)
    assert marker.exists()


def _saved_with(tmp_path: Path, change) -> Path:
    content = torch.load(CHECKPOINT, map_location="cpu", weights_only=True)
    change(content)
    path = tmp_path / "model-000-0.0.pth"
    torch.save(content, path)
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c["params"]["nn_module"][1].update(core_features=[8, 8, 16, 10**7]), "core"),
        (lambda c: c["params"]["nn_module"][1].update(expansion_ratio="3"), "expansion"),
        (lambda c: c["params"]["nn_module"][1].pop("groups"), "missing"),
        (lambda c: c["params"].update(nn_module=("other", {})), "nn_module"),
        (lambda c: c["params"].update(frame_stack={"size": 8, "step": 2}), "frame_stack"),
        (lambda c: c["nn_state_dict"].pop("core.stem.0.weight"), "weights do not match"),
        (lambda c: c["nn_state_dict"]["core.stem.0.weight"].fill_(float("nan")), "NaN"),
        (lambda c: c.pop("params"), "not an argus checkpoint"),
    ],
)
def test_bad_params_or_weights_are_one_clear_error(tmp_path, change, message):
    path = _saved_with(tmp_path, change)
    with pytest.raises(CheckpointError, match=message) as err:
        load_argus_encoder(path, mouse=0)
    assert str(path) in str(err.value)


def test_corrupt_or_missing_files_are_clear_errors(tmp_path):
    broken = tmp_path / "model-1.pth"
    broken.write_bytes(CHECKPOINT.read_bytes()[:5000])
    with pytest.raises(CheckpointError, match="not a readable torch checkpoint"):
        load_argus_encoder(broken, mouse=0)
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_argus_encoder(tmp_path / "absent.pth", mouse=0)


def test_mouse_from_neuron_count_folder_name_or_explicit():
    path = Path("x.pth")
    assert choose_mouse(path, (7, 8, 5), None, "any-mouse", 8) == 1
    assert choose_mouse(path, (7, 8, 5), 2, None, None) == 2
    with pytest.raises(CheckpointError, match="no readout has that many"):
        choose_mouse(path, (7, 8, 5), None, "any-mouse", 9)
    with pytest.raises(CheckpointError, match="all have that many"):
        choose_mouse(path, (7, 7, 5), None, "any-mouse", 7)
    with pytest.raises(CheckpointError, match="does not exist"):
        choose_mouse(path, (7, 8, 5), 3, None, None)
    with pytest.raises(CheckpointError, match="which mouse"):
        choose_mouse(path, (7, 8, 5), None, None, None)
    for k, (prefix, _) in enumerate(PUBLISHED_MICE):
        name = f"{prefix}-Video-9b4f6a1a067fe51e15306b9628efea20"
        assert choose_mouse(path, PUBLISHED_READOUTS, None, name, None) == k


def test_unit_ids_come_from_the_recording_and_must_fit():
    ids = np.arange(100, 108)
    encoder = load_argus_encoder(CHECKPOINT, unit_ids=ids, recording_name="m")
    assert encoder.config.mouse == 1 and np.array_equal(encoder.unit_ids, ids)
    with pytest.raises(CheckpointError, match="mouse 0 has 7 neurons but m has 8"):
        load_argus_encoder(CHECKPOINT, mouse=0, unit_ids=ids, recording_name="m")


def test_converted_file_gives_identical_rates(tmp_path):
    ids = np.arange(7) * 3
    out = convert_argus(CHECKPOINT, tmp_path / "m0.safetensors", mouse=0, unit_ids=ids)
    converted = load_encoder(out)
    original = load_argus_encoder(CHECKPOINT, mouse=0, unit_ids=ids)
    assert isinstance(converted, DwiseNeuroEncoder)
    assert np.array_equal(converted.unit_ids, ids)
    movie, behavior = _clip()
    with torch.no_grad():
        assert torch.equal(converted(movie, behavior), original(movie, behavior))
    assert converted.record["mouse"] == 0
    with pytest.raises(CheckpointError, match="already exists"):
        convert_argus(CHECKPOINT, out, mouse=0)


def test_published_fold_layout_is_an_ensemble_and_converts_to_one(tmp_path):
    folder = tmp_path / "true_batch_002"
    for fold in range(2):
        (folder / f"fold_{fold}").mkdir(parents=True)
        shutil.copy(CHECKPOINT, folder / f"fold_{fold}" / CHECKPOINT.name)
    ensemble = open_encoder(folder, mouse=2)
    assert isinstance(ensemble, Ensemble) and len(ensemble) == 2
    assert ensemble.n_neurons == 5
    converted = convert_argus(folder, tmp_path / "converted", mouse=2)
    again = open_encoder(converted, mouse=2)
    movie, behavior = _clip()
    with torch.no_grad():
        assert torch.equal(again(movie, behavior), ensemble(movie, behavior))
    with pytest.raises(CheckpointError, match="mouse 1 does not apply"):
        open_encoder(converted, mouse=1)
    shutil.copy(CHECKPOINT, folder / "fold_1" / "model-016-0.28.pth")
    with pytest.raises(CheckpointError, match="expected one"):
        open_encoder(folder, mouse=2)


def test_cuda_is_refused_clearly_where_it_is_absent():
    assert check_device("cpu") == "cpu"
    with pytest.raises(MovieReconError, match="unknown device"):
        check_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(MovieReconError, match="CUDA is not available"):
            check_device("cuda")


def _sensorium_mouse(tmp_path: Path, n_neurons: int, name: str) -> Path:
    """A Sensorium-layout folder of the fixture clip's frames: 2 train trials and 1
    final_test_main trial of 40 frames, ``n_neurons`` neurons."""
    from napari_movierecon.io import InMemoryRecording, write_sensorium
    from napari_movierecon.recording import Neurons

    rng = np.random.default_rng(3)
    movie, behavior = (a[0].numpy() for a in _clip())
    trials = [
        {
            "movie": np.roll(movie, 7 * k, axis=0),
            "responses": rng.gamma(1.5, 2.0, (n_neurons, 40)).astype(np.float32),
            "behavior": behavior[:2],
            "pupil_center": behavior[2:],
        }
        for k in range(3)
    ]
    neurons = Neurons(ids=np.arange(n_neurons) + 500, xyz=rng.uniform(0, 500, (n_neurons, 3)))
    recording = InMemoryRecording(neurons, ["train", "train", "final_test_main"], trials, name=name)
    return write_sensorium(recording, tmp_path / name, pad_to=50)


def test_cli_reconstructs_and_evaluates_with_a_dwiseneuro_checkpoint(tmp_path, capsys):
    from napari_movierecon.cli import main
    from napari_movierecon.reconstruct.results import load_reconstruction

    folder = _sensorium_mouse(tmp_path, 8, "mouse-b")  # 8 neurons: readout 1
    out = tmp_path / "rec.safetensors"
    common = ["--recording", str(folder), "--encoder", str(CHECKPOINT), "--threads", "1"]
    code = main(["reconstruct", *common, "--trial", "2", "--iterations", "3", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "estimated" in err and "window" in err
    result = load_reconstruction(out)
    assert result.movie.shape == (40, 36, 64)
    assert result.record["config"]["preset"] == "fast_window"
    assert np.array_equal(result.neuron_ids, np.arange(8) + 500)
    assert main(["evaluate", *common, "--tier", "final_test_main"]) == 0
    assert "single-trial correlation" in capsys.readouterr().out
    converted = tmp_path / "m1.safetensors"
    assert main(["convert", *common[:4], "--out", str(converted)]) == 0
    assert load_encoder(converted).config.mouse == 1


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--mouse", "0"], "mouse 0 has 7 neurons"),
        (["--mouse", "5"], "mouse 5 does not exist"),
        (["--device", "nonsense"], "unknown device"),
    ],
)
def test_cli_dwiseneuro_mistakes_are_one_line_errors(tmp_path, capsys, extra, message):
    from napari_movierecon.cli import main

    folder = _sensorium_mouse(tmp_path, 8, "mouse-b")
    code = main(["evaluate", "--recording", str(folder), "--encoder", str(CHECKPOINT), *extra])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err


def test_a_recording_that_fits_no_readout_is_refused(tmp_path, capsys):
    from napari_movierecon.cli import main

    folder = _sensorium_mouse(tmp_path, 9, "mouse-c")
    code = main(["evaluate", "--recording", str(folder), "--encoder", str(CHECKPOINT)])
    assert code == 2 and "no readout has that many" in capsys.readouterr().err


@pytest.fixture(scope="module")
def clip():
    """The fixture's 40-frame clip twice (80 frames) and mouse 1's rates to it as target."""
    torch.set_num_threads(1)
    encoder = load_argus_encoder(CHECKPOINT, mouse=1)
    movie = np.load(FIXTURE / "clip40_movie.npy")
    behavior = np.load(FIXTURE / "clip40_behavior.npy")
    movie, behavior = np.concatenate([movie, movie[::-1]]), np.concatenate([behavior] * 2, 1)
    with torch.no_grad():
        rates = encoder(torch.from_numpy(movie)[None], torch.from_numpy(behavior)[None])[0]
    return encoder, movie, behavior, rates.numpy()


def _count_passes(encoder) -> tuple[list[int], object]:
    """A list that gets each 16-frame pass's batch size, and the hook's handle."""
    calls = []
    hook = encoder.net.register_forward_hook(lambda _, args, out: calls.append(args[0].shape[0]))
    return calls, hook


def test_a_reference_window_is_two_passes_normalised_over_the_whole_input(clip):
    encoder, movie, behavior, rates = clip
    config = preset("bauer2025")
    neurons = np.arange(encoder.n_neurons)
    (objective,) = build_objectives([encoder], rates, neurons, behavior, config, "cpu")
    assert objective.starts.tolist() == [0, 8, 16, 24, 32, 40, 48]
    current = torch.from_numpy(movie).clone() * 0.5 + 60
    calls, hook = _count_passes(encoder)
    grads, losses = objective.gradients(current, slice(1, 2))  # the window at frame 8
    hook.remove()
    assert sum(calls) == 2  # frames 8, 10, ..., 38 and 9, 11, ..., 39
    # The reference computation, written out for that window.
    planes = torch.zeros((1, 5, 32, 64, 64))
    planes[0, 0] = 127.5  # pad rows: the reference's gray
    planes[0, 0, :, 14:50] = current[8:40]
    planes[0, 1:] = torch.from_numpy(behavior[:, 8:40])[:, :, None, None]
    planes.requires_grad_(True)
    predicted = torch.zeros((encoder.n_neurons, 32))
    for parity in (0, 1):
        predicted[:, parity::2] = encoder.net(planes[:, :, parity::2])[0]
    loss = poisson_loss(predicted, torch.from_numpy(rates[:, 8:40]))
    (full,) = torch.autograd.grad(loss, planes)
    expected = full[0, 0, :, 14:50] / (full.norm() + 1e-6)
    assert losses == pytest.approx([float(loss.detach())], rel=1e-5)
    assert torch.allclose(grads[0], expected, rtol=1e-4, atol=1e-9)
    # Normalising over the movie alone would differ: the other channels carry gradient.
    assert full[0, 1:].norm() > 0.01 * full.norm()


def test_pad_fill_knob_and_short_windows(clip):
    encoder, movie, behavior, rates = clip
    neurons = np.arange(encoder.n_neurons)
    config = preset("bauer2025", pad_fill=None)
    (objective,) = build_objectives([encoder], rates, neurons, behavior, config, "cpu")
    assert objective.pad_fill is None
    seen = []
    hook = encoder.net.register_forward_pre_hook(lambda _, args: seen.append(args[0][0, 0, 0, 0]))
    objective.gradients(torch.from_numpy(movie), slice(0, 1))
    hook.remove()
    assert float(seen[-1].detach().max()) == 0.0  # the encoder's training fill, black
    with pytest.raises(MovieReconError, match="at least 31 frames"):
        build_objectives(
            [encoder], rates, neurons, behavior, config.replace(window_frames=16), "cpu"
        )


def test_bauer2025_members_alone_then_mean_and_fast_window(clip):
    encoder, movie, behavior, rates = clip
    ensemble = Ensemble([encoder, load_argus_encoder(CHECKPOINT, mouse=1)])
    neurons = np.arange(encoder.n_neurons)
    config = preset("bauer2025", iterations=3, snapshot_every=3)
    snapshots = list(reconstruct(ensemble, rates, neurons, behavior, config, truth=movie))
    last = snapshots[-1]
    assert last.skip_frames == 30 and last.movie.shape == (80, 36, 64)
    assert last.encoder_frames == 3 * 2 * 7 * 32  # iterations x members x windows x frames
    assert np.isfinite(last.pixel_correlation)
    assert default_preset(ensemble) == "fast_window"
    fast = preset("fast_window", iterations=2, snapshot_every=2)
    (objective,) = build_objectives([encoder], rates, neurons, behavior, fast, "cpu")
    assert objective.starts.tolist() == [0, 32, 48]  # side by side, the last at the end
    final = list(reconstruct(ensemble, rates, neurons, behavior, fast, truth=movie))[-1]
    assert final.encoder_frames == 2 * 2 * 3 * 32


def test_cost_estimate_counts_what_the_engine_runs(clip):
    encoder, _, behavior, rates = clip
    ensemble = Ensemble([encoder, load_argus_encoder(CHECKPOINT, mouse=1)])
    config = preset("bauer2025", iterations=1000)
    cost = estimate_reconstruction_cost(
        ensemble, rates, np.arange(encoder.n_neurons), behavior, config
    )
    assert (cost.windows, cost.members, cost.iterations) == (7, 2, 1000)
    assert cost.total_seconds == pytest.approx(cost.seconds_per_window * 7 * 2 * 1000)
    assert "1000 iterations x 2 member(s) x 7 window(s)" in cost.describe()
    assert format_duration(90) == "90 s" and format_duration(3 * 3600) == "3.0 h"


def test_widgets_open_a_dwiseneuro_checkpoint_and_state_the_cost_first(
    tmp_path, make_napari_viewer, qtbot, monkeypatch
):
    from napari_movierecon._napari import cost_confirm
    from napari_movierecon._napari.launch import dock_all

    folder = _sensorium_mouse(tmp_path, 8, "mouse-b")
    widgets = dock_all(make_napari_viewer())
    recording, run = widgets["Recording and trial"], widgets["Reconstruction"]
    recording.recording_edit.setText(str(folder))
    recording.encoder_edit.setText(str(CHECKPOINT))
    steps = []
    with qtbot.waitSignal(run.session.trial_changed, timeout=60_000):
        recording.open(2)
        recording._worker.yielded.connect(steps.append)
    qtbot.waitUntil(lambda: run.session.population is not None, timeout=30_000)
    encoder = run.session.encoder
    assert isinstance(encoder, DwiseNeuroEncoder) and encoder.config.mouse == 1
    assert any("model-017" in step for step in steps)
    run.editor.load_preset("fast_window")
    run.editor.editors["iterations"].setValue(2)
    monkeypatch.setattr(cost_confirm, "CONFIRM_ABOVE_S", 0.0)
    assert run.start_run() is None  # above the threshold: the estimate, and a question
    assert "estimated" in run.cost.text() and "press Run again" in run.cost.text()
    view = run.start_run()  # confirmed
    assert view is not None
    qtbot.waitUntil(lambda: not view.active and not view.worker.is_running, timeout=60_000)
    assert view.last.iteration == 2


def test_recording_widget_says_which_mouse_is_wrong(tmp_path, make_napari_viewer, qtbot):
    from napari_movierecon._napari.launch import dock_all

    folder = _sensorium_mouse(tmp_path, 8, "mouse-b")
    widgets = dock_all(make_napari_viewer())
    recording = widgets["Recording and trial"]
    recording.recording_edit.setText(str(folder))
    recording.encoder_edit.setText(str(CHECKPOINT))
    recording.mouse_box.setValue(0)
    recording.open(None)
    qtbot.waitUntil(lambda: recording.info.text().startswith("error:"), timeout=30_000)
    assert "mouse 0 has 7 neurons" in recording.info.text()
