"""Opening a probe result in napari: File > Open of a probe folder or its probe.json docks
its table and curves; a corrupt or foreign file says what is wrong in the dock and a
notification, never a traceback; the same result opened twice is docked once."""

from __future__ import annotations

import json

import numpy as np
import pyqtgraph as pg
from qtpy.QtCore import Qt

from napari_movierecon._napari.probe_widget import ProbeWidget
from napari_movierecon._napari.reader import get_reader


def _docked(viewer) -> list[ProbeWidget]:
    return viewer.window._qt_window.findChildren(ProbeWidget)


def _cells(widget: ProbeWidget) -> list[list[str]]:
    table = widget.table
    return [
        [table.item(r, c).text() for c in range(table.columnCount())]
        for r in range(table.rowCount())
    ]


def test_opening_a_probe_result_shows_its_rows_and_curves(make_napari_viewer, tiny_probe):
    record = json.loads((tiny_probe / "probe.json").read_text())
    viewer = make_napari_viewer()
    viewer.open(str(tiny_probe), plugin="napari-movierecon")
    assert len(viewer.layers) == 0  # a result is a table and curves, not layers
    (widget,) = _docked(viewer)

    headers = [widget.table.horizontalHeaderItem(c).text() for c in range(4)]
    assert headers == ["axis swept", "spatial\nGaussian sigma (px)",
                       "temporal\nGaussian sigma (frames)", "encoder\nfull frame"]  # fmt: skip
    assert [row[:4] for row in _cells(widget)] == [
        [r["axis"], f"{r['spatial']:g}", f"{r['temporal']:g}",
         f"{r['correlation']:.3f} ± {r['correlation_sd']:.3f}"]
        for r in record["rows"]
    ]  # fmt: skip
    assert "(40 neurons)" in widget.summary.text() and "preset fast" in widget.summary.text()
    assert "mean ± sd over 2 seeds" in widget.summary.text()
    half = record["half_fall_scale"]
    for axis in ("spatial", "temporal"):
        text = "not reached" if half[axis] is None else f"{half[axis]:.2f}"
        assert f"{axis} {text}" in widget.half_fall.text()
        items = widget.plots[axis].getPlotItem().items
        (curve,) = widget.plots[axis].getPlotItem().listDataItems()
        x, y = curve.getOriginalDataset()
        rows = [r for r in record["rows"] if r["axis"] == axis]
        np.testing.assert_allclose(x, [r[axis] for r in rows])
        np.testing.assert_allclose(y, [r["correlation"] for r in rows])
        (bars,) = [item for item in items if isinstance(item, pg.ErrorBarItem)]
        np.testing.assert_allclose(bars.opts["height"], [2 * r["correlation_sd"] for r in rows])
        lines = [item.value() for item in items if isinstance(item, pg.InfiniteLine)]
        expected = [] if half[axis] is None else [np.log10(half[axis])]  # log x axis
        assert len(lines) == len(expected)
        np.testing.assert_allclose(lines, expected, rtol=1e-12)
    assert widget.key.isHidden()  # one curve: named in the plot titles

    # probe.json itself opens too, into the same dock
    viewer.open(str(tiny_probe / "probe.json"), plugin="napari-movierecon")
    assert _docked(viewer) == [widget]


def test_the_oracle_upper_bound_is_a_dashed_curve(make_napari_viewer, tiny_probe, tmp_path):
    record = json.loads((tiny_probe / "probe.json").read_text())
    oracle_rows = [dict(row, correlation=0.75, correlation_sd=0.0) for row in record["rows"]]
    record["oracle"] = {
        "encoder": "InSilicoOracle",
        "rows": oracle_rows,
        "half_fall_scale": {"spatial": None, "temporal": 2.0},
    }
    (tmp_path / "probe.json").write_text(json.dumps(record))
    widget = ProbeWidget(make_napari_viewer(), tmp_path)
    assert "in-silico oracle: spatial not reached, temporal 2.00" in widget.half_fall.text()
    assert widget.table.horizontalHeaderItem(4).text() == "in-silico oracle\nfull frame"
    assert widget.table.item(0, 4).text() == "0.750 ± 0.000"
    for axis in ("spatial", "temporal"):
        encoder, oracle = widget.plots[axis].getPlotItem().listDataItems()
        np.testing.assert_allclose(oracle.getOriginalDataset()[1], [0.75, 0.75])
        assert oracle.opts["pen"].style() == Qt.PenStyle.DashLine
        assert encoder.opts["pen"].style() == Qt.PenStyle.SolidLine
    assert not widget.key.isHidden() and "in-silico oracle (full frame)" in widget.key.text()
    items = widget.plots["temporal"].getPlotItem().items
    labels = [item.label.format for item in items if isinstance(item, pg.InfiniteLine)]
    assert "oracle half-fall 2.00" in labels


def test_corrupt_and_foreign_files_give_a_clear_message(
    make_napari_viewer, tiny_probe, tmp_path, monkeypatch
):
    shown = []
    monkeypatch.setattr(
        "napari_movierecon._napari.probe_widget.show_error", lambda message: shown.append(message)
    )
    viewer = make_napari_viewer()
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "probe.json").write_text('{"spec": {"kind": "noise"}, "rows": [')
    reader = get_reader(str(corrupt))
    assert reader is not None and reader(str(corrupt)) == [(None,)]
    (widget,) = _docked(viewer)
    assert widget.result is None and widget.table.rowCount() == 0
    assert widget.table.isHidden() and widget.curves.isHidden()  # only the message
    assert "probe.json is not valid JSON" in widget.summary.text()
    assert len(shown) == 1 and str(corrupt / "probe.json") in shown[0]

    # a foreign JSON chosen in the dock: refused by name; a good one then shows
    foreign = tmp_path / "settings.json"
    foreign.write_text(json.dumps({"theme": "dark"}))
    widget.load(foreign)
    assert "not a probe result of movierecon probe (no 'spec'" in widget.summary.text()
    assert str(foreign) in shown[-1]
    widget.load(tiny_probe)
    assert widget.table.rowCount() == 4 and "noise probes" in widget.summary.text()
    assert not widget.table.isHidden() and not widget.curves.isHidden()
    widget.load(tmp_path / "missing")
    assert widget.table.rowCount() == 0 and "no such probe record" in widget.summary.text()
    assert not any(
        line.getOriginalDataset()[0] is not None
        for plot in widget.plots.values()
        for line in plot.getPlotItem().listDataItems()
    )


def test_files_that_are_not_probe_results_are_left_to_others(tmp_path):
    (tmp_path / "other.json").write_text("{}")
    assert get_reader(str(tmp_path / "other.json")) is None
    assert get_reader(str(tmp_path)) is None
