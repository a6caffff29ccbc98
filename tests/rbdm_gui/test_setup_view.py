"""The setup screen shows settings, turns edits back into settings and persists them."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from rbdm_gui.screens.setup_screen_panel import screen_geometry
from rbdm_gui.screens.setup_view import SetupView
from rbdm_gui.workflows.settings import KEYBOARD_ONLY, StudySettings, load_settings, settings_path

pytestmark = pytest.mark.gui


def test_settings_round_trip_through_the_widgets(qtbot: QtBot) -> None:
    settings = StudySettings(
        study_path="/tmp/x/study.sqlite",
        participant="P07",
        stimuli="synthetic:n=3,size=256",
        split="validation",
        max_stimuli=12,
        labels=("neutral", "happy", "anger"),
        driver="eyetribe",
        driver_options={"eyetribe": {"host": "10.0.0.2", "port": 6556, "gaze": "raw"}},
        detector="ivt",
        recogniser=KEYBOARD_ONLY,
        screen_width_px=1920,
        screen_height_px=1080,
        diagonal_in=24.0,
        distance_cm=65.0,
        seed=11,
        calibrate=False,
    )
    view = SetupView(settings, settings_file=None)
    qtbot.addWidget(view)
    shown = view.settings()
    assert shown.participant == "P07" and shown.stimuli == "synthetic:n=3,size=256"
    assert shown.labels == ("neutral", "happy", "anger") and shown.split == "validation"
    assert shown.driver == "eyetribe" and shown.driver_options["eyetribe"]["host"] == "10.0.0.2"
    assert (
        shown.driver_options["eyetribe"]["port"] == 6556 and shown.driver_options["eyetribe"]["gaze"] == "raw"
    )
    assert shown.driver_options["mouse"]["rate_hz"] == 60.0
    assert (shown.detector, shown.recogniser, shown.seed, shown.calibrate) == (
        "ivt",
        KEYBOARD_ONLY,
        11,
        False,
    )
    assert (shown.screen_width_px, shown.screen_height_px, shown.diagonal_in, shown.distance_cm) == (
        1920,
        1080,
        24.0,
        65.0,
    )


def test_start_persists_the_settings_and_a_new_view_shows_them(qtbot: QtBot, tmp_path: Path) -> None:
    view = SetupView(StudySettings(recogniser=KEYBOARD_ONLY))
    qtbot.addWidget(view)
    view.participant_edit.setText("P42")
    view.faces_spin.setValue(4)
    view.seed_spin.setValue(99)
    view.label_boxes["contempt"].setChecked(False)
    view.driver_combo.setCurrentText("mouse")
    with qtbot.waitSignal(view.start_requested, timeout=2000) as signal:
        qtbot.mouseClick(view.start_button, Qt.MouseButton.LeftButton)
    started = signal.args[0]
    assert isinstance(started, StudySettings) and started.participant == "P42"
    assert settings_path().is_relative_to(tmp_path)
    saved = load_settings()
    assert saved == started
    assert saved.stimuli == "synthetic:n=4,size=512" and saved.seed == 99 and "contempt" not in saved.labels
    again = SetupView(load_settings())
    qtbot.addWidget(again)
    assert again.settings() == saved


def test_bad_settings_are_shown_not_started(qtbot: QtBot) -> None:
    view = SetupView(StudySettings(recogniser=KEYBOARD_ONLY))
    qtbot.addWidget(view)
    view.participant_edit.setText("")
    with qtbot.assertNotEmitted(view.start_requested):
        view.request_start()
    assert "pseudonym" in view.problem_label.text()
    view.participant_edit.setText("P01")
    view.option_editors["mouse"]._editors["rate_hz"][1].setText("fast")  # type: ignore[union-attr]
    view.request_start()
    assert "needs a number" in view.problem_label.text()
    assert not settings_path().exists()


def test_the_screen_qt_reports_fills_the_geometry(qtbot: QtBot) -> None:
    view = SetupView(StudySettings(recogniser=KEYBOARD_ONLY), prefill_screen=True)
    qtbot.addWidget(view)
    screen = view.screen()
    expected = screen_geometry(screen)
    assert (view.width_spin.value(), view.height_spin.value()) == (expected.width_px, expected.height_px)
    assert view.diagonal_spin.value() == pytest.approx(expected.diagonal_in)
    assert "scale" in view.geometry_info.text()


def test_keyboard_only_needs_no_microphone(qtbot: QtBot) -> None:
    view = SetupView(StudySettings(recogniser=KEYBOARD_ONLY))
    qtbot.addWidget(view)
    view.show()
    assert not view.microphone_combo.isEnabled()
    assert "keys 1–8 only" in view.speech_notice.text()


def test_a_pseudonym_with_a_space_is_kept_and_explained_not_silently_changed(qtbot: QtBot) -> None:
    view = SetupView(StudySettings(recogniser=KEYBOARD_ONLY))
    qtbot.addWidget(view)
    view.participant_edit.clear()
    qtbot.keyClicks(view.participant_edit, "P 01")
    assert view.participant_edit.text() == "P 01"  # the old validator dropped the space unseen
    assert "got 'P 01'" in view.participant_hint.text() and "letters, digits" in view.participant_hint.text()
    with qtbot.assertNotEmitted(view.start_requested):
        view.request_start()
    assert "pseudonym must be" in view.problem_label.text()
    view.participant_edit.setText("P01")
    assert "no spaces" in view.participant_hint.text()


def test_label_key_texts_follow_the_label_set(qtbot: QtBot) -> None:
    view = SetupView(StudySettings(recogniser=KEYBOARD_ONLY, labels=("neutral", "happy", "sad")))
    qtbot.addWidget(view)
    view.show()
    assert "keys 1–3 only" in view.speech_notice.text() and "Keys 1–3 label" in view.hint_label.text()
    view.label_boxes["anger"].setChecked(True)
    view.refresh_participants()
    assert "keys 1–4 only" in view.speech_notice.text() and "Keys 1–4 label" in view.hint_label.text()


def test_the_fixation_detector_and_the_order_design_have_their_library_defaults(qtbot: QtBot) -> None:
    from tracking.fixations import DEFAULT_DETECTOR
    from tracking.protocol import DEFAULT_ORDER_DESIGN

    assert StudySettings().detector == DEFAULT_DETECTOR == "adaptive"  # was "idt" (issue 16)
    view = SetupView(StudySettings(recogniser=KEYBOARD_ONLY))
    qtbot.addWidget(view)
    shown = view.settings()
    assert (shown.detector, shown.order_design) == ("adaptive", DEFAULT_ORDER_DESIGN)
    view.design_combo.setCurrentIndex(view.design_combo.findData("latin-square"))
    assert view.settings().order_design == "latin-square"
    assert StudySettings.from_json({"order_design": "latin-square"}).order_design == "latin-square"
    with pytest.raises(ValueError, match="unknown order design"):
        StudySettings(order_design="shuffled").check()


def test_the_fixation_detector_is_explained_in_degrees_and_ms(qtbot: QtBot) -> None:
    view = SetupView(StudySettings(recogniser=KEYBOARD_ONLY, detector="idt"))
    qtbot.addWidget(view)
    text = view.detector_info.text()
    assert "dispersion 1 °" in text and "min duration 100 ms" in text
    view.detector_combo.setCurrentText("adaptive")
    assert "Nyström" in view.detector_info.text() and "min peak 40 °/s" in view.detector_info.text()


def test_testing_the_tracker_shows_the_rate_it_reports_and_errors_go_with_the_tracker(qtbot: QtBot) -> None:
    settings = StudySettings(
        recogniser=KEYBOARD_ONLY,
        driver="eyetribe",
        driver_options={"eyetribe": {"port": 1, "connect_timeout_s": 0.2}, "mouse": {"rate_hz": 120.0}},
    )
    view = SetupView(settings)
    qtbot.addWidget(view)
    view.test_tracker()
    qtbot.waitUntil(lambda: "eyetribe:" in view.tracker_info.text(), timeout=10_000)
    assert "not reachable" in view.tracker_info.text() or "refused" in view.tracker_info.text()
    view.show_problem("EyeTribe server not reachable at localhost:1. Start EyeTribe Server.")
    view.driver_combo.setCurrentText("mouse")  # old code: the Eye Tribe error stayed on screen
    assert view.problem_label.text() == "" and view.tracker_info.text() == ""
    view.test_tracker()
    qtbot.waitUntil(lambda: "mouse: connected" in view.tracker_info.text(), timeout=10_000)
    assert "120 Hz reported" in view.tracker_info.text()


def test_every_tracker_option_field_shows_its_value_defaults_included(qtbot: QtBot) -> None:
    """Seen in the retaken screenshot: after the screen's split the tracker fields came up empty (empty
    text reads as the default, so the editor never wrote the defaults in), unlike before."""
    from PySide6.QtWidgets import QLineEdit

    view = SetupView(StudySettings(recogniser=KEYBOARD_ONLY))
    qtbot.addWidget(view)
    shown = {}
    for driver, editor in view.option_editors.items():
        for name, (option, widget) in editor._editors.items():
            if isinstance(widget, QLineEdit) and option.default is not None:
                shown[(driver, name)] = widget.text()
                assert widget.text() == str(option.default), (driver, name)
    assert shown[("mouse", "rate_hz")] == "60.0" and len(shown) >= 4


def test_edits_reach_the_model_and_what_is_typed_is_never_rewritten(qtbot: QtBot) -> None:
    from PySide6.QtWidgets import QLineEdit

    view = SetupView(StudySettings(recogniser=KEYBOARD_ONLY))
    qtbot.addWidget(view)
    rate = view.option_editors["mouse"]._editors["rate_hz"][1]
    assert isinstance(rate, QLineEdit)
    rate.clear()
    qtbot.keyClicks(rate, "90.")
    assert rate.text() == "90." and view.model.settings.driver_options["mouse"]["rate_hz"] == 90.0
    view.participant_edit.clear()
    qtbot.keyClicks(view.participant_edit, "P09 ")
    assert view.participant_edit.text() == "P09 " and view.model.settings.participant == "P09"
    view.model.update(seed=5, calibrate=False)  # the model's changes are shown
    assert view.seed_spin.value() == 5 and not view.calibrate_check.isChecked()
    view.source_combo.setCurrentIndex(1)
    assert view.stimuli_panel.source_stack.currentIndex() == 1 and not view.model.stimuli.synthetic


def test_every_widget_writes_its_setting(qtbot: QtBot, tmp_path: Path) -> None:
    from PySide6.QtWidgets import QCheckBox, QComboBox, QLineEdit

    view = SetupView(StudySettings(recogniser=KEYBOARD_ONLY))
    qtbot.addWidget(view)
    view.study_edit.setText(str(tmp_path / "s.sqlite"))
    view.faces_spin.setValue(3)
    view.face_size_spin.setValue(128)
    view.max_spin.setValue(7)
    view.split_combo.setCurrentText("train")
    view.design_combo.setCurrentIndex(view.design_combo.findData("same-for-all"))
    view.width_spin.setValue(1920)
    view.height_spin.setValue(1200)
    view.diagonal_spin.setValue(22.5)
    view.distance_spin.setValue(60.0)
    view.driver_combo.setCurrentText("eyetribe")
    view.detector_combo.setCurrentText("idt")
    view.calibrate_check.setChecked(False)
    for option, editor in view.option_editors["eyetribe"]._editors.values():
        if isinstance(editor, QCheckBox):
            editor.setChecked(not editor.isChecked())
        elif isinstance(editor, QComboBox):
            editor.setCurrentIndex(editor.count() - 1)
        elif isinstance(editor, QLineEdit) and option.kind in ("int", "float"):
            editor.setText("7")
    view.recogniser_combo.setCurrentIndex(view.recogniser_combo.findData("vosk"))
    view.vosk_edit.setText("/models/vosk")
    shown = view.settings()
    assert (shown.study_path, shown.stimuli, shown.max_stimuli) == (
        str(tmp_path / "s.sqlite"),
        "synthetic:n=3,size=128",
        7,
    )
    assert (shown.split, shown.order_design, shown.driver, shown.detector) == (
        "train",
        "same-for-all",
        "eyetribe",
        "idt",
    )
    assert (shown.screen_width_px, shown.screen_height_px, shown.diagonal_in, shown.distance_cm) == (
        1920,
        1200,
        22.5,
        60.0,
    )
    assert not shown.calibrate and shown.driver_options["eyetribe"]["port"] == 7
    assert (shown.recogniser, shown.vosk_model_dir) == ("vosk", "/models/vosk")
    folder = tmp_path / "faces"
    view.source_combo.setCurrentIndex(1)
    view.folder_edit.setText(str(folder))
    view.folder_edit.editingFinished.emit()
    assert view.settings().stimuli == str(folder)
    qtbot.waitUntil(lambda: "dataset not found" in view.problem_label.text(), timeout=5000)  # read aside
