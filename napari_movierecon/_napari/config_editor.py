"""The parameter form of ``ReconstructionConfig``, generated with magicgui from the
dataclass: one type-aware widget per field (choices as drop-downs, booleans as check
boxes, numbers as spin boxes), its documentation as tooltip, and what is wrong with
a value shown in red right under its field (the dataclass's own rules,
``config.config_problems``). Filled from a preset.
"""

from __future__ import annotations

import dataclasses
import typing

import torch
from magicgui import widgets
from magicgui.widgets.bases import ValuedContainerWidget
from psygnal import Signal
from qtpy.QtWidgets import QLabel, QVBoxLayout, QWidget

from napari_movierecon.reconstruct.config import (
    PRESETS,
    ReconstructionConfig,
    config_problems,
)

ERROR_STYLE = "color: #e05050;"
FLOAT_DECIMALS = {"beta1": 3, "update_mask_threshold": 2, "eval_mask_threshold": 2}
NUMBER_MAX = 10**7
NUMBER_WIDTH_PX = 90  # spin box of an optional number, leaving room for its None box


def _devices() -> tuple[str, ...]:
    return ("cpu", "cuda") if torch.cuda.is_available() else ("cpu",)


class OptionalNumber(ValuedContainerWidget):
    """A number or None: a spin box and a check box saying what None stands for
    ("whole clip", "all"...). The spin box is greyed while the box is ticked; a
    number typed (or set) into it unticks the box."""

    def __init__(self, number: widgets.ValueWidget, none_text: str, **kwargs) -> None:
        self.number = number
        self.none = widgets.CheckBox(name="none", text=none_text)
        super().__init__(
            widgets=[number, self.none], layout="horizontal", labels=False, nullable=True, **kwargs
        )
        self.margins = (0, 0, 0, 0)
        number.native.setMaximumWidth(NUMBER_WIDTH_PX)
        number.changed.connect(self._typed)
        self.none.changed.connect(self._ticked)

    def _typed(self, *_) -> None:
        with self.none.changed.blocked():
            self.none.value = False
        self.number.enabled = True
        self.changed.emit(self.value)

    def _ticked(self, *_) -> None:
        self.number.enabled = not self.none.value
        self.changed.emit(self.value)

    def get_value(self):
        return None if self.none.value else self.number.value

    def set_value(self, value) -> None:
        with self.none.changed.blocked(), self.number.changed.blocked():
            self.none.value = value is None
            if value is not None:
                self.number.value = value
        self.number.enabled = value is not None


def _field_widget(field: dataclasses.Field, annotation) -> widgets.ValueWidget:
    """The widget of one config field: its type decides the kind, its metadata the
    choices, the tooltip and what None stands for."""
    meta = field.metadata
    options = {"name": field.name, "label": field.name.replace("_", " ")}
    options["tooltip"] = meta.get("doc", "")
    base = next((a for a in typing.get_args(annotation) if a is not type(None)), annotation)
    choices = meta.get("choices") or (_devices() if field.name == "device" else None)
    if choices is not None:
        return widgets.ComboBox(choices=list(choices), **options)
    if base is bool:
        return widgets.CheckBox(**options)
    number_options = {} if "none" in meta else options
    # loose ranges: the dataclass's rules decide, and say so next to the field
    if base is int:
        number = widgets.SpinBox(min=-1, max=NUMBER_MAX, **number_options)
    else:
        decimals = FLOAT_DECIMALS.get(field.name, 2)
        number = widgets.FloatSpinBox(
            min=-1.0, max=NUMBER_MAX, step=10**-decimals, **number_options
        )
        number.native.setDecimals(decimals)
    if "none" in meta:
        return OptionalNumber(number, meta["none"], **options)
    return number


class ConfigEditor(QWidget):
    """``config()`` returns the validated config or raises MovieReconError;
    ``changed`` fires on every edit. ``fields`` maps field names to their magicgui
    widgets, ``editors`` to those widgets' Qt widgets (for code that types into Qt),
    ``problems`` to the red labels under them; ``problem`` sums them up."""

    changed = Signal()

    def __init__(self) -> None:
        super().__init__()
        hints = typing.get_type_hints(ReconstructionConfig)
        self.preset = widgets.ComboBox(
            name="preset",
            label="preset",
            choices=list(PRESETS),
            tooltip="fill every field from a named starting point",
        )
        self.fields: dict[str, widgets.ValueWidget] = {}
        self.problems: dict[str, widgets.Label] = {}
        rows: list[widgets.Widget] = [self.preset]
        for field in dataclasses.fields(ReconstructionConfig):
            if field.name == "preset":
                continue
            editor = _field_widget(field, hints[field.name])
            problem = widgets.Label(name=f"{field.name}_problem", label="", visible=False)
            problem.native.setStyleSheet(ERROR_STYLE)
            problem.native.setWordWrap(True)
            editor.changed.connect(self._edited)
            self.fields[field.name] = editor
            self.problems[field.name] = problem
            rows += [editor, problem]
        self.form = widgets.Container(widgets=rows, labels=True)
        self.form.margins = (0, 0, 0, 0)
        for label in self.form.native.findChildren(QLabel):
            label.setWordWrap(True)  # long field names take two lines on narrow docks
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.form.native)
        self.problem = QLabel()
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet(ERROR_STYLE)
        layout.addWidget(self.problem)
        self.editors = {
            name: (widget.number if isinstance(widget, OptionalNumber) else widget).native
            for name, widget in self.fields.items()
        }
        self.preset.changed.connect(self.load_preset)
        self.load_preset("fast")

    def load_preset(self, name: str) -> None:
        """Fill every editor from preset ``name``."""
        with self.preset.changed.blocked():
            self.preset.value = name
        self.set_config(PRESETS[name])

    def set_config(self, config: ReconstructionConfig) -> None:
        self.set_values(**{name: getattr(config, name) for name in self.fields})

    def set_values(self, **values) -> None:
        """Type ``values`` (field -> value, None where allowed) into the form."""
        for name, value in values.items():
            editor = self.fields[name]
            with editor.changed.blocked():
                editor.value = value
        self._edited()

    def values(self) -> dict:
        """The form's values by field name."""
        return {"preset": self.preset.value} | {
            name: widget.value for name, widget in self.fields.items()
        }

    def config(self) -> ReconstructionConfig:
        """The config as typed; MovieReconError naming every problem otherwise."""
        return ReconstructionConfig.from_json(self.values())

    def _edited(self, *_) -> None:
        """Show each field's problem under it (or hide it)."""
        problems = config_problems(self.values())
        for name, label in self.problems.items():
            label.value = f"{name.replace('_', ' ')} {problems.get(name, '')}"
            label.visible = name in problems
        self.problem.setText("; ".join(f"{name} {problem}" for name, problem in problems.items()))
        self.changed.emit()
