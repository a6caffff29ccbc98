"""The setup screen's Screen group: resolution, size and viewing distance of the labeling screen."""

from __future__ import annotations

import math

from PySide6.QtGui import QGuiApplication, QScreen
from PySide6.QtWidgets import QFormLayout, QLabel, QPushButton, QWidget

from analysis.geometry import ScreenGeometry
from rbdm_gui.screens._layout import row
from rbdm_gui.screens.setup_form import SetupPanel, double_spin, spin
from rbdm_gui.workflows.study_setup import FLOAT_LIMITS, INT_LIMITS, StudySetup

__all__ = ["ScreenPanel", "screen_geometry"]


def screen_geometry(screen: QScreen, *, distance_cm: float = 70.0) -> ScreenGeometry:
    """The geometry Qt reports for ``screen``: its size in physical pixels and its diagonal."""
    dpr = screen.devicePixelRatio()
    size = screen.size()
    width_px, height_px = round(size.width() * dpr), round(size.height() * dpr)
    physical = screen.physicalSize()
    diagonal_in = math.hypot(physical.width(), physical.height()) / 25.4
    if not (math.isfinite(diagonal_in) and diagonal_in > 5.0):
        diagonal_in = 24.0  # the platform does not know the screen's size
    return ScreenGeometry(width_px, height_px, round(diagonal_in, 1), distance_cm)


class ScreenPanel(SetupPanel):
    """The labeling screen's geometry (RBDM §5.3.1: the stimulus drawn 1200 px wide, seen from 70 cm).

    "This screen" takes resolution and size from the screen Qt reports (``screen`` while the panel is
    hidden, else the window's); the line beside it gives the drawn image's scale and 1° in pixels.
    """

    def __init__(
        self, model: StudySetup, *, screen: QScreen | None = None, parent: QWidget | None = None
    ) -> None:
        super().__init__("Screen", model, parent)
        self._screen = screen if screen is not None else QGuiApplication.primaryScreen()
        form = QFormLayout(self)
        self.width_spin = spin(INT_LIMITS["screen_width_px"], " px")
        self.height_spin = spin(INT_LIMITS["screen_height_px"], " px")
        form.addRow("Resolution", row(self.width_spin, QLabel("×"), self.height_spin))
        self.diagonal_spin = double_spin(FLOAT_LIMITS["diagonal_in"], ' "')
        form.addRow("Diagonal", self.diagonal_spin)
        self.distance_spin = double_spin(FLOAT_LIMITS["distance_cm"], " cm")
        form.addRow("Viewing distance", self.distance_spin)
        this_screen = QPushButton("This screen")
        this_screen.setToolTip("Take resolution and size from the screen Qt reports.")
        this_screen.clicked.connect(self.use_screen)
        self.geometry_info = QLabel()
        form.addRow(this_screen, self.geometry_info)
        with self.showing():
            self.show_model("settings")
        self.width_spin.valueChanged.connect(self.edit(lambda v: model.update(screen_width_px=v)))
        self.height_spin.valueChanged.connect(self.edit(lambda v: model.update(screen_height_px=v)))
        self.diagonal_spin.valueChanged.connect(self.edit(lambda v: model.update(diagonal_in=v)))
        self.distance_spin.valueChanged.connect(self.edit(lambda v: model.update(distance_cm=v)))

    def show_model(self, aspect: str) -> None:
        settings = self.model.settings
        self.width_spin.setValue(settings.screen_width_px)
        self.height_spin.setValue(settings.screen_height_px)
        self.diagonal_spin.setValue(settings.diagonal_in)
        self.distance_spin.setValue(settings.distance_cm)
        self.geometry_info.setText(self.model.geometry_text())

    def use_screen(self) -> None:
        """Fill in the screen geometry Qt reports."""
        screen = self.window().screen() if self.isVisible() else self._screen
        if screen is None:
            return
        geometry = screen_geometry(screen, distance_cm=self.model.settings.distance_cm)
        self.model.update(
            screen_width_px=geometry.width_px,
            screen_height_px=geometry.height_px,
            diagonal_in=geometry.diagonal_in,
        )
