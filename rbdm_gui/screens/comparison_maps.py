"""The Compare screen's pictures: the stimulus with each heatmap's contour, and each heatmap alone.

A panel of :class:`rbdm_gui.screens.comparison_view.ComparisonView` (RBDM Figure 7): on the left the
image with the outline of each heatmap's perceived area and its points (an annotator's fixations, the
model's n most relevant pixels), on the right one small panel per heatmap over the dimmed image. The
heatmaps, points and areas come from :class:`tracking.study.StimulusComparison`; only the contour lines
are traced here (:func:`contour_lines`, on the worker that compared the stimulus).

References
----------
.. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.2 and Figure 7.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyqtgraph as pg
from numpy.typing import NDArray
from PySide6.QtCore import QRectF
from PySide6.QtWidgets import QGridLayout, QHBoxLayout, QWidget

from tracking.study import StimulusComparison

__all__ = ["ComparisonMaps", "ShownStimulus", "contour_lines"]

_BACKGROUND = "#202020"


@dataclass(frozen=True, slots=True, eq=False)
class ShownStimulus:
    """A stimulus's comparison and each heatmap's contour lines ((M, 2) arrays, in frame pixels)."""

    comparison: StimulusComparison
    contours: Mapping[str, list[NDArray[np.float64]]]


def contour_lines(comparison: StimulusComparison) -> dict[str, list[NDArray[np.float64]]]:
    """The outline of each heatmap's perceived area (pixels > 0), for drawing; runs on a worker.

    Coordinates follow pyqtgraph's image convention: pixel (x, y) covers [x, x + 1] × [y, y + 1].
    """
    lines = {}
    for key, area in comparison.areas.items():
        curves = pg.functions.isocurve(area.T.astype(np.float32), 0.5, connected=True, extendToEdge=True)
        lines[key] = [np.asarray(curve, dtype=np.float64) for curve in curves if len(curve) > 1]
    return lines


def _heat_lookup_table() -> NDArray[np.uint8]:
    """Inferno with transparency growing with the value, so that the image shows through."""
    lut = np.asarray(pg.colormap.get("inferno").getLookupTable(nPts=256, alpha=True), dtype=np.float64)
    lut[:, 3] = 235.0 * np.sqrt(np.linspace(0.0, 1.0, 256))
    return np.round(lut).astype(np.uint8)


class ComparisonMaps(QWidget):
    """The image with every contour (``image_box``) and one panel per heatmap (``panel_grid``)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.shown: ShownStimulus | None = None
        self._heat_lut = _heat_lookup_table()
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.image_plot = pg.GraphicsLayoutWidget()
        self.image_plot.setBackground(_BACKGROUND)
        self._title = self.image_plot.addLabel("", row=0, col=0)
        self.image_box = self.image_plot.addViewBox(
            row=1, col=0, lockAspect=True, invertY=True, enableMenu=False
        )
        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.image_box.addItem(self.image_item)
        self.legend = pg.LegendItem(offset=(6, 6), labelTextColor="w", brush=pg.mkBrush(0, 0, 0, 150))
        self.legend.setParentItem(self.image_box)
        panels = QWidget()
        panels.setStyleSheet(f"background: {_BACKGROUND};")
        self.panel_grid = QGridLayout(panels)
        self.panel_grid.setContentsMargins(2, 2, 2, 2)
        self.panel_grid.setSpacing(2)
        row.addWidget(self.image_plot, 3)
        row.addWidget(panels, 2)

    def draw(self, shown: ShownStimulus, *, title: str, colours: Mapping[str, str]) -> None:
        """Show a stimulus: the image with each heatmap's contour and points, then each heatmap alone."""
        self.shown = shown
        comparison = shown.comparison
        self._title.setText(title, color="#e0e0e0")
        self.image_item.setImage(comparison.image, levels=(0.0, 1.0))
        self.image_box.clear()
        self.image_box.addItem(self.image_item)
        self.legend.clear()
        scale = _frame_scale(comparison)
        for key in comparison.heatmaps:
            colour = colours[key]
            curve = pg.PlotCurveItem(
                *_joined(shown.contours[key], scale), pen=pg.mkPen(colour, width=2), connect="finite"
            )
            self.image_box.addItem(curve)
            self.image_box.addItem(_point_marks(comparison.points[key], scale, colour))
            self.legend.addItem(curve, key)
        self.image_box.autoRange(padding=0.02)
        self._draw_panels(comparison, colours)

    def _draw_panels(self, comparison: StimulusComparison, colours: Mapping[str, str]) -> None:
        while self.panel_grid.count():
            taken = self.panel_grid.takeAt(0)
            widget = taken.widget() if taken is not None else None
            if widget is not None:
                widget.deleteLater()
        scale = _frame_scale(comparison)
        for k, (key, heat) in enumerate(comparison.heatmaps.items()):
            colour = colours[key]
            panel = pg.GraphicsLayoutWidget()
            panel.setBackground(_BACKGROUND)
            panel.addLabel(_panel_title(key, comparison), row=0, col=0, color=colour, size="9pt")
            box = panel.addViewBox(row=1, col=0, lockAspect=True, invertY=True, enableMenu=False)
            for item in self._panel_items(comparison, heat):
                box.addItem(item)
            box.addItem(_point_marks(comparison.points[key], scale, colour, size=5))
            box.autoRange(padding=0.0)
            self.panel_grid.addWidget(panel, *divmod(k, 2))

    def _panel_items(self, comparison: StimulusComparison, heat: NDArray[np.float32]) -> list[pg.ImageItem]:
        """The image, dimmed, and the heatmap over it (coloured, transparent where low)."""
        height, width = comparison.image.shape[:2]
        image = pg.ImageItem(comparison.image, axisOrder="row-major", levels=(0.0, 1.0))
        image.setOpacity(0.55)
        overlay = pg.ImageItem(heat, axisOrder="row-major", lut=self._heat_lut)
        peak = float(heat.max())
        overlay.setLevels((0.0, peak if peak > 0 else 1.0))
        overlay.setRect(QRectF(0.0, 0.0, float(width), float(height)))
        return [image, overlay]


def _frame_scale(comparison: StimulusComparison) -> tuple[float, float]:
    """Display pixels (the image's) per comparison-frame pixel, along x and y."""
    height, width = comparison.image.shape[:2]
    return width / comparison.shape[1], height / comparison.shape[0]


def _joined(
    lines: Sequence[NDArray[np.float64]], scale: tuple[float, float]
) -> tuple[NDArray[Any], NDArray[Any]]:
    """Contour lines (pixel-edge frame coordinates) as one x and one y array, NaN between lines."""
    if not lines:
        return np.zeros(0), np.zeros(0)
    gap = np.full((1, 2), np.nan)
    joined = np.vstack([part for line in lines for part in (line, gap)])[:-1]
    return joined[:, 0] * scale[0], joined[:, 1] * scale[1]


def _point_marks(
    points: NDArray[np.float64], scale: tuple[float, float], colour: str, *, size: float = 7.0
) -> pg.ScatterPlotItem:
    """Fixations (or the model's top-n pixels) at their pixel centres, in display pixels."""
    xy = (np.asarray(points, dtype=np.float64).reshape(-1, 2) + 0.5) * np.asarray(scale)
    return pg.ScatterPlotItem(
        x=xy[:, 0], y=xy[:, 1], size=size, brush=pg.mkBrush(colour), pen=pg.mkPen("w", width=0.8)
    )


def _panel_title(key: str, comparison: StimulusComparison) -> str:
    label = comparison.labels.get(key, "")
    return f"{key} ({label})" if label else key
