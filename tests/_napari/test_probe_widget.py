"""Opening a probe result in napari: File > Open of a probe folder or its probe.json docks
its table and curves; a corrupt or foreign file says what is wrong in the dock and a
notification, never a traceback; the same result opened twice is docked once."""

from __future__ import annotations

import json

import numpy as np
import pyqtgraph as pg

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

    headers = [widget.table.horizontalHeaderItem(c).text() for c in range(6)]
    assert headers[:4] == ["axis swept", "spatial\nGaussian sigma (px)",
                           "temporal\nGaussian sigma (frames)",
                           "correlation\nfull frame"]  # fmt: skip
    expected = [
        [r["axis"], f"{r['spatial']:g}", f"{r['temporal']:g}", f"{r['correlation']:.3f}"]
        for r in record["rows"]
    ]
    assert [row[:4] for row in _cells(widget)] == [
        [axis, s, t, f"{float(c):.3f}"] for axis, s, t, c in expected
    ]
    assert "(40 neurons)" in widget.summary.text() and "preset fast" in widget.summary.text()
    half = record["half_fall_scale"]
    for axis in ("spatial", "temporal"):
        text = "not reached in 1-4" if half[axis] is None else f"{half[axis]:.2f}"
        assert f"{axis} {text}" in widget.half_fall.text()
        (curve,) = widget.plots[axis].getPlotItem().listDataItems()
        x, y = curve.getOriginalDataset()
        rows = sorted((r for r in record["rows"] if r["axis"] == axis), key=lambda r: r[axis])
        np.testing.assert_allclose(x, [r[axis] for r in rows])
        np.testing.assert_allclose(y, [r["correlation"] for r in rows])

    assert widget.key.isHidden()  # one curve: named in the plot titles

    # probe.json itself opens too, into the same dock
    viewer.open(str(tiny_probe / "probe.json"), plugin="napari-movierecon")
    assert _docked(viewer) == [widget]


def test_a_newer_record_with_an_extra_curve_and_a_half_fall_scale(
    make_napari_viewer, tiny_probe, tmp_path
):
    record = json.loads((tiny_probe / "probe.json").read_text())
    record["half_fall_scale"] = {"spatial": None, "temporal": 2.0}
    for row in record["rows"]:  # e.g. an upper bound added by a later version
        row["oracle_correlation"] = 0.75
    (tmp_path / "probe.json").write_text(json.dumps(record))
    widget = ProbeWidget(make_napari_viewer(), tmp_path)
    assert "temporal 2.00" in widget.half_fall.text()
    assert "spatial not reached in 1-4" in widget.half_fall.text()
    last = widget.table.columnCount() - 1
    assert widget.table.horizontalHeaderItem(last).text() == "oracle correlation"
    assert widget.table.item(0, last).text() == "0.75"
    for axis in ("spatial", "temporal"):
        curves = widget.plots[axis].getPlotItem().listDataItems()
        assert [list(c.getOriginalDataset()[1]) for c in curves][1] == [0.75, 0.75]
    assert not widget.key.isHidden() and "oracle correlation" in widget.key.text()

    def lines(axis):
        items = widget.plots[axis].getPlotItem().items
        return [item.value() for item in items if isinstance(item, pg.InfiniteLine)]

    assert lines("temporal") == [np.log10(2.0)]  # the x axis is log10 scale
    assert lines("spatial") == []


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
