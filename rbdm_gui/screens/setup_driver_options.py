"""The options of one tracker driver on the setup screen, read from the driver's signature."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QCheckBox, QComboBox, QFormLayout, QLabel, QLineEdit, QWidget

from rbdm_gui.workflows.settings import DriverOption, driver_options, parse_option
from rbdm_gui.workflows.study_setup import StudySetup

__all__ = ["DriverOptionsEditor"]


class DriverOptionsEditor(QWidget):
    """One editor per option of ``driver`` (:func:`~rbdm_gui.workflows.settings.driver_options`).

    A bool is a check box, a choice a combo box, anything else a line edit whose text the model parses
    (:meth:`~rbdm_gui.workflows.study_setup.StudySetup.set_driver_option`); text the model cannot read
    stays as typed.
    """

    def __init__(self, model: StudySetup, driver: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.driver = driver
        self._showing = False
        self._editors: dict[str, tuple[DriverOption, QWidget]] = {}
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        for option in driver_options(driver):
            editor = self._editor(option)
            self._editors[option.name] = (option, editor)
            form.addRow(option.label, editor)
        if not self._editors:
            form.addRow(QLabel("(no options)"))
        self.show_values(fill=True)

    def _editor(self, option: DriverOption) -> QWidget:
        if option.kind == "bool":
            box = QCheckBox()
            box.toggled.connect(lambda on: self._write(option.name, on))
            return box
        if option.kind == "choice":
            combo = QComboBox()
            combo.addItems(option.choices)
            combo.currentTextChanged.connect(lambda text: self._write(option.name, text))
            return combo
        line = QLineEdit()
        line.setPlaceholderText("required" if option.required else ("none" if option.default is None else ""))
        line.textChanged.connect(lambda text: self._write(option.name, text))
        return line

    def _write(self, name: str, value: Any) -> None:
        if not self._showing:
            self.model.set_driver_option(self.driver, name, value)

    def show_values(self, *, fill: bool = False) -> None:
        """Show the model's option values (text the model could not read is left as typed).

        Empty text reads as the default, so an empty field is left empty unless ``fill``: the editor
        fills its fields once, when it is built, so that every field shows its value (a default included)."""
        values = self.model.settings.driver_options.get(self.driver, {})
        self._showing = True
        try:
            for name, (option, editor) in self._editors.items():
                if name not in values:  # not readable: the text as typed
                    typed = self.model.option_problem(self.driver, name)[1]
                    if isinstance(editor, QLineEdit) and editor.text() != typed:
                        editor.setText(typed)
                    continue
                value = values[name]
                if isinstance(editor, QCheckBox):
                    editor.setChecked(bool(value))
                elif isinstance(editor, QComboBox):
                    editor.setCurrentText(str(value))
                elif isinstance(editor, QLineEdit):
                    empty = fill and not editor.text() and value is not None
                    if empty or not _shows(option, editor.text(), value):
                        editor.setText("" if value is None else str(value))
        finally:
            self._showing = False


def _shows(option: DriverOption, text: str, value: Any) -> bool:
    """Whether ``text`` already reads as ``value`` (then it is not rewritten under the user's cursor)."""
    try:
        return bool(parse_option(option, text) == value)
    except ValueError:
        return False
