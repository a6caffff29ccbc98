"""The setup screen's Eye tracker group: the tracker and its options, the fixation detector, a test."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QStackedWidget,
    QWidget,
)

from rbdm_gui.screens.setup_driver_options import DriverOptionsEditor
from rbdm_gui.screens.setup_form import GREEN, GREY, RED, SetupPanel
from rbdm_gui.screens.workers import Task, run_task
from rbdm_gui.workflows.study_setup import StudySetup
from tracking.drivers import DRIVERS
from tracking.fixations import DETECTORS

__all__ = ["TrackerPanel"]

_TONES = {"info": GREY, "ok": GREEN, "problem": RED}


class TrackerPanel(SetupPanel):
    """The eye tracker (:data:`tracking.drivers.DRIVERS`) with its options, and the fixation detector.

    Only the chosen tracker's options take room. "Test tracker" connects on a worker thread and shows
    the sampling rate the tracker reports and whether it is calibrated, or why it cannot connect.
    """

    aspects = frozenset({"settings", "tracker"})

    def __init__(self, model: StudySetup, parent: QWidget | None = None) -> None:
        super().__init__("Eye tracker", model, parent)
        self._tracker_task: Task | None = None
        form = QFormLayout(self)
        self.driver_combo = QComboBox()
        self.driver_combo.addItems(list(DRIVERS))
        self.driver_combo.setToolTip("'mouse' simulates gaze with the mouse cursor (no tracker needed).")
        form.addRow("Tracker", self.driver_combo)
        self.option_stack = QStackedWidget()
        self.option_editors: dict[str, DriverOptionsEditor] = {}
        for name in DRIVERS:
            editor = DriverOptionsEditor(model, name)
            self.option_editors[name] = editor
            self.option_stack.addWidget(editor)
        form.addRow(self.option_stack)
        self.detector_combo = QComboBox()
        self.detector_combo.addItems(list(DETECTORS))
        form.addRow("Fixations", self.detector_combo)
        self.detector_info = QLabel()
        self.detector_info.setWordWrap(True)
        self.detector_info.setStyleSheet(GREY)
        form.addRow(self.detector_info)
        self.calibrate_check = QCheckBox("9-point calibration/validation before the first trial")
        form.addRow(self.calibrate_check)
        self.test_tracker_button = QPushButton("Test tracker")
        self.test_tracker_button.setToolTip(
            "Connect to the tracker, read its sampling rate and calibration, disconnect."
        )
        self.test_tracker_button.clicked.connect(self.test_tracker)
        self.tracker_info = QLabel()
        self.tracker_info.setWordWrap(True)
        form.addRow(self.test_tracker_button, self.tracker_info)
        self._driver_shown = ""
        with self.showing():
            self.show_model("settings")
        self.driver_combo.currentTextChanged.connect(self.edit(lambda name: model.update(driver=name)))
        self.detector_combo.currentTextChanged.connect(self.edit(lambda name: model.update(detector=name)))
        self.calibrate_check.toggled.connect(self.edit(lambda on: model.update(calibrate=on)))

    def show_model(self, aspect: str) -> None:
        model = self.model
        if aspect == "tracker":
            self.tracker_info.setText(model.tracker_note.text)
            self.tracker_info.setStyleSheet(_TONES.get(model.tracker_note.tone, GREY))
            return
        settings = model.settings
        self.driver_combo.setCurrentText(settings.driver)
        if settings.driver != self._driver_shown:
            self._show_driver_options(settings.driver)
        for editor in self.option_editors.values():
            editor.show_values()
        self.detector_combo.setCurrentText(settings.detector)
        self.detector_info.setText(model.detector_text())
        self.calibrate_check.setChecked(settings.calibrate)

    def _show_driver_options(self, driver: str) -> None:
        """Show the options of ``driver``; the others take no room."""
        self._driver_shown = driver
        for name, editor in self.option_editors.items():
            policy = QSizePolicy.Policy.Preferred if name == driver else QSizePolicy.Policy.Ignored
            editor.setSizePolicy(policy, policy)
        self.option_stack.setCurrentWidget(self.option_editors[driver])
        self.option_stack.adjustSize()

    def test_tracker(self) -> None:
        """Connect the chosen tracker on a worker thread; show the sampling rate it reports, or why not."""
        try:
            probe = self.model.tracker_probe()
        except ValueError:
            return  # the model noted why
        name, model = probe.driver, self.model
        self._tracker_task = run_task(
            lambda progress, cancelled: probe.run(),
            on_result=lambda text: model.tracker_tested(name, text),
            on_error=lambda err: model.tracker_tested(name, f"{name}: {err}", problem=True),
        )
