"""The parameter form generated from ReconstructionConfig: every preset round-trips,
widgets follow the field types, docs are tooltips, problems show next to the field."""

from __future__ import annotations

import dataclasses

import pytest
from magicgui import widgets

from napari_movierecon._napari.config_editor import ConfigEditor, OptionalNumber
from napari_movierecon.errors import MovieReconError
from napari_movierecon.reconstruct.config import PRESETS, ReconstructionConfig


@pytest.fixture
def form(qtbot) -> ConfigEditor:
    editor = ConfigEditor()
    qtbot.addWidget(editor)
    editor.show()
    return editor


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_fills_the_form_and_reads_back_equal(form, name):
    form.preset.value = name  # as a user picks it
    assert form.config() == PRESETS[name]
    assert form.problem.text() == ""
    assert all(label.native.isHidden() for label in form.problems.values())


def test_widgets_follow_the_field_types_and_show_the_field_docs(form):
    assert isinstance(form.fields["optimizer"], widgets.ComboBox)
    assert isinstance(form.fields["use_update_mask"], widgets.CheckBox)
    assert isinstance(form.fields["iterations"], widgets.SpinBox)
    assert isinstance(form.fields["learning_rate"], widgets.FloatSpinBox)
    assert isinstance(form.fields["window_frames"], OptionalNumber)
    for field in dataclasses.fields(ReconstructionConfig):
        if field.name != "preset":
            assert form.fields[field.name].tooltip == field.metadata["doc"]
    # None and numbers both round-trip through an optional field
    form.set_values(window_frames=None, members=2)
    assert form.config().window_frames is None and form.config().members == 2
    assert not form.fields["window_frames"].number.enabled  # greyed while None
    form.editors["window_frames"].setValue(16)  # typing a number unticks "whole clip"
    assert form.config().window_frames == 16 and form.fields["window_frames"].number.enabled
    form.fields["window_frames"].none.value = True  # ticking the box means None again
    assert form.config().window_frames is None


def test_an_invalid_value_is_shown_next_to_its_field_and_refused(form):
    form.editors["beta1"].setValue(1.0)
    label = form.problems["beta1"]
    assert not label.native.isHidden() and label.value == "beta1 must lie in [0, 1)"
    assert form.problems["learning_rate"].native.isHidden()
    with pytest.raises(MovieReconError, match=r"beta1 must lie in \[0, 1\)"):
        form.config()
    form.editors["beta1"].setValue(0.5)
    assert label.native.isHidden() and form.config().beta1 == 0.5


def test_runs_config_accessor_refuses_an_invalid_form(ready):
    ready.set_params(learning_rate=0.0)
    assert not ready.run.editor.problems["learning_rate"].native.isHidden()
    with pytest.raises(MovieReconError, match="learning_rate must be > 0"):
        ready.run.build_job()
    ready.set_params(learning_rate=10.0)
    assert ready.run.build_job().config.learning_rate == 10.0
