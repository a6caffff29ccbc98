"""The live monitor's table of finished trials: one row per :class:`tracking.recording.TrialQuality`.

Stimulus, label (with the recogniser's confidence), valid-sample share, longest gap, fixations,
dropped display frames and the flag of every stored trial; rows that deserve a look (no fixation, a
gap of :data:`tracking.recording.LONG_GAP_MS` or more, under 80 % valid samples) in orange, trials
marked bad in red. Only new or changed rows are rewritten.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QTableWidget, QTableWidgetItem, QWidget

from tracking.recording import LONG_GAP_MS, TrialQuality

__all__ = ["TrialsTable"]

_COLUMNS = ("trial", "stimulus", "label", "valid %", "longest gap ms", "fixations", "dropped", "flag")
_NUMBER_COLUMNS = (0, 3, 4, 5, 6)
#: Below this share of valid samples a row is shown in orange.
_LOW_VALID_SHARE = 0.8
_BAD = QColor(176, 0, 32)
_WARN = QColor(150, 60, 0)


def _cells(quality: TrialQuality) -> tuple[str, ...]:
    """The row's texts."""
    label = quality.label + (f" ({quality.confidence:.2f})" if quality.confidence is not None else "")
    share = quality.valid_share
    return (
        str(quality.position + 1),
        quality.stimulus_id,
        label,
        "–" if not math.isfinite(share) else f"{100.0 * share:.0f}",
        f"{quality.longest_gap_ms:.0f}",
        str(quality.n_fixations),
        "–" if quality.dropped_frames is None else str(quality.dropped_frames),
        quality.flagged,
    )


def _colour(quality: TrialQuality) -> QColor | None:
    """Red for a trial marked bad, orange for one that deserves a look, else None."""
    if quality.flagged:
        return _BAD
    if (
        quality.n_fixations == 0
        or quality.longest_gap_ms >= LONG_GAP_MS
        or quality.valid_share < _LOW_VALID_SHARE
    ):
        return _WARN
    return None


class TrialsTable(QTableWidget):
    """The finished trials, one row each; the row chosen names the trial "Mark trial bad" flags."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, len(_COLUMNS), parent)
        self.setHorizontalHeaderLabels(_COLUMNS)
        self.verticalHeader().hide()
        self.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self._rows: list[TrialQuality] = []

    def clear_trials(self) -> None:
        """No trials (a new session)."""
        self.setRowCount(0)
        self._rows = []

    def show_trials(self, trials: Sequence[TrialQuality]) -> None:
        """Fill the rows that are new or changed (a flag); columns sized once, on the first rows."""
        shown, self._rows = self._rows, list(trials)
        self.setRowCount(len(trials))
        right = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        for row, quality in enumerate(trials):
            if row < len(shown) and shown[row] == quality:
                continue
            colour = _colour(quality)
            for column, text in enumerate(_cells(quality)):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, quality.position)
                if column in _NUMBER_COLUMNS:
                    item.setTextAlignment(right)
                if colour is not None:
                    item.setForeground(colour)
                self.setItem(row, column, item)
        if not shown:
            self.resizeColumnsToContents()
        if len(trials) > len(shown):
            self.scrollToBottom()

    def chosen_position(self) -> int | None:
        """The position of the trial chosen in the table, or None."""
        chosen = self.selectedItems()
        return None if not chosen else int(chosen[0].data(Qt.ItemDataRole.UserRole))
