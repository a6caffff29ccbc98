"""The full-screen labeling screen (RBDM §5.3.1) and the session's timing report.

The view is thin: :class:`~tracking.recording.LabelingSession` and its
:class:`~tracking.protocol.LabelingProtocol` decide what is shown and record it. The view paints the
phase the model asks for (blank, fixation cross, or the image in its 1200 × 1200 px square), paced
by a frame timer at the screen's refresh rate, and tells the model when each frame was presented;
keys become model calls: 1–n label (n labels in the set), Space/Enter/→ go on, Esc pauses.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np
from numpy.typing import NDArray
from PySide6.QtCore import QObject, QPointF, QRectF, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QCloseEvent, QColor, QFont, QImage, QKeyEvent, QPainter, QPaintEvent, QPen, QScreen
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from analysis.geometry import ScreenGeometry, StimulusRect
from rbdm_gui.screens.workers import run_task
from rbdm_gui.workflows.session_screen import STATUS_SEPARATOR, LabelingScreenModel
from tracking.clock import now_ms
from tracking.drivers.base import DriverEvent
from tracking.protocol import (
    Listeners,
    Phase,
    PhaseOnset,
    TimingReport,
)
from tracking.recording import LabelingSession, SpokenLabel, TrialQuality

__all__ = [
    "BACKGROUND",
    "FramePacer",
    "LabelingView",
    "SessionReport",
    "screen_refresh",
    "to_qimage",
]

#: The blank screen's grey, also behind the image and the cross.
BACKGROUND = QColor(128, 128, 128)
#: The keys' legend and the label: dark enough on the grey to read (contrast 5:1 and more, WCAG AA).
_TEXT = QColor(20, 20, 20)
_LABEL = QColor(0, 0, 0)
_NOTICE = QColor(40, 0, 0)
#: Qt's keys by their names in :data:`rbdm_gui.workflows.session_screen.KEYS`.
_KEY_NAMES: dict[int, str] = {
    **{getattr(Qt.Key, f"Key_{k}").value: str(k) for k in range(1, 10)},
    Qt.Key.Key_Space.value: "next",
    Qt.Key.Key_Right.value: "next",
    Qt.Key.Key_Return.value: "enter",
    Qt.Key.Key_Enter.value: "enter",
    Qt.Key.Key_Escape.value: "escape",
}
#: Plausible refresh rates; outside them the platform's answer is not trusted.
_REFRESH_RANGE_HZ = (20.0, 500.0)


def screen_refresh(screen: QScreen | None) -> tuple[float, bool]:
    """The refresh rate to count frames in, and whether the platform reported it (else 60 Hz by time)."""
    rate = screen.refreshRate() if screen is not None else 0.0
    if math.isfinite(rate) and _REFRESH_RANGE_HZ[0] <= rate <= _REFRESH_RANGE_HZ[1]:
        return float(rate), True
    return 60.0, False


def to_qimage(image: NDArray[np.uint8]) -> QImage:
    """A uint8 RGB ``(H, W, 3)`` or grey ``(H, W)`` array as a QImage (a copy; safe in worker threads)."""
    array = np.ascontiguousarray(image)
    height, width = array.shape[:2]
    if array.ndim == 2:
        return QImage(array.data, width, height, array.strides[0], QImage.Format.Format_Grayscale8).copy()
    return QImage(array.data, width, height, array.strides[0], QImage.Format.Format_RGB888).copy()


class FramePacer(QObject):
    """Calls ``on_frame`` once per refresh period, on absolute deadlines (a timer that does not drift).

    A deadline already missed by more than a period is given up (the frame is dropped) rather
    than caught up with a burst of frames.
    """

    def __init__(self, on_frame: Callable[[], None], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._on_frame = on_frame
        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._tick)
        self._period_ms = 1000.0 / 60.0
        self._deadline_ms = 0.0

    @property
    def active(self) -> bool:
        """Whether frames are being paced."""
        return self._timer.isActive()

    def start(self, rate_hz: float) -> None:
        """Start pacing at ``rate_hz``; the first frame comes at once."""
        self._period_ms = 1000.0 / rate_hz
        self._deadline_ms = now_ms()
        self._timer.start(0)

    def stop(self) -> None:
        """Stop pacing."""
        self._timer.stop()

    @Slot()
    def _tick(self) -> None:
        self._on_frame()
        self._deadline_ms += self._period_ms
        wait_ms = self._deadline_ms - now_ms()
        if wait_ms < -self._period_ms:
            self._deadline_ms = now_ms() + self._period_ms
            wait_ms = self._period_ms
        if not self._timer.isActive():
            self._timer.start(max(0, round(wait_ms)))


class _Bridge(QObject):
    """Posts values from other threads (microphone, driver) to the GUI thread."""

    posted = Signal(object)


class LabelingView(QWidget):
    """The labeling screen: blank → cross → blank → image, then a label and a key press (RBDM §5.3.1).

    Parameters
    ----------
    session : LabelingSession
        The recorded session; its protocol must not have started yet.
    images : mapping of str to QImage
        The stimuli by id.
    geometry : ScreenGeometry
        The screen (its stimulus rectangle is 1200 × 1200 px, scaled down to fit smaller screens).
    refresh_hz : float
        Frame rate to pace at (the protocol counts its phases at the same rate).
    speech_notice : str, optional
        Shown while paused when speech is unavailable ("keyboard only: ...").

    Signals
    -------
    finished
        Every stimulus has a trial.
    quit_requested
        The annotator chose "Quit session" while paused.

    Attributes
    ----------
    model : LabelingScreenModel
        The texts it shows and what its keys do (Qt-free).
    frames : Listeners of float
        Called after each presented frame with its time (the live monitor draws in the gap that follows).
    """

    finished = Signal()
    quit_requested = Signal()

    def __init__(
        self,
        session: LabelingSession,
        images: Mapping[str, QImage],
        *,
        geometry: ScreenGeometry,
        refresh_hz: float,
        speech_notice: str = "",
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.session = session
        self.protocol = session.protocol
        self.model = LabelingScreenModel(session, speech_notice=speech_notice)
        self._images = images
        self._rect = geometry.stimulus_rect()
        self._cross_px = geometry.visual_span_px(1.0)
        self._refresh_hz = refresh_hz
        self._scaled: dict[str, QImage] = {}
        self.pacer = FramePacer(self._frame, self)
        self.frames: Listeners[float] = Listeners()
        self.setWindowTitle("RBDM Studio: labeling")
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAutoFillBackground(False)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self._build_overlay()
        self.recognitions = _Bridge(self)
        self.recognitions.posted.connect(self._on_recognition, Qt.ConnectionType.QueuedConnection)
        self.speech_problems = _Bridge(self)
        self.speech_problems.posted.connect(self._on_speech_problem, Qt.ConnectionType.QueuedConnection)
        self.driver_events = _Bridge(self)
        self.driver_events.posted.connect(self._on_driver_event, Qt.ConnectionType.QueuedConnection)
        self.protocol.phase_started.subscribe(self._on_phase)
        self.model.resumed.subscribe(self._hide_overlay)

    @property
    def stimulus_rect(self) -> StimulusRect:
        """Where images are drawn, in screen pixels."""
        return self._rect

    @property
    def speech_notice(self) -> str:
        """Why speech is unavailable (empty when it works); shown while paused, "speech off" in the legend."""
        return self.model.speech_notice

    def set_speech_notice(self, text: str) -> None:
        """Why speech is unavailable (shown while paused); empty when it works."""
        self.model.speech_notice = text

    # --- running --------------------------------------------------------------------------------

    def start(self, *, hold: str = "") -> None:
        """Start the protocol and the frame timer (call once the window is shown).

        With ``hold`` (a tracker that is not calibrated, say) the session starts paused, showing the
        text, so that nobody labels before reading it; Resume begins the first trial.
        """
        self.setCursor(Qt.CursorShape.BlankCursor)
        self.pacer.start(self._refresh_hz)
        self.setFocus()
        self.model.start(hold=hold)

    def stop(self) -> None:
        """Stop the frame timer (the session is closed by its owner)."""
        self.pacer.stop()

    def _frame(self) -> None:
        self.session.begin_frame(now_ms())
        self.repaint()
        presented = now_ms()
        self.session.frame_presented(presented)
        self.frames.emit(presented)

    # --- painting -------------------------------------------------------------------------------

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        try:
            painter.fillRect(self.rect(), BACKGROUND)
            phase = self.protocol.phase
            if phase is Phase.CROSS:
                self._paint_cross(painter)
            elif phase is Phase.STIMULUS:
                self._paint_stimulus(painter)
                _paint_status(painter, self, self._image_rect(), self.model)
            elif phase is Phase.FINISHED:
                self._paint_message(painter, "All stimuli are labelled. Thank you!")
            elif phase is Phase.PAUSED:
                painter.fillRect(self.rect(), QColor(0, 0, 0, 90))
        finally:
            painter.end()

    def _dpr(self) -> float:
        return float(self.devicePixelRatioF())

    def _image_rect(self) -> QRectF:
        """The stimulus rectangle in the widget's logical coordinates."""
        dpr, r = self._dpr(), self._rect
        return QRectF(r.x_px / dpr, r.y_px / dpr, r.width_px / dpr, r.height_px / dpr)

    def _paint_cross(self, painter: QPainter) -> None:
        dpr = self._dpr()
        centre = QPointF(self.width() / 2.0, self.height() / 2.0)
        half = self._cross_px / 2.0 / dpr
        pen = QPen(QColor(0, 0, 0), max(2.0, self._cross_px / 12.0) / dpr)
        pen.setCapStyle(Qt.PenCapStyle.FlatCap)
        painter.setPen(pen)
        painter.drawLine(centre - QPointF(half, 0), centre + QPointF(half, 0))
        painter.drawLine(centre - QPointF(0, half), centre + QPointF(0, half))

    def _paint_stimulus(self, painter: QPainter) -> None:
        stimulus_id = self.protocol.stimulus_id
        if stimulus_id is None:
            return
        image = self._scaled.get(stimulus_id)
        if image is None:  # not prepared in time: scale now (may cost a frame)
            image = self._scaled_image(stimulus_id)
            self._scaled[stimulus_id] = image
        painter.drawImage(self._image_rect().topLeft(), image)

    def _paint_message(self, painter: QPainter, text: str) -> None:
        font = QFont(self.font())
        font.setPixelSize(max(16, round(self.height() / 40)))
        painter.setFont(font)
        painter.setPen(QColor(20, 20, 20))
        painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, text)

    def _scaled_image(self, stimulus_id: str) -> QImage:
        dpr = self._dpr()
        image = self._images[stimulus_id].scaled(
            round(self._rect.width_px),
            round(self._rect.height_px),
            Qt.AspectRatioMode.IgnoreAspectRatio,
            Qt.TransformationMode.SmoothTransformation,
        )
        image.setDevicePixelRatio(dpr)
        return image

    def _prepare(self, stimulus_id: str) -> None:
        """Scale the next image to its drawn size on a worker thread while the blank screen shows."""
        self._scaled = {k: v for k, v in self._scaled.items() if k == stimulus_id}
        if stimulus_id in self._scaled:
            return
        source = self._images[stimulus_id]
        width, height, dpr = round(self._rect.width_px), round(self._rect.height_px), self._dpr()

        def scale(progress: object, cancelled: object) -> QImage:
            image = source.scaled(
                width,
                height,
                Qt.AspectRatioMode.IgnoreAspectRatio,
                Qt.TransformationMode.SmoothTransformation,
            )
            image.setDevicePixelRatio(dpr)
            return image

        def keep(image: QImage) -> None:
            self._scaled.setdefault(stimulus_id, image)

        run_task(scale, on_result=keep)

    # --- pause overlay --------------------------------------------------------------------------

    def _build_overlay(self) -> None:
        self._overlay = QWidget(self)
        self._overlay.setObjectName("pauseOverlay")
        self._overlay.setStyleSheet(
            "#pauseOverlay { background: rgba(245, 245, 245, 235); border-radius: 10px; }"
            "QLabel { color: #202020; }"
        )
        title = QLabel("Paused")
        title.setStyleSheet("font-size: 26px; font-weight: bold;")
        self._overlay_text = QLabel()
        self._overlay_text.setWordWrap(True)
        self.resume_button = QPushButton("Resume")
        self.resume_button.setDefault(True)
        self.quit_button = QPushButton("Quit session")
        self.resume_button.clicked.connect(self.resume)
        self.quit_button.clicked.connect(self.quit_requested.emit)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.quit_button)
        buttons.addWidget(self.resume_button)
        layout = QVBoxLayout(self._overlay)
        layout.setContentsMargins(28, 24, 28, 24)
        layout.addWidget(title)
        layout.addWidget(self._overlay_text)
        layout.addLayout(buttons)
        self._overlay.hide()

    def _show_overlay(self) -> None:
        self._overlay_text.setText(self.model.pause_text())
        self._overlay.setFixedWidth(min(640, max(320, self.width() - 40)))
        self._overlay.adjustSize()
        self._overlay.move(
            (self.width() - self._overlay.width()) // 2, (self.height() - self._overlay.height()) // 2
        )
        self._overlay.show()
        self.setCursor(Qt.CursorShape.ArrowCursor)
        self.resume_button.setFocus()

    def _hide_overlay(self, _: None = None) -> None:
        self._overlay.hide()
        self.setCursor(Qt.CursorShape.BlankCursor)
        self.setFocus()

    def pause(self) -> None:
        """Pause (Esc): the trial on screen is shown again from its start after :meth:`resume`."""
        self.model.pause()

    @Slot()
    def resume(self) -> None:
        """Hide the overlay and continue with the next stimulus without a trial."""
        self.model.resume()

    # --- input ----------------------------------------------------------------------------------

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = _KEY_NAMES.get(event.key())
        if key is None or not self.model.press(key):
            if self.protocol.phase is not Phase.PAUSED:
                super().keyPressEvent(event)

    def closeEvent(self, event: QCloseEvent) -> None:
        """Closing the window (window manager, Alt+F4) quits the session like "Quit session"."""
        self.pacer.stop()
        if self.protocol.phase is not Phase.FINISHED:
            self.quit_requested.emit()
        super().closeEvent(event)

    # --- model news -----------------------------------------------------------------------------

    def _on_phase(self, onset: PhaseOnset) -> None:
        if onset.phase is Phase.BLANK and onset.stimulus_id is not None:
            self._prepare(onset.stimulus_id)
        elif onset.phase is Phase.PAUSED:
            self._show_overlay()
        elif onset.phase is Phase.FINISHED:
            self.finished.emit()

    @Slot(object)
    def _on_recognition(self, spoken: object) -> None:
        if isinstance(spoken, SpokenLabel):
            self.model.spoken(spoken)

    @Slot(object)
    def _on_speech_problem(self, message: object) -> None:
        self.model.speech_problem(str(message))

    @Slot(object)
    def _on_driver_event(self, event: object) -> None:
        if isinstance(event, DriverEvent):
            self.model.driver_event(event)


def _paint_status(painter: QPainter, view: QWidget, image: QRectF, model: LabelingScreenModel) -> None:
    """The keys' legend and the label: small but legible, below or beside the image."""
    font = QFont(view.font())
    size = max(12, round(view.height() / 70))
    font.setPixelSize(size)
    painter.setFont(font)
    width, height = view.width(), view.height()
    labels, status = model.legend(), model.status()
    bottom = Qt.AlignmentFlag.AlignBottom
    if height - image.bottom() >= 2.4 * size:  # a band below the image
        band = QRectF(size, height - 2.2 * size, width - 2 * size, 1.6 * size)
        left, right, legend = band, band, "     ".join(labels)
    elif image.left() >= 8 * size:  # bands beside the image
        left = QRectF(size, 0, image.left() - 2 * size, height - size)
        right = QRectF(image.right() + size, 0, width - image.right() - 2 * size, height - size)
        legend, status = "\n".join(labels), status.replace(STATUS_SEPARATOR, "\n")
    else:  # no room outside the image: its bottom edge, on a faint band
        left = right = QRectF(0, height - 1.8 * size, width, 1.8 * size)
        painter.fillRect(left, QColor(128, 128, 128, 200))
        left, right = left.adjusted(size, 0, -size, 0), right.adjusted(size, 0, -size, 0)
        legend = "   ".join(labels)
    painter.setPen(_TEXT)
    painter.drawText(left, Qt.AlignmentFlag.AlignLeft | bottom, legend)
    painter.setPen(_NOTICE if model.warning else _LABEL)
    painter.drawText(right, Qt.AlignmentFlag.AlignRight | bottom | Qt.TextFlag.TextWordWrap, status)


_PHASE_NAMES = {
    Phase.BLANK: "blank",
    Phase.CROSS: "fixation cross",
    Phase.SECOND_BLANK: "second blank",
    Phase.STIMULUS: "image (self-paced)",
}


def _mean_sd(mean_ms: float, sd_ms: float) -> str:
    """ "512.3 ± 4.1"; "512.3" for one trial; "–" for none (never "– ± –")."""
    if not math.isfinite(mean_ms):
        return "–"
    return _ms(mean_ms) if not math.isfinite(sd_ms) else f"{_ms(mean_ms)} ± {_ms(sd_ms)}"


def _range(low_ms: float, high_ms: float) -> str:
    return "–" if not math.isfinite(low_ms) else f"{_ms(low_ms)} – {_ms(high_ms)}"


def _ms(value: float) -> str:
    return "–" if not math.isfinite(value) else f"{value:.1f}"


class SessionReport(QDialog):
    """The session report: intended vs. measured phase durations and dropped frames (RBDM §5.3.1).

    Parameters
    ----------
    report : TimingReport
        From :func:`tracking.protocol.timing_report` over the stored trials.
    summary : str
        A line above the table (trials done, labels by source...).
    """

    COLUMNS = (
        "phase",
        "intended ms (frames)",
        "mean ± sd ms",
        "min – max ms",
        "max error ms (frames)",
        "measured / intended",
    )

    TRIAL_COLUMNS = (
        "trial",
        "stimulus",
        "samples",
        "valid %",
        "longest gap ms",
        "fixations",
        "note",
        "tracker events",
    )

    def __init__(
        self,
        report: TimingReport,
        *,
        summary: str,
        quality: Sequence[TrialQuality] = (),
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Session report")
        self.table = QTableWidget(len(report.phases), len(self.COLUMNS))
        self.table.setHorizontalHeaderLabels(self.COLUMNS)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        for row, timing in enumerate(report.phases):
            timed = math.isfinite(timing.intended_ms)
            cells = (
                _PHASE_NAMES[timing.phase],
                f"{timing.intended_ms:.0f} ({timing.intended_frames})" if timed else "–",
                _mean_sd(timing.mean_ms, timing.sd_ms),
                _range(timing.min_ms, timing.max_ms),
                f"{_ms(timing.max_error_ms)} ({timing.max_error_frames:.2f})"
                if timed and timing.n_trials
                else "–",
                f"{timing.ratio:.4f}" if timed and timing.n_trials else "–",
            )
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if column:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(row, column, item)
        self.table.resizeColumnsToContents()
        n_trials = max((timing.n_trials for timing in report.phases), default=0)
        frames = (
            f"{report.n_frames} frames at {report.refresh_hz:.2f} Hz, {report.dropped_frames} dropped "
            f"(intervals > 1.5 refresh periods) in {report.trials_with_drops} trials."
            if n_trials
            else "No trial was labelled in this session: there are no phase durations to measure yet."
        )
        self.trials_table = self._trials_table(quality)
        notes = sum(bool(q.note) for q in quality)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        buttons.accepted.connect(self.accept)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(summary))
        layout.addWidget(self.table)
        self.frames_label = QLabel(frames)
        self.frames_label.setWordWrap(True)
        layout.addWidget(self.frames_label)
        self.quality_label = QLabel(
            f"Gaze per trial ({notes} trial{'s' if notes != 1 else ''} to look at):" if quality else ""
        )
        self.quality_label.setVisible(bool(quality))
        layout.addWidget(self.quality_label)
        self.trials_table.setVisible(bool(quality))
        layout.addWidget(self.trials_table, 1)
        layout.addWidget(buttons)
        width = sum(self.table.columnWidth(c) for c in range(len(self.COLUMNS)))
        self.resize(max(width, 760) + 60, 560 if quality else 330)

    def _trials_table(self, quality: Sequence[TrialQuality]) -> QTableWidget:
        table = QTableWidget(len(quality), len(self.TRIAL_COLUMNS))
        table.setHorizontalHeaderLabels(self.TRIAL_COLUMNS)
        table.verticalHeader().hide()
        table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        for row, q in enumerate(quality):
            cells = (
                str(q.position + 1),
                q.stimulus_id,
                str(q.n_samples),
                "–" if not math.isfinite(q.valid_share) else f"{100 * q.valid_share:.0f}",
                f"{q.longest_gap_ms:.0f}",
                str(q.n_fixations),
                q.note,
                "; ".join(q.events),
            )
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if q.note:
                    item.setForeground(QColor(150, 60, 0))
                table.setItem(row, column, item)
        table.resizeColumnsToContents()
        return table
