"""Each bad input of the hardening issue (17): one clear error naming the file, never a
traceback, a hang, a silent wrong result or a huge allocation."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from test_checkpoint import CONFIG, RECORD, make_encoder
from test_sensorium_io import make_recording

from napari_movierecon.cli import _load_mask, main
from napari_movierecon.encoders.checkpoint import load_encoder, save_encoder, save_ensemble
from napari_movierecon.encoders.fast import FastEncoder
from napari_movierecon.errors import CheckpointError, MovieReconError, RecordingError
from napari_movierecon.io.npy import regular_file
from napari_movierecon.io.sensorium import SensoriumRecording, write_sensorium
from napari_movierecon.reconstruct.results import (
    Reconstruction,
    load_reconstruction,
    save_reconstruction,
)
from napari_movierecon.recording import Neurons

# ---------------------------------------------------------------- checkpoints


def _crafted(tmp_path: Path, change, tensors_change=None) -> Path:
    """A real checkpoint whose JSON record (and optionally tensors) ``change`` edits."""
    path = save_encoder(make_encoder(), tmp_path / "real.safetensors", RECORD, overwrite=True)
    tensors = load_file(str(path))
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        record = json.loads(handle.metadata()["movierecon"])
    change(record)
    if tensors_change is not None:
        tensors_change(tensors)
    crafted = tmp_path / "crafted.safetensors"
    text = record if isinstance(record, str) else json.dumps(record)
    save_file(tensors, str(crafted), metadata={"movierecon": text})
    return crafted


@pytest.fixture
def built_models(monkeypatch) -> list[str]:
    """The device of every FastEncoder built from now on: "meta" for the shape-only model
    that checks a checkpoint's tensors (no memory), "cpu" for a real one."""
    built = []
    original = FastEncoder.__init__

    def recording_init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        built.append(self.bias.device.type)

    monkeypatch.setattr(FastEncoder, "__init__", recording_init)
    return built


def test_a_huge_declared_frame_is_refused_before_building(tmp_path, built_models):
    def change(record):
        record["config"]["frame_shape"] = [3600, 6400]

    crafted = _crafted(tmp_path, change)
    built_models.clear()  # crafting the file built one
    with pytest.raises(CheckpointError, match="frame_shape"):
        load_encoder(crafted)
    assert built_models == []


def test_a_huge_declared_model_is_refused_before_building(tmp_path, built_models):
    def change(record):  # within the per-value limits, but the file holds a tiny model
        record["config"].update(channels=16000, readout_channels=16000, temporal_channels=64)

    crafted = _crafted(tmp_path, change)
    built_models.clear()  # crafting the file built one
    with pytest.raises(CheckpointError, match="do not match"):
        load_encoder(crafted)
    assert built_models == ["meta"]  # the ~80 GB model was only described, never materialised


def test_a_consistent_checkpoint_builds_one_real_model(tmp_path, built_models):
    """The control for the two tests above: loading does build (and record) real models."""
    path = save_encoder(make_encoder(), tmp_path / "ok.safetensors", RECORD)
    built_models.clear()
    load_encoder(path)
    assert built_models == ["meta", "cpu"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r.pop("training"), "'training' is missing"),
        (lambda r: r.__setitem__("config", "FastEncoder"), "not a JSON object"),
        (lambda r: r["config"].__setitem__("channels", 4.5), "channels must be an integer"),
        (lambda r: r["config"].__setitem__("channels", True), "channels must be an integer"),
        (lambda r: r["config"].__setitem__("frame_shape", "big"), "must be a short list"),
        (lambda r: r["config"].__setitem__("extra", 1), "unknown fields"),
        (lambda r: r.__setitem__("architecture", ["x"]), "unknown architecture"),
    ],
)
def test_mistyped_checkpoint_records_are_refused(tmp_path, change, message):
    with pytest.raises(CheckpointError, match=message):
        load_encoder(_crafted(tmp_path, change))


def test_deeply_nested_record_is_one_error(tmp_path):
    path = _crafted(tmp_path, lambda r: r.__setitem__("training", {}))
    tensors = load_file(str(path))
    save_file(tensors, str(path), metadata={"movierecon": "[" * 100_000 + "]" * 100_000})
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_encoder(path)


def test_bf16_ids_and_zero_behaviour_std_are_refused(tmp_path):
    def bf16(tensors):
        tensors["unit_ids"] = tensors["unit_ids"].to(torch.bfloat16)

    with pytest.raises(CheckpointError, match="unit_ids"):
        load_encoder(_crafted(tmp_path, lambda r: None, bf16))

    def zero_std(tensors):
        tensors["behavior_std"] = torch.zeros_like(tensors["behavior_std"])

    with pytest.raises(CheckpointError, match="standard deviations"):
        load_encoder(_crafted(tmp_path, lambda r: None, zero_std))


def test_bf16_weights_load_as_float32(tmp_path):
    def bf16(tensors):
        for key, value in tensors.items():
            if value.is_floating_point():
                tensors[key] = value.to(torch.bfloat16)

    encoder = load_encoder(_crafted(tmp_path, lambda r: None, bf16))
    assert all(p.dtype == torch.float32 for p in encoder.parameters())


def test_odd_ensemble_member_names_are_one_error(tmp_path):
    folder = save_ensemble([make_encoder(0), make_encoder(1)], [RECORD] * 2, tmp_path / "ens")
    (folder / "member_1.safetensors").rename(folder / "member_x.safetensors")
    with pytest.raises(CheckpointError, match=r"member_x\.safetensors is not a member file name"):
        load_encoder(folder)


def test_text_file_is_not_called_a_pickle(tmp_path):
    path = tmp_path / "notes.safetensors"
    path.write_text("these are my notes\n" * 10)
    with pytest.raises(CheckpointError, match="a text file") as error:
        load_encoder(path)
    assert "pickle" not in str(error.value)


# ---------------------------------------------------------------- recordings


@pytest.fixture
def mouse(tmp_path) -> Path:
    return write_sensorium(
        make_recording(0, ["train"] * 3, [8, 6, 8], 5, frame_shape=(6, 8)),
        tmp_path / "mouse",
        pad_to=10,
    )


@pytest.mark.parametrize(
    ("variable", "position", "value"),
    [
        ("behavior", (1, 3), np.nan),
        ("pupil_center", (0, 2), np.inf),
        ("videos", (2, 3, 4), np.inf),
        ("responses", (4, 2), np.nan),
    ],
)
def test_non_finite_values_inside_valid_frames_name_file_and_trial(
    mouse, variable, position, value
):
    path = mouse / "data" / variable / "1.npy"
    array = np.load(path)
    array[position] = value
    np.save(path, array)
    recording = SensoriumRecording(mouse)
    with pytest.raises(RecordingError, match=rf"{variable}.1\.npy \(trial 1\): NaN or infinite"):
        recording.trial(1)
    recording.trial(0)  # the other trials stay readable


@pytest.mark.parametrize("value", [-5.0, 1e30])
def test_implausible_responses_are_refused(mouse, value):
    path = mouse / "data" / "responses" / "2.npy"
    array = np.load(path)
    array[0, 1] = value
    np.save(path, array)
    with pytest.raises(RecordingError, match=r"responses.2\.npy \(trial 2\): values from"):
        SensoriumRecording(mouse).trial(2)


def test_in_memory_trials_are_checked_alike():
    from napari_movierecon.io.memory import InMemoryRecording

    neurons = Neurons(np.arange(2), np.zeros((2, 3), np.float32))
    trial = {
        "movie": np.zeros((4, 2, 2)),
        "responses": np.full((2, 4), -5.0),
        "behavior": np.zeros((2, 4)),
        "pupil_center": np.zeros((2, 4)),
    }
    with pytest.raises(RecordingError, match="trial 0 responses: values from -5"):
        InMemoryRecording(neurons, ["train"], [trial])


@pytest.mark.parametrize(
    "content",
    [
        b"",  # empty .npy
        b"\x93NUMPY\x01\x00\x20\x00{'descr': '<f4', 'shape': (3,), 'fortran_order': False" + b" ",
        b"\x93NUMPY\x01\x00\x46\x00{'descr': '<f4', 'fortran_order': False, 'shape': "
        b"(99999999999999999999,), }      \n",
        b"\x93NUMPY\x01\x00\x46\x00{'descr': '<f4', 'fortran_order': False, 'shape': "
        b"(4611686018427387904, 4), }      \n",
        b"\x93NUMPY\x01\x00\x10\x00" + b"(" * 16,
    ],
    ids=["empty", "unterminated", "overflow", "huge", "tokens"],
)
def test_corrupt_npy_headers_in_metadata_are_one_error(mouse, content):
    (mouse / "meta" / "neurons" / "unit_ids.npy").write_bytes(content)
    with pytest.raises(RecordingError, match=r"unit_ids\.npy: "):
        SensoriumRecording(mouse)


def test_unreadable_file_is_not_called_missing(tmp_path, monkeypatch):
    path = tmp_path / "ids.npy"
    np.save(path, np.arange(3))
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if p == path else real_access(p, mode))
    with pytest.raises(MovieReconError, match="permission denied"):
        regular_file(path, "id file")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_unreadable_folder_is_one_error(mouse):
    (mouse / "meta" / "neurons").chmod(0)
    try:
        with pytest.raises(RecordingError, match="permission denied"):
            SensoriumRecording(mouse)
    finally:
        (mouse / "meta" / "neurons").chmod(0o755)


def test_fifo_as_mask_is_refused_without_hanging(tmp_path):
    fifo = tmp_path / "mask.npy"
    os.mkfifo(fifo)
    with pytest.raises(MovieReconError, match="not a regular file"):
        _load_mask(fifo)


# ---------------------------------------------------------------- result files


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("truth", np.zeros((3, 4, 6), np.float32)),
        ("mask", np.ones((5, 4), np.uint8)),
        ("frame_correlation", np.zeros(7, np.float32)),
        ("correlation_map", np.zeros((4,), np.float32)),
    ],
)
def test_result_files_with_inconsistent_arrays_are_refused(tmp_path, name, value):
    result = Reconstruction(movie=np.zeros((3, 4, 5), np.float32), neuron_ids=np.arange(3))
    setattr(result, name, value)
    path = save_reconstruction(result, tmp_path / "r.safetensors")
    with pytest.raises(MovieReconError, match=f"array '{name}' is"):
        load_reconstruction(path)
    pytest.importorskip("napari")
    from napari_movierecon._napari.reader import read_reconstruction

    with pytest.raises(MovieReconError, match="cannot open"):
        read_reconstruction(str(path))


# ---------------------------------------------------------------- the command line


@pytest.mark.parametrize(
    "argv",
    [
        ["simulate", "--out", "x", "--max-per-tier", "0"],
        ["simulate", "--out", "x", "--max-per-tier", "-1"],
        ["simulate", "--out", "x", "--seed", "-1"],
        ["train", "--recording", "sample", "--out", "x", "--epochs", "0"],
        ["train", "--recording", "sample", "--out", "x", "--threads", "-1"],
        ["train", "--recording", "sample", "--out", "x", "--threads", "4096"],
        ["evaluate", "--recording", "sample", "--encoder", "sample", "--device", "bogus"],
        ["mask", "--recording", "s", "--encoder", "s", "--out", "m", "--iterations", "0"],
        ["reconstruct", "--recording", "s", "--trial", "-1", "--encoder", "s", "--out", "r"],
    ],
)
def test_nonsense_numbers_are_refused_by_the_parser(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "Traceback" not in err


def test_missing_cuda_is_one_error_line(capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert main(["evaluate", "--recording", "s", "--encoder", "s", "--device", "cuda"]) == 2
    assert "CUDA is not available here" in capsys.readouterr().err


def test_one_iteration_is_refused_by_reconstruct(capsys):
    argv = ["reconstruct", "--recording", "s", "--trial", "0", "--encoder", "e", "--out", "r"]
    assert main([*argv, "--iterations", "1"]) == 2
    assert "--iterations: must be an integer >= 2" in capsys.readouterr().err


def test_os_errors_become_one_error_line(tmp_path, capsys, monkeypatch):
    import napari_movierecon.cli as cli

    def boom(args):
        raise PermissionError(13, "Permission denied", str(tmp_path / "x"))

    monkeypatch.setattr(cli, "run_figures", boom)
    assert main(["figures", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [f"error: {tmp_path / 'x'}: Permission denied"]


def test_full_disk_during_mp4_export_hides_the_ffmpeg_command(tmp_path, monkeypatch):
    from napari_movierecon.io import export

    def write_frames(*args, **kwargs):
        raise OSError(
            "[Errno 28] No space left on device\n\nFFMPEG COMMAND:\n/usr/bin/ffmpeg -y -f rawvideo"
        )
        yield

    monkeypatch.setattr(export.imageio_ffmpeg, "write_frames", write_frames)
    frames = np.zeros((2, 4, 4), np.float32)
    with pytest.raises(MovieReconError) as error:
        export.export_frames([export.Panel(frames, (0, 1))], tmp_path / "m.mp4")
    assert "no space left on device" in str(error.value)
    assert "ffmpeg" not in str(error.value).lower()
    assert list(tmp_path.iterdir()) == []


def test_checkpoint_round_trip_still_loads(tmp_path):
    path = save_encoder(make_encoder(), tmp_path / "ok.safetensors", RECORD)
    assert load_encoder(path).config == CONFIG
