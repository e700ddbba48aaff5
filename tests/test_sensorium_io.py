"""Sensorium 2023 folders: round trips, lazy reading, and clear errors for broken folders."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from napari_movierecon.errors import RecordingError
from napari_movierecon.io import (
    InMemoryRecording,
    SensoriumRecording,
    atomic_save_npy,
    write_sensorium,
)
from napari_movierecon.recording import VARIABLES, Neurons

N_NEURONS = 20
PAD_TO = 12
TIERS = ["train", "train", "oracle", "train", "final_test_main", "final_test_main"]
LENGTHS = [12, 9, 12, 5, 12, 7]


def make_recording(
    seed: int,
    tiers: list[str],
    lengths: list[int],
    n_neurons: int,
    frame_shape: tuple[int, int] = (36, 64),
    without_responses: tuple[int, ...] = (),
) -> InMemoryRecording:
    """Integer-valued movies in 0..255 and float responses from a seeded Generator."""
    rng = np.random.default_rng(seed)
    neurons = Neurons(
        ids=rng.permutation(10 * n_neurons)[:n_neurons].astype(np.int64) + 1000,
        xyz=rng.uniform(0, 500, (n_neurons, 3)).astype(np.float32),
    )
    trials = []
    for i, length in enumerate(lengths):
        responses = rng.gamma(1.5, 2.0, (n_neurons, length)).astype(np.float32)
        trials.append(
            {
                "movie": rng.integers(0, 256, (length, *frame_shape)).astype(np.float32),
                "responses": None if i in without_responses else responses,
                "behavior": rng.normal(5.0, 2.0, (2, length)).astype(np.float32),
                "pupil_center": rng.normal(0.0, 10.0, (2, length)).astype(np.float32),
            }
        )
    return InMemoryRecording(neurons, tiers, trials, name="synthetic")


@pytest.fixture
def tiny() -> InMemoryRecording:
    """6 trials across train/oracle/final_test_main; the last has no responses."""
    return make_recording(0, TIERS, LENGTHS, N_NEURONS, without_responses=(5,))


@pytest.fixture
def folder(tmp_path: Path, tiny: InMemoryRecording) -> Path:
    """A valid tiny Sensorium folder that a test may corrupt."""
    return write_sensorium(tiny, tmp_path / "mouse", pad_to=PAD_TO)


def leftovers(parent: Path) -> list[str]:
    """Staging or temporary siblings a failed write might have left behind."""
    return sorted(p.name for p in parent.iterdir() if ".partial-" in p.name or ".tmp-" in p.name)


def assert_same_trial(got, want) -> None:
    assert got.tier == want.tier
    for key in ("movie", "behavior", "pupil_center"):
        assert getattr(got, key).dtype == np.float32
        assert np.array_equal(getattr(got, key), getattr(want, key)), key
    if want.responses is None:
        assert got.responses is None
    else:
        assert got.responses.dtype == np.float32
        assert np.array_equal(got.responses, want.responses)


# --- round trips -------------------------------------------------------------------------


def test_round_trip_is_bit_for_bit(folder: Path, tiny: InMemoryRecording) -> None:
    rec = SensoriumRecording(folder)
    assert rec.name == "mouse"
    assert rec.folder == folder
    assert rec.padded_length == PAD_TO
    assert rec.frame_shape == (36, 64)
    assert len(rec) == len(TIERS)
    assert rec.tiers.tolist() == TIERS
    assert np.array_equal(rec.neurons.ids, tiny.neurons.ids)
    assert rec.neurons.ids.dtype == np.int64
    assert np.array_equal(rec.neurons.xyz, tiny.neurons.xyz)
    for i in range(len(tiny)):
        got = rec.trial(i)
        assert got.index == i
        assert got.length == LENGTHS[i]
        assert got.movie.flags.c_contiguous
        assert not isinstance(got.movie, np.memmap)
        assert_same_trial(got, tiny.trial(i))


def test_files_follow_the_reference_layout(folder: Path) -> None:
    video = np.load(folder / "data" / "videos" / "3.npy")
    assert video.shape == (36, 64, PAD_TO)
    assert video.dtype == np.float32
    assert not np.isnan(video[..., :5]).any()
    assert np.isnan(video[..., 5:]).all()
    assert np.load(folder / "data" / "responses" / "3.npy").shape == (N_NEURONS, PAD_TO)
    assert np.load(folder / "data" / "behavior" / "3.npy").shape == (2, PAD_TO)
    assert not (folder / "data" / "responses" / "5.npy").exists()
    tiers = np.load(folder / "meta" / "trials" / "tiers.npy", allow_pickle=False)
    assert tiers.dtype.kind == "U"
    assert np.load(folder / "meta" / "neurons" / "unit_ids.npy").dtype == np.int64
    coords = np.load(folder / "meta" / "neurons" / "cell_motor_coordinates.npy")
    assert coords.dtype == np.float32


def test_statistics_match_numpy_over_valid_frames(folder: Path, tiny: InMemoryRecording) -> None:
    trials = [tiny.trial(i) for i in range(len(tiny))]
    pooled = {
        "videos": np.concatenate([t.movie.ravel() for t in trials]),
        "responses": np.concatenate([t.responses for t in trials if t.responses is not None], 1),
        "behavior": np.concatenate([t.behavior for t in trials], axis=1),
        "pupil_center": np.concatenate([t.pupil_center for t in trials], axis=1),
    }
    expected_shapes = {"videos": (), "responses": (N_NEURONS,), "behavior": (2,)}
    expected_shapes["pupil_center"] = (2,)
    on_disk = SensoriumRecording(folder).statistics()
    in_memory = tiny.statistics()
    for var in VARIABLES:
        data = pooled[var].astype(np.float64)
        axis = None if var == "videos" else 1
        want = {
            "min": data.min(axis=axis),
            "max": data.max(axis=axis),
            "mean": data.mean(axis=axis),
            "std": data.std(axis=axis),
        }
        for stat, value in want.items():
            for source in (on_disk, in_memory):
                got = source[var][stat]
                assert got.dtype == np.float32
                assert got.shape == expected_shapes[var], (var, stat)
                np.testing.assert_allclose(got, value, rtol=2e-6, atol=1e-5, err_msg=var + stat)


def test_subset_is_renumbered_in_the_given_order(tmp_path: Path, tiny: InMemoryRecording) -> None:
    out = write_sensorium(tiny, tmp_path / "subset", trials=[4, 2], pad_to=PAD_TO)
    rec = SensoriumRecording(out)
    assert rec.tiers.tolist() == ["final_test_main", "oracle"]
    assert_same_trial(rec.trial(0), tiny.trial(4))
    assert_same_trial(rec.trial(1), tiny.trial(2))
    assert sorted(p.name for p in (out / "data" / "videos").iterdir()) == ["0.npy", "1.npy"]


def test_progress_and_extra_run_inside_the_staged_folder(
    tmp_path: Path, tiny: InMemoryRecording
) -> None:
    calls = []

    def extra(tmp_dir: Path) -> None:
        assert tmp_dir != tmp_path / "out"
        (tmp_dir / "meta" / "insilico").mkdir()
        np.save(tmp_dir / "meta" / "insilico" / "truth.npy", np.arange(3))

    out = write_sensorium(
        tiny, tmp_path / "out", pad_to=PAD_TO, extra=extra, progress=lambda *a: calls.append(a)
    )
    assert calls == [(k, len(tiny)) for k in range(1, len(tiny) + 1)]
    assert np.array_equal(np.load(out / "meta" / "insilico" / "truth.npy"), np.arange(3))


def test_overwrite_replaces_only_a_complete_folder(tmp_path: Path, tiny: InMemoryRecording) -> None:
    out = write_sensorium(tiny, tmp_path / "mouse", pad_to=PAD_TO)

    def fail(_: Path) -> None:
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_sensorium(tiny, out, trials=[0], pad_to=PAD_TO, overwrite=True, extra=fail)
    assert len(SensoriumRecording(out)) == len(tiny)
    assert leftovers(tmp_path) == []
    write_sensorium(tiny, out, trials=[1], pad_to=PAD_TO, overwrite=True)
    rec = SensoriumRecording(out)
    assert len(rec) == 1
    assert_same_trial(rec.trial(0), tiny.trial(1))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mouse"]


def test_float16_float64_and_integer_files_are_returned_as_float32(
    folder: Path, tiny: InMemoryRecording
) -> None:
    want = tiny.trial(0)  # full length, so an integer video needs no NaN padding
    np.save(folder / "data" / "videos" / "0.npy", want.movie.transpose(1, 2, 0).astype(np.float16))
    np.save(folder / "data" / "responses" / "0.npy", want.responses.astype(np.float64))
    np.save(folder / "data" / "behavior" / "0.npy", want.behavior.astype(np.float64))
    np.save(
        folder / "data" / "videos" / "2.npy",
        tiny.trial(2).movie.transpose(1, 2, 0).astype(np.uint8),
    )
    rec = SensoriumRecording(folder)
    assert_same_trial(rec.trial(0), want)
    assert_same_trial(rec.trial(2), tiny.trial(2))


# --- laziness ----------------------------------------------------------------------------


def test_reading_is_lazy_and_memory_stays_flat(tmp_path: Path) -> None:
    n_trials, length, n_neurons, frame = 1000, 8, 50, (18, 32)
    source = make_recording(1, ["train"] * n_trials, [length] * n_trials, n_neurons, frame)
    folder = write_sensorium(source, tmp_path / "big", pad_to=length)
    trial_bytes = 4 * length * (frame[0] * frame[1] + n_neurons + 4)
    del source

    tracemalloc.start()
    try:
        rec = SensoriumRecording(folder)
        _, open_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        total = 0.0
        for i in range(len(rec)):
            total += float(rec.trial(i).responses[0, 0])
        _, read_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(rec) == n_trials and np.isfinite(total)
    all_data = n_trials * trial_bytes  # ~20 MB
    assert open_peak < 1_000_000 < all_data / 20
    assert read_peak < 5 * trial_bytes + 2_000_000 < all_data / 8


# --- malformed folders -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("relative", "pattern"),
    [
        ("meta/neurons/unit_ids.npy", r"unit_ids\.npy: missing file"),
        ("meta/neurons/cell_motor_coordinates.npy", r"cell_motor_coordinates\.npy: missing file"),
        ("meta/trials/tiers.npy", r"tiers\.npy: missing file"),
        ("data/videos/5.npy", r"6 trials but 1 video files are missing: data.videos.5\.npy"),
    ],
)
def test_missing_file_is_reported_on_open(folder: Path, relative: str, pattern: str) -> None:
    (folder / relative).unlink()
    with pytest.raises(RecordingError, match=pattern):
        SensoriumRecording(folder)


def test_not_a_folder(tmp_path: Path) -> None:
    with pytest.raises(RecordingError, match=r"nowhere: not a folder"):
        SensoriumRecording(tmp_path / "nowhere")


def test_unknown_tier(folder: Path) -> None:
    np.save(folder / "meta" / "trials" / "tiers.npy", np.array([*TIERS[:-1], "bogus"]))
    with pytest.raises(RecordingError, match=r"tiers\.npy: unknown tiers \['bogus'\]"):
        SensoriumRecording(folder)


def test_neuron_count_mismatch(folder: Path) -> None:
    np.save(folder / "data" / "responses" / "1.npy", np.zeros((17, PAD_TO), np.float32))
    rec = SensoriumRecording(folder)
    with pytest.raises(
        RecordingError,
        match=r"responses.1\.npy: has 17 neurons but meta/neurons/unit_ids\.npy lists 20",
    ):
        rec.trial(1)
    rec.trial(0)  # the other trials stay readable


def test_missing_responses_of_a_train_trial(folder: Path) -> None:
    (folder / "data" / "responses" / "3.npy").unlink()
    with pytest.raises(RecordingError, match=r"responses.3\.npy: missing .*'train'"):
        SensoriumRecording(folder).trial(3)


def test_video_with_swapped_frame_shape(folder: Path) -> None:
    np.save(folder / "data" / "videos" / "1.npy", np.zeros((64, 36, PAD_TO), np.float32))
    with pytest.raises(
        RecordingError, match=r"videos.1\.npy: frame shape \(64, 36\) differs from \(36, 64\)"
    ):
        SensoriumRecording(folder).trial(1)


@pytest.mark.parametrize("index", [0, 3])
def test_two_dimensional_video(folder: Path, index: int) -> None:
    np.save(folder / "data" / "videos" / f"{index}.npy", np.zeros((36, 64), np.float32))
    with pytest.raises(RecordingError, match=rf"videos.{index}\.npy: video must be 3-D"):
        SensoriumRecording(folder).trial(index)


def test_padded_lengths_disagree(folder: Path) -> None:
    np.save(folder / "data" / "behavior" / "2.npy", np.zeros((2, PAD_TO - 2), np.float32))
    with pytest.raises(RecordingError, match=r"trial 2 padded lengths disagree"):
        SensoriumRecording(folder).trial(2)


def test_trace_with_wrong_channel_count(folder: Path) -> None:
    np.save(folder / "data" / "pupil_center" / "2.npy", np.zeros((3, PAD_TO), np.float32))
    with pytest.raises(RecordingError, match=r"pupil_center.2\.npy: expected shape \(2, T\)"):
        SensoriumRecording(folder).trial(2)


def test_trial_of_only_nan(folder: Path) -> None:
    np.save(folder / "data" / "videos" / "2.npy", np.full((36, 64, PAD_TO), np.nan, np.float32))
    with pytest.raises(
        RecordingError, match=r"videos.2\.npy: contains no valid frames \(all NaN\)"
    ):
        SensoriumRecording(folder).trial(2)


@pytest.mark.parametrize(
    "bad",
    [
        np.full((N_NEURONS, PAD_TO), "abc", dtype="<U5"),
        np.zeros((N_NEURONS, PAD_TO), dtype=bool),
        np.zeros((N_NEURONS, PAD_TO), dtype=np.complex64),
        np.full((N_NEURONS, PAD_TO), None, dtype=object),
    ],
    ids=["unicode", "bool", "complex", "object"],
)
def test_non_numeric_dtype(folder: Path, bad: np.ndarray) -> None:
    np.save(folder / "data" / "responses" / "1.npy", bad, allow_pickle=True)
    with pytest.raises(RecordingError, match=r"responses.1\.npy: non-numeric dtype"):
        SensoriumRecording(folder).trial(1)


@pytest.mark.parametrize("keep", [0.5, 20], ids=["data-cut", "header-cut"])
def test_truncated_file(folder: Path, keep: float) -> None:
    path = folder / "data" / "behavior" / "1.npy"
    raw = path.read_bytes()
    path.write_bytes(raw[: int(len(raw) * keep) if keep < 1 else int(keep)])
    with pytest.raises(RecordingError, match=r"behavior.1\.npy: truncated or corrupt"):
        SensoriumRecording(folder).trial(1)


def test_truncated_metadata(folder: Path) -> None:
    path = folder / "meta" / "neurons" / "unit_ids.npy"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(RecordingError, match=r"unit_ids\.npy: truncated or corrupt"):
        SensoriumRecording(folder)


def test_missing_statistics_file_is_reported_when_asked(folder: Path) -> None:
    (folder / "meta" / "statistics" / "responses" / "all" / "std.npy").unlink()
    rec = SensoriumRecording(folder)  # opening does not need statistics
    with pytest.raises(RecordingError, match=r"responses.all.std\.npy: missing file"):
        rec.statistics()


@pytest.mark.parametrize("index", [6, -1, 100])
def test_trial_index_out_of_range(folder: Path, index: int) -> None:
    with pytest.raises(RecordingError, match=rf"trial {index} does not exist \(valid: 0\.\.5\)"):
        SensoriumRecording(folder).trial(index)


# --- writer failures ---------------------------------------------------------------------


def test_refuses_to_write_into_a_non_empty_folder(folder: Path, tiny: InMemoryRecording) -> None:
    before = sorted(p.name for p in folder.parent.iterdir())
    with pytest.raises(RecordingError, match=r"mouse: already exists; pass overwrite=True"):
        write_sensorium(tiny, folder, trials=[0], pad_to=PAD_TO)
    assert sorted(p.name for p in folder.parent.iterdir()) == before
    assert len(SensoriumRecording(folder)) == len(tiny)


def test_writes_into_an_existing_empty_folder(tmp_path: Path, tiny: InMemoryRecording) -> None:
    (tmp_path / "empty").mkdir()
    write_sensorium(tiny, tmp_path / "empty", trials=[0], pad_to=PAD_TO)
    assert len(SensoriumRecording(tmp_path / "empty")) == 1


def test_unwritable_location(tmp_path: Path, tiny: InMemoryRecording) -> None:
    (tmp_path / "plain.txt").write_text("not a folder")
    with pytest.raises(RecordingError, match=r"plain\.txt.mouse: cannot write here"):
        write_sensorium(tiny, tmp_path / "plain.txt" / "mouse", pad_to=PAD_TO)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain.txt"]


def test_trial_longer_than_pad_to_leaves_nothing(tmp_path: Path, tiny: InMemoryRecording) -> None:
    with pytest.raises(RecordingError, match=r"trial 0 has 12 frames, more than pad_to=10"):
        write_sensorium(tiny, tmp_path / "out", pad_to=10)
    assert list(tmp_path.iterdir()) == []


def test_failing_extra_leaves_nothing(tmp_path: Path, tiny: InMemoryRecording) -> None:
    def fail(_: Path) -> None:
        raise RuntimeError("ground truth failed")

    with pytest.raises(RuntimeError, match="ground truth failed"):
        write_sensorium(tiny, tmp_path / "out", pad_to=PAD_TO, extra=fail)
    assert list(tmp_path.iterdir()) == []


# --- in-memory recordings and atomic saves -----------------------------------------------


def test_in_memory_recording_rejects_bad_shapes(tiny: InMemoryRecording) -> None:
    good = tiny.trial(0)
    arrays = {k: getattr(good, k) for k in ("movie", "responses", "behavior", "pupil_center")}
    cases = [
        ({"responses": good.responses[:-1]}, r"trial 0 responses must be \(N=20, T=12\)"),
        ({"responses": None}, r"trial 0 \(tier 'train'\) needs responses"),
        ({"behavior": good.movie}, r"trial 0 behavior must be \(2, T=12\)"),
        ({"movie": good.movie[0]}, r"trial 0 movie must be \(T, H, W\)"),
        ({"movie": np.full((2, 36, 64), np.nan)}, r"trial 0 movie contains NaN"),
        ({"pupil_center": arrays["pupil_center"] > 0}, r"pupil_center: non-numeric dtype bool"),
    ]
    for change, pattern in cases:
        with pytest.raises(RecordingError, match=pattern):
            InMemoryRecording(tiny.neurons, ["train"], [{**arrays, **change}])
    with pytest.raises(RecordingError, match=r"unknown tiers \['bogus'\]"):
        InMemoryRecording(tiny.neurons, ["bogus"], [good])


def test_atomic_save_npy(tmp_path: Path) -> None:
    target = tmp_path / "a.npy"
    atomic_save_npy(target, np.arange(5, dtype=np.float32))
    atomic_save_npy(target, np.arange(3))
    assert np.array_equal(np.load(target), np.arange(3))
    with pytest.raises(RecordingError, match=r"a\.npy: cannot save"):
        atomic_save_npy(target, np.array([{}, None], dtype=object))
    assert np.array_equal(np.load(target), np.arange(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npy"]
