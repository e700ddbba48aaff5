"""An editor for every knob of ``ReconstructionConfig``, filled from a preset and
validated as typed (the dataclass's own validation; the message is shown)."""

from __future__ import annotations

import dataclasses

import torch
from psygnal import Signal
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QSpinBox,
    QWidget,
)

from napari_movierecon.errors import MovieReconError
from napari_movierecon.reconstruct import config as config_module
from napari_movierecon.reconstruct.config import PRESETS, ReconstructionConfig

# Knobs whose value may be None: the spin box's 0 stands for None (its special text).
NONE_AS_ZERO = {
    "window_frames": "whole clip",
    "gradient_clip": "off",
    "members": "all",
    "normalize_block_frames": "whole window",
}
CHOICES = {
    "optimizer": config_module.OPTIMIZERS,
    "ensemble": config_module.ENSEMBLE_STRATEGIES,
    "init": config_module.INITS,
    "loss": config_module.LOSSES,
}
FLOAT_DECIMALS = {"beta1": 3, "update_mask_threshold": 2, "eval_mask_threshold": 2}


def _devices() -> list[str]:
    return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]


class ConfigEditor(QWidget):
    """``config()`` returns the validated config or raises MovieReconError;
    ``changed`` fires on every edit."""

    changed = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.preset = QComboBox()
        self.preset.addItems(list(PRESETS))
        self.preset.setCurrentText("fast")
        self.editors: dict[str, QWidget] = {}
        form = QFormLayout(self)
        form.addRow("preset", self.preset)
        for field in dataclasses.fields(ReconstructionConfig):
            if field.name == "preset":
                continue
            editor = self._editor(field.name, field.type)
            self.editors[field.name] = editor
            form.addRow(field.name.replace("_", " "), editor)
        self.problem = QLabel()
        self.problem.setWordWrap(True)
        form.addRow(self.problem)
        self.preset.currentTextChanged.connect(self.load_preset)
        self.load_preset("fast")

    def _editor(self, name: str, annotation: str) -> QWidget:
        if name in CHOICES or name == "device":
            editor = QComboBox()
            editor.addItems(list(CHOICES.get(name, _devices())))
            editor.currentTextChanged.connect(self._edited)
        elif annotation.startswith("bool"):
            editor = QCheckBox()
            editor.toggled.connect(self._edited)
        elif annotation.startswith("int"):
            editor = QSpinBox(minimum=-1, maximum=10**7)
            editor.valueChanged.connect(self._edited)
        else:
            editor = QDoubleSpinBox(decimals=FLOAT_DECIMALS.get(name, 2), minimum=-1.0, maximum=1e7)
            editor.valueChanged.connect(self._edited)
        if name in NONE_AS_ZERO:
            editor.setMinimum(0)
            editor.setSpecialValueText(NONE_AS_ZERO[name])
        return editor

    def load_preset(self, name: str) -> None:
        """Fill every editor from preset ``name``."""
        self.set_config(PRESETS[name])

    def set_config(self, config: ReconstructionConfig) -> None:
        for name, editor in self.editors.items():
            value = getattr(config, name)
            editor.blockSignals(True)
            if isinstance(editor, QComboBox):
                editor.setCurrentText(str(value))
            elif isinstance(editor, QCheckBox):
                editor.setChecked(bool(value))
            else:
                editor.setValue(0 if value is None else value)
            editor.blockSignals(False)
        self._edited()

    def values(self) -> dict:
        values = {"preset": self.preset.currentText()}
        for name, editor in self.editors.items():
            if isinstance(editor, QComboBox):
                value = editor.currentText()
            elif isinstance(editor, QCheckBox):
                value = editor.isChecked()
            else:
                value = editor.value()
                if name in NONE_AS_ZERO and value == 0:
                    value = None
            values[name] = value
        return values

    def config(self) -> ReconstructionConfig:
        """The config as typed; MovieReconError naming every problem otherwise."""
        return ReconstructionConfig.from_json(self.values())

    def _edited(self, *_) -> None:
        try:
            self.config()
        except MovieReconError as err:
            self.problem.setText(f"<font color='#e05050'>{err}</font>")
        else:
            self.problem.setText("")
        self.changed.emit()
