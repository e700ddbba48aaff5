"""Property-based tests of every reader of untrusted input: whatever the bytes or text,
only our error type escapes (or a valid object comes back). Example budget and seed:
the ``ci`` profile in tests/conftest.py."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_checkpoint import RECORD, make_encoder
from test_sensorium_io import make_recording

from napari_movierecon.encoders.checkpoint import load_encoder, save_encoder
from napari_movierecon.errors import MovieReconError
from napari_movierecon.io.npy import load_npy
from napari_movierecon.io.sensorium import SensoriumRecording, write_sensorium
from napari_movierecon.io.tensor_file import parse_record
from napari_movierecon.reconstruct.config import ReconstructionConfig
from napari_movierecon.reconstruct.masks.file import load_mask
from napari_movierecon.reconstruct.neurons import parse_population
from napari_movierecon.reconstruct.results import (
    Reconstruction,
    load_reconstruction,
    save_reconstruction,
)

_NPY = io.BytesIO()
np.save(_NPY, np.arange(24, dtype=np.float32).reshape(2, 3, 4))
NPY_BYTES = _NPY.getvalue()


@st.composite
def mutated(draw, original: bytes) -> bytes:
    """``original`` with a few bytes changed, cut short, or extended."""
    data = bytearray(original)
    for _ in range(draw(st.integers(0, 6))):
        position = draw(st.integers(0, max(len(data) - 1, 0)))
        if data:
            data[position] = draw(st.integers(0, 255))
    cut = draw(st.one_of(st.none(), st.integers(0, len(data))))
    if cut is not None:
        data = data[:cut]
    return bytes(data) + draw(st.binary(max_size=8))


def _only_our_error(read, path: Path) -> None:
    try:
        read(path)
    except MovieReconError:
        pass


@given(content=st.one_of(mutated(NPY_BYTES), st.binary(max_size=200)))
def test_npy_reader(tmp_path_factory, content):
    path = tmp_path_factory.mktemp("npy") / "a.npy"
    path.write_bytes(content)
    _only_our_error(load_npy, path)
    _only_our_error(lambda p: load_npy(p, mmap=True), path)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, bytes]:
    """A valid checkpoint, result file and mask file as bytes."""
    from napari_movierecon.reconstruct.masks.file import Mask, save_mask

    folder = tmp_path_factory.mktemp("valid")
    checkpoint = save_encoder(make_encoder(), folder / "c.safetensors", RECORD)
    result = Reconstruction(
        movie=np.zeros((3, 12, 20), np.float32),
        neuron_ids=np.arange(3),
        mask=np.ones((12, 20), bool),
        frame_correlation=np.zeros(3, np.float32),
    )
    result_path = save_reconstruction(result, folder / "r.safetensors")
    mask_path = save_mask(Mask(np.ones((12, 20), np.float32), "coverage"), folder / "m.safetensors")
    return {
        "checkpoint": checkpoint.read_bytes(),
        "result": result_path.read_bytes(),
        "mask": mask_path.read_bytes(),
    }


READERS = {"checkpoint": load_encoder, "result": load_reconstruction, "mask": load_mask}


@pytest.mark.parametrize("kind", list(READERS))
def test_record_file_readers(tmp_path_factory, files, kind):
    @given(content=mutated(files[kind]))
    def check(content):
        path = tmp_path_factory.mktemp(kind) / "f.safetensors"
        path.write_bytes(content)
        _only_our_error(READERS[kind], path)

    check()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@given(text=st.one_of(st.text(max_size=60), json_values.map(json.dumps)))
def test_json_records(text):
    try:
        parse_record(text, "record")
    except MovieReconError:
        pass


config_fields = [f for f in ReconstructionConfig.__dataclass_fields__]


@given(
    changes=st.dictionaries(
        st.sampled_from([*config_fields, "bogus"]),
        st.none() | st.booleans() | st.integers(-5, 5000) | st.floats() | st.text(max_size=6),
        max_size=4,
    )
)
def test_config_json(changes):
    data = {**ReconstructionConfig().to_json(), **changes}
    try:
        config = ReconstructionConfig.from_json(data)
    except MovieReconError:
        return
    assert config.iterations >= 1 and np.isfinite(config.learning_rate)


@given(
    spec=st.one_of(
        st.text(max_size=20),
        st.builds(
            lambda kind, rest: f"{kind}:{rest}",
            st.sampled_from(["all", "random", "top", "ids", "depth", "region"]),
            st.text(alphabet="0123456789.:-eE+naif", max_size=12),
        ),
    )
)
def test_neuron_spec_parser(spec):
    try:
        parse_population(spec)
    except MovieReconError:
        pass


@pytest.fixture(scope="module")
def mouse_files(tmp_path_factory) -> tuple[Path, dict[str, bytes]]:
    folder = write_sensorium(
        make_recording(0, ["train", "oracle"], [6, 5], 4, frame_shape=(4, 6)),
        tmp_path_factory.mktemp("mouse") / "mouse",
        pad_to=8,
    )
    files = {
        str(p.relative_to(folder)): p.read_bytes()
        for p in folder.rglob("*.npy")
        if "statistics" not in p.parts
    }
    return folder, files


def test_recording_folder_reader(tmp_path_factory, mouse_files):
    import shutil

    folder, files = mouse_files
    names = sorted(files)

    @given(name=st.sampled_from(names), data=st.data())
    def check(name, data):
        copy = tmp_path_factory.mktemp("m") / "mouse"
        shutil.copytree(folder, copy)
        (copy / name).write_bytes(data.draw(mutated(files[name])))
        try:
            recording = SensoriumRecording(copy)
            for index in range(len(recording)):
                recording.trial(index)
        except MovieReconError:
            pass

    check()


def _slots(value) -> list[tuple]:
    """(container, key) of every value nested in ``value``."""
    items = value.items() if isinstance(value, dict) else enumerate(value)
    slots = []
    for key, child in items:
        slots.append((value, key))
        if isinstance(child, dict | list):
            slots += _slots(child)
    return slots


def test_probe_result_reader(tmp_path_factory, tiny_probe):
    from napari_movierecon.reconstruct.probe_result import AXES, load_probe_result

    original = (tiny_probe / "probe.json").read_bytes()

    @given(
        content=st.one_of(mutated(original), json_values.map(lambda v: json.dumps(v).encode())),
        data=st.data(),
    )
    def check(content, data):
        folder = tmp_path_factory.mktemp("probe")
        if data.draw(st.booleans()):  # one field of a valid record replaced
            record = json.loads(original)
            container, key = data.draw(st.sampled_from(_slots(record)))
            container[key] = data.draw(json_values)
            content = json.dumps(record).encode()
        (folder / "probe.json").write_bytes(content)
        try:
            result = load_probe_result(folder)
        except MovieReconError:
            return
        # whatever a valid record holds, everything a viewer asks for works
        result.summary(), result.half_fall_text()
        headers, cells = result.table()
        assert all(len(line) == len(headers) for line in cells)
        for axis in AXES:
            assert result.curves(axis)

    check()
