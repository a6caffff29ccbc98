"""The Experiments screen's learning curves: three pyqtgraph plots against the training step (RBDM Figure 10).

Training loss, validation loss and validation macro-F1; colour tells the masking method, dashed lines the
``+switch`` Trainees, a dotted vertical line the switch. A reopened run draws one line per Trainee and
shades each variant's 95 % interval over its seeds (:func:`analysis.experiment_report.band_curves`);
compared runs draw each variant's mean over the seeds (:func:`analysis.experiment.mean_curves`) with a
marker shape per run; the running run grows point by point. What is shown comes from
:class:`~rbdm_gui.workflows.experiment_screen.ExperimentScreen`.

The running run's points are drawn at most once per :attr:`ExperimentCurvesPanel.redraw_interval_ms`: a
point arriving after a quiet spell is drawn at once, the points that follow within the interval together
at its end (every point is drawn; only the redraws are fewer), with the axes already fitted to them, so
that one paint shows them (pyqtgraph fits them while painting, which asks for a second paint). A paint of
the three plots costs about 10 ms of the GUI thread (axes, grid, curves): one or two per point held the
event loop up for a 60 Hz frame (issue 22, ``python -m benchmarks.gui_latency``).

References
----------
.. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.5 and Figure 10.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QWidget

from analysis.experiment import MASK_SOURCE_COLOURS, ExperimentRun, mean_curves
from analysis.experiment_report import band_curves
from analysis.trainee import CurvePoint
from rbdm_gui.workflows.experiment_display import CurveKey, short_run_name
from rbdm_gui.workflows.experiment_screen import ExperimentScreen

__all__ = ["PANELS", "ExperimentCurvesPanel"]

#: The plots: curve field and title (RBDM Figure 10).
PANELS: Final = (
    ("train_loss", "training loss"),
    ("val_loss", "validation loss"),
    ("val_macro_f1", "validation macro-F1"),
)
#: Marker per compared run (the first run has none).
_RUN_SYMBOLS: Final = (None, "o", "t", "s", "d", "+", "x", "star")
_SWITCH = "+switch"


class ExperimentCurvesPanel(pg.GraphicsLayoutWidget):  # type: ignore[misc]
    """The three learning-curve plots of the runs the model shows.

    Attributes
    ----------
    redraw_interval_ms : int
        The shortest time between two redraws of the running run's curves (ms); points arriving
        meanwhile wait for the next one.
    """

    redraw_interval_ms: int = 100

    def __init__(self, model: ExperimentScreen, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.setBackground("w")
        self.plot_title = self.addLabel("", row=0, col=0, colspan=len(PANELS), color="#222")
        self.plots: dict[str, pg.PlotItem] = {}
        for k, (name, title) in enumerate(PANELS):
            plot = self.addPlot(row=1, col=k)
            plot.setTitle(title, color="#222", size="10pt")
            plot.setLabel("bottom", "training step", color="#222")
            plot.showGrid(x=True, y=True, alpha=0.25)
            for axis in ("left", "bottom"):
                plot.getAxis(axis).setPen(pg.mkPen("#444"))
                plot.getAxis(axis).setTextPen(pg.mkPen("#222"))
            if k:
                plot.setXLink(self.plots[PANELS[0][0]])
            self.plots[name] = plot
        self.legend = self.plots["val_macro_f1"].addLegend(  # top left: F1 starts low
            offset=(4, 4), labelTextColor="#222", brush=pg.mkBrush(255, 255, 255, 215), labelTextSize="8pt"
        )
        self.bands: list[pg.FillBetweenItem] = []  # the confidence bands drawn for the shown run
        self._items: dict[CurveKey, list[pg.PlotDataItem]] = {}
        self._switch_steps: set[int] = set()
        self._pending: set[CurveKey] = set()  # live curves with points not drawn yet
        self._redraw_timer = QTimer(self)
        self._redraw_timer.setSingleShot(True)
        self._redraw_timer.timeout.connect(self.flush)
        model.shown_changed.subscribe(lambda _: self._show())
        model.point_added.subscribe(self._point_added)

    @property
    def pending(self) -> frozenset[CurveKey]:
        """The live curves whose newest points wait for the next redraw."""
        return frozenset(self._pending)

    def flush(self) -> None:
        """Draw the live curves' waiting points now; the next redraw comes no sooner than the interval."""
        pending, self._pending = self._pending, set()
        live = self.model.live_curves
        for key in sorted(pending):
            if key in live:
                self._draw_live(key)
        if pending:
            self._settle_ranges()
            self._redraw_timer.start(self.redraw_interval_ms)

    def _settle_ranges(self) -> None:
        """Fit the axes to the new points now: pyqtgraph would do it while painting, and the range it sets
        then (three plots, linked along x) asks for a second paint of all three."""
        for plot in self.plots.values():
            plot.getViewBox().prepareForPaint()

    def _point_added(self, key: CurveKey) -> None:
        self._pending.add(key)
        if not self._redraw_timer.isActive():  # the first point after a quiet spell: at once
            self.flush()

    def _show(self) -> None:
        self._pending.clear()  # drawn below from the model, or no longer shown
        self._redraw_timer.stop()  # the plots start afresh: their next point is drawn at once
        model = self.model
        if model.live_shown:
            self._clear(model.plot_title)
            for key in model.live_curves:
                self._draw_live(key)
        elif len(model.shown) == 1:
            self._draw_curves(model.shown[0].curves, title=model.plot_title)
        elif model.shown:
            self._draw_comparison(model.shown, title=model.plot_title)

    def _clear(self, title: str) -> None:
        for plot in self.plots.values():
            plot.clear()
            plot.enableAutoRange()  # the next run's range, not the last one's (or the user's zoom)
        self.legend.clear()
        self._items = {}
        self._switch_steps = set()
        self.bands = []
        self.plot_title.setText(title, color="#222")

    def _draw_live(self, key: CurveKey) -> None:
        items = self._items.get(key)
        if items is None:
            items = self._items[key] = self._add_curve(key[0], legend=not self._has_variant(key[0]))
        self._set_points(items, key[0], self.model.live_curves[key])

    def _set_points(
        self, items: Sequence[pg.PlotDataItem], variant: str, points: Sequence[CurvePoint]
    ) -> None:
        steps = np.array([p.step for p in points], dtype=np.float64)
        for item, (name, _) in zip(items, PANELS, strict=True):
            item.setData(steps, np.array([getattr(p, name) for p in points], dtype=np.float64))
        if variant.endswith(_SWITCH):
            self._mark_switch([p.step for p in points if p.phase == "unmasked"][:1])

    def _has_variant(self, variant: str) -> bool:
        return any(v == variant for v, _ in self._items)

    def _draw_curves(self, curves: Mapping[CurveKey, Sequence[CurvePoint]], *, title: str) -> None:
        self._clear(title)
        for (variant, seed), points in curves.items():
            items = self._add_curve(variant, legend=not self._has_variant(variant))
            self._items[(variant, seed)] = items
            self._set_points(items, variant, points)
        self._draw_bands(curves)

    def _draw_bands(self, curves: Mapping[CurveKey, Sequence[CurvePoint]]) -> None:
        """Shade each variant's 95 % interval over its seeds on the validation macro-F1 panel."""
        for variant, table in band_curves(curves).items():
            if len({s for v, s in curves if v == variant}) < 2 or len(table["step"]) < 2:
                continue
            method = variant.removesuffix(_SWITCH)
            colour = QColor(MASK_SOURCE_COLOURS.get(method, MASK_SOURCE_COLOURS["gaze"]))
            colour.setAlpha(40)
            low = pg.PlotCurveItem(table["step"], table["low"])
            high = pg.PlotCurveItem(table["step"], table["high"])
            band = pg.FillBetweenItem(low, high, brush=pg.mkBrush(colour))
            band.setToolTip(f"{variant}: 95 % confidence interval over the seeds")
            self.plots["val_macro_f1"].addItem(band)
            self.bands.append(band)

    def _draw_comparison(self, runs: Sequence[ExperimentRun], *, title: str) -> None:
        self._clear(title)
        for k, run in enumerate(runs):
            symbol = _RUN_SYMBOLS[k % len(_RUN_SYMBOLS)]
            for variant, table in mean_curves(run.curves).items():
                items = self._add_curve(variant, legend=False, symbol=symbol)
                for item, (name, _) in zip(items, PANELS, strict=True):
                    item.setData(table["step"], table[name])
                self.legend.addItem(items[-1], f"{short_run_name(run)} · {variant}")
                self._mark_switch([int(s) for s in table["switch_step"]])

    def _add_curve(self, variant: str, *, legend: bool, symbol: str | None = None) -> list[pg.PlotDataItem]:
        method = variant.removesuffix(_SWITCH)
        colour = MASK_SOURCE_COLOURS.get(method, MASK_SOURCE_COLOURS["gaze"])
        style = Qt.PenStyle.DashLine if variant.endswith(_SWITCH) else Qt.PenStyle.SolidLine
        pen = pg.mkPen(colour, width=2, style=style)
        items = []
        for name, _ in PANELS:
            item = pg.PlotDataItem(pen=pen, symbol=symbol, symbolSize=6, symbolBrush=colour, symbolPen=colour)
            self.plots[name].addItem(item)
            items.append(item)
        if legend:
            self.legend.addItem(items[-1], variant)
        return items

    def _mark_switch(self, steps: Sequence[int]) -> None:
        for step in steps:
            if step in self._switch_steps:
                continue
            self._switch_steps.add(step)
            for plot in self.plots.values():
                line = pg.InfiniteLine(
                    pos=step, angle=90, pen=pg.mkPen("#888", width=1, style=Qt.PenStyle.DotLine)
                )
                line.setToolTip("switch to the original images")
                plot.addItem(line)
