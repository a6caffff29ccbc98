"""The setup screen's Spoken labels group: the recogniser, its model, the microphone and its level."""

from __future__ import annotations

import math

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtGui import QHideEvent, QShowEvent
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QWidget,
)

from rbdm_gui.screens._layout import row
from rbdm_gui.screens.setup_form import AMBER, SetupPanel, set_text
from rbdm_gui.workflows import speech
from rbdm_gui.workflows.settings import KEYBOARD_ONLY
from rbdm_gui.workflows.study_setup import StudySetup

__all__ = ["SpeechPanel"]

_LEVEL_FLOOR_DBFS = -60.0


class _LevelBridge(QObject):
    level = Signal(float)


class SpeechPanel(SetupPanel):
    """How labels are spoken (RBDM §5.3.1): a recogniser and a microphone, or the number keys only.

    A live level meter shows the chosen microphone's input while the panel is visible. When there is
    no microphone, or the keys alone are chosen, the notice says that keys 1–n label.
    """

    def __init__(self, model: StudySetup, parent: QWidget | None = None) -> None:
        super().__init__("Spoken labels", model, parent)
        self._microphone: speech.AudioSource | None = None
        self._meter_bridge = _LevelBridge(self)
        self._meter_bridge.level.connect(self._show_level, Qt.ConnectionType.QueuedConnection)
        self._metered: tuple[str, str] | None = None
        self._meter_problem = ""
        form = QFormLayout(self)
        self.recogniser_combo = QComboBox()
        for name in model.recognisers:
            self.recogniser_combo.addItem(
                "keyboard only (number keys)" if name == KEYBOARD_ONLY else name, name
            )
        form.addRow("Recogniser", self.recogniser_combo)
        self.vosk_edit = QLineEdit()
        self.vosk_edit.setPlaceholderText("folder of a Vosk model, e.g. vosk-model-small-en-us-0.15")
        vosk_browse = QPushButton("Browse…")
        vosk_browse.clicked.connect(self._choose_vosk)
        self.vosk_row = row(self.vosk_edit, vosk_browse)
        form.addRow("Vosk model", self.vosk_row)
        self.microphone_combo = QComboBox()
        self.microphone_combo.addItem("none found" if model.microphone_problem else "system default", "")
        for name in model.microphones:
            self.microphone_combo.addItem(name, name)
        form.addRow("Microphone", self.microphone_combo)
        self.level_bar = QProgressBar()
        self.level_bar.setRange(round(_LEVEL_FLOOR_DBFS), 0)
        self.level_bar.setFormat("%v dBFS")
        self.level_bar.setValue(round(_LEVEL_FLOOR_DBFS))
        form.addRow("Level", self.level_bar)
        self.speech_notice = QLabel()
        self.speech_notice.setWordWrap(True)
        self.speech_notice.setStyleSheet(AMBER)
        form.addRow(self.speech_notice)
        with self.showing():
            self.show_model("settings")
        self.recogniser_combo.currentIndexChanged.connect(
            self.edit(lambda _: model.update(recogniser=str(self.recogniser_combo.currentData())))
        )
        self.vosk_edit.textChanged.connect(self.edit(lambda text: model.update(vosk_model_dir=text)))
        self.microphone_combo.currentIndexChanged.connect(
            self.edit(lambda _: model.update(microphone=str(self.microphone_combo.currentData() or "")))
        )

    def show_model(self, aspect: str) -> None:
        settings, model = self.model.settings, self.model
        self.recogniser_combo.setCurrentIndex(max(self.recogniser_combo.findData(settings.recogniser), 0))
        set_text(self.vosk_edit, settings.vosk_model_dir)
        self.microphone_combo.setCurrentIndex(max(self.microphone_combo.findData(settings.microphone), 0))
        if (settings.recogniser, settings.microphone) != self._metered:
            self._restart_meter()
        self.vosk_row.setEnabled(settings.recogniser == "vosk")
        self.microphone_combo.setEnabled(model.speaks)
        self.level_bar.setEnabled(model.speaks)
        self.speech_notice.setText(model.speech_notice(self._meter_problem))

    # --- live level meter ---------------------------------------------------------------------------

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self._restart_meter()

    def hideEvent(self, event: QHideEvent) -> None:
        self.stop_meter()
        super().hideEvent(event)

    def stop_meter(self) -> None:
        """Close the microphone of the level meter."""
        microphone, self._microphone, self._metered = self._microphone, None, None
        if microphone is not None:
            microphone.close()
        self.level_bar.setValue(round(_LEVEL_FLOOR_DBFS))

    def _restart_meter(self) -> None:
        self.stop_meter()
        self._meter_problem = ""
        settings = self.model.settings
        if not self.isVisible() or not self.model.speaks:
            return
        self._metered = (settings.recogniser, settings.microphone)
        bridge = self._meter_bridge
        try:
            self._microphone = speech.open_level_meter(
                settings.microphone, lambda level: bridge.level.emit(level)
            )
        except speech.SpeechUnavailable as err:
            self._meter_problem = str(err)
            self.speech_notice.setText(self.model.speech_notice(self._meter_problem))

    @Slot(float)
    def _show_level(self, level_dbfs: float) -> None:
        value = level_dbfs if math.isfinite(level_dbfs) else _LEVEL_FLOOR_DBFS
        self.level_bar.setValue(round(min(0.0, max(_LEVEL_FLOOR_DBFS, value))))

    def _choose_vosk(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Vosk model folder", self.vosk_edit.text())
        if path:
            self.vosk_edit.setText(path)
