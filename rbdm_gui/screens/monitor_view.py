"""The experimenter's live monitor: a thin panel that draws
:class:`~rbdm_gui.workflows.monitor_model.MonitorSnapshot`.

Left, the participant's screen in miniature (:class:`~rbdm_gui.screens.monitor_gaze.GazeView`): the
stimulus where it is drawn, the raw gaze of the last second, the fixations as the online detector
emits them (a disc per fixation, its size growing with the duration) and the phase in words.
Right, the numbers: the trial, the current trial's valid-sample share and longest gap, the
tracker's state, faults and effective against nominal sampling rate, the label heard or keyed
with its confidence and the utterances rejected, the controls (pause/resume, re-calibrate before
the next trial, mark a trial bad). Below, every finished trial's quality and the participant's
running RBDM Table 1 in the Compare screen's layout (:func:`rbdm_gui.screens.table1_widget.fill_table1`).
The gaze picture follows every snapshot, the numbers at :data:`NUMBERS_RATE_HZ`.

The panel draws only what changed since the last snapshot; it computes nothing. Who feeds it, and
how often, is :class:`rbdm_gui.screens.monitor_session.SessionMonitor`'s business. :func:`place_monitor`
puts it in a window on a second screen, or docks it in the main window when there is one screen.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from numpy.typing import NDArray
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont, QGuiApplication, QImage, QScreen
from PySide6.QtWidgets import (
    QDockWidget,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QPushButton,
    QSplitter,
    QTableWidget,
    QVBoxLayout,
    QWidget,
)

from analysis.geometry import ScreenGeometry, StimulusRect
from rbdm_gui.screens.monitor_gaze import GazeView
from rbdm_gui.screens.monitor_trials import TrialsTable
from rbdm_gui.screens.table1_widget import fill_table1
from rbdm_gui.workflows.monitor_model import MonitorSnapshot
from tracking.protocol import Phase
from tracking.recording import TrialQuality

__all__ = ["NUMBERS_RATE_HZ", "MonitorPanel", "MonitorWindow", "fixation_sizes_px", "place_monitor"]

#: The numbers are rewritten this often (and at once when the phase or the label changes); the
#: gaze picture follows every snapshot. Texts cost a relayout each, and nobody reads them at 30 Hz.
NUMBERS_RATE_HZ = 5.0
#: Pixel size of the monitor's copy of a stimulus (the long side): enough to see where the gaze is.
_IMAGE_PX = 320
_PHASE_COLOURS = {
    Phase.BLANK: "#5f6b7a",
    Phase.CROSS: "#5f6b7a",
    Phase.SECOND_BLANK: "#5f6b7a",
    Phase.STIMULUS: "#1b7f3b",
    Phase.PAUSED: "#b36b00",
    Phase.FINISHED: "#1f4e9c",
    Phase.IDLE: "#5f6b7a",
}


def fixation_sizes_px(durations_ms: NDArray[np.float64]) -> NDArray[np.float64]:
    """Disc diameters on the monitor: 6 px, plus 1 px per 15 ms of fixation, at most 40 px."""
    return np.clip(6.0 + np.asarray(durations_ms, dtype=np.float64) / 15.0, 6.0, 40.0)


def _small_image(image: QImage) -> QImage:
    """A small copy of a stimulus for the monitor (the long side :data:`_IMAGE_PX`)."""
    return image.scaled(
        _IMAGE_PX, _IMAGE_PX, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
    )


def _percent(share: float) -> str:
    return "–" if not math.isfinite(share) else f"{100.0 * share:.0f} %"


def _ms(value: float) -> str:
    return "–" if not math.isfinite(value) else f"{value:.0f} ms"


class MonitorPanel(QWidget):
    """The live monitor's widgets; :meth:`show_snapshot` draws one snapshot.

    Signals
    -------
    pause_requested, resume_requested
        The experimenter pressed Pause / Resume.
    recalibrate_requested
        "Re-calibrate before next trial".
    mark_bad_requested(int)
        "Mark trial bad": the position of the trial chosen in the table, else of the trial on screen.
    """

    pause_requested = Signal()
    resume_requested = Signal()
    recalibrate_requested = Signal()
    mark_bad_requested = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("RBDM Studio: live monitor")
        self._images: dict[str, QImage] = {}
        self._sources: Mapping[str, QImage] = {}
        self._rect = StimulusRect(0.0, 0.0, 1.0, 1.0)
        self._shown_image: tuple[str | None, bool] = (None, False)
        self._trials: tuple[TrialQuality, ...] | None = None
        self._table: object = None
        self._phase = Phase.IDLE
        self._position = 0
        self.snapshot: MonitorSnapshot | None = None
        self._shown_phase: tuple[object, ...] = ()
        self._numbers_ms = -math.inf
        self._build()
        self.clear()

    # --- layout ---------------------------------------------------------------------------------

    def _build(self) -> None:
        self.phase_label = QLabel()
        font = QFont(self.font())
        font.setPointSizeF(font.pointSizeF() * 1.5)
        font.setBold(True)
        self.phase_label.setFont(font)
        self.gaze_view = GazeView()
        left = QVBoxLayout()
        left.addWidget(self.phase_label)
        left.addWidget(self.gaze_view, 1)
        top = QHBoxLayout()
        top.addLayout(left, 3)
        top.addWidget(self._numbers(), 2)
        self.trials_table = TrialsTable()
        self.table1 = QTableWidget(0, 0)
        self.table1.verticalHeader().hide()
        self.table1.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table1_label = QLabel()
        self.table1_label.setWordWrap(True)
        table1_box = QWidget()
        table1_layout = QVBoxLayout(table1_box)
        table1_layout.setContentsMargins(0, 0, 0, 0)
        table1_layout.addWidget(self.table1_label)
        table1_layout.addWidget(self.table1, 1)
        bottom = QSplitter(Qt.Orientation.Horizontal)
        bottom.addWidget(self.trials_table)
        bottom.addWidget(table1_box)
        top_widget = QWidget()
        top_widget.setLayout(top)
        outer = QSplitter(Qt.Orientation.Vertical)
        outer.addWidget(top_widget)
        outer.addWidget(bottom)
        outer.setStretchFactor(0, 3)
        outer.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.addWidget(outer)

    def _numbers(self) -> QWidget:
        box = QWidget()
        layout = QVBoxLayout(box)
        layout.setContentsMargins(0, 0, 0, 0)
        quality = QGroupBox("Now")
        form = QFormLayout(quality)
        self.trial_label = QLabel()
        self.valid_label = QLabel()
        self.gap_label = QLabel()
        self.fixations_label = QLabel()
        self.tracker_label = QLabel()
        self.rate_label = QLabel()
        self.faults_label = QLabel()
        self.label_label = QLabel()
        self.label_label.setWordWrap(True)
        for title, label in (
            ("Trial", self.trial_label),
            ("Valid samples", self.valid_label),
            ("Longest gap", self.gap_label),
            ("Fixations", self.fixations_label),
            ("Tracker", self.tracker_label),
            ("Sampling rate", self.rate_label),
            ("Faults", self.faults_label),
            ("Label", self.label_label),
        ):
            form.addRow(title, label)
        layout.addWidget(quality)
        self.events_label = QLabel()
        self.events_label.setWordWrap(True)
        self.events_label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.events_label.setStyleSheet("color: #444; font-size: 11px;")
        events = QGroupBox("Tracker events")
        QVBoxLayout(events).addWidget(self.events_label)
        layout.addWidget(events, 1)
        self.pause_button = QPushButton("Pause")
        self.pause_button.clicked.connect(self._pause_or_resume)
        self.recalibrate_button = QPushButton("Re-calibrate before next trial")
        self.recalibrate_button.setCheckable(True)
        self.recalibrate_button.clicked.connect(self._recalibrate)
        self.bad_button = QPushButton("Mark trial bad")
        self.bad_button.setToolTip(
            "Flags the trial chosen in the table below (else the trial on screen) in the study file; "
            "its data are kept."
        )
        self.bad_button.clicked.connect(self._mark_bad)
        controls = QHBoxLayout()
        for button in (self.pause_button, self.recalibrate_button, self.bad_button):
            controls.addWidget(button)
        layout.addLayout(controls)
        return box

    # --- showing ----------------------------------------------------------------------------------

    def clear(self, text: str = "No session is recording. Start one from Study setup.") -> None:
        """No session: say so, and disable the controls."""
        self.phase_label.setText(text)
        self.phase_label.setStyleSheet("color: #5f6b7a;")
        for button in (self.pause_button, self.recalibrate_button, self.bad_button):
            button.setEnabled(False)

    def show_session(
        self, *, geometry: ScreenGeometry, stimulus_rect: StimulusRect, images: Mapping[str, QImage]
    ) -> None:
        """A session begins: its screen, where it draws the stimuli, and the stimuli."""
        self._sources = images
        self._images = {}
        self._rect = stimulus_rect
        self._shown_image = (None, False)
        self._trials, self._table = None, None
        self.gaze_view.set_screen(geometry.width_px, geometry.height_px, stimulus_rect)
        self.gaze_view.set_image(None)
        self.gaze_view.set_cross(False)
        self.table1.setRowCount(0)
        self.trials_table.clear_trials()
        for button in (self.pause_button, self.recalibrate_button, self.bad_button):
            button.setEnabled(True)

    def show_snapshot(self, snapshot: MonitorSnapshot) -> None:
        """Draw a snapshot; only what changed is redrawn."""
        self.snapshot = snapshot
        self._phase, self._position = snapshot.phase, snapshot.position
        changed = self._shown_phase != (snapshot.phase, snapshot.position, snapshot.label)
        self._show_phase(snapshot)
        self._show_gaze(snapshot)
        if changed or snapshot.t_ms - self._numbers_ms >= 1000.0 / NUMBERS_RATE_HZ:
            self._shown_phase = (snapshot.phase, snapshot.position, snapshot.label)
            self._numbers_ms = snapshot.t_ms
            self._show_numbers(snapshot)
        if snapshot.trials is not self._trials and snapshot.trials != self._trials:
            self._trials = snapshot.trials
            self.trials_table.show_trials(snapshot.trials)
        if snapshot.table is not self._table:
            self._table = snapshot.table
            if snapshot.table is not None:
                fill_table1(self.table1, snapshot.table.table, counts=snapshot.table.counts)
        self._set_text(self.table1_label, self._table1_text(snapshot))

    def _show_phase(self, snapshot: MonitorSnapshot) -> None:
        k, n = min(snapshot.position + 1, snapshot.trials_total), snapshot.trials_total
        text = f"{snapshot.phase_text}"
        if snapshot.phase not in (Phase.FINISHED, Phase.IDLE):
            text += f"   ·   trial {k} of {n}"
        if snapshot.recalibration_pending:
            text += "   ·   re-calibration before the next trial"
        if self._set_text(self.phase_label, text):
            self.phase_label.setStyleSheet(f"color: {_PHASE_COLOURS[snapshot.phase]};")
        showing = (snapshot.stimulus_id, snapshot.phase is Phase.STIMULUS)
        if showing != self._shown_image:
            self._shown_image = showing
            self._show_image(*showing)
        self.gaze_view.set_cross(snapshot.phase is Phase.CROSS)
        paused = snapshot.phase is Phase.PAUSED
        self._set_text(self.pause_button, "Resume" if paused else "Pause")
        self.pause_button.setEnabled(snapshot.phase not in (Phase.FINISHED, Phase.IDLE))
        if self.recalibrate_button.isChecked() != snapshot.recalibration_pending:
            self.recalibrate_button.setChecked(snapshot.recalibration_pending)

    def _show_image(self, stimulus_id: str | None, visible: bool) -> None:
        if not visible or stimulus_id is None or stimulus_id not in self._sources:
            self.gaze_view.set_image(None)
            return
        if stimulus_id not in self._images:  # one at a time, scaled down once
            self._images = {stimulus_id: _small_image(self._sources[stimulus_id])}
        self.gaze_view.set_image(self._images[stimulus_id])

    def _show_gaze(self, snapshot: MonitorSnapshot) -> None:
        fixations = snapshot.fixations
        xy = np.array([(f.x_screen_px, f.y_screen_px) for f in fixations], dtype=np.float64).reshape(-1, 2)
        durations = np.array([f.duration_ms for f in fixations], dtype=np.float64)
        self.gaze_view.set_gaze(snapshot.trace_screen_px, xy, fixation_sizes_px(durations))

    def _show_numbers(self, snapshot: MonitorSnapshot) -> None:
        tracker = snapshot.tracker
        done, total = snapshot.trials_done, snapshot.trials_total
        self._set_text(
            self.trial_label, f"{done} done, {total - done} left · stimulus {snapshot.stimulus_id or '–'}"
        )
        self._set_text(self.valid_label, f"{_percent(snapshot.valid_share)} of {snapshot.n_samples}")
        self._set_text(self.gap_label, _ms(snapshot.longest_gap_ms))
        self._set_text(self.fixations_label, str(len(snapshot.fixations)))
        calibrated = {True: "calibrated", False: "NOT calibrated", None: ""}[tracker.calibrated]
        self._set_text(self.tracker_label, " · ".join(t for t in (tracker.state, calibrated) if t))
        effective = (
            "–" if not math.isfinite(tracker.effective_rate_hz) else f"{tracker.effective_rate_hz:.0f}"
        )
        nominal = "–" if not math.isfinite(tracker.nominal_rate_hz) else f"{tracker.nominal_rate_hz:.0f}"
        self._set_text(self.rate_label, f"{effective} Hz of {nominal} Hz nominal")
        self._set_text(
            self.faults_label,
            f"lost {tracker.lost} · restored {tracker.restored} · uncalibrated {tracker.uncalibrated}",
        )
        self._set_text(
            self.label_label, snapshot.label.describe() if snapshot.phase is Phase.STIMULUS else "–"
        )
        self._set_text(self.events_label, "\n".join(tracker.events) or "none")

    @staticmethod
    def _table1_text(snapshot: MonitorSnapshot) -> str:
        result = snapshot.table
        if result is None:
            return f"RBDM Table 1 (running): {snapshot.table_problem}"
        against = ", ".join((*result.others, *([result.model_id] if result.model_id else []))) or "nobody yet"
        text = f"RBDM Table 1 of {result.participant} over {result.n_stimuli} stimuli, against {against}"
        extra = [*result.notes, snapshot.table_problem]
        return text + "".join(f"\n{note}" for note in extra if note)

    @staticmethod
    def _set_text(widget: QLabel | QPushButton, text: str) -> bool:
        """Set a text only when it changed (no relayout otherwise); whether it changed."""
        if widget.text() == text:
            return False
        widget.setText(text)
        return True

    # --- controls ---------------------------------------------------------------------------------

    def _pause_or_resume(self) -> None:
        if self._phase is Phase.PAUSED:
            self.resume_requested.emit()
        else:
            self.pause_requested.emit()

    def _recalibrate(self) -> None:
        self.recalibrate_button.setChecked(True)
        self.recalibrate_requested.emit()

    def _mark_bad(self) -> None:
        chosen = self.trials_table.chosen_position()
        self.mark_bad_requested.emit(self._position if chosen is None else chosen)


class MonitorWindow(QMainWindow):
    """The monitor in a window of its own (for the experimenter's screen)."""

    def __init__(self, panel: MonitorPanel, parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self.setWindowTitle("RBDM Studio: live monitor")
        self.panel = panel
        self.setCentralWidget(panel)
        self.resize(1280, 800)


def _other_screen(participant: QScreen | None) -> QScreen | None:
    screens = QGuiApplication.screens()
    others = [s for s in screens if s is not participant]
    return others[0] if others and len(screens) > 1 else None


def place_monitor(
    panel: MonitorPanel, main_window: QMainWindow, *, participant: QScreen | None = None
) -> QWidget:
    """Show ``panel`` on a screen other than the participant's, else docked in ``main_window``.

    Returns the window or dock widget that holds it.
    """
    screen = _other_screen(participant or QGuiApplication.primaryScreen())
    if screen is not None:
        window = MonitorWindow(panel, main_window)
        window.setScreen(screen)
        window.setGeometry(screen.availableGeometry())
        window.show()
        return window
    dock = QDockWidget("Live monitor", main_window)
    dock.setObjectName("liveMonitorDock")
    dock.setWidget(panel)
    main_window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
    dock.show()
    return dock
