"""The temporal-prototypes screen: browse sequences, their stages and the SpRAy clusters (TP §3.3-3.5).

The view shows a :class:`~analysis.prototype_pipeline.PrototypeResult`: the sequences with their temporal
prototypes, the prototype strip of the selected sequence (each stage's Top-X projection in the units'
colours above its plain BWR heatmap, :func:`analysis.visualisation.prototype_strip`), the selected
stage enlarged, the clusters of a unit (their mean maps and SpRAy's eigenvalue spectrum) and TP
Table 1. A result comes from a ``.npz`` file written by ``rbdm prototypes`` (Open…) or is computed on a
worker thread (Compute: synthetic AU sequences and the default action unit model). The strip on show
is exported as PNG.

The view is thin: every number and picture comes from :mod:`analysis`, turned into what the panels show
by :mod:`rbdm_gui.workflows.prototypes` (Qt-free, as is the Compute work); the view only lays them out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from numpy.typing import NDArray
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QImage, QImageWriter, QPainter, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from analysis.prototype_pipeline import PrototypeResult, SequenceAnalysis, load_result
from analysis.visualisation import label_colours, prototype_strip, stage_panels
from rbdm_gui.screens.labeling_view import to_qimage
from rbdm_gui.screens.workers import Task, run_task
from rbdm_gui.workflows.prototypes import (
    STRIP_SCALE,
    Compute,
    cluster_row,
    cluster_summary,
    compute_synthetic,
    export_name,
    legend_html,
    sequence_title,
    stage_detail,
    stage_titles,
    table_cells,
)

__all__ = ["PrototypesView"]


def _pixmap(image: NDArray[np.uint8]) -> QPixmap:
    return QPixmap.fromImage(to_qimage(np.ascontiguousarray(image)))


class PrototypesView(QWidget):
    """Browse the temporal prototypes of a :class:`~analysis.prototype_pipeline.PrototypeResult`.

    Parameters
    ----------
    result : PrototypeResult, optional
        Shown at once.
    compute : callable, optional
        ``compute(progress, cancelled) -> PrototypeResult``, run on a worker thread by the Compute
        button; default :func:`compute_synthetic`.

    Signals
    -------
    result_changed(object)
        A new result is on show.
    """

    result_changed = Signal(object)

    def __init__(
        self,
        result: PrototypeResult | None = None,
        *,
        compute: Compute | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._compute = compute or compute_synthetic()
        self._task: Task | None = None
        self.result: PrototypeResult | None = None
        self.strip: NDArray[np.uint8] | None = None
        self._colours: dict[str, tuple[int, int, int]] = {}
        self._build()
        if result is not None:
            self.show_result(result)

    # ------------------------------------------------------------------------------------------
    # Layout
    # ------------------------------------------------------------------------------------------

    def _build(self) -> None:
        self.open_button = QPushButton("Open result…")
        self.compute_button = QPushButton("Compute (synthetic)")
        self.export_button = QPushButton("Export PNG…")
        self.x_box = QDoubleSpinBox()
        self.x_box.setRange(1.0, 100.0)
        self.x_box.setValue(25.0)
        self.x_box.setSuffix(" %")
        self.x_box.setToolTip("Top-X relevance projection: share of the positive relevance mass shown")
        self.source_box = QComboBox()
        self.source_box.addItems(["cluster", "stage"])
        self.source_box.setToolTip("cluster: each cluster's mean map; stage: the stage's own maps")
        self.status = QLabel("No result. Open one written by 'rbdm prototypes', or compute one.")
        bar = QHBoxLayout()
        for widget in (self.open_button, self.compute_button, self.export_button):
            bar.addWidget(widget)
        bar.addWidget(QLabel("Top-X"))
        bar.addWidget(self.x_box)
        bar.addWidget(QLabel("maps"))
        bar.addWidget(self.source_box)
        bar.addWidget(self.status, 1)

        self.sequence_list = QListWidget()
        self.stage_list = QListWidget()
        self.prototype_label = QLabel()
        self.prototype_label.setWordWrap(True)
        self.prototype_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.legend_label = QLabel()  # each unit's colour in the strips and overlays
        self.legend_label.setTextFormat(Qt.TextFormat.RichText)
        self.strip_label = QLabel()
        self.strip_label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.strip_scroll = QScrollArea()
        self.strip_scroll.setWidget(self.strip_label)
        self.strip_scroll.setWidgetResizable(True)
        self.detail_overlay = QLabel()
        self.detail_heatmap = QLabel()
        detail = QGroupBox("Stage")
        detail_layout = QGridLayout(detail)
        detail_layout.addWidget(self.stage_list, 0, 0, 2, 1)
        detail_layout.addWidget(self.detail_overlay, 0, 1)
        detail_layout.addWidget(self.detail_heatmap, 0, 2)

        self.unit_box = QComboBox()
        self.cluster_label = QLabel()
        self.spectrum_plot = pg.PlotWidget()
        self.spectrum_plot.setLabel("bottom", "eigenvalue index")
        self.spectrum_plot.setLabel("left", "eigenvalue")
        self.spectrum_plot.setMinimumHeight(120)
        self.spectrum_plot.setMaximumHeight(180)
        clusters = QGroupBox("SpRAy clusters of a unit (mean maps; eigenvalues of the Laplacian)")
        cluster_layout = QVBoxLayout(clusters)
        cluster_layout.addWidget(self.unit_box)
        cluster_layout.addWidget(self.cluster_label)
        cluster_layout.addWidget(self.spectrum_plot)

        self.table = QTableWidget()
        self.table.setMinimumHeight(120)

        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.addWidget(self.prototype_label)
        right_layout.addWidget(self.legend_label)
        right_layout.addWidget(self.strip_scroll, 2)
        right_layout.addWidget(detail, 1)
        right_layout.addWidget(clusters, 1)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.sequence_list)
        splitter.addWidget(right)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([240, 900])
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(splitter, 1)
        layout.addWidget(QLabel("Statistics (TP Table 1)"))
        layout.addWidget(self.table)

        self.open_button.clicked.connect(self._ask_open)
        self.compute_button.clicked.connect(self.start_compute)
        self.export_button.clicked.connect(self._ask_export)
        self.sequence_list.currentRowChanged.connect(self._on_sequence)
        self.stage_list.currentRowChanged.connect(self._on_stage)
        self.unit_box.currentTextChanged.connect(self._on_unit)
        self.x_box.valueChanged.connect(self._redraw)
        self.source_box.currentTextChanged.connect(self._redraw)
        self._set_enabled(False)

    def _set_enabled(self, enabled: bool) -> None:
        for widget in (self.export_button, self.x_box, self.source_box, self.unit_box):
            widget.setEnabled(enabled)

    # ------------------------------------------------------------------------------------------
    # Showing a result
    # ------------------------------------------------------------------------------------------

    @property
    def top_x(self) -> float:
        """The Top-X portion on show, in (0, 1]."""
        return float(self.x_box.value()) / 100.0

    @property
    def current_sequence(self) -> SequenceAnalysis | None:
        """The selected sequence, if any."""
        row = self.sequence_list.currentRow()
        if self.result is None or not 0 <= row < len(self.result.sequences):
            return None
        return self.result.sequences[row]

    def show_result(self, result: PrototypeResult) -> None:
        """Show ``result``: its sequences, its units' clusters and its statistics."""
        self.result = result
        self._colours = label_colours(result.units)
        self.legend_label.setText(legend_html(self._colours))
        self.sequence_list.blockSignals(True)
        self.sequence_list.clear()
        self.sequence_list.addItems([sequence_title(item) for item in result.sequences])
        self.sequence_list.blockSignals(False)
        self.unit_box.blockSignals(True)
        self.unit_box.clear()
        self.unit_box.addItems(list(result.spray))
        self.unit_box.blockSignals(False)
        self._fill_table(result)
        self._set_enabled(True)
        self.status.setText(f"{len(result.sequences)} sequences, units {', '.join(result.units)}")
        if result.sequences:
            self.sequence_list.setCurrentRow(0)
        self._on_unit(self.unit_box.currentText())
        self.result_changed.emit(result)

    def open_result(self, path: str | Path) -> None:
        """Read a result file (``rbdm prototypes`` writes ``result.npz``) and show it."""
        self.show_result(load_result(path))

    def select_sequence(self, index: int) -> None:
        """Show sequence ``index`` (its strip and stages)."""
        self.sequence_list.setCurrentRow(index)

    def select_stage(self, index: int) -> None:
        """Show stage ``index`` of the current sequence enlarged."""
        self.stage_list.setCurrentRow(index)

    def _fill_table(self, result: PrototypeResult) -> None:
        columns, rows = table_cells(result)
        self.table.setColumnCount(len(columns))
        self.table.setRowCount(len(rows))
        self.table.setHorizontalHeaderLabels(columns)
        for r, row in enumerate(rows):
            for c, text in enumerate(row):
                self.table.setItem(r, c, QTableWidgetItem(text))
        self.table.resizeColumnsToContents()

    def _on_sequence(self, row: int) -> None:
        sequence = self.current_sequence
        self.stage_list.blockSignals(True)
        self.stage_list.clear()
        if sequence is not None:
            self.stage_list.addItems(stage_titles(sequence))
            self.prototype_label.setText(str(sequence.prototype))
        self.stage_list.blockSignals(False)
        self._redraw()
        if sequence is not None and sequence.stages:
            self.stage_list.setCurrentRow(0)

    def _redraw(self, *_: Any) -> None:
        sequence = self.current_sequence
        if self.result is None or sequence is None:
            return
        panels = stage_panels(self.result, sequence.id, source=self.source_box.currentText())
        self.strip = prototype_strip(panels, self._colours, x=self.top_x, scale=STRIP_SCALE)
        self.strip_label.setPixmap(_pixmap(self.strip))
        self.strip_scroll.setMinimumHeight(min(self.strip.shape[0] + 24, 420))
        self._on_stage(self.stage_list.currentRow())

    def _on_stage(self, row: int) -> None:
        sequence = self.current_sequence
        if self.result is None or sequence is None or not 0 <= row < len(sequence.stages):
            return
        source = self.source_box.currentText()
        overlay, heatmap = stage_detail(
            self.result, sequence.id, row, self._colours, source=source, x=self.top_x
        )
        self.detail_overlay.setPixmap(_pixmap(overlay))
        self.detail_heatmap.setPixmap(_pixmap(heatmap))

    def _on_unit(self, unit: str) -> None:
        self.spectrum_plot.clear()
        if self.result is None or unit not in self.result.spray:
            self.cluster_label.clear()
            return
        eigenvalues = np.asarray(self.result.spray[unit].eigenvalues)
        self.spectrum_plot.plot(np.arange(1, len(eigenvalues) + 1), eigenvalues, pen=None, symbol="o")
        row = cluster_row(self.result, unit)
        if row is not None:
            self.cluster_label.setPixmap(_pixmap(row))
        self.cluster_label.setToolTip(cluster_summary(self.result, unit, self._colours))

    # ------------------------------------------------------------------------------------------
    # Actions
    # ------------------------------------------------------------------------------------------

    def export_png(self, path: str | Path) -> Path:
        """Write the strip on show with a legend of the units' colours below it as a PNG file.

        Raises
        ------
        ValueError
            When no strip is on show.
        OSError
            When the file cannot be written.
        """
        if self.strip is None:
            raise ValueError("no prototype strip on show; open or compute a result and pick a sequence.")
        out = Path(path)
        writer = QImageWriter(str(out), b"PNG")  # QImage.save(name, b"PNG") is refused by PySide6 6.11
        if not writer.write(_strip_with_legend(self.strip, self._colours)):
            raise OSError(f"cannot write {out} ({writer.errorString()}); choose a folder you can write to.")
        return out

    def start_compute(self) -> Task:
        """Run the compute function on a worker thread; the result is shown when it arrives."""
        self.compute_button.setEnabled(False)
        self.status.setText("computing…")
        self._task = run_task(
            self._compute, on_result=self._computed, on_error=self._failed, on_progress=self._progress
        )
        return self._task

    def _progress(self, fraction: float, text: str) -> None:
        self.status.setText(f"{100 * fraction:.0f} %  {text}")

    def _computed(self, result: PrototypeResult) -> None:
        self.compute_button.setEnabled(True)
        self.show_result(result)

    def _failed(self, error: BaseException) -> None:
        self.compute_button.setEnabled(True)
        self.status.setText(f"failed: {error}")

    def _ask_open(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open temporal-prototype result", "", "Results (*.npz)")
        if path:
            try:
                self.open_result(path)
            except (OSError, ValueError, KeyError) as err:
                self.status.setText(f"cannot open {path}: {err}")

    def _ask_export(self) -> None:
        default = export_name(self.current_sequence)
        path, _ = QFileDialog.getSaveFileName(self, "Export prototype strip", default, "PNG (*.png)")
        if path:
            try:
                self.status.setText(f"wrote {self.export_png(path)}")
            except (OSError, ValueError) as err:
                self.status.setText(f"cannot export: {err}")


def _strip_with_legend(strip: NDArray[np.uint8], colours: dict[str, tuple[int, int, int]]) -> QImage:
    """The strip with a white band below: a coloured square and the name of each unit."""
    image = to_qimage(strip)
    size_px = max(12, min(24, image.height() // 12))
    band = 2 * size_px if colours else 0
    out = QImage(image.width(), image.height() + band, QImage.Format.Format_RGB888)
    out.fill(QColor("white"))
    painter = QPainter(out)
    painter.drawImage(0, 0, image)
    font = painter.font()
    font.setPixelSize(size_px)
    painter.setFont(font)
    x, y = size_px // 2, image.height() + size_px // 2
    for unit, (r, g, b) in colours.items():
        painter.fillRect(x, y, size_px, size_px, QColor(r, g, b))
        painter.setPen(QColor(20, 20, 20))
        painter.drawText(x + size_px + 4, y + size_px - 2, unit)
        x += size_px + 12 + painter.fontMetrics().horizontalAdvance(unit)
    painter.end()
    return out
