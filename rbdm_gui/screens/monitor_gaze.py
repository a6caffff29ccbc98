"""The live monitor's picture of the participant's screen: stimulus, gaze trace, fixations, cross.

A plain :class:`QWidget` painted with :class:`QPainter`: the screen, the stimulus and the fixations
are drawn into a pixmap (again only when one of them or the widget's size changes), the trace on top
of it at each redraw, without antialiasing, 1 px wide, and only over the area the old and the new trace cover.
A pyqtgraph scene cost 2.6 ms per redraw here, an antialiased trace and fixation discs 3-5 ms; the
monitor shares the GUI thread with the participant's frames, so each redraw must be cheap.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPaintEvent, QPen, QPixmap, QPolygonF, QResizeEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

from analysis.geometry import StimulusRect

__all__ = ["GazeView"]

_BACKDROP = QColor(32, 32, 32)
_SCREEN = QColor(128, 128, 128)
_TRACE = QColor(0, 200, 255, 220)
_FIXATION_PEN = QColor(255, 140, 0, 230)
_FIXATION_FILL = QColor(255, 160, 0, 90)
_GAZE = QColor(230, 30, 30)
#: Most trace points drawn (a 1,200 Hz tracker's second is thinned to this many).
_MAX_POINTS = 400


class GazeView(QWidget):
    """The participant's screen in miniature, in screen pixels scaled to fit the widget.

    Attributes
    ----------
    trace : ndarray, shape (N, 2)
        The gaze trace drawn (screen pixels; NaN rows are gaps).
    fixations : ndarray, shape (M, 2)
        The fixation centres drawn.
    image_shown : bool
        Whether a stimulus is drawn.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumSize(320, 200)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self._screen = (1.0, 1.0)
        self._rect = StimulusRect(0.0, 0.0, 1.0, 1.0)
        self._image: QImage | None = None
        self._backdrop: QPixmap | None = None
        self._cross = False
        self.trace = np.empty((0, 2))
        self.fixations = np.empty((0, 2))
        self._sizes = np.empty(0)
        self.image_shown = False

    # --- state --------------------------------------------------------------------------------------

    def set_screen(self, width_px: float, height_px: float, stimulus_rect: StimulusRect) -> None:
        """The participant's screen and where the stimulus is drawn on it."""
        self._screen = (float(width_px), float(height_px))
        self._rect = stimulus_rect
        self._backdrop = None
        self.update()

    def set_image(self, image: QImage | None) -> None:
        """The stimulus on screen (None: a blank screen)."""
        self._image = image
        self.image_shown = image is not None
        self._backdrop = None
        self.update()

    def set_cross(self, visible: bool) -> None:
        """Show the fixation cross (the cross phase)."""
        if visible != self._cross:
            self._cross = visible
            self.update()

    def set_gaze(
        self, trace: NDArray[np.float64], fixations: NDArray[np.float64], sizes_px: NDArray[np.float64]
    ) -> None:
        """The trace of the last second and the fixations with their disc diameters (widget pixels).

        Only the area the old and the new gaze cover is repainted.
        """
        before = self._gaze_area()
        if len(fixations) != len(self.fixations) or not np.array_equal(fixations, self.fixations):
            self._backdrop = None  # the fixations are part of the backdrop
        self.trace, self.fixations, self._sizes = trace, fixations, sizes_px
        after = self._gaze_area()
        areas = [area for area in (before, after) if area is not None]
        if areas:
            self.update(areas[0].united(areas[-1]).toAlignedRect())

    def _gaze_area(self) -> QRectF | None:
        """The widget area the gaze drawing covers (None when nothing is drawn)."""
        boxes = []
        scale, x0, y0 = self._scale()
        for points, margin in (
            (self.trace, 8.0),
            (self.fixations, float(self._sizes.max(initial=0.0)) / 2 + 3),
        ):
            finite = points[np.isfinite(points).all(axis=1)] if len(points) else points
            if len(finite):
                low, high = finite.min(axis=0) * scale + (x0, y0), finite.max(axis=0) * scale + (x0, y0)
                boxes.append(QRectF(QPointF(*low), QPointF(*high)).adjusted(-margin, -margin, margin, margin))
        if not boxes:
            return None
        area = boxes[0]
        for box in boxes[1:]:
            area = area.united(box)
        return area

    # --- painting -----------------------------------------------------------------------------------

    def _scale(self) -> tuple[float, float, float]:
        """Widget pixels per screen pixel, and the screen's top-left corner in the widget."""
        width, height = self._screen
        scale = 0.98 * min(self.width() / width, self.height() / height)
        return scale, (self.width() - scale * width) / 2.0, (self.height() - scale * height) / 2.0

    def _make_backdrop(self) -> QPixmap:
        scale, x0, y0 = self._scale()
        pixmap = QPixmap(self.size())
        pixmap.fill(_BACKDROP)
        painter = QPainter(pixmap)
        try:
            width, height = self._screen
            painter.fillRect(QRectF(x0, y0, scale * width, scale * height), _SCREEN)
            if self._image is not None:
                r = self._rect
                target = QRectF(
                    x0 + scale * r.x_px, y0 + scale * r.y_px, scale * r.width_px, scale * r.height_px
                )
                painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
                painter.drawImage(target, self._image)
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            self._paint_fixations(painter, scale, x0, y0)
        finally:
            painter.end()
        return pixmap

    def resizeEvent(self, event: QResizeEvent) -> None:
        self._backdrop = None
        super().resizeEvent(event)

    def paintEvent(self, event: QPaintEvent) -> None:
        if self._backdrop is None or self._backdrop.size() != self.size():
            self._backdrop = self._make_backdrop()
        painter = QPainter(self)
        try:
            painter.drawPixmap(event.rect(), self._backdrop, event.rect())
            scale, x0, y0 = self._scale()
            if self._cross:
                self._paint_cross(painter, scale, x0, y0)
            self._paint_trace(painter, scale, x0, y0)
        finally:
            painter.end()

    def _paint_cross(self, painter: QPainter, scale: float, x0: float, y0: float) -> None:
        cx, cy = x0 + scale * self._screen[0] / 2.0, y0 + scale * self._screen[1] / 2.0
        painter.setPen(QPen(QColor(0, 0, 0), 2.0))
        painter.drawLine(QPointF(cx - 8, cy), QPointF(cx + 8, cy))
        painter.drawLine(QPointF(cx, cy - 8), QPointF(cx, cy + 8))

    def _paint_fixations(self, painter: QPainter, scale: float, x0: float, y0: float) -> None:
        painter.setPen(QPen(_FIXATION_PEN, 1.5))
        painter.setBrush(_FIXATION_FILL)
        for (x, y), size in zip(self.fixations, self._sizes, strict=True):
            radius = size / 2.0
            painter.drawEllipse(QPointF(x0 + scale * x, y0 + scale * y), radius, radius)

    def _paint_trace(self, painter: QPainter, scale: float, x0: float, y0: float) -> None:
        trace = self.trace
        if not len(trace):
            return
        step = max(1, len(trace) // _MAX_POINTS)
        points = trace[::-1][::step][::-1] * scale + (x0, y0)  # thinned, the newest sample kept
        finite = np.isfinite(points).all(axis=1)
        painter.setPen(QPen(_TRACE, 1.0))  # a 1 px line: Qt draws it without its costly stroker
        painter.setBrush(Qt.BrushStyle.NoBrush)
        run: list[QPointF] = []
        for (x, y), ok in zip(points.tolist(), finite.tolist(), strict=True):
            if ok:
                run.append(QPointF(x, y))
            elif run:
                painter.drawPolyline(QPolygonF(run))
                run = []
        if len(run) > 1:
            painter.drawPolyline(QPolygonF(run))
        if finite[-1]:
            painter.setPen(QPen(QColor(255, 255, 255), 1.0))
            painter.setBrush(_GAZE)
            painter.drawEllipse(QPointF(*points[-1]), 4.5, 4.5)
