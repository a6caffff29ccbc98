"""Pieces the study setup panels share: a panel bound to the :class:`StudySetup` model, form widgets."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from PySide6.QtWidgets import QDoubleSpinBox, QGroupBox, QLineEdit, QSpinBox, QWidget

from rbdm_gui.workflows.study_setup import FLOAT_DECIMALS, StudySetup

__all__ = ["AMBER", "GREEN", "GREY", "RED", "SetupPanel", "double_spin", "set_text", "spin"]

#: Text colours: plain, success, problem, caution.
GREY, GREEN, RED, AMBER = "color: #333;", "color: #1b5e20;", "color: #b00020;", "color: #8a4b00;"


class SetupPanel(QGroupBox):
    """A group of the setup screen: shows the model's ``aspects`` and writes the user's edits back.

    Subclasses fill the group, implement :meth:`show_model` and pass their widgets' edits through
    :meth:`edit`, which drops the edits that :meth:`show_model` itself causes.
    """

    aspects: frozenset[str] = frozenset({"settings"})

    def __init__(self, title: str, model: StudySetup, parent: QWidget | None = None) -> None:
        super().__init__(title, parent)
        self.model = model
        self._showing = False
        model.changed.subscribe(self._on_changed)

    def _on_changed(self, aspect: str) -> None:
        if aspect in self.aspects:
            with self.showing():
                self.show_model(aspect)

    @contextmanager
    def showing(self) -> Iterator[None]:
        """While the widgets are set from the model: their change signals write nothing back."""
        before, self._showing = self._showing, True
        try:
            yield
        finally:
            self._showing = before

    def show_model(self, aspect: str) -> None:
        """Show the model's state of ``aspect`` in the widgets."""
        raise NotImplementedError

    def edit(self, write: Callable[..., None]) -> Callable[..., None]:
        """``write`` as a slot for a widget's change signal: called only for the user's edits."""

        def slot(*args: Any) -> None:
            if not self._showing:
                write(*args)

        return slot


def set_text(edit: QLineEdit, value: str) -> None:
    """Show ``value`` unless the edit already holds it (spaces around ignored: the user may be typing)."""
    if edit.text().strip() != value:
        edit.setText(value)




def spin(limits: tuple[int, int], suffix: str = "") -> QSpinBox:
    """An integer spin box over ``limits`` (lowest, highest)."""
    box = QSpinBox()
    box.setRange(*limits)
    box.setSuffix(suffix)
    return box


def double_spin(limits: tuple[float, float], suffix: str) -> QDoubleSpinBox:
    """A decimal spin box over ``limits`` with the model's decimals."""
    box = QDoubleSpinBox()
    box.setRange(*limits)
    box.setDecimals(FLOAT_DECIMALS)
    box.setSuffix(suffix)
    return box
