"""The optional 9-point calibration/validation screen shown before the first trial.

When the driver calibrates itself (EyeTribe, Tobii Pro: :class:`~tracking.drivers.CalibratingDriver`)
its calibration runs first, on a worker thread, with this screen showing its targets. Then the
:class:`~tracking.validation.ValidationProcedure` shows the 3 × 3 targets again and measures
accuracy and precision in degrees, which are stored with the session
(:meth:`~tracking.store.SessionStore.record_validation`). Space starts and continues, R repeats,
Esc skips.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from PySide6.QtCore import QObject, QPointF, QRectF, Qt, Signal, Slot
from PySide6.QtGui import QCloseEvent, QColor, QFont, QKeyEvent, QPainter, QPaintEvent
from PySide6.QtWidgets import QWidget

from analysis.geometry import ScreenGeometry
from rbdm_gui.screens.labeling_view import BACKGROUND, FramePacer
from rbdm_gui.screens.workers import run_task
from tracking.clock import now_ms
from tracking.drivers.base import CalibratingDriver, CalibrationResult, GazeDriver
from tracking.recording import GazeRecorder
from tracking.records import ValidationResult
from tracking.store import SessionStore
from tracking.validation import ValidationProcedure, validation_targets

__all__ = ["CalibrationView"]

_INTRO = "Calibration and validation\n\nLook at each dot until it moves on.\n\nSpace: start     Esc: skip"


class _TargetBridge(QObject):
    """Shows a device-calibration target from the driver's thread and waits until it is painted."""

    show = Signal(float, float)


class CalibrationView(QWidget):
    """Calibrate (when the driver can) and validate the tracker on 9 targets; store the result.

    Parameters
    ----------
    recorder : GazeRecorder
        The session's recorder; the validation listens to its samples.
    store : SessionStore
        Where the validation result goes.
    session_id : int
        The session it belongs to.
    geometry : ScreenGeometry
        The screen (targets at 10/50/90 % of its width and height).
    refresh_hz : float
        Frame rate of the target display.
    driver : GazeDriver, optional
        Calibrated first when it is a :class:`~tracking.drivers.CalibratingDriver`.
    make_procedure : callable, optional
        Builds the validation procedure (tests pass shorter timings).

    Signals
    -------
    finished(object)
        The stored :class:`~tracking.records.ValidationResult`, or None when skipped.
    """

    finished = Signal(object)

    def __init__(
        self,
        recorder: GazeRecorder,
        store: SessionStore,
        session_id: int,
        *,
        geometry: ScreenGeometry,
        refresh_hz: float,
        driver: GazeDriver | None = None,
        make_procedure: Callable[[ScreenGeometry], ValidationProcedure] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._recorder, self._store, self._session_id = recorder, store, session_id
        self._geometry = geometry
        self._refresh_hz = refresh_hz
        self._driver = driver
        self._make_procedure = make_procedure or (lambda g: ValidationProcedure(g))
        self._target_px = geometry.visual_span_px(0.8)
        self._procedure: ValidationProcedure | None = None
        self._remove_tap: Callable[[], None] | None = None
        self._shown_target: tuple[float, float] | None = None
        self._device_target: tuple[float, float] | None = None
        self._target_painted = threading.Event()
        self._message = _INTRO
        self.result: ValidationResult | None = None
        self.calibration: CalibrationResult | None = None
        self._busy = False
        self._left = False
        self.pacer = FramePacer(self._frame, self)
        self._bridge = _TargetBridge(self)
        self._bridge.show.connect(self._show_device_target, Qt.ConnectionType.QueuedConnection)
        self.setWindowTitle("RBDM Studio: calibration")
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)

    # --- flow -----------------------------------------------------------------------------------

    def begin(self) -> None:
        """Start: device calibration (if any), then validation."""
        if self._busy:
            return
        self._busy = True
        self.result = None
        if isinstance(self._driver, CalibratingDriver):
            self._calibrate_device(self._driver)
        else:
            self._validate()

    def skip(self) -> None:
        """Leave without (another) validation."""
        self._stop_validation()
        self.pacer.stop()
        self._leave()

    def _leave(self) -> None:
        if not self._left:
            self._left = True
            self.finished.emit(self.result)

    def closeEvent(self, event: QCloseEvent) -> None:
        """Closing the window skips what is left."""
        self._stop_validation()
        self.pacer.stop()
        self._leave()
        super().closeEvent(event)

    def _calibrate_device(self, driver: CalibratingDriver) -> None:
        self._message = ""
        targets = validation_targets(self._geometry)

        def present(x: float, y: float) -> None:  # on the calibration thread
            self._target_painted.clear()
            self._bridge.show.emit(x, y)
            self._target_painted.wait(2.0)

        def calibrate(progress: object, cancelled: object) -> CalibrationResult:
            return driver.calibrate(targets, present_target=present)

        run_task(calibrate, on_result=self._calibrated, on_error=self._calibration_failed)

    @Slot(float, float)
    def _show_device_target(self, x: float, y: float) -> None:
        self._device_target = (x, y)
        self.repaint()
        self._target_painted.set()

    def _calibrated(self, result: CalibrationResult) -> None:
        self.calibration = result
        self._device_target = None
        if not result.succeeded or result.n_invalid:
            self._busy = False
            self._message = (
                f"The tracker's calibration failed ({result.n_invalid} of {len(result.points)} points "
                "rejected)."
                "\n\nR: calibrate again     Esc: skip"
            )
            self.update()
            return
        self._validate()

    def _calibration_failed(self, error: BaseException) -> None:
        self._busy = False
        self._device_target = None
        self._message = f"Calibration failed: {error}\n\nR: try again     Esc: skip"
        self.update()

    def _validate(self) -> None:
        self._message = ""
        procedure = self._make_procedure(self._geometry)
        procedure.finished.subscribe(self._validated)
        procedure.failed.subscribe(self._validation_failed)
        self._procedure = procedure
        self._remove_tap = self._recorder.add_tap(procedure.add_sample)
        procedure.start()
        self.pacer.start(self._refresh_hz)

    def _stop_validation(self) -> None:
        if self._remove_tap is not None:
            self._remove_tap()
            self._remove_tap = None
        self._procedure = None
        self._shown_target = None
        self._busy = False

    def _validated(self, result: ValidationResult) -> None:
        self._stop_validation()
        self.pacer.stop()
        self._store.record_validation(self._session_id, result)
        self.result = result
        self._message = (
            f"Accuracy {result.mean_accuracy_deg:.2f}°, precision {result.mean_precision_deg:.2f}° "
            f"(mean of {len(result.points)} targets)\n\nSpace: continue     R: repeat"
        )
        self.update()

    def _validation_failed(self, message: str) -> None:
        self._stop_validation()
        self.pacer.stop()
        self._message = f"Validation failed: {message}\n\nR: repeat     Esc: skip"
        self.update()

    def _frame(self) -> None:
        procedure = self._procedure
        if procedure is None:
            return
        self._shown_target = procedure.begin_frame(now_ms())
        self.repaint()
        if self._procedure is procedure:
            procedure.frame_presented(now_ms())

    # --- painting and keys ----------------------------------------------------------------------

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        try:
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            painter.fillRect(self.rect(), BACKGROUND)
            target = self._device_target or self._shown_target
            if target is not None:
                self._paint_target(painter, target)
            if self.result is not None and self._procedure is None:
                self._paint_result(painter, self.result)
            if self._message:
                self._paint_message(painter)
        finally:
            painter.end()

    def _to_widget(self, x_px: float, y_px: float) -> QPointF:
        dpr = float(self.devicePixelRatioF())
        return QPointF(x_px / dpr, y_px / dpr)

    def _paint_target(self, painter: QPainter, target: tuple[float, float]) -> None:
        centre = self._to_widget(*target)
        radius = self._target_px / 2.0 / float(self.devicePixelRatioF())
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(20, 20, 20))
        painter.drawEllipse(centre, radius, radius)
        painter.setBrush(QColor(240, 240, 240))
        painter.drawEllipse(centre, radius / 4.0, radius / 4.0)

    def _paint_result(self, painter: QPainter, result: ValidationResult) -> None:
        font = QFont(self.font())
        font.setPixelSize(max(11, round(self.height() / 75)))
        painter.setFont(font)
        for point in result.points:
            centre = self._to_widget(point.target_x_screen_px, point.target_y_screen_px)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(40, 40, 40))
            painter.drawEllipse(centre, 4.0, 4.0)
            painter.setPen(QColor(20, 20, 20))
            box = QRectF(centre.x() - 90, centre.y() + 8, 180, 2.6 * font.pixelSize())
            text = f"acc. {point.accuracy_deg:.2f}°\nprec. {point.precision_deg:.2f}°"
            painter.drawText(box, Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop, text)

    def _paint_message(self, painter: QPainter) -> None:
        font = QFont(self.font())
        font.setPixelSize(max(14, round(self.height() / 45)))
        painter.setFont(font)
        painter.setPen(QColor(15, 15, 15))
        area = QRectF(self.width() * 0.2, self.height() * 0.2, self.width() * 0.6, self.height() * 0.22)
        painter.drawText(area, Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self._message)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        if self._busy:
            if key == Qt.Key.Key_Escape and self._procedure is not None:
                self.skip()
            return
        if key == Qt.Key.Key_Escape:
            self.skip()
        elif key == Qt.Key.Key_R or (key == Qt.Key.Key_Space and self.result is None):
            self.begin()
        elif key in (Qt.Key.Key_Space, Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.result is not None:
            self._leave()
        else:
            super().keyPressEvent(event)
