"""The study setup screen's model, without Qt: settings as edited, participants, what Start does."""

from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path

import pytest

from analysis.geometry import ScreenGeometry
from rbdm_gui.workflows.settings import (
    DEFAULT_STIMULI,
    KEYBOARD_ONLY,
    StudySettings,
    load_settings,
    settings_path,
)
from rbdm_gui.workflows.study_setup import (
    FLOAT_LIMITS,
    INT_LIMITS,
    SYNTHETIC_SPLITS,
    StartRequest,
    StimulusChoice,
    StudySetup,
    pseudonym_problem,
)
from tracking.errors import StoreError
from tracking.recording import begin_session, plan_session
from tracking.records import PhaseOnsets, Trial
from tracking.store import SessionStore

NO_MICROPHONE = ((), "No audio input device found; label with keys 1–8.")


def _setup(settings: StudySettings | None = None) -> tuple[StudySetup, list[str]]:
    """A model without a microphone, and the aspects it reports as changed."""
    model = StudySetup(settings or StudySettings(recogniser=KEYBOARD_ONLY), microphones=NO_MICROPHONE)
    aspects: list[str] = []
    model.changed.subscribe(aspects.append)
    return model, aspects


def test_the_limits_and_the_default_stimuli_name_study_settings_fields() -> None:
    names = {item.name for item in fields(StudySettings)}
    assert set(INT_LIMITS) | set(FLOAT_LIMITS) <= names
    assert StimulusChoice().spec == DEFAULT_STIMULI  # the setup's defaults are the settings' defaults


def test_settings_are_kept_as_the_screen_shows_them() -> None:
    model, _ = _setup(
        StudySettings(
            participant="  P07 ",
            labels=("anger", "neutral", "happy"),
            driver="no-such-tracker",
            detector="ivt",
            recogniser="no-such-recogniser",
            seed=-5,
            diagonal_in=24.04,
            distance_cm=1000.0,
            order_design="shuffled",
        )
    )
    shown = model.settings
    assert shown.participant == "P07" and shown.labels == ("neutral", "happy", "anger")
    assert (shown.driver, shown.detector, shown.recogniser) == ("mouse", "ivt", KEYBOARD_ONLY)
    assert (shown.seed, shown.diagonal_in, shown.distance_cm) == (0, 24.0, 500.0)
    assert shown.order_design == "per-participant"
    assert shown.driver_options["mouse"]["rate_hz"] == 60.0  # every tracker's options at their defaults
    assert model.settings.microphone == "" and model.microphone_problem


def test_the_stimulus_choice_keeps_both_alternatives_and_offers_the_synthetic_splits() -> None:
    model, aspects = _setup(StudySettings(stimuli="synthetic:n=3,size=256", recogniser=KEYBOARD_ONLY))
    assert model.stimuli == StimulusChoice(True, 3, 256, "") and model.splits == ("", *SYNTHETIC_SPLITS)
    model.set_stimuli(synthetic=False, folder=" /data/ferplus ")
    assert model.settings.stimuli == "/data/ferplus" and "start" in aspects
    model.set_stimuli(synthetic=True, n_per_label=9999)
    assert model.settings.stimuli == "synthetic:n=500,size=256"  # clamped as the spin box does
    assert model.stimuli.folder == "/data/ferplus"
    assert StimulusChoice().with_spec("synthetic:n=x,size=64,rgb=1").spec == "synthetic:n=2,size=64"
    with pytest.raises(ValueError, match="size_px must be in 16–1200"):
        StimulusChoice(size_px=3)


def test_only_settings_that_start_depends_on_ask_for_the_participants_again() -> None:
    model, aspects = _setup()
    model.update(calibrate=False)
    assert aspects == ["settings"]
    model.set_label("contempt", False)
    assert aspects[-2:] == ["settings", "start"] and "contempt" not in model.settings.labels
    model.update(participant="P02")
    assert aspects[-1] == "start"


def test_an_unreadable_option_stops_only_its_own_tracker() -> None:
    model, _ = _setup()
    model.set_driver_option("eyetribe", "port", "abc")
    assert "port" not in model.settings.driver_options["eyetribe"]
    assert model.option_problem("eyetribe", "port") == (
        "the tracker option 'port' needs a number; got 'abc'.",
        "abc",
    )
    assert model.entered_settings().driver == "mouse"  # the mouse is chosen: nothing wrong
    model.update(driver="eyetribe")
    with pytest.raises(ValueError, match="needs a number"):
        model.entered_settings()
    model.set_driver_option("eyetribe", "port", " 6556 ")
    assert model.entered_settings().driver_options["eyetribe"]["port"] == 6556
    model.update(driver_options={"eyetribe": {"port": "x"}})  # as the settings file may hold it
    assert (
        model.option_problem("eyetribe", "port")[1] == "x"
        and "port" not in model.settings.driver_options["eyetribe"]
    )
    model.set_driver_option("eyetribe", "gaze", "no-such-choice")  # a choice keeps its value
    assert model.settings.driver_options["eyetribe"]["gaze"] != "no-such-choice"


def test_start_checks_saves_and_announces_or_says_what_is_wrong(tmp_path: Path) -> None:
    model, _ = _setup()
    requests: list[StartRequest] = []
    model.start_requested.subscribe(requests.append)
    model.update(participant="P 01")
    model.request_start()
    assert requests == [] and "pseudonym must be" in model.problem and not settings_path().exists()
    model.update(participant="P01")
    model.request_start(new_session=True)
    assert model.problem == "" and requests == [StartRequest(model.settings, new_session=True)]
    assert load_settings() == model.settings
    assert settings_path().is_relative_to(tmp_path)


def test_a_failed_start_is_shown_until_another_tracker_is_chosen() -> None:
    model, _ = _setup()
    model.show_problem("EyeTribe server not reachable at localhost:1.")
    model.update(calibrate=False)
    assert model.problem.startswith("EyeTribe")
    model.update(driver="eyetribe")
    assert model.problem == ""
    model.set_problem("cannot tell the dataset layout")  # not about a start: it stays
    model.update(driver="mouse")
    assert model.problem.startswith("cannot tell")


def test_pseudonyms_are_explained_not_changed() -> None:
    assert pseudonym_problem(" P07 ") == ""
    assert "got 'P 01'" in pseudonym_problem("P 01")
    model, _ = _setup()
    model.update(participant="P" * 40)
    assert model.settings.participant == "P" * 32  # the edit's length limit


SET_SETTINGS = StudySettings(stimuli="synthetic:n=1,size=512", recogniser=KEYBOARD_ONLY)
STIMULI = [f"synthetic/test/{k}" for k in range(3)]


def _study(path: Path) -> None:
    """P01 finished (3 of 3), P02 unfinished (1 of 3), on the stimulus set of SET_SETTINGS."""
    key = SET_SETTINGS.stimulus_set_key()
    with SessionStore(path) as store:
        for pseudonym, n_done in (("P01", 3), ("P02", 1)):
            plan = plan_session(store, pseudonym, stimulus_set=key, stimulus_ids=STIMULI)
            session_id, _ = begin_session(
                store,
                plan,
                settings={"stimulus_set": key},
                geometry=ScreenGeometry(),
                tracker="mouse",
                recogniser="keyboard",
            )
            order = store.session(session_id).stimulus_order
            for position in range(n_done):
                t = 10_000.0 * position
                phases = PhaseOnsets(t, t + 500, t + 700, t + 1200, t + 2000)
                trial = Trial(position, order[position], phases, "happy", "keyboard")
                store.record_trial(session_id, trial, [])


def test_the_participants_and_what_start_does(tmp_path: Path) -> None:
    path = tmp_path / "study.sqlite"
    _study(path)
    model, aspects = _setup(SET_SETTINGS)
    files: list[str] = []
    model.study_path_changed.subscribe(files.append)
    model.update(study_path=str(path), participant="P01")
    model.read_participants()
    assert files == [str(path)] and aspects[-1] == "participants"
    assert [(s.pseudonym, s.text) for s in model.participants.states] == [
        ("P01", "finished, 3 of 3"),
        ("P02", "unfinished, 1 of 3"),
    ]
    assert not model.participants.resumes and "P01 has finished a session" in model.start_hint()
    assert "Keys 1–8 label" in model.start_hint() and model.participants.warning() == ""
    model.update(participant="P02")
    model.read_participants()
    assert model.participants.resumes and "stimulus 2 of 3" in model.participants.plan_text()
    assert (
        model.participants.pseudonym_of(model.participants.states[1].session_id or -1) == "P02"
        and model.participants.pseudonym_of(999) == "?"
    )
    model.read_participants()
    assert files == [str(path)]  # the same study: said once
    model.update(participant="")
    model.read_participants()
    assert (
        model.participants.plan_text() == "Type a pseudonym, or click a participant above."
        and not model.participants.resumes
    )


def test_a_missing_study_has_no_participants_and_a_damaged_one_says_why(tmp_path: Path) -> None:
    model, _ = _setup(StudySettings(study_path=str(tmp_path / "new.sqlite"), recogniser=KEYBOARD_ONLY))
    model.read_participants()
    assert model.participants.states == () and model.participants.plan_text().startswith(
        "Start begins a new session for P01"
    )
    damaged = tmp_path / "damaged.sqlite"
    damaged.write_text("not a database")
    model.update(study_path=str(damaged))
    model.read_participants()
    assert model.participants.problem and model.participants.plan_text() == model.participants.problem
    assert model.participants.warning() == "" and not model.participants.resumes
    model.update(labels=())
    assert model.start_hint() == "Choose at least one label."


def test_the_screen_and_the_detector_are_described() -> None:
    model, _ = _setup(StudySettings(recogniser=KEYBOARD_ONLY, detector="idt"))
    assert "scale" in model.geometry_text() and "1° = " in model.geometry_text()
    assert "dispersion 1 °" in model.detector_text()


def test_the_tracker_test_reports_the_chosen_tracker_only() -> None:
    model, aspects = _setup()
    model.set_driver_option("mouse", "rate_hz", "120")
    probe = model.tracker_probe()
    assert model.tracker_note.text == "Connecting to mouse…" and aspects[-1] == "tracker"
    report = probe.run()
    assert report == "mouse: connected, 120 Hz reported."
    model.update(driver="eyetribe")
    model.tracker_tested("mouse", report)
    assert model.tracker_note.text == ""  # another tracker was chosen since
    model.set_driver_option("eyetribe", "port", "abc")
    with pytest.raises(ValueError, match="needs a number"):
        model.tracker_probe()
    assert "needs a number" in model.tracker_note.text


def test_the_speech_notice_follows_the_label_set_and_the_microphone() -> None:
    model, _ = _setup(StudySettings(recogniser=KEYBOARD_ONLY, labels=("neutral", "happy", "sad")))
    assert "keys 1–3 only" in model.speech_notice() and not model.speaks
    model.update(recogniser="pocketsphinx")
    assert model.speech_notice() == "No audio input device found; label with keys 1–3." and not model.speaks
    with_microphone = StudySetup(StudySettings(microphone="USB"), microphones=(("USB",), ""))
    assert with_microphone.speaks and with_microphone.settings.microphone == "USB"
    assert with_microphone.speech_notice() == ""
    assert "keys 1–8" in with_microphone.speech_notice("The microphone is busy; label with keys 1–8.")


def test_a_listed_session_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "study.sqlite"
    _study(path)
    model, _ = _setup(replace(SET_SETTINGS, study_path=str(path)))
    model.read_participants()
    finished = model.participants.states[0].session_id
    assert finished is not None
    outcome = model.session_report(finished)
    assert "Participant P01" in outcome.summary and "3 of 3" in outcome.summary
    with pytest.raises((StoreError, ValueError)):
        model.session_report(999)
