"""Reading a saved probe result (``movierecon probe --out``): the record comes back as
written, with its curves, table columns and summary; a missing, corrupt or foreign file
is one MovieReconError naming it; fields of newer records are kept and shown."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_movierecon.errors import MovieReconError
from napari_movierecon.reconstruct.probe_result import (
    is_probe_location,
    load_probe_result,
)


def test_reads_what_movierecon_probe_wrote(tiny_probe):
    record = json.loads((tiny_probe / "probe.json").read_text())
    result = load_probe_result(tiny_probe)
    assert result.record == record
    assert result.path == (tiny_probe / "probe.json").resolve()
    assert load_probe_result(tiny_probe / "probe.json").record == record
    assert is_probe_location(tiny_probe) and is_probe_location(tiny_probe / "probe.json")
    assert not is_probe_location(tiny_probe.parent)

    spatial = {r["spatial"]: r["correlation"] for r in record["rows"] if r["axis"] == "spatial"}
    scales, values = result.curves("spatial")["correlation (full frame)"]
    np.testing.assert_array_equal(scales, [1.0, 4.0])
    np.testing.assert_array_equal(values, [spatial[1.0], spatial[4.0]])
    assert list(result.curves("temporal")) == ["correlation (full frame)"]
    # no mask: the full-frame column would repeat the correlation
    assert result.columns() == ["axis", "spatial", "temporal", "correlation", "iterations",
                                "seconds"]  # fmt: skip
    assert result.header("spatial") == ("spatial", "Gaussian sigma (px)")
    summary = result.summary()
    assert "noise probes" in summary and "(40 neurons)" in summary
    assert "preset fast (3 iterations)" in summary and "tiny.safetensors" in summary
    half = record["half_fall_scale"]
    for axis in ("spatial", "temporal"):
        expected = "not reached in 1-4" if half[axis] is None else f"{half[axis]:.2f}"
        assert f"{axis} {expected}" in result.half_fall_text()


def test_newer_records_with_extra_fields_open(tiny_probe, tmp_path):
    record = json.loads((tiny_probe / "probe.json").read_text())
    record["mask"] = "mask.safetensors"
    record["half_fall_scale"]["spatial"] = 2.5
    record["oracle"] = {"note": "an upper bound"}
    for k, row in enumerate(record["rows"]):
        row["oracle_correlation"] = 0.9 - 0.1 * k
        row["seed_correlations"] = [0.1, 0.2]
        row["per_seed"] = [{"seed": 0}]  # not a scalar: not a column
    (tmp_path / "probe.json").write_text(json.dumps(record))
    result = load_probe_result(tmp_path)
    assert result.columns() == ["axis", "spatial", "temporal", "correlation",
                                "full_frame_correlation", "iterations", "seconds",
                                "oracle_correlation", "seed_correlations"]  # fmt: skip
    curves = result.curves("spatial")
    assert list(curves) == ["correlation (mask)", "correlation (full frame)",
                            "oracle correlation"]  # fmt: skip
    np.testing.assert_allclose(curves["oracle correlation"][1], [0.9, 0.8])
    assert "spatial 2.50" in result.half_fall_text()
    assert "mask mask.safetensors" in result.summary()


def _write(folder, text):
    path = folder / "probe.json"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "JSON object expected, got list"),
        ('{"format": "movierecon-reconstruction"}', "no 'spec', 'units'"),
    ],
)
def test_corrupt_or_foreign_files_are_refused_by_name(tmp_path, content, message):
    path = _write(tmp_path, content)
    with pytest.raises(MovieReconError, match=message) as caught:
        load_probe_result(path)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r["spec"].update(kind="dots"), "spec.kind"),
        (lambda r: r["rows"][0].update(axis="diagonal"), "row 0: axis"),
        (lambda r: r["rows"][1].update(spatial=-1), "row 1: spatial scale"),
        (lambda r: r["rows"][0].update(correlation="high"), "row 0: correlation"),
        (lambda r: r["rows"][0].update(correlation=1.5), "row 0: correlation"),
        (lambda r: r.update(rows=[x for x in r["rows"] if x["axis"] == "spatial"]), "temporal"),
        (lambda r: r["half_fall_scale"].update(spatial="far"), "half_fall_scale.spatial"),
        (lambda r: r.update(n_neurons=True), "n_neurons"),
    ],
)
def test_records_with_wrong_fields_are_refused(tiny_probe, tmp_path, change, message):
    record = json.loads((tiny_probe / "probe.json").read_text())
    change(record)
    path = _write(tmp_path, json.dumps(record))
    with pytest.raises(MovieReconError, match=f"not a probe result.*{message}"):
        load_probe_result(path)


def test_missing_and_unreadable_locations(tmp_path):
    with pytest.raises(MovieReconError, match=r"no probe\.json"):
        load_probe_result(tmp_path)
    with pytest.raises(MovieReconError, match="no such probe record"):
        load_probe_result(tmp_path / "absent.json")
    (tmp_path / "probe.json").mkdir()  # a folder where the record should be
    with pytest.raises(MovieReconError, match="is a folder, expected a probe record"):
        load_probe_result(tmp_path)
    binary = tmp_path / "b.json"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(MovieReconError, match="not UTF-8"):
        load_probe_result(binary)
