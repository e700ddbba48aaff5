"""Reading a saved probe result (``movierecon probe --out``): the record comes back as
written, with its table (mean ± sd over seeds), curves (the oracle's too) and summary;
records from before seeds and the oracle read too; a missing, corrupt or foreign file
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
    assert result.n_seeds == 2 and list(result.sweeps) == ["encoder"]

    (curve,) = result.curves("spatial")  # no mask: full frame only; no oracle
    spatial = sorted(
        (r for r in record["rows"] if r["axis"] == "spatial"), key=lambda r: r["spatial"]
    )
    assert curve.title == "encoder (full frame)" and not curve.oracle
    np.testing.assert_array_equal(curve.scales, [1.0, 4.0])
    np.testing.assert_array_equal(curve.values, [r["correlation"] for r in spatial])
    np.testing.assert_array_equal(curve.sd, [r["correlation_sd"] for r in spatial])
    assert any(r["correlation_sd"] > 0 for r in record["rows"])  # Poisson samples differ

    headers, cells = result.table()
    assert headers == [("axis swept", ""), ("spatial", "Gaussian sigma (px)"),
                       ("temporal", "Gaussian sigma (frames)"), ("encoder", "full frame"),
                       ("iterations", ""), ("seconds", "per run")]  # fmt: skip
    first = record["rows"][0]
    assert cells[0][:5] == ["spatial", "1", "2",
                            f"{first['correlation']:.3f} ± {first['correlation_sd']:.3f}",
                            "3"]  # fmt: skip
    assert len(cells) == 4
    summary = result.summary()
    assert "noise probes" in summary and "(40 neurons)" in summary
    assert "preset fast (3 iterations)" in summary and "tiny.safetensors" in summary
    assert "Poisson-sampled" in summary and "mean ± sd over 2 seeds" in summary
    half = record["half_fall_scale"]
    for axis in ("spatial", "temporal"):
        expected = "not reached" if half[axis] is None else f"{half[axis]:.2f}"
        assert f"{axis} {expected}" in result.half_fall_text()


def with_oracle(record: dict, correlation: float = 0.8) -> dict:
    """``record`` with an oracle sweep whose correlations are all ``correlation``."""
    rows = [dict(row, correlation=correlation, correlation_sd=0.01) for row in record["rows"]]
    half = {"spatial": 2.0, "temporal": None}
    return record | {"oracle": {"encoder": "InSilicoOracle", "rows": rows, "half_fall_scale": half}}


def test_oracle_mask_and_fields_of_newer_records(tiny_probe, tmp_path):
    record = with_oracle(json.loads((tiny_probe / "probe.json").read_text()))
    record["mask"] = "mask.safetensors"
    record["future"] = {"note": "kept"}
    for row in record["rows"]:
        row["note"] = "x"
        row["per_seed_detail"] = [{"seed": 0}]  # not a scalar: not a column
    (tmp_path / "probe.json").write_text(json.dumps(record))
    result = load_probe_result(tmp_path)
    assert result.record["future"] == {"note": "kept"}
    headers, cells = result.table()
    assert headers[3:] == [("encoder", "mask"), ("encoder", "full frame"),
                           ("in-silico oracle", "mask"), ("in-silico oracle", "full frame"),
                           ("iterations", ""), ("seconds", "per run"), ("note", "")]  # fmt: skip
    assert cells[0][5].startswith("0.800 ± 0.010") and cells[0][-1] == "x"
    curves = result.curves("temporal")
    assert [(c.title, c.oracle) for c in curves] == [
        ("encoder (mask)", False),
        ("encoder (full frame)", False),
        ("in-silico oracle (mask)", True),
        ("in-silico oracle (full frame)", True),
    ]
    np.testing.assert_allclose(curves[2].values, [0.8, 0.8])
    assert "in-silico oracle: spatial 2.00, temporal not reached" in result.half_fall_text()
    assert "mask mask.safetensors" in result.summary()
    assert "with the in-silico oracle" in result.summary()


def test_records_from_before_seeds_and_the_oracle(tiny_probe, tmp_path):
    record = json.loads((tiny_probe / "probe.json").read_text())
    for row in record["rows"]:
        for key in ("seeds", "correlation_sd", "full_frame_correlation_sd", "correlations",
                    "full_frame_correlations"):  # fmt: skip
            del row[key]
    del record["oracle"]
    record["spec"].pop("n_seeds")
    (tmp_path / "probe.json").write_text(json.dumps(record))
    result = load_probe_result(tmp_path)
    assert result.n_seeds == 1 and list(result.sweeps) == ["encoder"]
    _, cells = result.table()
    assert cells[0][3] == f"{record['rows'][0]['correlation']:.3f}"  # no sd
    assert "seed 0" in result.summary()


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
        (lambda r: r["rows"][0].update(correlation_sd=-0.1), "row 0: correlation_sd"),
        (lambda r: r.update(oracle=[]), "oracle must be null or an object"),
        (
            lambda r: r.update(with_oracle(r)) or r["oracle"]["rows"][1].update(axis="x"),
            "oracle row 1: axis",
        ),
        (
            lambda r: r.update(with_oracle(r)) or r["oracle"]["rows"].reverse(),
            "the oracle's rows are not the encoder's probes",
        ),
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
