"""Feed every reader and writer classes of bad input and count what comes back.

    PYTHONPATH=. python scripts/fuzz_inputs.py [--per-class 200] [--seed 0]

For each class: tried / clean error (our MovieReconError, or argparse's exit 2 for
command lines) / accepted (the input was still valid, e.g. a flipped bit inside a
float) / anything else (an uncaught exception: a bug). Exit status 1 when any
"anything else" occurred. Runs on the CPU in about a minute at the default size.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from napari_movierecon.cli import build_parser
from napari_movierecon.encoders.checkpoint import load_encoder, save_encoder
from napari_movierecon.encoders.fast import FastEncoder, FastEncoderConfig
from napari_movierecon.errors import MovieReconError
from napari_movierecon.io.memory import InMemoryRecording
from napari_movierecon.io.npy import load_npy
from napari_movierecon.io.sensorium import SensoriumRecording, write_sensorium
from napari_movierecon.io.tensor_file import METADATA_KEY, parse_record
from napari_movierecon.reconstruct.config import ReconstructionConfig
from napari_movierecon.reconstruct.masks.file import Mask, load_mask, save_mask
from napari_movierecon.reconstruct.neurons import parse_population
from napari_movierecon.reconstruct.results import (
    Reconstruction,
    load_reconstruction,
    save_reconstruction,
)
from napari_movierecon.recording import Neurons


def mutate(rng: np.random.Generator, data: bytes) -> bytes:
    """A few random bytes changed, maybe cut short, maybe extended."""
    out = bytearray(data)
    for _ in range(rng.integers(1, 8)):
        if out:
            out[rng.integers(len(out))] = rng.integers(256)
    if rng.random() < 0.3:
        out = out[: rng.integers(len(out) + 1)]
    if rng.random() < 0.2:
        out += rng.bytes(rng.integers(1, 16))
    return bytes(out)


class Tally:
    def __init__(self) -> None:
        self.rows: dict[str, list[int]] = {}
        self.examples: list[str] = []

    def run(self, name: str, attempt: Callable[[], object]) -> None:
        row = self.rows.setdefault(name, [0, 0, 0, 0])
        row[0] += 1
        try:
            attempt()
        except MovieReconError:
            row[1] += 1
        except SystemExit as exit_:
            row[1 if exit_.code == 2 else 3] += 1
        except Exception:
            row[3] += 1
            if len(self.examples) < 5:
                self.examples.append(f"{name}: {traceback.format_exc(limit=3)}")
        else:
            row[2] += 1

    def report(self) -> int:
        print(f"{'class':32s} {'tried':>6s} {'clean':>6s} {'valid':>6s} {'other':>6s}")
        for name, (tried, clean, valid, other) in self.rows.items():
            print(f"{name:32s} {tried:6d} {clean:6d} {valid:6d} {other:6d}")
        for example in self.examples:
            print("\n" + example)
        return int(any(row[3] for row in self.rows.values()))


def _fixtures(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True)
    torch.manual_seed(0)
    config = FastEncoderConfig(frame_shape=(12, 20), kernel_frames=5, channels=4)
    encoder = FastEncoder(config, np.arange(100, 107)).eval()
    result = Reconstruction(
        movie=np.zeros((3, 12, 20), np.float32),
        neuron_ids=np.arange(3),
        mask=np.ones((12, 20), bool),
        frame_correlation=np.zeros(3, np.float32),
    )
    rng = np.random.default_rng(0)
    neurons = Neurons(np.arange(4), rng.uniform(0, 9, (4, 3)).astype(np.float32))
    trials = [
        {
            "movie": rng.integers(0, 256, (n, 4, 6)).astype(np.float32),
            "responses": rng.gamma(1.5, 2.0, (4, n)).astype(np.float32),
            "behavior": rng.normal(5, 2, (2, n)).astype(np.float32),
            "pupil_center": rng.normal(0, 9, (2, n)).astype(np.float32),
        }
        for n in (6, 5)
    ]
    recording = InMemoryRecording(neurons, ["train", "oracle"], trials, name="fuzz")
    return {
        "checkpoint": save_encoder(encoder, folder / "c.safetensors", {"note": "fuzz"}),
        "result": save_reconstruction(result, folder / "r.safetensors"),
        "mask": save_mask(
            Mask(np.ones((12, 20), np.float32), "coverage"), folder / "m.safetensors"
        ),
        "mouse": write_sensorium(recording, folder / "mouse", pad_to=8),
    }


def _read_mouse(folder: Path) -> None:
    recording = SensoriumRecording(folder)
    for index in range(len(recording)):
        recording.trial(index)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(args.seed)
    tally = Tally()
    work = Path(tempfile.mkdtemp(prefix="movierecon-fuzz-"))
    try:
        fixtures = _fixtures(work / "valid")
        npy = io.BytesIO()
        np.save(npy, np.arange(24, dtype=np.float32).reshape(2, 3, 4))
        readers = {"checkpoint": load_encoder, "result": load_reconstruction, "mask": load_mask}
        mouse_files = sorted(
            p.relative_to(fixtures["mouse"]) for p in fixtures["mouse"].rglob("*.npy")
        )
        for k in range(args.per_class):
            case = work / f"case_{k}"
            case.mkdir()
            path = case / "a.npy"
            path.write_bytes(mutate(rng, npy.getvalue()) if k % 4 else rng.bytes(k % 97))
            tally.run(".npy bytes", lambda path=path, k=k: load_npy(path, mmap=bool(k % 2)))
            for kind, read in readers.items():
                target = case / f"{kind}.safetensors"
                target.write_bytes(mutate(rng, fixtures[kind].read_bytes()))
                tally.run(f"{kind} file bytes", lambda read=read, target=target: read(target))
            tally.run(
                "checkpoint records", lambda case=case: load_encoder(_crafted(rng, fixtures, case))
            )
            depth = int(rng.integers(1, 5000))
            text = rng.choice(["[" * depth + "]" * depth, json.dumps({"a": [1.5, None]})[:depth]])
            tally.run("JSON records", lambda text=text: parse_record(str(text), "record"))
            tally.run("config values", lambda: ReconstructionConfig.from_json(_config(rng)))
            spec = rng.choice(["all", "random", "top", "ids", "x"]) + ":" + _garbage(rng)
            tally.run("neuron specs", lambda spec=spec: parse_population(spec))
            copy = case / "mouse"
            shutil.copytree(fixtures["mouse"], copy)
            victim = copy / mouse_files[rng.integers(len(mouse_files))]
            victim.write_bytes(mutate(rng, victim.read_bytes()))
            tally.run("recording folder bytes", lambda copy=copy: _read_mouse(copy))
            tally.run(
                "recording values", lambda case=case: _read_mouse(_bad_values(rng, fixtures, case))
            )
            argv = _bad_numbers(rng)
            tally.run("CLI numbers", lambda argv=argv: build_parser().parse_args(argv))
            tally.run("write targets", lambda case=case: _write_target(rng, case))
            shutil.rmtree(case, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return tally.report()


def _garbage(rng: np.random.Generator) -> str:
    return "".join(rng.choice(list("0123456789.:-e+nafi/x "), size=rng.integers(0, 10)))


def _config(rng: np.random.Generator) -> dict:
    data = ReconstructionConfig().to_json()
    name = str(rng.choice(list(data)))
    options = [float("nan"), float("inf"), -1, 0, 2.5, "x", None, True, 10**9, [], {}]
    data[name] = options[rng.integers(len(options))]
    return data


def _crafted(rng: np.random.Generator, fixtures: dict, case: Path) -> Path:
    from safetensors import safe_open
    from safetensors.numpy import save_file

    with safe_open(str(fixtures["checkpoint"]), framework="numpy") as handle:
        record = json.loads(handle.metadata()[METADATA_KEY])
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    name = str(rng.choice(list(record["config"])))
    options = [0, -1, 10**6, 3600, [3600, 6400], 2.5, None, "x", float("nan"), True]
    record["config"][name] = options[rng.integers(len(options))]
    if rng.random() < 0.3:
        record.pop(str(rng.choice(["training", "config", "architecture", "n_neurons"])))
    path = case / "crafted.safetensors"
    save_file(tensors, str(path), metadata={METADATA_KEY: json.dumps(record)})
    return path


def _bad_values(rng: np.random.Generator, fixtures: dict, case: Path) -> Path:
    copy = case / "values"
    shutil.copytree(fixtures["mouse"], copy)
    variable = str(rng.choice(["videos", "responses", "behavior", "pupil_center"]))
    path = copy / "data" / variable / f"{rng.integers(2)}.npy"
    array = np.load(path)
    valid = np.argwhere(~np.isnan(array))
    position = tuple(valid[rng.integers(len(valid))])
    bad = [np.inf, -np.inf, 1e30, np.nan] + ([-5.0] if variable in ("videos", "responses") else [])
    array[position] = bad[rng.integers(len(bad))]
    np.save(path, array)
    return copy


def _bad_numbers(rng: np.random.Generator) -> list[str]:
    value = str(rng.choice(["0", "-1", "-7", "1e3", "x", "", "nan"]))
    return [
        ["simulate", "--out", "o", "--max-per-tier", value],
        ["simulate", "--out", "o", "--seed", "-3" if value == "0" else value],
        ["train", "--recording", "s", "--out", "o", "--epochs", value],
        ["train", "--recording", "s", "--out", "o", "--threads", str(rng.choice([value, "4096"]))],
        ["reconstruct", "--recording", "s", "--trial", "-1", "--encoder", "e", "--out", "r"],
        ["mask", "--recording", "s", "--encoder", "e", "--out", "m", "--iterations", value],
        ["evaluate", "--recording", "s", "--encoder", "e", "--device", "bogus"],
        ["simulate", "--out", ""],
    ][rng.integers(8)]


def _write_target(rng: np.random.Generator, case: Path) -> None:
    """Save a result over something that must not be replaced."""
    kind = int(rng.integers(5))
    target = case / "target.safetensors"
    if kind == 0:
        os.mkfifo(target)
    elif kind == 1:
        (case / "outside").write_text("keep")
        target.symlink_to(case / "outside")
    elif kind == 2:
        target.mkdir()
    elif kind == 3:
        target = case / "no" / "such" / "folder.safetensors"
    else:
        target.write_bytes(b"keep")
    result = Reconstruction(movie=np.zeros((2, 3, 4), np.float32), neuron_ids=np.arange(2))
    save_reconstruction(result, target, overwrite=bool(rng.integers(2)) and kind != 4)


if __name__ == "__main__":
    sys.exit(main())
