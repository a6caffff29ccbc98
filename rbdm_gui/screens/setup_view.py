"""The study setup screen: study file, participant, stimuli, labels, tracker, speech, screen, seed.

The view shows a :class:`~rbdm_gui.workflows.settings.StudySettings` and turns edits back into one; it
saves them (JSON in the user's config folder) when a session starts and when the app closes.
Choices come from the registries (:data:`tracking.drivers.DRIVERS`, :data:`tracking.fixations.DETECTORS`,
the speech recognisers), the tracker options from each driver's signature. A live level meter
shows the chosen microphone's input while the screen is visible.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QGuiApplication, QHideEvent, QScreen, QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from analysis.geometry import ScreenGeometry
from analysis.labels import LABELS
from rbdm_gui.screens._layout import keys_text
from rbdm_gui.screens.labeling_view import SessionReport, session_outcome
from rbdm_gui.screens.participants_panel import ParticipantsPanel
from rbdm_gui.screens.workers import Task, run_task
from rbdm_gui.workflows import speech
from rbdm_gui.workflows.settings import (
    KEYBOARD_ONLY,
    DriverOption,
    StudySettings,
    build_driver,
    detector_description,
    driver_options,
    parse_option,
    save_settings,
)
from tracking.drivers import DRIVERS
from tracking.errors import StoreError
from tracking.fixations import DETECTORS
from tracking.protocol import ORDER_DESIGNS
from tracking.records import check_pseudonym
from tracking.store import SessionStore

__all__ = ["SetupView", "screen_geometry"]

_SYNTHETIC, _FOLDER = "Synthetic faces (embedded)", "Dataset folder"
_SYNTHETIC_SPLITS = ("train", "validation", "test")
_LEVEL_FLOOR_DBFS = -60.0
_PSEUDONYM_HINT = "A pseudonym such as P07: 1–32 letters, digits, '_' or '-' (no spaces); never a name."
_DESIGN_TEXT = {
    "per-participant": "random, one per participant",
    "latin-square": "balanced Latin square",
    "same-for-all": "one random order for all",
}


def screen_geometry(screen: QScreen, *, distance_cm: float = 70.0) -> ScreenGeometry:
    """The geometry Qt reports for ``screen``: its size in physical pixels and its diagonal."""
    dpr = screen.devicePixelRatio()
    size = screen.size()
    width_px, height_px = round(size.width() * dpr), round(size.height() * dpr)
    physical = screen.physicalSize()
    diagonal_in = math.hypot(physical.width(), physical.height()) / 25.4
    if not (math.isfinite(diagonal_in) and diagonal_in > 5.0):
        diagonal_in = 24.0  # the platform does not know the screen's size
    return ScreenGeometry(width_px, height_px, round(diagonal_in, 1), distance_cm)


def _synthetic_spec(n_per_class: int, size_px: int) -> str:
    return f"synthetic:n={n_per_class},size={size_px}"


def _parse_synthetic(spec: str) -> tuple[int, int] | None:
    name, _, options = spec.partition(":")
    if name != "synthetic":
        return None
    values = {"n": 2, "size": 512}
    for item in filter(None, (part.strip() for part in options.split(","))):
        key, _, value = item.partition("=")
        if key.strip() in values and value.strip().isdigit():
            values[key.strip()] = int(value)
    return values["n"], values["size"]


class _LevelBridge(QObject):
    level = Signal(float)


class _OptionEditor(QWidget):
    """The options of one tracker driver, read from its signature."""

    def __init__(self, driver: str) -> None:
        super().__init__()
        self.driver = driver
        self._editors: dict[str, tuple[DriverOption, QWidget]] = {}
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        for option in driver_options(driver):
            editor = self._editor(option)
            self._editors[option.name] = (option, editor)
            form.addRow(option.label, editor)
        if not self._editors:
            form.addRow(QLabel("(no options)"))

    @staticmethod
    def _editor(option: DriverOption) -> QWidget:
        if option.kind == "bool":
            box = QCheckBox()
            box.setChecked(bool(option.default))
            return box
        if option.kind == "choice":
            combo = QComboBox()
            combo.addItems(option.choices)
            if option.default in option.choices:
                combo.setCurrentText(str(option.default))
            return combo
        line = QLineEdit()
        line.setPlaceholderText("required" if option.required else ("none" if option.default is None else ""))
        if option.default is not None:
            line.setText(str(option.default))
        return line

    def values(self, *, strict: bool) -> dict[str, Any]:
        """The options as typed; ``strict`` raises ``ValueError`` for a bad value, else leaves it out."""
        out: dict[str, Any] = {}
        for name, (option, editor) in self._editors.items():
            if isinstance(editor, QCheckBox):
                out[name] = editor.isChecked()
            elif isinstance(editor, QComboBox):
                out[name] = editor.currentText()
            else:
                assert isinstance(editor, QLineEdit)
                try:
                    out[name] = parse_option(option, editor.text())
                except ValueError:
                    if strict:
                        raise
        return out

    def set_values(self, values: dict[str, Any]) -> None:
        for name, value in values.items():
            if name not in self._editors:
                continue
            _, editor = self._editors[name]
            if isinstance(editor, QCheckBox):
                editor.setChecked(bool(value))
            elif isinstance(editor, QComboBox):
                editor.setCurrentText(str(value))
            elif isinstance(editor, QLineEdit):
                editor.setText("" if value is None else str(value))


class SetupView(QWidget):
    """The study setup screen.

    Parameters
    ----------
    settings : StudySettings
        Shown at first.
    screen : QScreen, optional
        Fills in the screen geometry ("This screen" button; at once when ``prefill_screen``).
    prefill_screen : bool
        Take the screen geometry from ``screen`` now (first start: nothing saved yet).
    settings_file : Path, optional
        Where :meth:`save` writes (the user's config folder by default).

    Signals
    -------
    start_requested(object)
        The user pressed "Start session"; carries the checked, saved :class:`StudySettings`.
        An unfinished session of the participant is resumed.
    new_session_requested(object)
        The user pressed "New session": the same, but a new session is begun even when one is unfinished.
    study_path_changed(str)
        The study file (resolved path) changed; other screens follow it.
    monitor_requested
        "Live monitor": open the experimenter's monitor of the session that runs or starts next.
    """

    start_requested = Signal(object)
    new_session_requested = Signal(object)
    study_path_changed = Signal(str)
    monitor_requested = Signal()

    def __init__(
        self,
        settings: StudySettings,
        *,
        screen: QScreen | None = None,
        prefill_screen: bool = False,
        settings_file: Path | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._screen = screen if screen is not None else QGuiApplication.primaryScreen()
        self._settings_file = settings_file
        self._split_task: Task | None = None
        self._tracker_task: Task | None = None
        self._start_problem = False
        self._study_path = ""
        self.review_dialog: SessionReport | None = None
        self._microphone: speech.AudioSource | None = None
        self._microphone_problem = ""
        self._meter_bridge = _LevelBridge(self)
        self._meter_bridge.level.connect(self._show_level, Qt.ConnectionType.QueuedConnection)
        self._participants_timer = QTimer(self)
        self._participants_timer.setSingleShot(True)
        self._participants_timer.setInterval(150)
        self._participants_timer.timeout.connect(self.refresh_participants)
        self._build()
        self.set_settings(settings)
        self._watch_for_participants()
        self.refresh_participants()
        if prefill_screen and self._screen is not None:
            self.use_screen()

    # --- layout ---------------------------------------------------------------------------------

    def _build(self) -> None:
        content = QWidget()
        columns = QHBoxLayout(content)
        # two independent columns (each group at its own height): who, when and where; what and how
        left, right = QVBoxLayout(), QVBoxLayout()
        for group in (self._study_group(), self._session_group(), self._screen_group()):
            left.addWidget(group)
        for group in (self._stimuli_group(), self._tracker_group(), self._speech_group()):
            right.addWidget(group)
        for column in (left, right):
            column.addStretch(1)
            columns.addLayout(column, 1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(content)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)

    def _study_group(self) -> QGroupBox:
        box = QGroupBox("Study")
        form = QFormLayout(box)
        self.study_edit = QLineEdit()
        self.study_edit.setPlaceholderText("study.sqlite in your data folder")
        choose = QPushButton("Choose…")
        choose.clicked.connect(self._choose_study)
        form.addRow("Study file", _row(self.study_edit, choose))
        self.participant_edit = QLineEdit()
        self.participant_edit.setMaxLength(32)
        self.participant_edit.setToolTip(_PSEUDONYM_HINT)
        self.participant_edit.textChanged.connect(self._check_pseudonym)
        form.addRow("Participant", self.participant_edit)
        self.participant_hint = QLabel(_PSEUDONYM_HINT)
        self.participant_hint.setWordWrap(True)
        self.participant_hint.setStyleSheet("color: #333;")
        form.addRow("", self.participant_hint)
        self.participants = ParticipantsPanel()
        self.participants.setFlat(True)
        self.participants.chosen.connect(self.participant_edit.setText)
        self.participants.review_requested.connect(self.review_session)
        form.addRow(self.participants)
        return box

    def _stimuli_group(self) -> QGroupBox:
        box = QGroupBox("Stimuli and labels")
        form = QFormLayout(box)
        self.source_combo = QComboBox()
        self.source_combo.addItems([_SYNTHETIC, _FOLDER])
        form.addRow("Stimulus set", self.source_combo)
        self.source_stack = QStackedWidget()
        synthetic = QWidget()
        self.faces_spin = _spin(1, 500, 2, " per label")
        self.face_size_spin = _spin(16, 1200, 512, " px")
        synthetic_row = QHBoxLayout(synthetic)
        synthetic_row.setContentsMargins(0, 0, 0, 0)
        synthetic_row.addWidget(self.faces_spin)
        synthetic_row.addWidget(self.face_size_spin)
        self.folder_edit = QLineEdit()
        self.folder_edit.setPlaceholderText("FERPlus, CK+, AffectNet or <split>/<label>/ images")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._choose_folder)
        self.source_stack.addWidget(synthetic)
        self.source_stack.addWidget(_row(self.folder_edit, browse))
        form.addRow("", self.source_stack)
        self.split_combo = QComboBox()
        self.split_combo.setEditable(True)
        self.split_combo.setToolTip("Split to label; empty for the dataset's last split.")
        form.addRow("Split", self.split_combo)
        self.max_spin = _spin(0, 100_000, 0, "")
        self.max_spin.setSpecialValueText("all")
        form.addRow("At most", self.max_spin)
        labels = QWidget()
        label_grid = QGridLayout(labels)
        label_grid.setContentsMargins(0, 0, 0, 0)
        self.label_boxes: dict[str, QCheckBox] = {}
        for k, label in enumerate(LABELS):
            check = QCheckBox(label)
            self.label_boxes[label] = check
            label_grid.addWidget(check, k // 4, k % 4)
        form.addRow("Label set", labels)
        self.source_combo.currentIndexChanged.connect(self._on_source)
        self.folder_edit.editingFinished.connect(self._refresh_splits)
        return box

    def _tracker_group(self) -> QGroupBox:
        box = QGroupBox("Eye tracker")
        form = QFormLayout(box)
        self.driver_combo = QComboBox()
        self.driver_combo.addItems(list(DRIVERS))
        self.driver_combo.setToolTip("'mouse' simulates gaze with the mouse cursor (no tracker needed).")
        form.addRow("Tracker", self.driver_combo)
        self.option_stack = QStackedWidget()
        self.option_editors: dict[str, _OptionEditor] = {}
        for name in DRIVERS:
            editor = _OptionEditor(name)
            self.option_editors[name] = editor
            self.option_stack.addWidget(editor)
        form.addRow(self.option_stack)
        self.driver_combo.currentTextChanged.connect(self._show_driver_options)
        self.detector_combo = QComboBox()
        self.detector_combo.addItems(list(DETECTORS))
        form.addRow("Fixations", self.detector_combo)
        self.detector_info = QLabel()
        self.detector_info.setWordWrap(True)
        self.detector_info.setStyleSheet("color: #333;")
        form.addRow(self.detector_info)
        self.detector_combo.currentTextChanged.connect(self._show_detector)
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
        return box

    def _speech_group(self) -> QGroupBox:
        box = QGroupBox("Spoken labels")
        form = QFormLayout(box)
        self.recogniser_combo = QComboBox()
        for name in speech.recogniser_names():
            self.recogniser_combo.addItem(name, name)
        self.recogniser_combo.addItem("keyboard only (number keys)", KEYBOARD_ONLY)
        form.addRow("Recogniser", self.recogniser_combo)
        self.vosk_edit = QLineEdit()
        self.vosk_edit.setPlaceholderText("folder of a Vosk model, e.g. vosk-model-small-en-us-0.15")
        vosk_browse = QPushButton("Browse…")
        vosk_browse.clicked.connect(self._choose_vosk)
        self.vosk_row = _row(self.vosk_edit, vosk_browse)
        form.addRow("Vosk model", self.vosk_row)
        self.microphone_combo = QComboBox()
        form.addRow("Microphone", self.microphone_combo)
        self.level_bar = QProgressBar()
        self.level_bar.setRange(round(_LEVEL_FLOOR_DBFS), 0)
        self.level_bar.setFormat("%v dBFS")
        self.level_bar.setValue(round(_LEVEL_FLOOR_DBFS))
        form.addRow("Level", self.level_bar)
        self.speech_notice = QLabel()
        self.speech_notice.setWordWrap(True)
        self.speech_notice.setStyleSheet("color: #8a4b00;")
        form.addRow(self.speech_notice)
        self._fill_microphones()
        self.recogniser_combo.currentIndexChanged.connect(self._on_recogniser)
        self.microphone_combo.currentIndexChanged.connect(self._restart_meter)
        return box

    def _screen_group(self) -> QGroupBox:
        box = QGroupBox("Screen")
        form = QFormLayout(box)
        self.width_spin = _spin(1, 20_000, 2560, " px")
        self.height_spin = _spin(1, 20_000, 1440, " px")
        form.addRow("Resolution", _row(self.width_spin, QLabel("×"), self.height_spin))
        self.diagonal_spin = _double(1.0, 300.0, 27.0, ' "', 1)
        form.addRow("Diagonal", self.diagonal_spin)
        self.distance_spin = _double(10.0, 500.0, 70.0, " cm", 1)
        form.addRow("Viewing distance", self.distance_spin)
        this_screen = QPushButton("This screen")
        this_screen.setToolTip("Take resolution and size from the screen Qt reports.")
        this_screen.clicked.connect(self.use_screen)
        self.geometry_info = QLabel()
        form.addRow(this_screen, self.geometry_info)
        for spin in (self.width_spin, self.height_spin, self.diagonal_spin, self.distance_spin):
            spin.valueChanged.connect(self._show_geometry)
        return box

    def _session_group(self) -> QGroupBox:
        box = QGroupBox("Session")
        layout = QVBoxLayout(box)
        form = QFormLayout()
        self.design_combo = QComboBox()
        for name in ORDER_DESIGNS:
            self.design_combo.addItem(f"{name}: {_DESIGN_TEXT.get(name, name)}", name)
        self.design_combo.setToolTip(
            "How each participant's stimulus order is made. One order for all lets order effects "
            "confound the comparison of annotators."
        )
        form.addRow("Stimulus order", self.design_combo)
        self.seed_spin = _spin(0, 2**31 - 1, 0, "")
        self.seed_spin.setToolTip(
            "The study's seed: of the stimulus choice and, with the design, of the orders."
        )
        form.addRow("Study seed", self.seed_spin)
        layout.addLayout(form)
        self.problem_label = QLabel()
        self.problem_label.setWordWrap(True)
        self.problem_label.setStyleSheet("color: #b00020;")
        layout.addWidget(self.problem_label)
        self.start_button = QPushButton("Start session")
        self.start_button.setDefault(True)
        self.start_button.setMinimumHeight(36)
        self.start_button.clicked.connect(self.request_start)
        self.new_button = QPushButton("New session")
        self.new_button.setMinimumHeight(36)
        self.new_button.setToolTip("Begin a new session even though this participant has an unfinished one.")
        self.new_button.clicked.connect(self.request_new_session)
        self.monitor_button = QPushButton("Live monitor")
        self.monitor_button.setMinimumHeight(36)
        self.monitor_button.setToolTip(
            "The experimenter's view of the session: gaze, fixations, data quality, labels, Table 1 so far."
        )
        self.monitor_button.clicked.connect(self.monitor_requested.emit)
        layout.addWidget(_row(self.start_button, self.new_button, self.monitor_button))
        self.hint_label = QLabel()
        self.hint_label.setWordWrap(True)
        self.hint_label.setStyleSheet("color: #333;")
        layout.addWidget(self.hint_label)
        layout.addStretch(1)
        return box

    # --- settings in and out --------------------------------------------------------------------

    def set_settings(self, settings: StudySettings) -> None:
        """Show ``settings`` in the widgets."""
        self.study_edit.setText(settings.study_path)
        self.participant_edit.setText(settings.participant)
        synthetic = _parse_synthetic(settings.stimuli)
        if synthetic is not None:
            self.source_combo.setCurrentText(_SYNTHETIC)
            self.faces_spin.setValue(synthetic[0])
            self.face_size_spin.setValue(synthetic[1])
        else:
            self.source_combo.setCurrentText(_FOLDER)
            self.folder_edit.setText(settings.stimuli)
        self._on_source()
        self.split_combo.setCurrentText(settings.split)
        self.max_spin.setValue(settings.max_stimuli)
        for label, box in self.label_boxes.items():
            box.setChecked(label in settings.labels)
        if settings.driver in DRIVERS:
            self.driver_combo.setCurrentText(settings.driver)
        self._show_driver_options(self.driver_combo.currentText())
        for name, values in settings.driver_options.items():
            if name in self.option_editors:
                self.option_editors[name].set_values(dict(values))
        if settings.detector in DETECTORS:
            self.detector_combo.setCurrentText(settings.detector)
        self._show_detector(self.detector_combo.currentText())
        self.calibrate_check.setChecked(settings.calibrate)
        index = self.recogniser_combo.findData(settings.recogniser)
        self.recogniser_combo.setCurrentIndex(index if index >= 0 else self.recogniser_combo.count() - 1)
        self.vosk_edit.setText(settings.vosk_model_dir)
        if settings.microphone:
            index = self.microphone_combo.findData(settings.microphone)
            if index >= 0:
                self.microphone_combo.setCurrentIndex(index)
        self.width_spin.setValue(settings.screen_width_px)
        self.height_spin.setValue(settings.screen_height_px)
        self.diagonal_spin.setValue(settings.diagonal_in)
        self.distance_spin.setValue(settings.distance_cm)
        self.seed_spin.setValue(settings.seed)
        index = self.design_combo.findData(settings.order_design)
        self.design_combo.setCurrentIndex(max(index, 0))
        self._on_recogniser()
        self._show_geometry()

    def settings(self) -> StudySettings:
        """The settings as shown (other trackers' options that cannot be read are left out).

        Raises
        ------
        ValueError
            For an option of the chosen tracker that cannot be read (the message names it).
        """
        chosen = self.driver_combo.currentText()
        options = {name: editor.values(strict=name == chosen) for name, editor in self.option_editors.items()}
        return StudySettings(
            study_path=self.study_edit.text().strip(),
            participant=self.participant_edit.text().strip(),
            stimuli=self._stimuli_spec(),
            split=self.split_combo.currentText().strip(),
            max_stimuli=self.max_spin.value(),
            labels=tuple(label for label, box in self.label_boxes.items() if box.isChecked()),
            driver=self.driver_combo.currentText(),
            driver_options=options,
            detector=self.detector_combo.currentText(),
            recogniser=str(self.recogniser_combo.currentData()),
            vosk_model_dir=self.vosk_edit.text().strip(),
            microphone=str(self.microphone_combo.currentData() or ""),
            screen_width_px=self.width_spin.value(),
            screen_height_px=self.height_spin.value(),
            diagonal_in=self.diagonal_spin.value(),
            distance_cm=self.distance_spin.value(),
            seed=self.seed_spin.value(),
            order_design=str(self.design_combo.currentData()),
            calibrate=self.calibrate_check.isChecked(),
        )

    def save(self) -> Path | None:
        """Save the settings as shown; returns the file, or None when they cannot be read."""
        try:
            settings = self.settings()
        except ValueError as err:
            self.problem_label.setText(str(err))
            return None
        return save_settings(settings, self._settings_file)

    @Slot()
    def request_start(self) -> None:
        """Check and save the settings, then ask for a session (``start_requested``): resume or begin."""
        settings = self._checked()
        if settings is not None:
            self.start_requested.emit(settings)

    @Slot()
    def request_new_session(self) -> None:
        """Check and save the settings, then ask for a new session (``new_session_requested``)."""
        settings = self._checked()
        if settings is not None:
            self.new_session_requested.emit(settings)

    def _checked(self) -> StudySettings | None:
        try:
            settings = self.settings()
            settings.check()
        except ValueError as err:
            self.problem_label.setText(str(err))
            return None
        self.problem_label.setText("")
        save_settings(settings, self._settings_file)
        return settings

    def show_problem(self, text: str) -> None:
        """Show why a session could not start (until the next start, or another tracker is chosen)."""
        self.problem_label.setText(text)
        self._start_problem = True

    # --- participants ---------------------------------------------------------------------------

    def _watch_for_participants(self) -> None:
        """Re-read the study's participants shortly after any edit that changes what Start does."""
        schedule = self._participants_timer.start
        self.study_edit.textChanged.connect(schedule)
        self.participant_edit.textChanged.connect(schedule)
        self.folder_edit.textChanged.connect(schedule)
        self.split_combo.currentTextChanged.connect(schedule)
        self.design_combo.currentIndexChanged.connect(schedule)
        for spin in (self.faces_spin, self.face_size_spin, self.max_spin, self.seed_spin):
            spin.valueChanged.connect(schedule)
        for box in self.label_boxes.values():
            box.toggled.connect(schedule)
            box.toggled.connect(self._on_recogniser)
        self.source_combo.currentIndexChanged.connect(schedule)

    @Slot()
    def refresh_participants(self) -> None:
        """Show the study's participants, what Start does, and the label keys (also after a session)."""
        self._participants_timer.stop()
        try:
            settings = self.settings()
        except ValueError:
            return
        self.participants.show_study(settings)
        path = str(settings.resolved_study_path())
        if path != self._study_path:
            self._study_path = path
            self.study_path_changed.emit(path)
        plan = self.participants.plan
        state = self.participants.state_of(settings.participant)
        resumes = plan is not None and not plan.new
        self.start_button.setText("Resume session" if resumes else "Start session")
        self.new_button.setVisible(resumes)
        n_keys = len(settings.labels)
        after = (
            "An unfinished session is resumed where it stopped; finished sessions are never changed."
            if state is None or state.state != "finished"
            else f"{settings.participant} has finished a session; Start begins a new one."
        )
        self.hint_label.setText(
            f"Full screen. Keys 1–{n_keys} label, Space goes on, Esc pauses. {after}"
            if n_keys
            else "Choose at least one label."
        )

    @Slot(int)
    def review_session(self, session_id: int) -> SessionReport | None:
        """Open the report of a stored session (phase timing, gaze per trial); None when it cannot be read."""
        path = self.settings().resolved_study_path()
        state = next((s for s in self.participants.states if s.session_id == session_id), None)
        try:
            with SessionStore.open_read_only(path) as store:
                outcome = session_outcome(
                    store, session_id, participant=state.pseudonym if state is not None else "?"
                )
        except (StoreError, ValueError) as err:
            self.problem_label.setText(str(err))
            return None
        dialog = SessionReport(outcome.report, summary=outcome.summary, quality=outcome.quality, parent=self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
        self.review_dialog = dialog
        return dialog

    def _check_pseudonym(self, text: str) -> None:
        """Say what is wrong with the pseudonym as typed, instead of dropping characters silently."""
        try:
            check_pseudonym(text.strip())
        except ValueError as err:
            self.participant_hint.setText(str(err))
            self.participant_hint.setStyleSheet("color: #b00020;")
            return
        self.participant_hint.setText(_PSEUDONYM_HINT)
        self.participant_hint.setStyleSheet("color: #333;")

    def _stimuli_spec(self) -> str:
        if self.source_combo.currentText() == _SYNTHETIC:
            return _synthetic_spec(self.faces_spin.value(), self.face_size_spin.value())
        return self.folder_edit.text().strip()

    # --- reactions ------------------------------------------------------------------------------

    @Slot()
    def use_screen(self) -> None:
        """Fill in the screen geometry Qt reports."""
        screen = self.window().screen() if self.isVisible() else self._screen
        if screen is None:
            return
        geometry = screen_geometry(screen, distance_cm=self.distance_spin.value())
        self.width_spin.setValue(geometry.width_px)
        self.height_spin.setValue(geometry.height_px)
        self.diagonal_spin.setValue(geometry.diagonal_in)

    def _show_geometry(self) -> None:
        try:
            geometry = ScreenGeometry(
                self.width_spin.value(),
                self.height_spin.value(),
                self.diagonal_spin.value(),
                self.distance_spin.value(),
            )
        except ValueError as err:
            self.geometry_info.setText(str(err))
            return
        rect = geometry.stimulus_rect()
        self.geometry_info.setText(
            f"image {rect.width_px:.0f} px (scale {rect.width_px / 1200.0:.2f}); "
            f"1° = {geometry.visual_span_px(1.0):.1f} px"
        )

    def _show_detector(self, detector: str) -> None:
        if detector in DETECTORS:
            self.detector_info.setText(detector_description(detector))

    @Slot()
    def test_tracker(self) -> None:
        """Connect the chosen tracker on a worker thread; show the sampling rate it reports, or why not."""
        try:
            settings = self.settings()
            geometry = settings.geometry()
        except ValueError as err:
            self.tracker_info.setText(str(err))
            return
        name, options = settings.driver, dict(settings.driver_options.get(settings.driver, {}))
        self.tracker_info.setStyleSheet("color: #333;")
        self.tracker_info.setText(f"Connecting to {name}…")

        def probe(progress: object, cancelled: object) -> str:
            driver = build_driver(name, options, geometry=geometry, position_source=lambda: None)
            try:
                driver.connect()
                return _tracker_report(name, driver)
            finally:
                driver.close()

        def shown(text: str, *, problem: bool = False) -> None:
            if self.driver_combo.currentText() == name:  # not a tracker chosen since
                self.tracker_info.setStyleSheet("color: #b00020;" if problem else "color: #1b5e20;")
                self.tracker_info.setText(text)

        self._tracker_task = run_task(
            probe, on_result=shown, on_error=lambda err: shown(f"{name}: {err}", problem=True)
        )

    def _show_driver_options(self, driver: str) -> None:
        """Show the options of ``driver``; the others take no room; an older tracker's error goes."""
        self.tracker_info.setText("")
        if self._start_problem:  # why the last start failed: it was about the tracker then chosen
            self._start_problem = False
            self.problem_label.setText("")
        for name, editor in self.option_editors.items():
            policy = QSizePolicy.Policy.Preferred if name == driver else QSizePolicy.Policy.Ignored
            editor.setSizePolicy(policy, policy)
        self.option_stack.setCurrentWidget(self.option_editors[driver])
        self.option_stack.adjustSize()

    def _on_source(self) -> None:
        synthetic = self.source_combo.currentText() == _SYNTHETIC
        self.source_stack.setCurrentIndex(0 if synthetic else 1)
        self._refresh_splits()

    def _refresh_splits(self) -> None:
        current = self.split_combo.currentText()
        if self.source_combo.currentText() == _SYNTHETIC:
            self._set_splits(_SYNTHETIC_SPLITS, current)
            return
        folder = self.folder_edit.text().strip()
        if not folder:
            return
        if self._split_task is not None:
            self._split_task.cancel()

        def read_splits(progress: object, cancelled: object) -> tuple[str, ...]:
            from analysis.datasets import open_dataset

            return tuple(open_dataset(folder).splits)

        self._split_task = run_task(
            read_splits,
            on_result=lambda splits: self._set_splits(splits, current),
            on_error=lambda err: self.problem_label.setText(str(err)),
        )

    def _set_splits(self, splits: tuple[str, ...], current: str) -> None:
        self.split_combo.clear()
        self.split_combo.addItem("")
        self.split_combo.addItems(list(splits))
        self.split_combo.setCurrentText(current)

    def _on_recogniser(self) -> None:
        choice = self.recogniser_combo.currentData()
        self.vosk_row.setEnabled(choice == "vosk")
        keyboard = choice == KEYBOARD_ONLY
        self.microphone_combo.setEnabled(not keyboard and not self._microphone_problem)
        self.level_bar.setEnabled(not keyboard and not self._microphone_problem)
        if keyboard:
            notice = f"Labels by keys 1–{self._n_labels()} only; nothing is recorded from the microphone."
        else:  # the speech package's own text: what is missing, and that the keys still work
            notice = keys_text(self._microphone_problem, self._n_labels())
        self.speech_notice.setText(notice)
        self._restart_meter()

    def _n_labels(self) -> int:
        return sum(box.isChecked() for box in self.label_boxes.values())

    def _fill_microphones(self) -> None:
        self.microphone_combo.clear()
        self.microphone_combo.addItem("system default", "")
        devices, self._microphone_problem = speech.microphone_names()
        if self._microphone_problem:
            self.microphone_combo.setItemText(0, "none found")
        for name in devices:
            self.microphone_combo.addItem(name, name)

    # --- live level meter ---------------------------------------------------------------------------

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self._restart_meter()

    def hideEvent(self, event: QHideEvent) -> None:
        self.stop_meter()
        super().hideEvent(event)

    def stop_meter(self) -> None:
        """Close the microphone of the level meter."""
        microphone, self._microphone = self._microphone, None
        if microphone is not None:
            microphone.close()
        self.level_bar.setValue(round(_LEVEL_FLOOR_DBFS))

    def _restart_meter(self) -> None:
        self.stop_meter()
        if (
            not self.isVisible()
            or self.recogniser_combo.currentData() == KEYBOARD_ONLY
            or self._microphone_problem
        ):
            return
        device = str(self.microphone_combo.currentData() or "")
        bridge = self._meter_bridge
        try:
            self._microphone = speech.open_level_meter(device, lambda level: bridge.level.emit(level))
        except speech.SpeechUnavailable as err:
            self.speech_notice.setText(keys_text(str(err), self._n_labels()))

    @Slot(float)
    def _show_level(self, level_dbfs: float) -> None:
        value = level_dbfs if math.isfinite(level_dbfs) else _LEVEL_FLOOR_DBFS
        self.level_bar.setValue(round(min(0.0, max(_LEVEL_FLOOR_DBFS, value))))

    # --- file dialogs ---------------------------------------------------------------------------

    def _choose_study(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self,
            "Study file (new or existing)",
            self.study_edit.text(),
            "RBDM Studio study (*.sqlite *.db)",
            options=QFileDialog.Option.DontConfirmOverwrite,
        )
        if path:
            self.study_edit.setText(path)

    def _choose_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Dataset folder", self.folder_edit.text())
        if path:
            self.folder_edit.setText(path)
            self._refresh_splits()

    def _choose_vosk(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Vosk model folder", self.vosk_edit.text())
        if path:
            self.vosk_edit.setText(path)


def _tracker_report(name: str, driver: Any) -> str:
    """What a connected tracker reports: its sampling rate, and whether it is calibrated."""
    text = f"{name}: connected, {driver.nominal_rate_hz:g} Hz reported."
    calibrated = getattr(driver, "calibrated", None)
    if calibrated is False:
        text += " Not calibrated: calibrate it with the tracker's software before the first trial."
    elif calibrated is True:
        text += " Calibrated."
    return text


def _row(*widgets: QWidget) -> QWidget:
    holder = QWidget()
    layout = QHBoxLayout(holder)
    layout.setContentsMargins(0, 0, 0, 0)
    for widget in widgets:
        layout.addWidget(widget, 1 if isinstance(widget, QLineEdit) else 0)
    return holder


def _spin(low: int, high: int, value: int, suffix: str) -> QSpinBox:
    spin = QSpinBox()
    spin.setRange(low, high)
    spin.setValue(value)
    spin.setSuffix(suffix)
    return spin


def _double(low: float, high: float, value: float, suffix: str, decimals: int) -> QDoubleSpinBox:
    spin = QDoubleSpinBox()
    spin.setRange(low, high)
    spin.setDecimals(decimals)
    spin.setValue(value)
    spin.setSuffix(suffix)
    return spin
